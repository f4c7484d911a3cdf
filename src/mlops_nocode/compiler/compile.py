"""Compile a spec tree into a Plan: resolve refs, flatten nesting with namespaced ids, bind and check."""

from __future__ import annotations

import graphlib
import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from mlops_nocode.catalogue.base import Doc, Resolver
from mlops_nocode.compiler.files import shipped
from mlops_nocode.compiler.params import ParamSchema, _Unbound, bind, find_secrets
from mlops_nocode.compiler.plan import Binding, Plan, PlanStep
from mlops_nocode.spec import MetaPipeline, Pipeline, Playbook, Problem, Ref, SpecError, Step, parse_duration
from mlops_nocode.spec.models import Port, Target

Graph = Pipeline | MetaPipeline
_LOCAL = {"provider": "local", "options": {}}


@dataclass
class _Expanded:
    """What a step of a graph produced: its outputs (as leaf bindings) and every leaf step id under it."""

    outputs: dict[str, Binding]
    leaves: list[str]
    failed: bool = False


@dataclass
class _Compiler:
    resolver: Resolver
    launch_target: dict[str, Any] | None
    steps: list[PlanStep] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    _schemas: dict[int, ParamSchema] = field(default_factory=dict)
    _digests: dict[int, str] = field(default_factory=dict)
    _orders: dict[int, list[str] | None] = field(default_factory=dict)
    _templates: dict[int, dict[str, Any]] = field(default_factory=dict)

    def schema(self, doc: Doc, where: str) -> ParamSchema:
        s = self._schemas.get(id(doc))
        if s is None:
            s = self._schemas[id(doc)] = ParamSchema(doc.spec.parameters, where)
        return s

    def digest(self, doc: Doc) -> str:
        d = self._digests.get(id(doc))
        if d is None:
            text = json.dumps(doc.model_dump(mode="json", by_alias=True), sort_keys=True)
            d = self._digests[id(doc)] = hashlib.sha256(text.encode()).hexdigest()
        return d

    def template(self, pb: Playbook) -> dict[str, Any]:
        """The parts of a plan step that depend on the playbook alone (shared by all its uses)."""
        t = self._templates.get(id(pb))
        if t is None:
            spec = pb.spec
            t = self._templates[id(pb)] = {
                "digest": self.digest(pb),
                "runtime": spec.runtime,
                "outputs": {k: p.type for k, p in spec.outputs.items()},
                "entrypoint": spec.python.entrypoint if spec.python else None,
                "command": spec.command.model_dump() if spec.command else None,
                "resources": spec.resources.model_dump(),
                "cache": spec.cache,
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

    def graph(
        self,
        doc: Graph,
        ns: str,
        params: dict[str, Any],
        inputs: dict[str, Binding | None],
        trail: tuple[str, ...],
        where: str,
        target: dict[str, Any] | None,
    ) -> dict[str, Binding | None]:
        """Expand one (meta)pipeline; return its outputs as bindings to leaf steps (None when unknown)."""
        label = f"{doc.kind.lower()}/{doc.metadata.name}"
        order = self.order(doc, where)
        if order is None:
            return {}
        target = self.launch_target or (doc.spec.target.model_dump() if doc.spec.target else None) or target
        by_id = {s.id: (i, s) for i, s in enumerate(doc.spec.steps)}
        done: dict[str, _Expanded] = {}
        for sid in order:
            i, step = by_id[sid]
            swhere = f"{where} > steps[{i}] ({step.id})"
            done[sid] = self.step(doc, step, ns, params, inputs, done, trail, swhere, target)
        outputs: dict[str, Binding | None] = {}
        for name, source in doc.spec.outputs.items():
            outputs[name] = self.connect(source, inputs, done, doc, f"{where} > outputs.{name}", label)
        return outputs

    def order(self, doc: Graph, where: str) -> list[str] | None:
        """Topological order of a graph's steps (computed once per document), None on a cycle."""
        if id(doc) not in self._orders:
            self._orders[id(doc)] = self._order(doc, where)
        return self._orders[id(doc)]

    def _order(self, doc: Graph, where: str) -> list[str] | None:
        ids = {s.id for s in doc.spec.steps}
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for step in doc.spec.steps:
            deps = {src.split(".", 1)[0] for src in step.inputs.values()} | set(step.depends_on)
            sorter.add(step.id, *(d for d in deps if d in ids))
        try:
            return list(sorter.static_order())
        except graphlib.CycleError as e:
            cycle = " -> ".join(e.args[1][::-1])
            self.problems.append(
                Problem(
                    f"steps form a cycle: {cycle}",
                    where,
                    "remove one of these connections so the steps form a DAG",
                )
            )
            return None

    def connect(
        self,
        source: str,
        inputs: dict[str, Binding | None],
        done: dict[str, _Expanded],
        doc: Graph,
        where: str,
        label: str,
    ) -> Binding | None:
        sid, out = source.split(".", 1)
        if sid == "inputs":
            if out not in inputs:
                known = ", ".join(doc.spec.inputs) or "none"
                self.problems.append(
                    Problem(
                        f"{label} has no input {out!r}",
                        where,
                        f"declare it under spec.inputs (known inputs: {known})",
                    )
                )
                return None
            return inputs[out]
        if sid not in done:
            steps = ", ".join(s.id for s in doc.spec.steps)
            self.problems.append(
                Problem(
                    f"dangling connection {source!r}: no step {sid!r} in {label}",
                    where,
                    f"connect to one of the steps: {steps}",
                )
            )
            return None
        exp = done[sid]
        if exp.failed:
            return None
        if out not in exp.outputs:
            self.problems.append(
                Problem(
                    f"dangling connection {source!r}: step {sid!r} has no output {out!r}",
                    where,
                    f"use one of its outputs: {', '.join(exp.outputs) or 'none'}",
                )
            )
            return None
        return exp.outputs[out]

    def step(
        self,
        parent: Graph,
        step: Step,
        ns: str,
        params: dict[str, Any],
        inputs: dict[str, Binding | None],
        done: dict[str, _Expanded],
        trail: tuple[str, ...],
        where: str,
        target: dict[str, Any] | None,
    ) -> _Expanded:
        failed = _Expanded({}, [], failed=True)
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
        if pinned in trail:
            cycle = " -> ".join((*trail[trail.index(pinned) :], pinned))
            self.problems.append(
                Problem(
                    f"reference cycle: {cycle}",
                    f"{where} > uses",
                    "an entry cannot use itself, directly or through others",
                )
            )
            return failed
        label = f"{parent.kind.lower()}/{parent.metadata.name}"
        wired: dict[str, Binding | None] = {}
        for name, source in step.inputs.items():
            wired[name] = self.connect(source, inputs, done, parent, f"{where} > inputs.{name}", label)
        needs: list[str] = []
        for dep in step.depends_on:
            if dep not in done:
                self.problems.append(
                    Problem(
                        f"depends_on names unknown step {dep!r}",
                        f"{where} > depends_on",
                        f"use one of: {', '.join(s.id for s in parent.spec.steps)}",
                    )
                )
            else:
                needs.extend(done[dep].leaves)
        secrets: set[str] = set()
        try:
            with_ = bind(step.with_, params, f"{where} > with", secrets)
        except _Unbound as e:
            self.problems.append(e.problem)
            return failed
        if step.target is not None:
            target = step.target.model_dump()
        cwhere = f"{where} > {pinned}"
        if isinstance(child, Playbook):
            return self.leaf(child, step, ns + step.id, with_, wired, needs, secrets, where, target, pinned)
        values, problems = self.schema(child, cwhere).apply(with_, f"{where} > with")
        self.problems.extend(problems)
        wired = self.wire(pinned, child.spec.inputs, wired, where)
        start = len(self.steps)
        outs = self.graph(child, f"{ns}{step.id}/", values, wired, (*trail, pinned), cwhere, target)
        leaves = [s.id for s in self.steps[start:]]
        if needs:
            for j in range(start, len(self.steps)):
                s = self.steps[j]
                self.steps[j] = replace(s, needs=tuple(dict.fromkeys([*s.needs, *needs])))
        return _Expanded(
            {k: v for k, v in outs.items() if v is not None},
            leaves,
            failed=any(v is None for v in outs.values()),
        )

    def wire(
        self, pinned: str, ports: dict[str, Port], wired: dict[str, Binding | None], where: str
    ) -> dict[str, Binding | None]:
        """Check connections against the ports of what a step uses: known names, types, required ones."""
        for name, b in wired.items():
            port = ports.get(name)
            if port is None:
                self.problems.append(
                    Problem(
                        f"{pinned} has no input {name!r}",
                        f"{where} > inputs.{name}",
                        f"use one of: {', '.join(ports) or 'none'}",
                    )
                )
            elif b is not None and "any" not in (port.type, b.type) and port.type != b.type:
                source = f"{b.step}.{b.output}" if b.step else f"input {b.output!r}"
                self.problems.append(
                    Problem(
                        f"type mismatch: input {name!r} expects {port.type} but {source} is {b.type}",
                        f"{where} > inputs.{name}",
                        f"connect an output of type {port.type}",
                    )
                )
        for name, port in ports.items():
            if name not in wired and not port.optional:
                self.problems.append(
                    Problem(
                        f"required input {name!r} of {pinned} is not connected",
                        f"{where} > inputs",
                        f"add inputs: {{{name}: STEP.OUTPUT}}",
                    )
                )
        return {k: b for k, b in wired.items() if k in ports}

    def leaf(
        self,
        pb: Playbook,
        step: Step,
        sid: str,
        with_: dict[str, Any],
        wired: dict[str, Binding | None],
        needs: list[str],
        secrets: set[str],
        where: str,
        target: dict[str, Any] | None,
        pinned: str,
    ) -> _Expanded:
        spec = pb.spec
        params, problems = self.schema(pb, f"{where} > {pinned}").apply(with_, f"{where} > with")
        self.problems.extend(problems)
        bound = {k: b for k, b in self.wire(pinned, spec.inputs, wired, where).items() if b is not None}
        secrets.update(spec.secrets)
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
            **self.template(pb),
        )
        self.steps.append(plan_step)
        return _Expanded({k: Binding(sid, k, p.type) for k, p in spec.outputs.items()}, [sid])


