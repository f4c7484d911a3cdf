"""What the runner's per-step overhead work changed keeps its meaning (docs/PERFORMANCE.md): the step cache
keeps an identical record in place, the sandbox's grants are merged as before, a step function's `ctx` is
detected as `inspect.signature` detects it, and a process knows it has no child without listing /proc."""

from __future__ import annotations

import functools
import os
import signal
from pathlib import Path
from typing import Any

from mlops_nocode.runtime import confine, sandbox
from mlops_nocode.runtime.sandbox import _carve, _outside, _within, for_run, resolve, run_env
from mlops_nocode.runtime.stepcall import takes_ctx
from mlops_nocode.runtime.store import CacheIndex


def test_identical_cache_record_is_kept_in_place(tmp_path: Path) -> None:
    cache = CacheIndex(tmp_path / "cache")
    record = {"y": {"type": "json", "value": 1, "path": str(tmp_path / "v.json")}}
    cache.put("k", record)
    inode = (tmp_path / "cache" / "k.json").stat().st_ino
    cache.put("k", record)  # before: written again and renamed over the first (1-5 ms per step here)
    assert (tmp_path / "cache" / "k.json").stat().st_ino == inode
    changed = {"y": {**record["y"], "value": 2}}
    cache.put("k", changed)
    assert (tmp_path / "cache" / "k.json").stat().st_ino != inode
    (tmp_path / "v.json").write_text("2")
    assert cache.get("k") == changed
    assert not list((tmp_path / "cache").glob(".*.tmp"))


def _carve_pairwise(
    wanted: list[tuple[str, str]], protected: list[str], private_etc: list[str]
) -> tuple[tuple[str, str], ...]:
    """The former O(n^2) merge: a grant is dropped when a grant of a folder above it has its rights."""
    grants: list[tuple[str, str]] = []
    for path, kind in wanted:
        grants += _outside(path, kind, [*protected, *private_etc] if path == "/etc" else protected)
    kept = []
    for path, kind in dict.fromkeys(grants):
        rights = confine.RIGHTS[kind]
        if not any(
            other != path and _within(path, other) and rights & ~confine.RIGHTS[k] == 0 for other, k in grants
        ):
            kept.append((path, kind))
    return tuple(kept)


def test_grants_merge_as_before(tmp_path: Path) -> None:
    for name in ("a/b/c", "a/bb", "a/b/d/e", "home/x", "home/y/z", "other"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "a" / "b" / "f.txt").write_text("f")
    t = str(tmp_path)
    kinds = sorted(confine.RIGHTS)
    wanted = [
        (t, "read"),
        (f"{t}/a", "ro"),
        (f"{t}/a/b", "rw"),
        (f"{t}/a/b/c", "ro"),
        (f"{t}/a/bb", "rw"),  # a sibling whose name starts like a/b: not inside it
        (f"{t}/a/b/f.txt", "read"),
        (f"{t}/home", "rw"),
        (f"{t}/other", "dev"),
        (f"{t}/missing", "rw"),
        *((f"{t}/a/b/d/e", k) for k in kinds),  # one path under several kinds
        ("/", "read"),
        ("/etc", "read"),
    ]
    for protected in ([f"{t}/home/y"], [f"{t}/home/y", f"{t}/a/b/d"], []):
        assert _carve(wanted, protected, ["/etc/shadow"]) == _carve_pairwise(
            wanted, protected, ["/etc/shadow"]
        )


def test_the_fork_servers_environment_is_the_sandboxs(tmp_path: Path) -> None:
    conf = resolve()
    environ = {**os.environ, "SECRET_TOKEN": "x", "PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    box = for_run(conf, tmp_path, tmp_path / "runs" / "r", environ)
    assert run_env(conf, environ) == box.env
    assert "SECRET_TOKEN" not in box.env
    assert sandbox.step_env(run_env(conf, environ), tmp_path, {})["TMPDIR"] == str(tmp_path)


def plain(x: int) -> None: ...


def with_ctx(x: int, ctx: Any) -> None: ...


def with_kwargs(**kwargs: Any) -> None: ...


def keyword_ctx(*, ctx: Any = None) -> None: ...


def positional_only(ctx: Any, /) -> None: ...


@functools.wraps(plain)
def wrapped_plain(*args: Any, **kwargs: Any) -> None: ...


class Callable:
    def __call__(self, ctx: Any) -> None: ...


def test_ctx_is_detected_as_inspect_does() -> None:
    import inspect

    cases = [
        plain,
        with_ctx,
        with_kwargs,
        keyword_ctx,
        positional_only,
        wrapped_plain,
        Callable(),
        functools.partial(with_ctx, 1),
        len,
        lambda ctx: None,
    ]
    for func in cases:
        sig = inspect.signature(func)
        expected = "ctx" in sig.parameters or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        assert takes_ctx(func) is expected, func


def test_has_children_without_listing_proc() -> None:
    pid = os.fork()
    if pid == 0:  # a fresh process: no child of its own
        code = 1
        try:
            before = confine.has_children()
            child = os.fork()
            if child == 0:
                signal.pause()
                os._exit(0)
            during = confine.has_children()
            confine.kill_descendants()
            after = confine.has_children()
            code = 0 if (before, during, after) == (False, True, False) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
