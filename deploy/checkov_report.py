#!/usr/bin/env python3
"""Summarise checkov JSON reports (deploy-check): counts, every failed check, every skip.

Usage: checkov_report.py REPORT.json...
Exit status 1 when any check failed, any file could not be parsed, or a skip carries no reason
(skips are only allowed as annotations/comments in the manifests themselves, with the reason).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def reports(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    if isinstance(data, dict) and "results" not in data and data.get("failed") == 0:
        return []  # checkov's shape for "nothing to scan"
    return data if isinstance(data, list) else [data]


def main() -> int:
    bad = 0
    for path in map(Path, sys.argv[1:]):
        for report in reports(path):
            summary = report.get("summary", {})
            results = report.get("results", {})
            kind = report.get("check_type", path.stem)
            print(f"checkov {summary.get('checkov_version', '?')} {kind}: "
                  f"{summary.get('passed', 0)} passed, {summary.get('failed', 0)} failed, "
                  f"{summary.get('skipped', 0)} skipped, {summary.get('parsing_errors', 0)} parsing errors "
                  f"({summary.get('resource_count', 0)} resources)")
            for check in results.get("failed_checks", []):
                lines = check.get("file_line_range") or []
                print(f"  FAILED  {check['check_id']} {check.get('check_name', '')}: "
                      f"{check.get('resource')} ({check.get('file_path')}:{'-'.join(map(str, lines))})")
            skips: dict[tuple[str, str], list[str]] = {}
            for check in results.get("skipped_checks", []):
                reason = (check.get("check_result") or {}).get("suppress_comment") or check.get("suppress_comment") or ""
                if not reason.strip() or reason.strip() == "No comment provided":
                    print(f"  FAILED  {check['check_id']} on {check.get('resource')} is skipped without a reason")
                    bad += 1
                skips.setdefault((check["check_id"], reason), []).append(str(check.get("resource")))
            for (check_id, reason), resources in sorted(skips.items()):
                names = sorted({r.rstrip(".").split(".")[-1] for r in resources})
                print(f"  skipped {check_id} x{len(resources)} ({', '.join(names)}): {reason}")
            bad += int(summary.get("failed", 0)) + int(summary.get("parsing_errors", 0))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
