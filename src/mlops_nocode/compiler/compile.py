"""Compile a spec tree into a Plan: resolve refs, flatten nesting with namespaced ids, bind and check.

Nesting does not use the Python stack: expanding a sub-pipeline is a request (`_Sub`) that a graph's
generator yields to one loop (`_Compiler.expand`), so depth is limited only by MAX_NESTING_DEPTH.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from mlops_nocode.catalogue.base import Doc, Resolver
from mlops_nocode.compiler.files import shipped
from mlops_nocode.compiler.graph import Absent, Wire, Wiring, step_order
from mlops_nocode.compiler.launch import Graph, launch_problems, root_graph
from mlops_nocode.compiler.lint import check_playbook
from mlops_nocode.compiler.params import ParamSchema, Unknown, bind, find_secrets, literal_secrets
from mlops_nocode.compiler.plan import Binding, Plan, PlanStep
from mlops_nocode.spec import (
    MetaPipeline,
    Playbook,
    Problem,
    Ref,
    SpecError,
    Step,
    parse_duration,
)
from mlops_nocode.spec.limits import limits
from mlops_nocode.spec.models import Target
from mlops_nocode.spec.sections import SECTIONS

_LOCAL = {"provider": "local", "options": {}}
T = TypeVar("T")


@dataclass
class Expanded:
    """What a step of a graph produced: its outputs (leaf bindings, or Absent) and every leaf step id."""

    outputs: dict[str, Binding | Absent]
    leaves: list[str]
    failed: bool = False


@dataclass(frozen=True)
class _Sub:
    """A request to expand one (meta)pipeline, answered with its outputs."""

    doc: Graph
    ns: str
    params: dict[str, Any]
    inputs: dict[str, Wire]
    trail: tuple[str, ...]
    where: str
    target: dict[str, Any] | None
    """The nearest explicit step `target:` on the path here (None when no enclosing step names one)."""
    default: dict[str, Any] | None = None
    """The innermost enclosing pipeline document's own `target:` (None when none declares one)."""


_Gen = Generator[_Sub, dict[str, Wire], T]


