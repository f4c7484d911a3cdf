"""Kernel confinement of step processes: Landlock rulesets, capabilities, parent-death signal, subreaping,
and the kernel's word on who sent a socket message.

The Landlock calls are direct system calls through ctypes: 444-446 on every architecture that has Landlock
(x86_64, aarch64 ...), structures from include/uapi/linux/landlock.h. Standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import stat
import sys
from typing import Any

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_PDEATHSIG, _PR_CAPBSET_DROP, _PR_SET_CHILD_SUBREAPER = 1, 24, 36
_PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
_CAP_VERSION_3 = 0x20080522

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
MAKE_SYM, REFER, TRUNCATE, IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # all a rule on a non-folder may hold
SCOPED_ABI = 6  # LANDLOCK_SCOPE_SIGNAL and LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (Linux 6.12)

_READ = READ_FILE | READ_DIR
_WRITE = WRITE_FILE | TRUNCATE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SYM | MAKE_SOCK
RIGHTS = {
    "ro": _READ | EXECUTE,  # software: read and run
    "read": _READ,  # data: read only
    "rw": _READ | EXECUTE | _WRITE | MAKE_FIFO | REFER,  # the step's own folders
    "dev": READ_FILE | WRITE_FILE | IOCTL_DEV,  # /dev/null and friends
    "write": WRITE_FILE,  # an open log or events file
}


class ConfinementError(OSError):
    """The kernel refused a confinement step; the message says which and why."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_libc: Any = None


def _c() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise ConfinementError(err, f"{what}: {os.strerror(err)}")
    return result


def _prctl(option: int, arg: int = 0) -> int:
    return int(
        _c().prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    )


def landlock_abi() -> tuple[int, str]:
    """The Landlock ABI version of the running kernel (0 when it has none), and why it has none."""
    if not sys.platform.startswith("linux"):
        return 0, f"Landlock is a Linux feature; this is {sys.platform}"
    try:
        version = int(_c().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1)))
    except (OSError, AttributeError) as e:
        return 0, f"cannot call the Landlock syscalls: {e}"
    if version > 0:
        return version, ""
    err = ctypes.get_errno()
    if err == errno.EOPNOTSUPP:
        return (
            0,
            "Landlock is built into this kernel but disabled at boot (add landlock to the lsm= boot option)",
        )
    return 0, "this kernel has no Landlock (Linux 5.13 or later built with CONFIG_SECURITY_LANDLOCK=y)"


def fs_rights(abi: int) -> int:
    """Every filesystem right the kernel of this ABI knows (all of them are denied unless a rule allows)."""
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


class Ruleset:
    """A Landlock ruleset being built; `restrict()` confines the calling thread to it, for good."""

    def __init__(self, abi: int) -> None:
        self.handled = fs_rights(abi)
        scoped = SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET if abi >= SCOPED_ABI else 0
        attr = _RulesetAttr(self.handled, 0, scoped)
        size = 24 if abi >= SCOPED_ABI else 16 if abi >= 4 else 8
        self.fd = _check(
            int(
                _c().syscall(
                    _SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
                )
            ),
            "landlock_create_ruleset",
        )

    def allow_fd(self, fd: int, rights: int, is_dir: bool) -> None:
        """Allow `rights` beneath the folder (or on the file) that `fd` refers to."""
        rights &= self.handled if is_dir else self.handled & FILE_RIGHTS
        if not rights:
            return
        attr = _PathBeneathAttr(rights, fd)
        result = _c().syscall(
            _SYS_ADD_RULE,
            ctypes.c_int(self.fd),
            ctypes.c_int(_RULE_PATH_BENEATH),
            ctypes.byref(attr),
            ctypes.c_uint32(0),
        )
        _check(int(result), "landlock_add_rule")

    def allow(self, path: str, kind: str) -> bool:
        """Allow the rights named `kind` (see RIGHTS) beneath `path`; False when `path` does not exist."""
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            self.allow_fd(fd, RIGHTS[kind], stat.S_ISDIR(os.fstat(fd).st_mode))
        finally:
            os.close(fd)
        return True

    def restrict(self) -> None:
        """Confine this thread (and every process it starts) to the ruleset; no privilege can be regained."""
        _check(_prctl(_PR_SET_NO_NEW_PRIVS, 1), "prctl(PR_SET_NO_NEW_PRIVS)")
        _check(
            int(_c().syscall(_SYS_RESTRICT_SELF, ctypes.c_int(self.fd), ctypes.c_uint32(0))),
            "landlock_restrict_self",
        )
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_grants(grants: list[list[str]]) -> list[tuple[int, int, bool]]:
    """`[path, kind]` pairs opened ahead (O_PATH), as (fd, rights, is_dir); missing paths are left out."""
    out = []
    for path, kind in grants:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        out.append((fd, RIGHTS[kind], stat.S_ISDIR(os.fstat(fd).st_mode)))
    return out