def compile_plan(
    root: Doc | Ref | str,
    resolver: Resolver,
    params: dict[str, Any] | None = None,
    target: Target | dict[str, Any] | None = None,
    check_only: bool = False,
) -> Plan:
    """Compile `root` (a Pipeline/MetaPipeline document or a ref to one) into a Plan.

    Raises SpecError with every problem found, each with what, where and how to fix it. With
    `check_only`, a reusable pipeline that needs inputs is checked with placeholders for them; the
    plan it returns then only serves to validate, not to run.
    """
    if isinstance(root, str):
        root = Ref.parse(root)
    doc = resolver.resolve(root) if isinstance(root, Ref) else root
    if isinstance(doc, Playbook):
        raise SpecError(
            Problem(
                f"{doc.ref} is a Playbook: only a Pipeline or MetaPipeline can be planned or run",
                str(doc.ref),
                "wrap it in a Pipeline with one step that uses it",
            )
        )
    launch = target.model_dump() if isinstance(target, Target) else target
    c = _Compiler(resolver, launch)
    label = f"{doc.kind.lower()}/{doc.metadata.name}"
    values, problems = c.schema(doc, label).apply(dict(params or {}), f"{label} > parameters")
    if problems:
        raise SpecError(problems)
    unbound = {n: None for n, p in doc.spec.inputs.items() if not p.optional}
    placeholders: dict[str, Binding | None] = {}
    if check_only:
        placeholders = {n: Binding("", n, p.type) for n, p in doc.spec.inputs.items()}
    elif unbound:
        raise SpecError(
            Problem(
                f"{label} needs inputs {', '.join(unbound)} and cannot run on its own",
                label,
                "run a pipeline that uses it and connects its inputs",
            )
        )
    pinned = str(doc.ref)
    outputs = c.graph(doc, "", values, placeholders, (pinned,), label, None)
    if c.problems:
        raise SpecError(list(dict.fromkeys(c.problems)))
    return Plan(
        root=pinned,
        parameters=values,
        steps=tuple(c.steps),
        outputs={k: v for k, v in outputs.items() if v is not None},
    )
