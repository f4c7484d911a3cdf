"""Where a terraform step's module comes from, and how it lands in the step's working directory.

A module is a folder beside the playbook's spec file (`module: infra/`), or a Git source
(`git::https://host/repo.git//subdir?ref=v1`) cloned with the git binary into a bare cache under
MLOPS_HOME/terraform/git (one per URL, fetched again at each use) and exported with `git archive`. Either
way its files are copied into the step's working directory, replacing the previous copy and keeping the
state, the provider folder (`.terraform`) and the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

from mlops_nocode.runtime.attempt import StepFailure
from mlops_nocode.runtime.executors.jobs import StepThread, failed
from mlops_nocode.spec.sections import git_module_parts

KEEP = frozenset(
    {
        "terraform.tfstate",
        "terraform.tfstate.backup",
        ".terraform",
        ".terraform.lock.hcl",
        ".mlops-terraform.lock",
        "mlops-step.json",
    }
)
"""What stays in a working directory when the module is copied in again: the state and what init made."""
SKIPPED = frozenset({".terraform", ".git", "terraform.tfstate", "terraform.tfstate.backup"})
"""What is never copied from a module: another working directory's state and provider folder."""


def module_folder(
    job: StepThread, module: str | None, home: Path, allow_file: bool, files: dict[str, str] | None = None
) -> Path:
    """The folder holding the module's files: the spec's own folder, a fresh export of a Git source, or
    the inline `files` written out (both in the attempt's temporary area). StepFailure when it cannot be
    had."""
    if module is None:
        out = job.a.base.with_name(job.a.base.name + ".module")
        out.mkdir(mode=0o700)
        for name, text in (files or {}).items():  # names are flat Terraform file names (spec/sections.py)
            (out / name).write_text(text, encoding="utf-8")
        return out
    parts = git_module_parts(module)
    if parts is None:
        spec_dir = job.a.step.spec_dir
        if not spec_dir:
            raise StepFailure(
                f"module {module!r} is a folder beside the playbook's spec file, and this step has none: "
                "run the playbook from its spec file, or use a git:: module source"
            )
        base = Path(spec_dir).resolve()
        folder = (base / module).resolve()
        if folder != base and base not in folder.parents:
            raise StepFailure(f"module {module!r} leads outside the playbook's folder {base}")
        if not folder.is_dir():
            raise StepFailure(f"module folder {folder} does not exist: fix terraform.module")
        return folder
    return _git_export(job, *parts, home=home, allow_file=allow_file)


def install(src: Path, workdir: Path) -> None:
    """Replace the module copy in `workdir` with the files of `src`: linked files are copied as files, and
    links leading outside `src` are refused (a module cannot make terraform read other files here);
    linked folders are not followed."""
    for entry in workdir.iterdir():
        if entry.name in KEEP:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    root = src.resolve()
    for dirpath, dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        dirnames[:] = [d for d in dirnames if not (rel == Path(".") and d in SKIPPED)]
        (workdir / rel).mkdir(exist_ok=True)
        for name in [*filenames, *(d for d in dirnames if (Path(dirpath) / d).is_symlink())]:
            if rel == Path(".") and name in SKIPPED:
                continue
            path = Path(dirpath) / name
            real = path.resolve()
            if path.is_symlink() and real != root and root not in real.parents:
                raise StepFailure(f"the module's file {rel / name} is a link leading outside the module")
            if real.is_file():
                shutil.copyfile(real, workdir / rel / name)


def _git_export(job: StepThread, url: str, subdir: str, ref: str, *, home: Path, allow_file: bool) -> Path:
    if url.startswith("file://") and not allow_file:
        raise StepFailure(
            f"module source {url!r} is a file:// URL, which could read any repository of this machine: "
            "set TERRAFORM_GIT_FILE_URLS=true to allow it, or use an https/ssh URL"
        )
    git = shutil.which("git")
    if git is None:
        raise StepFailure("git is not installed, and the module is a git:: source: install git")
    cache = home / "terraform" / "git" / (hashlib.sha256(url.encode()).hexdigest()[:24] + ".git")
    cache.parent.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(job.a.base.parent),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": "https:ssh:file" if allow_file else "https:ssh",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LC_ALL": "C",
    }
    with _locked(job, cache.with_suffix(".lock")):
        if not (cache / "HEAD").is_file():
            job.log(f"== git clone {url}")
            shutil.rmtree(cache, ignore_errors=True)
            code = job.process([git, "clone", "--bare", "--quiet", "--", url, str(cache)], env=env)
            if code != 0:
                shutil.rmtree(cache, ignore_errors=True)
                raise failed(f"git clone of {url}", code)
        else:
            job.log(f"== git fetch {url}")
            refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
            code = job.process(
                [git, "-C", str(cache), "fetch", "--quiet", "--prune", "origin", *refspecs], env=env
            )
            if code != 0:
                raise failed(f"git fetch of {url}", code)
        out = job.a.base.with_name(job.a.base.name + ".module")
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(mode=0o700)
        archive = out.with_suffix(".tar")
        tree = f"{ref or 'HEAD'}:{subdir}" if subdir else f"{ref or 'HEAD'}"
        job.log(f"== git archive {tree}")
        code = job.process(
            [git, "-C", str(cache), "archive", "--format=tar", "-o", str(archive), tree, "--"], env=env
        )
    if code != 0:
        raise failed(f"ref {ref or 'HEAD'!r} or folder {subdir or '.'!r} of {url}", code)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(out, filter="data")  # no absolute paths, no '..', no links out of `out`
    finally:
        archive.unlink(missing_ok=True)
    return out


@contextlib.contextmanager
def _locked(job: StepThread, path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (another step cloning the same URL waits), given up at a cancel."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                job.check()
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)
