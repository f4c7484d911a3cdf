#!/usr/bin/env bash
# Makes sure PostgreSQL's server binaries (initdb, pg_ctl) are installed: the test suite starts a throwaway
# cluster with them. Debian puts them under /usr/lib/postgresql/<version>/bin, off PATH. Installs with
# apt-get when missing (as root); otherwise says what to install.
set -euo pipefail
if command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "PostgreSQL server binaries (initdb) are missing: run 'sudo apt-get install -y postgresql'" >&2
  exit 1
fi
echo "installing postgresql (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
