#!/usr/bin/env bash
# Lints and builds the protobuf contracts in proto/ with the buf version
# pinned in tools/buf (installed from the npm registry on first use).
# Usage: scripts/buf-lint.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
buf="${repo_root}/tools/buf/node_modules/.bin/buf"

if [[ ! -x "${buf}" ]]; then
  echo "buf-lint: installing buf with npm ci --prefix tools/buf" >&2
  # The package's postinstall only swaps its launcher for a direct link to
  # the platform binary; the launcher works without it, so scripts are off.
  npm ci --prefix "${repo_root}/tools/buf" --ignore-scripts --no-audit --no-fund >&2
fi

cd "${repo_root}/proto"
echo "buf-lint: $("${buf}" --version) lint (rules: proto/buf.yaml)" >&2
"${buf}" lint
echo "buf-lint: build (every import resolves)" >&2
"${buf}" build --exclude-source-info -o /dev/null
echo "buf-lint: ok" >&2
