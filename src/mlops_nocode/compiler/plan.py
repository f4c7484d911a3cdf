"""The Plan: a compiled, flattened DAG of concrete steps with namespaced ids. Immutable and JSON-able."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_nocode.spec import Problem

PLAN_FORMAT = "mlops-nocode/plan/v1"


class PlanError(ValueError):
    """A plan file that cannot be run as it is."""


@dataclass(frozen=True, slots=True)
class Binding:
    """An output of a plan step (`step` is a plan step id) or, when `step` is empty, a value."""

    step: str
    output: str
    type: str = "any"

    def to_json(self) -> dict[str, str]:
        return {"step": self.step, "output": self.output, "type": self.type}


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One concrete step: a pinned playbook, its bound parameters and wired inputs, placed on a target."""

    id: str
    playbook: str
    digest: str
    runtime: str
    params: dict[str, Any]
    inputs: dict[str, Binding]
    outputs: dict[str, str]
    needs: tuple[str, ...]
    entrypoint: str | None = None
    """`module:function`, or with `code`, the name of a top-level function of it."""
    code: str | None = None
    """The Python source the playbook carries (`python.code`); None for an importable entrypoint."""
    command: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    """The playbook's runtime section for the runtimes beyond python and command (`container:`, `http:`,
    `terraform:`, `ansible:`), as JSON; read by that runtime's executor (runtime/executors/)."""
    resources: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    timeout: float | None = None
    cache: bool = True
    secrets: tuple[str, ...] = ()
    target: dict[str, Any] = field(default_factory=lambda: {"provider": "local", "options": {}})
    source: str = ""
    spec_dir: str | None = None
    """The folder of the playbook's spec file, when the step needs it (`${{ spec.dir }}`, `files`)."""
    files: tuple[str, ...] = ()
    """The files the playbook ships with (`spec.files`), relative to `spec_dir`."""
    placement: dict[str, Any] | None = None
    """Where placement put it: {"provider", "deployment", "offer" (Offer JSON or None), "price_per_hour",
    "why", "runner_up"}; None until the plan is placed (providers.placement.place)."""

    def to_json(self, base: Path | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "playbook": self.playbook,
            "digest": self.digest,
            "runtime": self.runtime,
            "entrypoint": self.entrypoint,
            **({"code": self.code} if self.code is not None else {}),
            "command": self.command,
            **({"config": self.config} if self.config is not None else {}),
            "params": self.params,
            "inputs": {k: b.to_json() for k, b in self.inputs.items()},
            "outputs": self.outputs,
            "needs": list(self.needs),
            "resources": self.resources,
            "retries": self.retries,
            "timeout": self.timeout,
            "cache": self.cache,
            "secrets": list(self.secrets),
            "target": self.target,
            "source": self.source,
            "spec_dir": _portable(self.spec_dir, base) if self.spec_dir else None,
            "files": list(self.files),
            "placement": self.placement,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], base: Path | None = None) -> PlanStep:
        return cls(
            id=d["id"],
            playbook=d["playbook"],
            digest=d["digest"],
            runtime=d["runtime"],
            entrypoint=d.get("entrypoint"),
            code=str(d["code"]) if d.get("code") is not None else None,
            command=d.get("command"),
            config=dict(d["config"]) if d.get("config") is not None else None,
            params=d.get("params", {}),
            inputs={k: Binding(**b) for k, b in d.get("inputs", {}).items()},
            outputs=d.get("outputs", {}),
            needs=tuple(d.get("needs", ())),
            resources=d.get("resources", {}),
            retries=d.get("retries", 0),
            timeout=d.get("timeout"),
            cache=d.get("cache", True),
            secrets=tuple(d.get("secrets", ())),
            target=d.get("target", {"provider": "local", "options": {}}),
            source=d.get("source", ""),
            spec_dir=_local(str(d["spec_dir"]), base) if d.get("spec_dir") else None,
            files=tuple(str(f) for f in d.get("files", ())),
            placement=dict(d["placement"]) if d.get("placement") else None,
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """The whole compiled run: steps in a topological order, and the pipeline's outputs."""

    root: str
    parameters: dict[str, Any]
    steps: tuple[PlanStep, ...]
    outputs: dict[str, Binding]
    python_path: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = ()
    """What validation found worth saying that does not stop a run (not part of the plan's JSON)."""
    notify: tuple[dict[str, Any], ...] = ()
    """The root pipeline's `spec.notify` targets (its defaults; a launch's own list replaces them). Not
    part of the plan's JSON: the gateway stores them with the run, and Runners never need their URLs."""

    def step(self, step_id: str) -> PlanStep:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def to_json(self, base: Path | None = None) -> dict[str, Any]:
        """The plan's JSON form. With `base` (the folder the plan file goes to), local folders (the spec
        folders of `python_path` and the steps' `spec_dir`) are written relative to it, so the plan file
        and the spec folders can move elsewhere together.

        The Python source of inline-code playbooks (`python.code`) is written once, under `sources` by
        its SHA-256, and each step names it (`"code": {"sha256": ...}`): a playbook used by many steps
        does not make the plan many times its size."""
        sources: dict[str, str] = {}
        steps = []
        for s in self.steps:
            d = s.to_json(base)
            if s.code is not None:
                digest = hashlib.sha256(s.code.encode("utf-8", "surrogatepass")).hexdigest()
                sources[digest] = s.code
                d["code"] = {"sha256": digest}
            steps.append(d)
        return {
            "format": PLAN_FORMAT,
            "root": self.root,
            "parameters": self.parameters,
            "steps": steps,
            "outputs": {k: b.to_json() for k, b in self.outputs.items()},
            "python_path": [_portable(p, base) for p in self.python_path],
            **({"sources": sources} if sources else {}),
        }

    @classmethod
    def from_json(cls, d: Any, base: Path | None = None) -> Plan:
        """A plan from its JSON form; PlanError says what is wrong with a malformed one. Relative local
        folders are taken relative to `base` (the plan file's folder), or left as they are without it."""
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            got = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise PlanError(f"not a plan: format is {got!r}, expected {PLAN_FORMAT!r}")
        try:
            plan = cls(
                root=str(d["root"]),
                parameters=dict(d.get("parameters", {})),
                steps=tuple(PlanStep.from_json(_with_source(s, d), base) for s in d["steps"]),
                outputs={k: Binding(**b) for k, b in dict(d.get("outputs", {})).items()},
                python_path=tuple(_local(str(p), base) for p in d.get("python_path", ())),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise PlanError(f"malformed plan: {type(e).__name__}: {e}") from None
        plan.check()
        return plan

    def check(self) -> None:
        """Raise PlanError unless the steps form a DAG in order, with well-typed fields."""
        seen: dict[str, PlanStep] = {}
        for i, s in enumerate(self.steps):
            where = f"steps[{i}] ({s.id})"
            if not isinstance(s.params, dict):
                raise PlanError(f"{where}: params must be an object")
            if s.timeout is not None and not isinstance(s.timeout, int | float):
                raise PlanError(f"{where}: timeout must be a number of seconds")
            if not isinstance(s.retries, int) or s.retries < 0:
                raise PlanError(f"{where}: retries must be a non-negative integer")
            for n in s.needs:
                if n not in seen:
                    raise PlanError(f"{where}: needs {n!r}, which is not an earlier step")
            for name, b in s.inputs.items():
                if b.step not in seen or b.output not in seen[b.step].outputs:
                    raise PlanError(f"{where}: input {name!r} comes from unknown {b.step}.{b.output}")
            if s.id in seen:
                raise PlanError(f"{where}: duplicate step id")
            seen[s.id] = s
        for name, b in self.outputs.items():
            if b.step not in seen or b.output not in seen[b.step].outputs:
                raise PlanError(f"outputs.{name}: comes from unknown {b.step}.{b.output}")

    def to_text(self, base: Path | None = None) -> str:
        """The plan file's text: indented JSON with one line per step (fast to write for big plans: the
        fully indented form takes seconds for 10,000 steps)."""
        d = self.to_json(base)
        steps = ",\n    ".join(json.dumps(s) for s in d.pop("steps"))
        body = json.dumps(d, indent=2)[:-2]  # without the closing brace
        return (
            f'{body},\n  "steps": [\n    {steps}\n  ]\n}}\n'
            if steps
            else json.dumps(self.to_json(base), indent=2) + "\n"
        )

    def dump(self, path: str | Path) -> None:
        """Write the plan file; its local folders are written relative to the file's folder."""
        Path(path).write_text(self.to_text(Path(path).absolute().parent), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        """Read a plan file; relative local folders in it are taken relative to the file's folder."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise PlanError(f"cannot read plan: {e}") from None
        return cls.from_json(data, Path(path).absolute().parent)


def _portable(folder: str, base: Path | None) -> str:
    """`folder` relative to `base` (POSIX separators), or as it is without a base."""
    if base is None or not os.path.isabs(folder):
        return folder
    return Path(os.path.relpath(folder, base)).as_posix()


def _local(folder: str, base: Path | None) -> str:
    """A folder read from a plan: relative ones are taken relative to `base`, the plan file's folder."""
    if base is None or os.path.isabs(folder):
        return folder
    return os.path.normpath(base / folder)


def _with_source(step: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """A step's JSON with the source it names by digest (`{"sha256": ...}`) put back from `sources`."""
    code = step.get("code")
    if not isinstance(code, dict):
        return step
    digest = code.get("sha256")
    source = (plan.get("sources") or {}).get(digest)
    if not isinstance(source, str):
        raise PlanError(
            f"step {step.get('id')!r}: its code {str(digest)[:16]!r} is not among the plan's sources"
        )
    return {**step, "code": source}
