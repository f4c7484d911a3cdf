#!/usr/bin/env bash
# Install a pinned n8n from npm into a cache outside the clone, on first use, and print the folder that
# holds it (its node_modules/.bin/n8n is the binary). n8n 2.8.4 is the newest release that runs on Node 20;
# its `xlsx` dependency points at a tarball outside the registry, so an npm override swaps in the
# registry's @e965/xlsx. The first install takes minutes and ~2.3 GB: it runs under a lock (a second caller
# waits for the first instead of installing twice) and is skipped once its stamp exists.
set -euo pipefail
version="${N8N_VERSION:-2.8.4}"
command -v npm >/dev/null || { echo "n8n needs npm (Node >= 20): apt-get install nodejs npm" >&2; exit 1; }
dir="${MLOPS_N8N_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/mlops-nocode/n8n}"
stamp="$dir/.installed-$version"
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9  # parallel callers (CI's background install, test workers): one installs, the others wait
if [ ! -f "$stamp" ]; then
  (
    cd "$dir"
    cat > package.json <<JSON
{"name": "mlops-n8n", "private": true,
 "dependencies": {"n8n": "$version"},
 "overrides": {"xlsx": "npm:@e965/xlsx@0.20.2"}}
JSON
    npm install --no-audit --no-fund --loglevel=error >&2
  ) || { echo "npm install of n8n@$version failed (see above)" >&2; exit 1; }
  [ -x "$dir/node_modules/.bin/n8n" ] || { echo "n8n@$version installed without its binary" >&2; exit 1; }
  touch "$stamp"
fi
echo "$dir"