@dataclass
class Compiler(Wiring):
    """One compile: the steps and problems found so far, and what is computed once per document."""

    resolver: Resolver = field(kw_only=True)
    launch_target: dict[str, Any] | None = field(kw_only=True)
    max_nesting: int = field(default_factory=lambda: limits().max_nesting_depth, kw_only=True)
    steps: list[PlanStep] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    _schemas: dict[int, ParamSchema] = field(default_factory=dict)
    _digests: dict[int, str] = field(default_factory=dict)
    _orders: dict[int, tuple[list[str], set[str]]] = field(default_factory=dict)
    _templates: dict[int, dict[str, Any]] = field(default_factory=dict)

    def schema(self, doc: Doc, where: str) -> ParamSchema:
        s = self._schemas.get(id(doc))
        if s is None:
            owner = f"{doc.kind.lower()}/{doc.metadata.name}"
            s = self._schemas[id(doc)] = ParamSchema(doc.spec.parameters, where, owner)
        return s

    def digest(self, doc: Doc) -> str:
        d = self._digests.get(id(doc))
        if d is None:
            text = json.dumps(doc.model_dump(mode="json", by_alias=True), sort_keys=True)
            d = self._digests[id(doc)] = hashlib.sha256(text.encode()).hexdigest()
        return d

    def template(self, pb: Playbook) -> dict[str, Any]:
        """The parts of a plan step that depend on the playbook alone (shared by all its uses); the
        playbook's own problems and warnings are recorded once, on its first use."""
        t = self._templates.get(id(pb))
        if t is None:
            spec = pb.spec
            errors, warnings = check_playbook(pb)
            self.problems.extend(errors)
            self.warnings.extend(warnings)
            command_secrets: set[str] = set()
            if spec.command is not None:
                find_secrets([spec.command.argv, spec.command.env], command_secrets)
            config = None
            if spec.runtime in SECTIONS and spec.section is not None:
                config = spec.section.model_dump(mode="json", by_alias=True)
                find_secrets(config, command_secrets)
            t = self._templates[id(pb)] = {
                "digest": self.digest(pb),
                "runtime": spec.runtime,
                "outputs": {k: p.type for k, p in spec.outputs.items()},
                "entrypoint": spec.python.entrypoint if spec.python else None,
                "code": spec.python.code if spec.python else None,
                "command": spec.command.model_dump() if spec.command else None,
                "config": config,
                "resources": spec.resources.to_plan(),
                "cache": spec.cache and spec.runtime not in ("terraform", "serve"),  # nor a running service
                "_secrets": command_secrets,
            }
            spec_dir, files, problems = shipped(pb, str(pb.ref))
            self.problems.extend(problems)
            if spec_dir is not None:
                t.update(spec_dir=spec_dir, files=files)
        return t

    def resolve(self, step: Step, where: str) -> Doc | None:
        try:
            return self.resolver.resolve(step.ref)
        except SpecError as e:
            for p in e.problems:
                self.problems.append(Problem(p.what, f"{where} > uses", p.fix))
            return None

    def expand(self, root: _Sub) -> dict[str, Wire]:
        """Expand `root` and every pipeline under it, with a stack of generators instead of recursion."""
        stack = [self.graph(root)]
        answer: dict[str, Wire] | None = None
        while True:
            try:
                call = stack[-1].send(answer)  # type: ignore[arg-type]
            except StopIteration as done:
                stack.pop()
                if not stack:
                    return dict(done.value)
                answer = done.value
                continue
            stack.append(self.graph(call))
            answer = None

    def order(self, doc: Graph, where: str) -> tuple[list[str], set[str]]:
        """A graph's steps in an order where each comes after what it needs (computed once per document),
        and the steps in or after a cycle (reported once), which come last in declaration order."""
        if id(doc) not in self._orders:
            order, cyclic, problem = step_order(doc, where)
            if problem is not None:
                self.problems.append(problem)
            self._orders[id(doc)] = (order, cyclic)
        return self._orders[id(doc)]

    def graph(self, c: _Sub) -> _Gen[dict[str, Wire]]:
        """Expand one (meta)pipeline; return its outputs as bindings to leaf steps (None when failed)."""
        doc = c.doc
        label = f"{doc.kind.lower()}/{doc.metadata.name}"
        order, cyclic = self.order(doc, c.where)
        default = doc.spec.target.model_dump() if doc.spec.target else c.default
        by_id = {s.id: (i, s) for i, s in enumerate(doc.spec.steps)}
        done = {sid: Expanded({}, [], failed=True) for sid in cyclic}
        for sid in order:
            i, step = by_id[sid]
            done[sid] = yield from self.step(
                doc, step, c, done, f"{c.where} > steps[{i}] ({step.id})", c.target, default
            )
        return {
            name: self.connect(source, c.inputs, done, doc, f"{c.where} > outputs.{name}", label)
            for name, source in doc.spec.outputs.items()
        }

    def step(
        self,
        parent: Graph,
        step: Step,
        c: _Sub,
        done: dict[str, Expanded],
        where: str,
        target: dict[str, Any] | None,
        default: dict[str, Any] | None,
    ) -> _Gen[Expanded]:
        """Expand one step. `target` is the nearest explicit step target above it, `default` the innermost
        pipeline document's own; the leaf's target is: its own or `target` > the launch target >
        `default` > local (docs/SPEC.md, "Where a step runs")."""
        failed = Expanded({}, [], failed=True)
        child = self.resolve(step, where)
        if child is None:
            return failed
        if isinstance(parent, MetaPipeline) and isinstance(child, Playbook):
            self.problems.append(
                Problem(
                    f"a MetaPipeline step must use a pipeline or metapipeline, not {step.uses}",
                    f"{where} > uses",
                    "wrap the playbook in a Pipeline, or make this document a Pipeline",
                )
            )
            return failed
        pinned = str(step.ref.pinned(child.metadata.version))
        if pinned in c.trail:
            cycle = " -> ".join((*c.trail[c.trail.index(pinned) :], pinned))
            self.problems.append(
                Problem(
                    f"reference cycle: {cycle}",
                    f"{where} > uses",
                    "an entry cannot use itself, directly or through others",
                )
            )
            return failed
        if not isinstance(child, Playbook) and len(c.trail) >= self.max_nesting:
            self.problems.append(
                Problem(
                    f"pipelines nested more than {self.max_nesting} levels deep",
                    f"{where} > uses",
                    f"nest fewer levels, or raise the limit MAX_NESTING_DEPTH (now {self.max_nesting})",
                )
            )
            return failed
        label = f"{parent.kind.lower()}/{parent.metadata.name}"
        wired: dict[str, Wire] = {}
        for name, source in step.inputs.items():
            wired[name] = self.connect(source, c.inputs, done, parent, f"{where} > inputs.{name}", label)
        needs: list[str] = []
        for dep in step.depends_on:
            if dep not in done:
                self.problems.append(
                    Problem(
                        f"depends_on names unknown step {dep[:63]!r}",
                        f"{where} > depends_on",
                        f"use one of: {', '.join(s.id for s in parent.spec.steps)}",
                    )
                )
            else:
                needs.extend(done[dep].leaves)
        secrets: set[str] = set()
        with_ = bind(step.with_, c.params, f"{where} > with", secrets, self.problems)
        if step.target is not None:
            target = step.target.model_dump()
        cwhere = f"{where} > {pinned}"
        self.problems.extend(
            literal_secrets(self.schema(child, cwhere).properties, step.with_, f"{where} > with")
        )
        if isinstance(child, Playbook):
            placed = target or self.launch_target or default
            return self.leaf(child, step, c.ns + step.id, with_, wired, needs, secrets, where, placed, pinned)
        values, problems = self.schema(child, cwhere).apply(with_, f"{where} > with")
        self.problems.extend(problems)
        wired = self.wire(pinned, child.spec.inputs, wired, where)
        start = len(self.steps)
        outs = yield _Sub(
            child, f"{c.ns}{step.id}/", values, wired, (*c.trail, pinned), cwhere, target, default
        )
        leaves = [s.id for s in self.steps[start:]]
        if needs:
            for j in range(start, len(self.steps)):
                s = self.steps[j]
                self.steps[j] = replace(s, needs=tuple(dict.fromkeys([*s.needs, *needs])))
        return Expanded(
            {k: v for k, v in outs.items() if v is not None},
            leaves,
            failed=any(v is None for v in outs.values()),
        )

    def leaf(
        self,
        pb: Playbook,
        step: Step,
        sid: str,
        with_: dict[str, Any],
        wired: dict[str, Wire],
        needs: list[str],
        secrets: set[str],
        where: str,
        target: dict[str, Any] | None,
        pinned: str,
    ) -> Expanded:
        spec = pb.spec
        params, problems = self.schema(pb, f"{where} > {pinned}").apply(with_, f"{where} > with")
        self.problems.extend(problems)
        bound = {
            k: b for k, b in self.wire(pinned, spec.inputs, wired, where).items() if isinstance(b, Binding)
        }
        template = dict(self.template(pb))
        secrets.update(spec.secrets, template.pop("_secrets"))
        find_secrets(params, secrets)
        timeout = step.timeout if step.timeout is not None else spec.timeout
        plan_step = PlanStep(
            id=sid,
            playbook=pinned,
            params=params,
            inputs=bound,
            needs=tuple(dict.fromkeys([*(b.step for b in bound.values() if b.step), *needs])),
            retries=step.retries if step.retries is not None else spec.retries,
            timeout=parse_duration(timeout) if timeout is not None else None,
            secrets=tuple(sorted(secrets)),
            target=target or _LOCAL,
            source=where,
            **template,
        )
        self.steps.append(plan_step)
        return Expanded({k: Binding(sid, k, p.type) for k, p in spec.outputs.items()}, [sid])


