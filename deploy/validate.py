#!/usr/bin/env python3
"""Offline schema validation of rendered manifests (deploy-check).

Every object of a rendered overlay is checked, strictly (unknown fields are errors):

* Kubernetes kinds against the OpenAPI schemas that kubernetes-validate ships, for the
  Kubernetes version given with --kubernetes-version;
* custom resources against the schemas under deploy/schemas/<group>/<version>/<kind>.json
  (hand-written, faithful subsets of the operators' CRDs: see deploy/schemas/README.md);
* anything else is an error, unless its group is listed in SKIPPED below with the reason, in
  which case it is reported as skipped.

Usage: validate.py --kubernetes-version 1.34.0 --schemas deploy/schemas RENDERED.yaml...
Exit status 0 when every object is valid, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

# API groups that are not validated, with the reason printed for each object. Empty today:
# every custom resource clinicnet renders has a vendored schema.
SKIPPED: dict[str, str] = {}

# Groups whose kinds kubernetes-validate knows (the built-in Kubernetes API).
BUILTIN_GROUP_SUFFIXES = ("k8s.io",)
BUILTIN_GROUPS = {"", "apps", "batch", "policy", "autoscaling"}


def group_of(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        group, version = api_version.split("/", 1)
    else:
        group, version = "", api_version
    return group, version


def is_builtin(group: str) -> bool:
    return group in BUILTIN_GROUPS or group.endswith(BUILTIN_GROUP_SUFFIXES)


def describe(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message}"


def validate_custom(doc: dict, schemas: Path) -> tuple[str, list[str]]:
    group, version = group_of(doc["apiVersion"])
    path = schemas / group / version / f"{doc['kind']}.json"
    if not path.is_file():
        if group in SKIPPED:
            return "skipped", [SKIPPED[group]]
        return "invalid", [f"no schema for {doc['apiVersion']} {doc['kind']} (expected {path})"]
    schema = json.loads(path.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    return ("invalid", [describe(e) for e in errors]) if errors else ("valid", [str(path)])


def validate_builtin(doc: dict, k8s_version: str) -> tuple[str, list[str]]:
    try:
        kubernetes_validate.validate(doc, k8s_version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return "invalid", [describe(e)]
    except kubernetes_validate.SchemaNotFoundError as e:
        return "invalid", [e.message]
    return "valid", []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", required=True)
    parser.add_argument("--schemas", type=Path, required=True)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()

    counts = {"valid": 0, "invalid": 0, "skipped": 0}
    for file in args.files:
        for doc in yaml.safe_load_all(file.read_text()):
            if not doc:
                continue
            name = f"{file.name}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            group, _ = group_of(doc.get("apiVersion", ""))
            if is_builtin(group):
                status, notes = validate_builtin(doc, args.kubernetes_version)
            else:
                status, notes = validate_custom(doc, args.schemas)
            counts[status] += 1
            if status == "invalid":
                for note in notes:
                    print(f"INVALID {name} ({doc.get('apiVersion')}) {note}")
            elif status == "skipped":
                print(f"SKIPPED {name} ({doc.get('apiVersion')}): {notes[0]}")

    print(
        f"kubernetes-validate {kubernetes_validate.__version__} (Kubernetes {args.kubernetes_version}, strict)"
        f" and vendored CRD schemas: {counts['valid']} valid, {counts['invalid']} invalid,"
        f" {counts['skipped']} skipped"
    )
    return 1 if counts["invalid"] else 0


if __name__ == "__main__":
    sys.exit(main())
