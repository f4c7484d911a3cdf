"""Collecting an attempt's outputs: the values it returned and the files it left in its output folder.

Everything is read through `collect` (never through a link, only regular files and folders, within the
limits of `limits.OutputLimits`, interruptible): see that module for what a step may leave behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_nocode.runtime.attempt import VALUE_TYPES, Attempt, StepFailure, describe_exit, output_rel
from mlops_nocode.runtime.collect import Budget, Folder, Refused, Stopped, inside, open_regular, read_bytes
from mlops_nocode.runtime.store import ArtifactStore


def raw_outputs(a: Attempt, code: int, text: str | None, budget: Budget) -> dict[str, Any]:
    """The outputs an attempt produced, or StepFailure saying why there are none.

    A Python step's result (or that of any runtime whose executor hands a JSON result) arrives as `text`
    (large ones through a memory file), or in its result file. A command or container step's outputs
    (`a.files`) are read from its output folder (values) or named there (artifacts).
    """
    limit = int(budget.limits.step_values_max_bytes)
    if a.files is None:
        if text is not None and len(text) > limit and len(text.encode("utf-8", "surrogatepass")) > limit:
            raise StepFailure(
                f"step process {describe_exit(code)}; its result is larger than STEP_VALUES_MAX_BYTES "
                f"({budget.limits.step_values_max_bytes.human_readable()}): return less as values (write "
                "big data as a file output), or raise STEP_VALUES_MAX_BYTES"
            )
        try:
            if text is None:
                text = read_bytes(
                    a.result, budget.limits.step_values_max_bytes, "STEP_VALUES_MAX_BYTES", "result file"
                ).decode("utf-8", errors="replace")
            result = json.loads(text)
        except Refused as e:
            raise StepFailure(f"step process {describe_exit(code)}; {e}") from None
        except (OSError, ValueError):
            raise StepFailure(f"step process {describe_exit(code)} without a result") from None
        if "error" in result:
            raise StepFailure(result["error"])
        if code != 0:
            raise StepFailure(f"step process {describe_exit(code)}")
        return dict(result["outputs"])
    if code != 0 and text is not None and (error := _error_of(text)):  # an executor's reason (container)
        raise StepFailure(error)
    if code in (126, 127):
        raise StepFailure(
            f"command {describe_exit(code)}: a program it runs could not be "
            f"{'executed' if code == 126 else 'found'} (see its log; a confined step can run only programs "
            "in the system's and Python's folders, on PATH, in the spec folders and in STEP_SANDBOX_READ)"
        )
    if code != 0:
        raise StepFailure(f"command {describe_exit(code)}")
    out: dict[str, Any] = {}
    outputs = a.files
    with _out_folder(a) as folder:
        for name, rel in outputs.items():
            norm = output_rel(name, rel)
            kind = a.step.outputs.get(name, "any")
            try:
                parent, last = _locate(a, folder, norm)
                if kind not in VALUE_TYPES:
                    os.stat(last, dir_fd=parent, follow_symlinks=False)
                    out[name] = str(a.out_dir / norm)
                    continue
                fd = open_regular(last, parent, norm)
            except FileNotFoundError:
                continue
            except Refused as e:
                raise StepFailure(f"output {name!r} ({kind}): {e}") from None
            with os.fdopen(fd, "rb") as f:
                data = f.read(limit + 1)
            if len(data) > limit:
                raise StepFailure(
                    f"output {name!r} ({kind}): {norm!r} is larger than STEP_VALUES_MAX_BYTES "
                    f"({budget.limits.step_values_max_bytes.human_readable()}): declare it as a file output"
                )
            try:
                value = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise StepFailure(f"output {name!r} ({kind}): cannot read {rel} as UTF-8 text: {e}") from None
            try:
                out[name] = json.loads(value) if kind != "text" else value
            except ValueError:
                raise StepFailure(f"output {name!r}: {rel} does not hold valid JSON") from None
    return out


def _error_of(text: str) -> str | None:
    """The `error` of a JSON result an executor handed with its end, if it is one."""
    try:
        result = json.loads(text)
    except ValueError:
        return None
    error = result.get("error") if isinstance(result, dict) else None
    return str(error) if error else None


@contextlib.contextmanager
def _out_folder(a: Attempt) -> Iterator[Folder | None]:
    """The attempt's output folder, opened without following a link (None when it does not exist)."""
    try:
        folder: Folder | None = Folder(a.out_dir)
    except FileNotFoundError:
        folder = None
    except OSError as e:
        raise StepFailure(
            f"the step's output folder {a.out_dir.name} is not a folder any more "
            f"({e.strerror or e}): a step must not replace it (by a link, for example)"
        ) from None
    try:
        yield folder
    finally:
        if folder is not None:
            folder.close()


def _locate(a: Attempt, folder: Folder | None, rel: str) -> tuple[int, str]:
    """(open parent folder, name) of a normalised path inside the output folder."""
    if folder is None:
        raise FileNotFoundError(rel)
    if rel == ".":  # the output folder itself, named in the steps folder (the Runner's)
        return folder.parent_fd(), a.out_dir.name
    return folder.locate(rel)


