#!/usr/bin/env bash
# Install Windmill's own validators from npm into a cache outside the clone, on first use, and print the
# folder that holds them (its node_modules/ has windmill-yaml-validator's dist/gen/openflow.json and
# windmill-cli's `wmill`). Pinned versions; a second call with the same versions installs nothing.
set -euo pipefail
validator_version="${WINDMILL_YAML_VALIDATOR_VERSION:-1.775.2}"
cli_version="${WINDMILL_CLI_VERSION:-1.819.0}"
command -v npm >/dev/null || { echo "the Windmill checks need npm (Node >= 20): apt-get install nodejs npm" >&2; exit 1; }
dir="${MLOPS_WINDMILL_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/mlops-nocode/windmill-npm}"
stamp="$dir/.installed-$validator_version-$cli_version"
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9  # parallel test workers: one installs, the others wait for it
if [ ! -f "$stamp" ]; then
  (
    cd "$dir"
    [ -f package.json ] || echo '{"name": "mlops-windmill-tools", "private": true}' > package.json
    npm install --no-audit --no-fund --loglevel=error \
      "windmill-yaml-validator@$validator_version" "windmill-cli@$cli_version" >&2
  ) || { echo "npm install of windmill-yaml-validator/windmill-cli failed (see above)" >&2; exit 1; }
  touch "$stamp"
fi
echo "$dir"