def compile_plan(
    root: Doc | Ref | str,
    resolver: Resolver,
    params: dict[str, Any] | None = None,
    target: Target | dict[str, Any] | None = None,
    check_only: bool = False,
) -> Plan:
    """Compile `root` (a Pipeline/MetaPipeline document or a ref to one) into a Plan.

    Raises SpecError with every problem found, each with what, where and how to fix it. With
    `check_only` the definition is checked: a reusable pipeline that needs inputs gets placeholders for
    them, and a required parameter that no value gives is taken as given; the plan it returns then only
    serves to validate, not to run.
    """
    doc = root_graph(root, resolver)
    launch = target.model_dump() if isinstance(target, Target) else target
    label = f"{doc.kind.lower()}/{doc.metadata.name}"
    given = dict(params or {})
    problems = launch_problems(given, launch, label)
    if problems:
        raise SpecError(problems)
    c = Compiler(resolver=resolver, launch_target=launch)
    schema = c.schema(doc, label)
    where = f"{label} > parameters"
    unknowns = schema.unknowns(given)  # required, without a value: only a launch can give them
    values, problems = schema.apply({**given, **unknowns}, where)
    if not check_only:
        fix = "pass it at launch: --set NAME=VALUE (mlops run/plan/deploy), or parameters.NAME (API)"
        problems = [schema.missing(name, where, fix) for name in unknowns] + problems
    c.problems.extend(problems)
    for name in values:  # an invalid value is not checked again in every step that uses it
        if any(
            p.where == f"{where}.{name}" or p.where.startswith((f"{where}.{name}.", f"{where}.{name}["))
            for p in problems
        ):
            values[name] = Unknown(f"${{{{ params.{name} }}}}")
    placeholders: dict[str, Wire] = {}
    if check_only:
        placeholders = {n: Binding("", n, p.type) for n, p in doc.spec.inputs.items()}
    else:
        unbound = [n for n, p in doc.spec.inputs.items() if not p.optional]
        if unbound:
            c.problems.append(
                Problem(
                    f"{label} needs inputs {', '.join(unbound)} and cannot run on its own",
                    label,
                    "run a pipeline that uses it and connects its inputs",
                )
            )
    pinned = str(doc.ref)
    outputs = c.expand(_Sub(doc, "", values, placeholders, (pinned,), label, None))
    if c.problems:
        raise SpecError(list(dict.fromkeys(c.problems)))
    return Plan(
        root=pinned,
        parameters=values,
        steps=tuple(c.steps),
        outputs={k: v for k, v in outputs.items() if isinstance(v, Binding)},
        warnings=tuple(dict.fromkeys(c.warnings)),
        notify=tuple(t.model_dump() for t in doc.spec.notify),
    )
