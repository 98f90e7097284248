#!/usr/bin/env python3
"""Every service in the workspace has complete manifests, on the port the binary listens on.

For each directory under services/ (one per service, named like its binary) and for each overlay
under deploy/overlays/, the rendered overlay must contain:

* a Deployment named after the service whose container runs /usr/local/bin/<service>, exposes a
  port named "grpc" and has gRPC startup, readiness and liveness probes, all on the service port;
* a Service with a port named "grpc", an appProtocol, and targetPort equal to the service port,
  selecting the Deployment's pods;
* a PodDisruptionBudget and a NetworkPolicy selecting those pods, the NetworkPolicy admitting
  ingress on the service port; a HorizontalPodAutoscaler targeting the Deployment;
* no LISTEN_ADDR (in env or a referenced ConfigMap) on another port.

The service port is the binary's own default: `target/debug/<service> --help` prints
`[default: 0.0.0.0:PORT]` for LISTEN_ADDR. Missing binaries are built first (cargo build -q --bins).
Deployments labelled app.kubernetes.io/component=grpc-service without a services/ directory are
reported too (stale manifests).

Usage:
  check_services.py [--kubectl KUBECTL] [--rendered-dir DIR]   # DIR/<overlay>.yaml, else rendered here
  check_services.py --self-test                                # the --help parser alone
Exit status 0 when everything matches, 1 with one FAIL line per problem otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SERVICES_DIR = ROOT / "services"
OVERLAYS_DIR = ROOT / "deploy" / "overlays"
GRPC_SERVICE_COMPONENT = "grpc-service"
OPTION_START = re.compile(r"^\s*(-[A-Za-z0-9], )?--[A-Za-z0-9]")
DEFAULT_ADDR = re.compile(r"\[default: (.+?)\](?=\s|$)")


class HelpParseError(Exception):
    pass


class RenderError(Exception):
    pass


def listen_port_from_help(help_text: str) -> int:
    """The port of LISTEN_ADDR's default, from clap's short (-h) or long (--help) output."""
    blocks: list[list[str]] = []
    for line in help_text.splitlines():
        if OPTION_START.match(line) or not blocks:
            blocks.append([line])
        else:
            blocks[-1].append(line)
    for block in blocks:
        text = " ".join(block)
        if "LISTEN_ADDR" not in text and "--listen-addr" not in text:
            continue
        found = DEFAULT_ADDR.search(text)
        if not found:
            raise HelpParseError("the LISTEN_ADDR option has no [default: ...]")
        addr = found.group(1).strip()
        port = addr.rsplit(":", 1)[-1] if ":" in addr else ""
        if not port.isdigit():
            raise HelpParseError(f"LISTEN_ADDR default {addr!r} has no port")
        return int(port)
    raise HelpParseError("no LISTEN_ADDR option in --help")


def self_test() -> int:
    long_help = """Directory service

Usage: directory [OPTIONS] --database-url <DATABASE_URL>

