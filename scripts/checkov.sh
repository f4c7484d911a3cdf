#!/usr/bin/env bash
# Scan the deploy assets (Terraform modules, Kubernetes manifests, Dockerfiles) with checkov and fail on
# any high-severity finding that the README beside it does not explain (tests/iac/checkov_gate.py).
# Checkov lives in its own virtual environment, cached outside the clone: it pins a python-hcl2 that
# clashes with the project's. Usage: scripts/checkov.sh [DIR...]   (default: deploy)
# Settings: CHECKOV_VENV (default ~/.cache/mlops-nocode/checkov-venv), CHECKOV_VERSION, PYTHON,
# PROJECT_PYTHON (the project's Python that runs the gate; default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
VENV="${CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mlops-nocode/checkov-venv}"
PROJECT_PY="${PROJECT_PYTHON:-.venv/bin/python}"
if [ "$("$VENV/bin/checkov" --version 2>/dev/null || true)" != "$CHECKOV_VERSION" ]; then
  echo "checkov: installing checkov==$CHECKOV_VERSION into $VENV" >&2
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi
dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(deploy)
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
for dir in "${dirs[@]}"; do
  [ -d "$dir" ] || { echo "checkov: $dir is not a folder" >&2; exit 2; }
  # --soft-fail: findings are judged by the gate below; any other failure of checkov stops here
  "$VENV/bin/checkov" -d "$dir" --framework terraform kubernetes dockerfile --skip-download --quiet \
    --compact --soft-fail -o json > "$report"
  "$PROJECT_PY" -m tests.iac.checkov_gate "$report" "$dir"
done
