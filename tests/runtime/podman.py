"""A real container engine for tests: Debian's podman with a busybox image built here (no registry can be
reached), configured for this kind of machine (see docs/STEPS.md, "Container steps")."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

IMAGE = "localhost/mlops-test-busybox:1"
CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
"""
APPLETS = ("sh", "cat", "echo", "id", "sleep", "mkdir", "ls", "printf", "env", "touch", "stat")


def engine_env(folder: Path) -> dict[str, str]:
    """Environment entries that make podman run containers here: crun cannot (this machine's cgroups are
    a v1/v2 hybrid), runc can; no capability to raise rlimits, so the containers' ulimits are lowered."""
    conf = folder / "containers.conf"
    if not conf.exists():
        conf.write_text(CONF, encoding="utf-8")
    return {"CONTAINERS_CONF": str(conf)}


def busybox_image(folder: Path) -> str:
    """IMAGE, imported from Debian's busybox-static when podman does not have it yet."""
    podman = shutil.which("podman")
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not podman or not os.path.exists(busybox):
        raise AssertionError(
            "these tests run real containers: install podman, runc and busybox-static "
            "(apt-get install podman runc busybox-static)"
        )
    env = {**os.environ, **engine_env(folder)}
    if subprocess.run([podman, "image", "exists", IMAGE], env=env, check=False).returncode == 0:
        return IMAGE
    tar = folder / "busybox.tar"
    with tarfile.open(tar, "w") as t:
        t.add(busybox, "bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            t.addfile(info)
        for d in ("tmp", "mlops"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777
            t.addfile(info)
    subprocess.run([podman, "import", str(tar), IMAGE], env=env, check=True, capture_output=True)
    return IMAGE


def containers_of(run_id: str, folder: Path) -> list[str]:
    """Names of the containers (running or not) labelled with run `run_id`."""
    out = subprocess.run(
        ["podman", "ps", "-a", "--filter", f"label=mlops-nocode.run={run_id}", "--format", "{{.Names}}"],
        env={**os.environ, **engine_env(folder)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()
