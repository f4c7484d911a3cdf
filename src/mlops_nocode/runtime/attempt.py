"""One attempt of one step: its files, its payload or command line, and its launch (outputs: outputs.py)."""

from __future__ import annotations

import hashlib
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
from mlops_nocode.runtime.collect import Refused, open_regular
from mlops_nocode.runtime.collect import read_lines as collect_lines
from mlops_nocode.runtime.sandbox import RunSandbox, step_env
from mlops_nocode.runtime.secrets import fill as fill_secrets
from mlops_nocode.runtime.secrets import value_problem
from mlops_nocode.spec.expressions import EXPR_RE, apply_filter

VALUE_TYPES = frozenset({"metrics", "text", "json", "endpoint", "infra", "any"})
_EXPR_RE = EXPR_RE  # `${{ NAMESPACE.NAME }}` or `${{ NAMESPACE.NAME | FILTER }}` (spec/expressions.py)


STEM_MAX = 100  # characters of a step id kept readable in its file names


def step_stem(step_id: str, attempt: int) -> str:
    """The name of an attempt's files in `runs/<id>/steps/`: `<step>@<n>`, `/` written `__`.

    Short ids of compiled plans stay readable as they are; longer ids, or ids with other characters (a
    plan from elsewhere), keep a readable prefix and a hash of the whole id: the name always fits in a
    file name (with its suffixes) and two ids never share one.
    """
    readable = step_id.replace("/", "__")
    if len(readable) <= STEM_MAX and _PLAIN_ID.fullmatch(step_id):
        return f"{readable}@{attempt}"
    digest = hashlib.sha256(step_id.encode("utf-8", errors="surrogatepass")).hexdigest()[:16]
    prefix = _UNSAFE.sub("-", readable)[: STEM_MAX - 20].lstrip(".-")
    return f"{prefix}~{digest}@{attempt}"


_PLAIN_ID = re.compile(r"[a-z0-9][a-z0-9-]*(/[a-z0-9][a-z0-9-]*)*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


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
    gpus: tuple[str, ...] = ()
    """UUIDs of the GPUs the Runner handed this attempt (runtime/gpusched.py)."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment the Runner adds for this attempt (CUDA_VISIBLE_DEVICES)."""
    files: dict[str, str] | None = None
    """Output name -> path in the output folder, for runtimes whose outputs are files the step writes
    (command, container); None when they come as a JSON result (the executor's `output_files`)."""

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
    """The values of the secrets a step needs, from the environment; a missing one, or one no process
    could be given (a NUL, a lone surrogate, too long), is a clear failure."""
    values = {}
    for name in step.secrets:
        if name not in environ:
            raise StepFailure(
                f"secret {name!r} is not set: export {name}=... before `mlops run`, or, for runs of the "
                f"gateway, store it with PUT /api/v1/secrets/{name} (secrets are read from the Runner's "
                "environment and never stored in the plan)"
            )
        if problem := value_problem(name, environ[name], short=False):
            raise StepFailure(f"{problem[0]}: {problem[1]}")
        values[name] = environ[name]
    return values


def python_payload(a: Attempt, run_id: str, box: RunSandbox, home: Path | None = None) -> dict[str, Any]:
    """What the fork server's child needs to run a Python step (its folders, environment and grants);
    with the Runner's `home`, the model routes too (MLOPS_LLM_ROUTES: names and URLs, no secret values)."""
    kwargs = dict(a.step.params)  # secret placeholders are filled in by the step's process
    kwargs.update({name: rec["path"] for name, rec in a.inputs.items()})
    extra = {**a.env, **a.secrets, **spec_dir_env(a.step), "MLOPS_RUN_ID": run_id, "MLOPS_STEP_ID": a.step.id}
    if home is not None:
        extra.update(_routes_env(home))
    grants = box.step_grants(a.out_dir, a.tmp, _input_paths(a), a.cwd) if box.confined else []
    return {
        "step": a.step.id,
        "run_id": run_id,
        "attempt": a.number,
        "entrypoint": a.step.entrypoint,
        **({"code": a.step.code} if a.step.code is not None else {}),
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


def _routes_env(home: Path) -> dict[str, str]:
    from mlops_nocode.integrations.litellm.routes import RouteError, routes_env

    try:
        return routes_env(home)
    except RouteError as e:
        raise StepFailure(f"the model routes cannot be read: {e}") from None


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
        return str(a.out_dir / output_rel(name, outputs.get(name, name)))

    for name, rel in outputs.items():  # a plan from elsewhere is checked before anything runs
        output_rel(name, rel)

    def filtered(m: re.Match[str]) -> str:  # one pass: a substituted value is never read as an expression
        if m[1] == "secrets":
            return apply_filter(a.secrets.get(m[2], ""), m[3])
        if m[1] == "spec":  # ${{ spec.dir }}: the playbook's folder, where a plan step has one
            return apply_filter(str(a.step.spec_dir or m[0]), m[3])
        return apply_filter(sub(m), m[3])

    argv = [_EXPR_RE.sub(filtered, arg) for arg in cmd.get("argv", [])]
    env = {k: _EXPR_RE.sub(filtered, v) for k, v in cmd.get("env", {}).items()}
    return argv, {**env, **a.secrets, **spec_dir_env(a.step)}


def spec_dir_env(step: PlanStep) -> dict[str, str]:
    """`MLOPS_SPEC_DIR`, the playbook's folder, for steps that have one."""
    return {"MLOPS_SPEC_DIR": step.spec_dir} if step.spec_dir else {}


def command_payload(a: Attempt, run_id: str, box: RunSandbox) -> dict[str, Any]:
    """What the fork server's child needs to run a command step: it confines itself as `box` says and
    execs the command in place (so nothing it starts outlives it, see runtime/zygote.py)."""
    argv, env = command_argv(a)
    if "/" in argv[0] and not os.path.isabs(argv[0]):
        argv[0] = os.path.abspath(argv[0])  # relative to where the run was started, not the output folder
    exe = shutil.which(argv[0], path=box.env.get("PATH"))
    if not exe:
        raise StepFailure(f"command not found: {argv[0]!r}: install it or fix the playbook's command.argv")
    extra = {"PYTHONUNBUFFERED": "1", **env, **a.env, "MLOPS_RUN_ID": run_id, "MLOPS_STEP_ID": a.step.id}
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


def output_rel(name: str, rel: str) -> str:
    """A command output's path, normalised; StepFailure when it would leave the output folder."""
    norm = os.path.normpath(rel) if isinstance(rel, str) and rel and "\0" not in rel else ""
    if not norm or os.path.isabs(norm) or norm == ".." or norm.startswith("../"):
        raise StepFailure(
            f"command.outputs.{name}: {rel!r} is not a path inside the step's output folder: "
            "write a relative path without '..' (e.g. model.bin)"
        )
    return norm


def tail(path: Path, lines: int, max_bytes: int = 256 * 1024) -> list[str]:
    """The last `lines` lines of a text file, reading at most its last `max_bytes` bytes (a link or a
    special file has none)."""
    try:
        with os.fdopen(open_regular(path), "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            data = f.read(max_bytes)
    except (OSError, Refused):
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and text:
        text = text[1:]  # the first line read is probably cut
    return text[-lines:]


def read_lines(path: Path, max_bytes: int) -> Iterator[str]:
    """Every line of a text file a step wrote, streamed, up to `max_bytes` (a missing file, a link or a
    special file has none)."""
    return collect_lines(path, max_bytes)
