"""One attempt of one step: prepare its folder and payload, launch it, and turn its result into outputs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.runtime.sandbox import RunSandbox, step_env
from mlops_nocode.runtime.secrets import fill as fill_secrets
from mlops_nocode.runtime.store import ArtifactStore

VALUE_TYPES = frozenset({"metrics", "text", "json", "endpoint", "infra", "any"})
_EXPR_RE = re.compile(r"\$\{\{\s*(params|inputs|outputs)\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")


class StepFailure(Exception):
    """Why an attempt failed, in words for the user."""


@dataclass
class Attempt:
    """Files and state of one attempt of one step."""

    step: PlanStep
    number: int
    base: Path
    inputs: dict[str, dict[str, Any]]
    secrets: dict[str, str] = field(default_factory=dict)
    timed_out: bool = False
    cancelled: bool = False

    @property
    def job(self) -> str:
        return f"{self.step.id}#{self.number}"

    @property
    def out_dir(self) -> Path:
        return self.base

    @property
    def log(self) -> Path:
        return self.base.with_name(self.base.name + ".log")

    @property
    def result(self) -> Path:
        return self.base.with_name(self.base.name + ".result.json")

    @property
    def events(self) -> Path:
        return self.base.with_name(self.base.name + ".events.jsonl")

    @property
    def tmp(self) -> Path:
        """The attempt's private temporary folder (its TMPDIR and HOME), removed when it ends."""
        return self.base.with_name(self.base.name + ".tmp")

    @property
    def cwd(self) -> Path:
        """Where a Python step runs: the run's shared scratch folder (`runs/<id>/work`)."""
        return self.base.parent.parent / "work"

    def prepare(self) -> None:
        """Files of an attempt sit flat beside its output folder, `steps/<step>@<n>[.log|...]`.

        A Python step's output folder is made on first use (see StepContext): creating files and
        folders is the slowest part of starting a trivial step.
        """
        if self.step.runtime != "python":
            self.out_dir.mkdir()