def ingest(
    a: Attempt, raw: dict[str, Any], store: ArtifactStore, budget: Budget
) -> dict[str, dict[str, Any]]:
    """Check returned outputs against the declared ports and copy them into the artifact store.

    Artifacts are copied only from the step's output folder (or one of its inputs, given back as is),
    never through a link and within the limits of `budget`; once all are stored, the copied files are
    removed from the output folder. Raises StepFailure, or collect.Stopped when interrupted.
    """
    declared = a.step.outputs
    extra = [k for k in raw if k not in declared]
    if extra:
        raise StepFailure(f"returned undeclared outputs {extra}; declared: {sorted(declared)}")
    records: dict[str, dict[str, Any]] = {}
    copied: list[tuple[int, str]] = []
    with _out_folder(a) as folder, contextlib.ExitStack() as stack:
        for name, kind in declared.items():
            if name not in raw:
                raise StepFailure(f"did not return its output {name!r} ({kind})")
            value = raw[name]
            if isinstance(value, dict) and set(value) == {"__path__"}:
                value = value["__path__"]
            if kind in VALUE_TYPES:
                records[name] = _value(name, kind, value, store, budget)
                continue
            if not isinstance(value, str | os.PathLike) or "\0" in os.fspath(value):
                raise StepFailure(f"output {name!r} ({kind}) must be a path, got {type(value).__name__}")
            budget.start_output(name)
            path = a.out_dir / value
            try:
                record = _artifact(a, folder, stack, name, kind, path, store, budget, copied)
            except FileNotFoundError:
                raise StepFailure(f"output {name!r} ({kind}): {path} does not exist") from None
            except Stopped:
                raise
            except Refused as e:
                raise StepFailure(f"output {name!r} ({kind}): {e}") from None
            records[name] = record
        for parent, last in copied:  # the output folder keeps no second copy of what is stored
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(os.stat(last, dir_fd=parent, follow_symlinks=False).st_mode):
                    shutil.rmtree(last, dir_fd=parent)
                else:
                    os.unlink(last, dir_fd=parent)
    return records


def _value(name: str, kind: str, value: Any, store: ArtifactStore, budget: Budget) -> dict[str, Any]:
    if kind == "endpoint":
        value = endpoint_value(name, value)
    if kind == "metrics" and not (
        isinstance(value, dict)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())
    ):
        raise StepFailure(f"output {name!r} (metrics) must be a mapping of names to numbers")
    try:
        size = len(json.dumps(value, allow_nan=False))
    except ValueError:
        raise StepFailure(
            f"output {name!r} ({kind}) holds NaN or Infinity, which JSON cannot represent: "
            "replace them (e.g. by null) before returning"
        ) from None
    if kind == "text" and not isinstance(value, str):
        raise StepFailure(f"output {name!r} (text) must be a string")
    try:
        budget.add_value(size, f"output {name}")
    except Refused as e:
        raise StepFailure(f"output {name!r} ({kind}): {e}") from None
    digest, path = store.put_value(value, name)
    return {"type": kind, "digest": digest, "path": str(path), "value": value}


def endpoint_value(name: str, value: Any) -> dict[str, Any]:
    """An `endpoint` output's value: {"url": "http(s)://host[:port][/path]", ...} (serve steps add
    "service", the name `mlops serve stop` takes); a URL string is taken as {"url": URL}."""
    from urllib.parse import urlsplit

    if isinstance(value, str):
        value = {"url": value}
    url = value.get("url") if isinstance(value, dict) else None
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        ok = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok or not isinstance(value, dict) or any(c.isspace() for c in str(url)):
        raise StepFailure(
            f'output {name!r} (endpoint) must be {{"url": "http(s)://host:port", ...}} or such a URL; '
            f"got {str(value)[:100]!r}"
        )
    return value


def _artifact(
    a: Attempt,
    folder: Folder | None,
    stack: contextlib.ExitStack,
    name: str,
    kind: str,
    path: Path,
    store: ArtifactStore,
    budget: Budget,
    copied: list[tuple[int, str]],
) -> dict[str, Any]:
    """Store one artifact output given as a path (already joined to the output folder when relative)."""
    rel = inside(a.out_dir, path)
    if rel is not None:
        parent, last = _locate(a, folder, rel)
        shown = rel
    else:
        for rec in a.inputs.values():
            if os.path.normpath(path) == os.path.normpath(rec["path"]):  # an input, given back as is
                return {"type": kind, "digest": rec["digest"], "path": rec["path"]}
        root = next((Path(r["path"]) for r in a.inputs.values() if inside(Path(r["path"]), path)), None)
        if root is None:
            raise Refused(
                f"{str(path)!r} is outside the step's output folder: write outputs inside it "
                "(ctx.output_dir for Python steps; relative paths are taken there)"
            )
        parent, last = stack.enter_context(Folder(root)).locate(inside(root, path) or "")
        shown = str(path)
    st = os.stat(last, dir_fd=parent, follow_symlinks=False)
    if kind == "directory" and stat.S_ISREG(st.st_mode):
        raise StepFailure(f"output {name!r} is a directory output but {shown!r} is a file")
    digest, stored = store.put(parent, last, budget, shown)
    if rel is not None:
        copied.append((parent, last))
    return {"type": kind, "digest": digest, "path": str(stored)}
