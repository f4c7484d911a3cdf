"""Kernel confinement of step processes: Landlock rulesets, capabilities, subreaping, and the supervisor of
command steps.

Standard library only, and importing nothing of ours: this file is also run as a script
(`python -I -S confine.py`, see `supervise`), the small launcher that confines itself and then runs a
command step. The Landlock calls are direct syscalls through ctypes: 444-446 on every architecture that has
Landlock (x86_64, aarch64 ...), structures from include/uapi/linux/landlock.h.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import resource
import signal
import stat
import sys
from typing import Any, NoReturn

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


def descendants(pid: int | None = None) -> list[int]:
    """Every process below `pid` (default: this process), parents before their children."""
    out: list[int] = []
    todo = children(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def kill_descendants() -> None:
    """SIGKILL every descendant of this process and reap them, until none is left.

    This process must be a child subreaper: a killed process's children then come back here and are
    killed on the next round, including those that left the session or process group (setsid).
    """
    while True:
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


def _confine_self(config: dict[str, Any]) -> None:
    """In the command's process, before exec: drop privileges and apply the step's ruleset."""
    box = config.get("confine")
    if not box:
        return
    ruleset = Ruleset(int(box["abi"]))
    for path, kind in box["grants"]:
        ruleset.allow(path, kind)
    ruleset.allow_fd(1, WRITE_FILE, False)  # the step's log, reopened as /dev/stdout by some tools
    drop_capabilities()
    ruleset.restrict()


def _exec(config: dict[str, Any], blocked: set[signal.Signals]) -> NoReturn:
    argv = [str(a) for a in config["argv"]]
    try:
        for sig in (*blocked, signal.SIGPIPE, signal.SIGXFSZ):  # as subprocess's restore_signals does
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
        _confine_self(config)
        os.execve(config["exe"], argv, os.environ)
    except OSError as e:
        hint = ""
        if e.errno in (errno.EACCES, errno.EPERM) and config.get("confine"):
            hint = (
                " (the step sandbox lets a command run only programs under the system and Python folders, "
                "the spec folders and STEP_SANDBOX_READ)"
            )
        os.write(2, f"cannot run {config['exe']}: {e.strerror or e}{hint}\n".encode())
        os._exit(127 if e.errno == errno.ENOENT else 126)
    except BaseException as e:
        os.write(2, f"cannot start the command: {type(e).__name__}: {e}\n".encode())
        os._exit(126)


def supervise(config: dict[str, Any]) -> NoReturn:
    """Run one command step and make sure nothing it started outlives it.

    Started by the Runner in a new session. It dies with the Runner's thread (parent-death signal SIGUSR1),
    becomes a child subreaper, and runs the command in a confined child. When the command ends, or on
    SIGUSR1 (the Runner's kill, or its death), every descendant is killed. SIGTERM (cancel) is passed on
    to every descendant, those that called setsid included. It exits as the command did.
    """
    handled = {signal.SIGCHLD, signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    set_parent_death_signal(signal.SIGUSR1)
    if os.getppid() != int(config["parent"]):  # the Runner died before the parent-death signal was set
        os._exit(137)
    set_subreaper()
    main = os.fork()
    if main == 0:
        _exec(config, handled)
    status: int | None = None
    while status is None:
        info = signal.sigwaitinfo(handled)
        if info.si_signo == signal.SIGCHLD:
            with contextlib.suppress(ChildProcessError):
                while True:
                    pid, wstatus = os.waitpid(-1, os.WNOHANG)
                    if pid == 0:
                        break
                    if pid == main:
                        status = os.waitstatus_to_exitcode(wstatus)
        elif info.si_signo == signal.SIGTERM:
            for pid in descendants():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGTERM)
        else:  # SIGUSR1, SIGHUP, SIGINT: stop everything now
            status = -int(signal.SIGKILL)
    kill_descendants()
    if status >= 0:
        os._exit(status)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(-status, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.Signals(-status)})
    os.kill(os.getpid(), -status)
    os._exit(128 - status)


def main() -> NoReturn:
    """`python -I -S confine.py FD`: read the command's configuration (JSON) from FD and supervise it."""
    fd = int(sys.argv[1])
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    supervise(json.loads(b"".join(chunks)))


if __name__ == "__main__":
    main()