def resolve_secrets(step: PlanStep, environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The values of the secrets a step needs, from the environment; a missing one is a clear failure."""
    values = {}
    for name in step.secrets:
        if name not in environ:
            raise StepFailure(
                f"secret {name!r} is not set: export {name}=... before `mlops run`, or, for runs of the "
                f"gateway, store it with PUT /api/v1/secrets/{name} (secrets are read from the Runner's "
                "environment and never stored in the plan)"
            )
        values[name] = environ[name]
    return values


def python_payload(a: Attempt, run_id: str, box: RunSandbox) -> dict[str, Any]:
    """What the fork server's child needs to run a Python step (its folders, environment and grants)."""
    kwargs = dict(a.step.params)  # secret placeholders are filled in by the step's process
    kwargs.update({name: rec["path"] for name, rec in a.inputs.items()})
    extra = {**a.secrets, "MLOPS_RUN_ID": run_id, "MLOPS_STEP_ID": a.step.id}
    grants = box.step_grants(a.out_dir, a.tmp, _input_paths(a), a.cwd) if box.confined else []
    return {
        "step": a.step.id,
        "run_id": run_id,
        "attempt": a.number,
        "entrypoint": a.step.entrypoint,
        "kwargs": kwargs,
        "output_dir": str(a.out_dir),
        "log": str(a.log),
        "result": str(a.result),
        "events": str(a.events),
        "cwd": str(a.cwd),
        "tmp": str(a.tmp),
        "grants": grants,
        "env": step_env(box.env, a.tmp, extra),
        "secrets": a.secrets,
    }


def _input_paths(a: Attempt) -> list[str]:
    return [str(rec["path"]) for rec in a.inputs.values() if rec.get("path")]


def command_argv(a: Attempt) -> tuple[list[str], dict[str, str]]:
    """The argv and extra environment of a command step, with expressions substituted."""
    cmd = a.step.command or {}
    params = fill_secrets(a.step.params, a.secrets) if a.secrets else a.step.params
    outputs = cmd.get("outputs", {})

    def sub(m: re.Match[str]) -> str:
        ns, name = m[1], m[2]
        if ns == "params":
            v = params.get(name, "")
            return v if isinstance(v, str) else json.dumps(v)
        if ns == "inputs":
            return str(a.inputs[name]["path"]) if name in a.inputs else ""
        return str(a.out_dir / outputs.get(name, name))

    argv = [_EXPR_RE.sub(sub, fill_secrets(arg, a.secrets)) for arg in cmd.get("argv", [])]
    env = {k: _EXPR_RE.sub(sub, fill_secrets(v, a.secrets)) for k, v in cmd.get("env", {}).items()}
    return argv, {**env, **a.secrets}


def command_payload(a: Attempt, run_id: str, box: RunSandbox) -> dict[str, Any]:
    """What the fork server's child needs to run a command step: it confines itself as `box` says and
    execs the command in place (so nothing it starts outlives it, see runtime/zygote.py)."""
    argv, env = command_argv(a)
    if "/" in argv[0] and not os.path.isabs(argv[0]):
        argv[0] = os.path.abspath(argv[0])  # relative to where the run was started, not the output folder
    exe = shutil.which(argv[0], path=box.env.get("PATH"))
    if not exe:
        raise StepFailure(f"command not found: {argv[0]!r}: install it or fix the playbook's command.argv")
    extra = {"PYTHONUNBUFFERED": "1", **env, "MLOPS_RUN_ID": run_id, "MLOPS_STEP_ID": a.step.id}
    grants = box.step_grants(a.out_dir, a.tmp, _input_paths(a), None) if box.confined else []
    return {
        "step": a.step.id,
        "exe": os.path.abspath(exe),
        "argv": argv,  # with secrets, it travels like env, never through a file
        "secrets": a.secrets,
        "output_dir": str(a.out_dir),
        "log": str(a.log),
        "cwd": str(a.out_dir),
        "tmp": str(a.tmp),
        "grants": grants,
        "env": step_env(box.env, a.tmp, extra),
    }


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def raw_outputs(a: Attempt, code: int, text: str | None = None) -> dict[str, Any]:
    """The outputs an attempt produced, or StepFailure saying why there are none.

    A Python step's result arrives as `text` from the fork server, or in its result file when large.
    """
    if a.step.runtime == "python":
        try:
            result = json.loads(text if text is not None else a.result.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise StepFailure(f"step process {describe_exit(code)} without a result") from None
        if "error" in result:
            raise StepFailure(result["error"])
        if code != 0:
            raise StepFailure(f"step process {describe_exit(code)}")
        return dict(result["outputs"])
    if code != 0:
        raise StepFailure(f"command {describe_exit(code)}")
    out: dict[str, Any] = {}
    for name, rel in (a.step.command or {}).get("outputs", {}).items():
        path = a.out_dir / rel
        if not path.exists():
            continue
        kind = a.step.outputs.get(name, "any")
        if kind in VALUE_TYPES:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise StepFailure(f"output {name!r} ({kind}): cannot read {rel} as UTF-8 text: {e}") from None
            try:
                out[name] = json.loads(text) if kind != "text" else text
            except ValueError:
                raise StepFailure(f"output {name!r}: {rel} does not hold valid JSON") from None
        else:
            out[name] = str(path)
    return out


def ingest(a: Attempt, raw: dict[str, Any], store: ArtifactStore) -> dict[str, dict[str, Any]]:
    """Check returned outputs against the declared ports and move them into the artifact store."""
    declared = a.step.outputs
    extra = [k for k in raw if k not in declared]
    if extra:
        raise StepFailure(f"returned undeclared outputs {extra}; declared: {sorted(declared)}")
    records: dict[str, dict[str, Any]] = {}
    for name, kind in declared.items():
        if name not in raw:
            raise StepFailure(f"did not return its output {name!r} ({kind})")
        value = raw[name]
        if isinstance(value, dict) and set(value) == {"__path__"}:
            value = value["__path__"]
        if kind in VALUE_TYPES:
            if kind == "metrics" and not (
                isinstance(value, dict)
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())
            ):
                raise StepFailure(f"output {name!r} (metrics) must be a mapping of names to numbers")
            try:
                json.dumps(value, allow_nan=False)
            except ValueError:
                raise StepFailure(
                    f"output {name!r} ({kind}) holds NaN or Infinity, which JSON cannot represent: "
                    "replace them (e.g. by null) before returning"
                ) from None
            if kind == "text" and not isinstance(value, str):
                raise StepFailure(f"output {name!r} (text) must be a string")
            digest, path = store.put_value(value, name)
            records[name] = {"type": kind, "digest": digest, "path": str(path), "value": value}
            continue
        if not isinstance(value, str | os.PathLike):
            raise StepFailure(f"output {name!r} ({kind}) must be a path, got {type(value).__name__}")
        path = Path(value)
        if not path.is_absolute():
            path = a.out_dir / path
        if not path.exists():
            raise StepFailure(f"output {name!r} ({kind}): {path} does not exist")
        if kind == "directory" and not path.is_dir():
            raise StepFailure(f"output {name!r} is a directory output but {path} is a file")
        if not a.out_dir.exists() or not path.resolve().is_relative_to(a.out_dir.resolve()):
            copy = a.out_dir / f".copy-{name}" / path.name
            copy.parent.mkdir(parents=True)
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, copy)
            path = copy
        try:
            digest, stored = store.put(path)
        except OSError as e:
            raise StepFailure(f"output {name!r}: cannot store it: {e}") from None
        records[name] = {"type": kind, "digest": digest, "path": str(stored)}
    return records


def tail(path: Path, lines: int, max_bytes: int = 256 * 1024) -> list[str]:
    """The last `lines` lines of a text file, reading at most its last `max_bytes` bytes."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and text:
        text = text[1:]  # the first line read is probably cut
    return text[-lines:]


def read_lines(path: Path) -> Iterator[str]:
    """Every line of a text file, streamed (a missing file has none)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from f
    except OSError:
        return
