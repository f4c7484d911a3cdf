"""The files a playbook ships with (`spec.files`) and its folder (`${{ spec.dir }}`), found at compile time.

A playbook loaded from a file has a folder: the one holding its spec file. `spec.files` lists paths or glob
patterns relative to it; they are expanded here to a sorted list of relative file names (a matched folder
brings every file under it). Nothing may lie outside the folder: patterns are checked by the spec model
(relative, no `..`), and every match is checked again after resolving symlinks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mlops_nocode.catalogue.folder import origin_of
from mlops_nocode.spec import Playbook, Problem

SPEC_DIR_RE = re.compile(r"\$\{\{\s*spec\.dir\s*\}\}")
MAX_FILES = 10_000
"""At most this many files per playbook (a pattern such as `**` in a big folder is a mistake)."""


def uses_spec_dir(pb: Playbook) -> bool:
    """Whether the playbook's command refers to its folder with `${{ spec.dir }}`."""
    module = getattr(pb.spec.section, "module", None)
    if pb.spec.runtime == "terraform" and module is not None and not module.startswith("git::"):
        return True  # its module is a folder beside the spec file
    cmd = pb.spec.command
    if cmd is None:
        return False
    return any(SPEC_DIR_RE.search(v) for v in [*cmd.argv, *cmd.env.values()])


def playbook_dir(pb: Playbook) -> Path | None:
    """The absolute folder of the file the playbook was loaded from, or None (inline, from Git...)."""
    origin = origin_of(pb)
    return Path(origin).absolute().parent if origin else None


def shipped(pb: Playbook, label: str) -> tuple[str | None, tuple[str, ...], list[Problem]]:
    """The playbook's folder (when it needs one), its shipped files, and the problems found.

    `label` names the playbook in the problems (`playbook/x@1.0.0`).
    """
    needs_dir = uses_spec_dir(pb)
    if not pb.spec.files and not needs_dir:
        return None, (), []
    folder = playbook_dir(pb)
    origin = origin_of(pb)
    where = f"{origin} ({label})" if origin else label
    if folder is None:
        what = "spec.files" if pb.spec.files else "${{ spec.dir }}"
        return (
            None,
            (),
            [
                Problem(
                    f"{what} needs the playbook's folder, and this playbook was not loaded from a file",
                    f"{where} > spec",
                    "run it from its spec file (mlops run FOLDER/spec.yaml), or install its code as a "
                    "Python package and name it in python.entrypoint"
                    + (
                        "; a terraform module can also be a git:: source"
                        if pb.spec.runtime == "terraform"
                        else ""
                    ),
                )
            ],
        )
    files, problems = expand(folder, pb.spec.files, f"{where} > spec.files")
    return str(folder), files, problems


def expand(folder: Path, patterns: list[str], where: str) -> tuple[tuple[str, ...], list[Problem]]:
    """Sorted relative names of the regular files the patterns match under `folder` (folders matched
    bring every file under them), and a problem per pattern matching nothing or reaching outside."""
    root = folder.resolve()
    found: set[str] = set()
    problems: list[Problem] = []
    for i, pattern in enumerate(patterns):
        matched = False
        for path in sorted(folder.glob(pattern)):
            for f in _files_under(path):
                real = f.resolve()
                if not real.is_relative_to(root):
                    problems.append(
                        Problem(
                            f"{f.relative_to(folder).as_posix()} leads outside the playbook's folder",
                            f"{where}[{i}]",
                            "ship only files that lie in the folder of the spec file (copy it there)",
                        )
                    )
                    continue
                if real.is_file():
                    found.add(f.relative_to(folder).as_posix())
                    matched = True
            if len(found) > MAX_FILES:
                return (), [
                    Problem(
                        f"{pattern!r} matches more than {MAX_FILES} files",
                        f"{where}[{i}]",
                        "list only the files the step needs",
                    )
                ]
        if not matched:
            problems.append(
                Problem(
                    f"{pattern!r} matches no file in {folder}",
                    f"{where}[{i}]",
                    "put the file beside the spec file, or fix the path (it is relative to that folder)",
                )
            )
    return tuple(sorted(found)), problems


def _files_under(path: Path) -> list[Path]:
    """`path` itself, or every file under it when it is a folder (symlinked folders are not followed)."""
    if not path.is_dir() or path.is_symlink():
        return [path]
    out: list[Path] = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        out.extend(Path(root) / f for f in sorted(files))
        if len(out) > MAX_FILES:
            break
    return out
