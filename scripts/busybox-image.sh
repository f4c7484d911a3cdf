#!/usr/bin/env bash
# Build the image of catalogue/playbooks/container-word-count.yaml without any registry: a root file system
# holding Debian's static busybox, imported by podman (or docker) as localhost/mlops-busybox:1.
set -euo pipefail
engine="${CONTAINER_ENGINE:-}"
if [ -z "$engine" ] || [ "$engine" = auto ]; then
  engine="$(command -v podman || command -v docker || true)"
fi
[ -n "$engine" ] || { echo "install podman (apt-get install podman) or docker" >&2; exit 1; }
busybox="$(command -v busybox || true)"
ldd "$busybox" >/dev/null 2>&1 && busybox=/bin/busybox  # a dynamic busybox cannot run alone in the image
[ -x "$busybox" ] || { echo "install busybox-static (apt-get install busybox-static)" >&2; exit 1; }
root="$(mktemp -d)"; trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/mlops"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in sh cat echo grep wc printf id sleep mkdir ls env touch; do ln -s busybox "$root/bin/$applet"; done
tar -C "$root" -cf - . | "$engine" import - localhost/mlops-busybox:1
