"""Reading what a step left behind without trusting it.

A step may leave anything in its output folder: a symbolic link (to `/dev/zero`, to `/`, to a file it
should not see), a FIFO, a socket, a device node, a file that keeps growing, a folder a million entries
wide or a thousand deep. Everything here reads such files without following a link (every path component
is opened with O_NOFOLLOW, relative to the folder above it) and without blocking (O_NONBLOCK, and only
after `lstat` said it is a regular file or a folder; `fstat` then checks the opened file is that same
one). Bytes are counted while they are copied, against the limits of `runtime/limits.py`, and a stop check
(the run's cancellation, the step's deadline) is asked between chunks: nothing here can hang or fill the
disk. Hard links are read like any regular file: only what the step's own user could read anyway.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ByteSize

from mlops_nocode.runtime.limits import OutputLimits

CHUNK = 1 << 20
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

StopCheck = Callable[[], str | None]
"""Returns why collection must stop now (cancelled, past the deadline), or None to go on."""


class Refused(Exception):
    """A file collection will not read, or a limit reached; the message names the path and why."""


class Stopped(Refused):
    """Collection was interrupted by the stop check (the run was cancelled, the step's time is up)."""


def describe(mode: int) -> str:
    """What kind of file a mode is, in words."""
    for test, words in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(mode):
            return words
    return "a special file"


def _not_collectable(shown: str, st: os.stat_result, parent_fd: int | None, name: str) -> Refused:
    what = describe(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        with contextlib.suppress(OSError, ValueError):
            what += f" (to {os.readlink(name, dir_fd=parent_fd)!r})"
    return Refused(
        f"{shown!r} is {what}: only regular files and folders inside the step's output folder are "
        "collected (links are never followed): write the data itself there"
    )


def open_regular(name: str | Path, dir_fd: int | None = None, shown: str | None = None) -> int:
    """A descriptor of the regular file `name` (relative to `dir_fd`), opened without following a link
    in its last component and without blocking; Refused for anything else (FileNotFoundError passes)."""
    shown = shown or str(name)
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        raise Refused(f"{shown!r} is a folder, where a regular file was expected")
    if not stat.S_ISREG(st.st_mode):
        raise _not_collectable(shown, st, dir_fd, str(name))
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        raise Refused(f"{shown!r} cannot be opened: {e.strerror or e}") from None
    now = os.fstat(fd)
    if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise Refused(f"{shown!r} was replaced while it was being collected")
    return fd


def read_bytes(path: Path, limit: ByteSize, setting: str, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes (never through a link, never blocking)."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as f:
        data = f.read(int(limit) + 1)
    if len(data) > limit:
        raise Refused(
            f"the step's {what} {path.name!r} is larger than {setting} ({limit.human_readable()}): "
            f"write less, or raise {setting}"
        )
    return data


def read_lines(path: Path, max_bytes: int) -> Iterator[str]:
    """The lines of a regular text file, streamed, up to `max_bytes` in all (a missing, special or
    linked file has none)."""
    try:
        fd = open_regular(path)
    except (OSError, Refused):
        return
    left = max_bytes
    with os.fdopen(fd, "rb") as f:
        while left > 0 and (line := f.readline(left)):
            left -= len(line)
            yield line.decode("utf-8", errors="replace")


def is_regular_or_absent(path: Path) -> bool:
    """Whether `path` is a regular file (not a link to one) or does not exist."""
    try:
        return stat.S_ISREG(os.stat(path, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def remove_unless_regular(paths: tuple[Path, ...]) -> None:
    """Remove each of `paths` that is a link, a FIFO, a device...: the Runner's own files beside a step's
    output folder (its log, its metrics) are read only as regular files, and a step must not replace them."""
    for path in paths:
        if not is_regular_or_absent(path):
            with contextlib.suppress(OSError):
                path.unlink()


@dataclass
class Budget:
    """What one step attempt has collected so far, against the limits; also asks the stop check."""

    limits: OutputLimits
    stop: StopCheck = field(default=lambda: None)
    run_before: int = 0
    step_bytes: int = 0
    values: int = 0
    files: int = 0
    output: str = ""
    output_bytes: int = 0

    def check_stop(self) -> None:
        why = self.stop()
        if why:
            raise Stopped(why)

    def start_output(self, name: str) -> None:
        self.output, self.output_bytes = name, 0

    def add_bytes(self, n: int, shown: str) -> None:
        """Count `n` more bytes of the current output (checked before they are written)."""
        self.check_room(n, shown)
        self.output_bytes += n
        self.step_bytes += n

    def check_room(self, n: int, shown: str) -> None:
        """Refused when `n` more bytes would pass a limit."""
        lim = self.limits
        for used, limit, var in (
            (self.output_bytes, lim.step_output_max_bytes, "STEP_OUTPUT_MAX_BYTES"),
            (self.step_bytes, lim.step_outputs_max_bytes, "STEP_OUTPUTS_MAX_BYTES"),
            (self.run_before + self.step_bytes, lim.run_outputs_max_bytes, "RUN_OUTPUTS_MAX_BYTES"),
        ):
            if used + n > limit:
                raise Refused(
                    f"{var} ({limit.human_readable()}) reached while collecting {shown!r}: write less, "
                    f"or raise {var}"
                )

    def add_value(self, n: int, shown: str) -> None:
        """Count `n` bytes of JSON values (json, text, metrics outputs)."""
        self.values += n
        limit = self.limits.step_values_max_bytes
        if self.values > limit:
            raise Refused(
                f"STEP_VALUES_MAX_BYTES ({limit.human_readable()}) reached reading {shown!r}: return less "
                "as values (write big data as a file output), or raise STEP_VALUES_MAX_BYTES"
            )

    def add_entry(self, shown: str, depth: int) -> None:
        self.files += 1
        if self.files > self.limits.step_output_max_files:
            raise Refused(
                f"STEP_OUTPUT_MAX_FILES ({self.limits.step_output_max_files}) reached at {shown!r}: write "
                "fewer files (e.g. one archive), or raise STEP_OUTPUT_MAX_FILES"
            )
        if depth > self.limits.step_output_max_depth:
            raise Refused(
                f"STEP_OUTPUT_MAX_DEPTH ({self.limits.step_output_max_depth}) reached at {shown!r}: nest "
                "folders less deeply, or raise STEP_OUTPUT_MAX_DEPTH"
            )


def _copy_file(fd: int, dest: Path, budget: Budget, shown: str) -> str:
    """Copy an open regular file to `dest`, counting and hashing as it goes; return its sha256."""
    budget.check_room(os.fstat(fd).st_size, shown)  # fail at once when it is already too big
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with os.fdopen(fd, "rb", buffering=0, closefd=False) as src, open(dest, "xb") as out:
        while True:
            budget.check_stop()
            n = src.readinto(view)
            if not n:
                break
            budget.add_bytes(n, shown)  # a file that grows while it is read stops at the limit
            h.update(view[:n])
            out.write(view[:n])
    return h.hexdigest()


def _list(fd: int, budget: Budget, shown: str, depth: int) -> list[str]:
    """The names in an open folder, counted against the file limit as they are read."""
    names = []
    with os.scandir(fd) as it:
        for entry in it:
            budget.add_entry(f"{shown}/{entry.name}", depth)
            names.append(entry.name)
            if len(names) % 1024 == 0:
                budget.check_stop()
    return sorted(names)


def copy_entry(parent_fd: int, name: str, dest: Path, budget: Budget, shown: str) -> str:
    """Copy the regular file or folder `name` of the open folder `parent_fd` to `dest` (which must not
    exist); return its digest: a file's sha256, or for a folder the sha256 of its sorted entries (folders,
    and files with their hash), as `store.hash_path` computes it. Refused on anything else inside."""
    budget.add_entry(shown, 0)
    st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if stat.S_ISREG(st.st_mode):
        fd = open_regular(name, parent_fd, shown)
        try:
            return _copy_file(fd, dest, budget, shown)
        finally:
            os.close(fd)
    if not stat.S_ISDIR(st.st_mode):
        raise _not_collectable(shown, st, parent_fd, name)
    h = hashlib.sha256(b"dir\0")
    fd = _open_dir(name, parent_fd, shown, st)
    try:
        dest.mkdir()
        _copy_tree(fd, dest, "", budget, shown, h, 1)
    finally:
        os.close(fd)
    return h.hexdigest()


def _open_dir(name: str, parent_fd: int, shown: str, st: os.stat_result) -> int:
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except OSError as e:
        raise Refused(f"{shown!r} cannot be opened as a folder: {e.strerror or e}") from None
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise Refused(f"{shown!r} was replaced while it was being collected")
    return fd


def _copy_tree(
    fd: int, dest: Path, rel: str, budget: Budget, shown: str, h: hashlib._Hash, depth: int
) -> None:
    for name in _list(fd, budget, shown, depth):
        budget.check_stop()
        child_rel = f"{rel}{name}"
        child_shown = f"{shown}/{name}"
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            h.update(f"d\0{child_rel}\n".encode(errors="surrogateescape"))
            child = _open_dir(name, fd, child_shown, st)
            try:
                (dest / name).mkdir()
                _copy_tree(child, dest / name, f"{child_rel}/", budget, child_shown, h, depth + 1)
            finally:
                os.close(child)
        elif stat.S_ISREG(st.st_mode):
            file_fd = open_regular(name, fd, child_shown)
            try:
                digest = _copy_file(file_fd, dest / name, budget, child_shown)
            finally:
                os.close(file_fd)
            h.update(f"f\0{child_rel}\0{digest}\n".encode(errors="surrogateescape"))
        else:
            raise _not_collectable(child_shown, st, fd, name)


class Folder:
    """A folder opened once without following a link, in which relative paths are located component by
    component without following links either (a `..` never climbs out: paths are normalised first)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fds: list[int] = []
        self.fd = self._keep(os.open(path, DIR_FLAGS))

    def _keep(self, fd: int) -> int:
        self._fds.append(fd)
        return fd

    def locate(self, rel: str) -> tuple[int, str]:
        """(descriptor of the folder holding it, last name) for a normalised relative path inside.

        Raises FileNotFoundError when a component is missing, Refused when one is a link or not a folder.
        """
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            raise Refused(f"{rel!r} does not name a file inside {self.path}")
        fd = self.fd
        try:
            for i, part in enumerate(parts[:-1]):
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    raise _not_collectable("/".join(parts[: i + 1]), st, fd, part)
                child = _open_dir(part, fd, "/".join(parts[: i + 1]), st)
                if fd != self.fd:
                    os.close(fd)  # only the folder holding the last name stays open
                fd = child
        except BaseException:
            if fd != self.fd:
                os.close(fd)
            raise
        return (self._keep(fd) if fd != self.fd else fd), parts[-1]

    def parent_fd(self) -> int:
        """A descriptor of the folder holding this one (to name this folder itself in it)."""
        return self._keep(os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))

    def close(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def inside(root: Path, path: Path) -> str | None:
    """`path` relative to `root` after lexical normalisation ("." for root itself), or None when the
    normalised path is not inside `root`. Nothing is resolved: links are judged when opened."""
    norm = os.path.normpath(os.path.join(root, path))
    base = os.path.normpath(root)
    if norm == base:
        return "."
    if norm.startswith(base.rstrip("/") + "/"):
        return norm[len(base.rstrip("/")) + 1 :]
    return None