Options:
      --listen-addr <LISTEN_ADDR>
          Address the gRPC server binds to

          [env: LISTEN_ADDR=]
          [default: 0.0.0.0:50051]

      --database-url <DATABASE_URL>
          PostgreSQL connection string

          [env: DATABASE_URL]

      --nats-url <NATS_URL>
          [env: NATS_URL=]
          [default: nats://127.0.0.1:4222]
"""
    short_help = """Usage: insurance [OPTIONS]

Options:
      --nats-url <NATS_URL>        NATS server [env: NATS_URL=] [default: nats://127.0.0.1:4222]
      --listen-addr <LISTEN_ADDR>  gRPC address [env: LISTEN_ADDR=] [default: 0.0.0.0:50053]
  -h, --help                       Print help
"""
    ipv6_help = "  --listen-addr <ADDR>  [env: LISTEN_ADDR=] [default: [::]:50054]\n"
    no_default = "  --listen-addr <ADDR>  [env: LISTEN_ADDR=]\n  --nats-url <U>  [default: nats://x:4222]\n"
    cases = [(long_help, 50051), (short_help, 50053), (ipv6_help, 50054), (no_default, None), ("nothing", None)]
    failures = 0
    for text, expected in cases:
        try:
            got = listen_port_from_help(text)
        except HelpParseError:
            got = None
        if got != expected:
            failures += 1
            print(f"FAIL parser self-test: expected {expected}, got {got}")
    print(f"check_services parser self-test: {len(cases) - failures} passed, {failures} failed")
    return 1 if failures else 0


def service_names() -> list[str]:
    if not SERVICES_DIR.is_dir():
        return []
    return sorted(p.name for p in SERVICES_DIR.iterdir() if p.is_dir() and not p.name.startswith("."))


def service_ports(names: list[str]) -> tuple[dict[str, int], list[str]]:
    binaries = {name: ROOT / "target" / "debug" / name for name in names}
    if not all(b.is_file() for b in binaries.values()):
        print("check_services: building the service binaries (cargo build -q --bins)", flush=True)
        build = subprocess.run(["cargo", "build", "-q", "--bins"], cwd=ROOT, capture_output=True, text=True)
        if build.returncode != 0:
            tail = "\n".join(build.stderr.strip().splitlines()[-25:])
            print(f"check_services: cargo build -q --bins failed (last lines):\n{tail}", flush=True)
    ports, problems = {}, []
    env = {k: v for k, v in os.environ.items() if k != "LISTEN_ADDR"}
    for name, binary in binaries.items():
        if not binary.is_file():
            problems.append(f"{name}: no binary at {binary.relative_to(ROOT)} (does services/{name} build a binary named {name}?)")
            continue
        run = subprocess.run([str(binary), "--help"], capture_output=True, text=True, env=env, timeout=60)
        if run.returncode != 0:
            problems.append(f"{name}: `{binary.relative_to(ROOT)} --help` exited {run.returncode}: {run.stderr.strip()[:300]}")
            continue
        try:
            ports[name] = listen_port_from_help(run.stdout)
        except HelpParseError as e:
            problems.append(f"{name}: {e}")
    return ports, problems


def render(overlays: list[str], kubectl: str, rendered_dir: Path | None) -> dict[str, list[dict]]:
    out = {}
    for overlay in overlays:
        if rendered_dir and (rendered_dir / f"{overlay}.yaml").is_file():
            text = (rendered_dir / f"{overlay}.yaml").read_text()
        else:
            run = subprocess.run([kubectl, "kustomize", str(OVERLAYS_DIR / overlay)], capture_output=True, text=True)
            if run.returncode != 0:
                raise RenderError(f"kubectl kustomize deploy/overlays/{overlay} failed: {run.stderr.strip()[:500]}")
            text = run.stdout
        out[overlay] = [d for d in yaml.safe_load_all(text) if d]
    return out


def selects(selector: dict | None, labels: dict) -> bool:
    """A label selector (matchLabels only, non-empty) that selects pods with these labels."""
    match = (selector or {}).get("matchLabels") or {}
    if not match or (selector or {}).get("matchExpressions"):
        return False
    return all(labels.get(k) == v for k, v in match.items())


def check_overlay(overlay: str, docs: list[dict], names: list[str], ports: dict[str, int]) -> list[str]:
    """Problems of one rendered overlay. Port comparisons need the service's port (from its
    binary); the presence of every manifest is checked either way."""
    problems: list[str] = []
    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    named = lambda kind, name: next((d for d in by_kind.get(kind, []) if d["metadata"]["name"] == name), None)
    config_maps = {d["metadata"]["name"]: d.get("data") or {} for d in by_kind.get("ConfigMap", [])}

    for svc in names:
        port = ports.get(svc)
        fail = lambda msg: problems.append(f"{overlay}: {svc}: {msg}")
        dep = named("Deployment", svc)
        if dep is None:
            fail("no Deployment")
            # Still report the other missing manifests, for pods labelled the usual way.
            pod_labels, container = {"app.kubernetes.io/name": svc}, None
        else:
            pod = dep["spec"]["template"]
            pod_labels = pod["metadata"].get("labels") or {}
            containers = pod["spec"].get("containers") or []
            container = next((c for c in containers if Path((c.get("command") or [""])[0]).name == svc), None)
            if container is None:
                fail(f"no container of the Deployment runs /usr/local/bin/{svc}")
        if container is not None:
            grpc_ports = [p for p in container.get("ports") or [] if p.get("name") == "grpc"]
            if len(grpc_ports) != 1:
                fail("the container has no single port named 'grpc'")
            elif port is not None and grpc_ports[0].get("containerPort") != port:
                fail(f"container port 'grpc' is {grpc_ports[0].get('containerPort')}, the binary listens on {port}")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                grpc = (container.get(probe) or {}).get("grpc")
                if grpc is None:
                    fail(f"{probe} is not a gRPC probe")
                elif port is not None and grpc.get("port") != port:
                    fail(f"{probe} checks port {grpc.get('port')}, the binary listens on {port}")
            listen = [e.get("value") for e in container.get("env") or [] if e.get("name") == "LISTEN_ADDR"]
            for ref in container.get("envFrom") or []:
                cm = (ref.get("configMapRef") or {}).get("name")
                if cm in config_maps and "LISTEN_ADDR" in config_maps[cm]:
                    listen.append(config_maps[cm]["LISTEN_ADDR"])
            for addr in listen if port is not None else []:
                if not str(addr).endswith(f":{port}"):
                    fail(f"LISTEN_ADDR is set to {addr!r}, the probes and Service use {port}")

        svc_obj = named("Service", svc)
        if svc_obj is None:
            fail("no Service")
        else:
            grpc = [p for p in svc_obj["spec"].get("ports") or [] if p.get("name") == "grpc"]
            if not grpc:
                fail("Service has no port named 'grpc'")
            for p in grpc:
                target = p.get("targetPort", p.get("port"))
                if isinstance(target, str) and container is not None:
                    target = next((cp.get("containerPort") for cp in container.get("ports") or [] if cp.get("name") == target), target)
                if port is not None and target != port:
                    fail(f"Service targetPort is {target}, the binary listens on {port}")
                if p.get("appProtocol") not in ("kubernetes.io/h2c", "grpc"):
                    fail(f"Service port 'grpc' has appProtocol {p.get('appProtocol')!r}")
            if not all(pod_labels.get(k) == v for k, v in (svc_obj["spec"].get("selector") or {"": None}).items()):
                fail("Service selector does not select the Deployment's pods")

        if not any(selects(p["spec"].get("selector"), pod_labels) for p in by_kind.get("PodDisruptionBudget", [])):
            fail("no PodDisruptionBudget selects its pods")
        if not any((h["spec"].get("scaleTargetRef") or {}).get("kind") == "Deployment"
                   and h["spec"]["scaleTargetRef"].get("name") == svc
                   for h in by_kind.get("HorizontalPodAutoscaler", [])):
            fail("no HorizontalPodAutoscaler targets its Deployment")
        policies = [n for n in by_kind.get("NetworkPolicy", []) if selects(n["spec"].get("podSelector"), pod_labels)]
        if not policies:
            fail("no NetworkPolicy selects its pods")
        elif port is not None and not any(port in [p.get("port") for p in rule.get("ports") or []]
                                          for n in policies for rule in n["spec"].get("ingress") or []):
            fail(f"no NetworkPolicy admits ingress on port {port}")

    for dep in by_kind.get("Deployment", []):
        labels = dep["metadata"].get("labels") or {}
        if labels.get("app.kubernetes.io/component") == GRPC_SERVICE_COMPONENT and dep["metadata"]["name"] not in names:
            problems.append(f"{overlay}: Deployment {dep['metadata']['name']} is a gRPC service with no services/{dep['metadata']['name']} directory")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubectl", default="kubectl")
    parser.add_argument("--rendered-dir", type=Path)
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test()

    names = service_names()
    if not names:
        print(f"FAIL no service directories under {SERVICES_DIR}")
        return 1
    overlays = sorted(p.name for p in OVERLAYS_DIR.iterdir() if (p / "kustomization.yaml").is_file())
    if not overlays:
        print(f"FAIL no overlays under {OVERLAYS_DIR}")
        return 1

    ports, problems = service_ports(names)
    try:
        rendered = render(overlays, args.kubectl, args.rendered_dir)
    except RenderError as e:
        print(f"FAIL {e}")
        return 1
    for overlay in overlays:
        problems += check_overlay(overlay, rendered[overlay], names, ports)

    for problem in problems:
        print(f"FAIL {problem}")
    ports_text = ", ".join(f"{n} {p}" for n, p in sorted(ports.items()))
    if problems:
        print(f"check_services: {len(problems)} problem(s); services: {', '.join(names)}; overlays: {', '.join(overlays)}")
        return 1
    print(f"check_services: every service has Deployment, Service, PDB, HPA and NetworkPolicy in every overlay "
          f"({', '.join(overlays)}) on its binary's port ({ports_text})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