def drop_capabilities() -> None:
    """Drop every capability (effective, permitted, inheritable, ambient and the bounding set).

    A step of a Runner started as root keeps uid 0 (it owns its files) but loses what root could do beyond
    that: CAP_SYS_PTRACE would let it read other processes' environment despite Landlock, CAP_KILL signal
    anyone, CAP_DAC_* read any file, CAP_SYS_MODULE load kernel code.
    """
    c = _c()
    header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
    if c.capget(ctypes.byref(header), data) == 0 and not any(d.permitted for d in data):
        return  # nothing to drop (an ordinary user)
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        _prctl(_PR_CAPBSET_DROP, cap)  # EINVAL past the last one, EPERM without CAP_SETPCAP: both harmless
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
    header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
    _check(int(c.capset(ctypes.byref(header), data)), "capset")


def set_subreaper() -> None:
    """Orphaned descendants of this process come back to it (instead of init) so it can end them."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def set_parent_death_signal(sig: int) -> None:
    _prctl(_PR_SET_PDEATHSIG, int(sig))


def children(pid: int | None = None) -> list[int]:
    """The child processes of `pid` (default: this process), zombies included."""
    pid = pid or os.getpid()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                out += [int(x) for x in f.read().split()]
        except FileNotFoundError:  # a thread that just ended, or a kernel without CONFIG_PROC_CHILDREN
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue
            return _children_by_scan(pid)
        except OSError:
            continue
    return out


def _children_by_scan(pid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with (
                contextlib.suppress(OSError, ValueError, IndexError),
                open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f,
            ):
                if int(f.read().rpartition(")")[2].split()[1]) == pid:
                    out.append(int(name))
    return out


CREDS_SPACE = socket.CMSG_SPACE(12)  # ancillary room for one SCM_CREDENTIALS


def sender_pid(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The pid the kernel vouches for in a message received on a socket with SO_PASSCRED."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= 12:
            return int.from_bytes(data[:4], sys.byteorder, signed=True)
    return None


_WALL = 0x40000000  # waitpid's __WALL: children of any kind, whatever signal they send at their end


def has_children() -> bool:
    """Whether this process has a child process (running or a zombie; reaps one zombie if there is).

    Exact and one system call: `waitpid` fails with ECHILD only when there is no child at all. Listing
    children needs /proc/PID/task/TID/children, which kernels without CONFIG_PROC_CHILDREN lack; the
    fallback, a scan of every process's /proc/PID/stat, costs milliseconds on a busy machine.
    """
    try:
        os.waitpid(-1, os.WNOHANG | _WALL)
    except ChildProcessError:
        return False
    return True


def kill_descendants() -> None:
    """SIGKILL every descendant of this process and reap them, until none is left.

    This process must be a child subreaper: a killed process's children then come back here and are
    killed on the next round, including those that left the session or process group (setsid).
    """
    while True:
        if not has_children():  # the usual case, without listing /proc (see has_children)
            break
        killed = 0
        for pid in children():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        if not killed:  # none left (or only processes this one may not signal: they are not waited for)
            break
        try:
            os.waitpid(-1, 0)
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            break
