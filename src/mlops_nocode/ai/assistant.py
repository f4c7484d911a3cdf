"""The assistant's loop: ask the model for a spec, refuse what it must not write, validate the rest with
the compiler (and, for a playbook, run it once on samples), and send the located problems back for up
to ASSISTANT_MAX_REPAIRS repairs. Nothing is saved or run beyond that test run: saving is the caller's
separate, confirmed step."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops_nocode.ai.check import as_yaml, diff, next_version, validate
from mlops_nocode.ai.context import Context, catalogue_context
from mlops_nocode.ai.extract import documents
from mlops_nocode.ai.guard import Guarded, Mode, guard
from mlops_nocode.ai.prompts import messages, repair_prompt
from mlops_nocode.ai.settings import AssistantSettings
from mlops_nocode.ai.snapshot import Snapshot
from mlops_nocode.catalogue.base import Doc, Resolver
from mlops_nocode.compiler.check import Placement
from mlops_nocode.spec import Problem, SpecError, parse_document

log = logging.getLogger("mlops_nocode.ai")

Model = Callable[[list[dict[str, Any]]], str]
"""Messages in, the answer's text out (the LiteLLM client behind a route, or a stand-in)."""
Trier = Callable[[Guarded], dict[str, Any]]
"""Runs a written playbook once on its samples; returns what it made, SpecError when it failed."""
ANSWER_ECHO_BYTES = 16 * 1024  # a refused answer longer than this is not sent back to the model


@dataclass
class Result:
    """What the assistant wrote and what the platform thinks of it."""

    kind: Mode
    valid: bool
    yaml: str = ""
    spec: dict[str, Any] | None = None
    ref: str | None = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    diff: str = ""
    repairs: int = 0
    notes: list[str] = field(default_factory=list)
    tried: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        def plist(ps: Sequence[Problem]) -> list[dict[str, str]]:
            return [{"what": p.what, "where": p.where, "fix": p.fix} for p in ps]

        return {
            "kind": self.kind,
            "valid": self.valid,
            "ref": self.ref,
            "spec": self.spec,
            "yaml": self.yaml,
            "problems": plist(self.problems),
            "warnings": plist(self.warnings),
            "diff": self.diff,
            "repairs": self.repairs,
            "notes": self.notes,
            "tried": self.tried,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        def plist(items: Any) -> list[Problem]:
            return [Problem(str(p["what"]), str(p["where"]), str(p["fix"])) for p in items or []]

        return cls(
            data["kind"], bool(data["valid"]), data.get("yaml", ""), data.get("spec"), data.get("ref"),
            plist(data.get("problems")), plist(data.get("warnings")), data.get("diff", ""),
            int(data.get("repairs", 0)), list(data.get("notes", [])), data.get("tried"),
        )  # fmt: skip


@dataclass
class Assistant:
    """One assistant over a catalogue and a model."""

    resolver: Resolver
    model: Model
    settings: AssistantSettings = field(default_factory=AssistantSettings)
    placement: Placement | None = None
    trier: Trier | None = None
    stored: Callable[[Doc], str | None] | None = None
    redact: Callable[[str], str] = lambda text: text
    _contexts: dict[Mode, Context] = field(default_factory=dict)

    def context(self, resolver: Resolver | None = None) -> Context:
        """The catalogue's signatures (computed once per assistant)."""
        if "pipeline" not in self._contexts:
            self._contexts["pipeline"] = catalogue_context(
                resolver or Snapshot(self.resolver), self.settings.context_bytes
            )
        return self._contexts["pipeline"]

    def write(self, prompt: str, mode: Mode, history: Sequence[dict[str, Any]] = ()) -> Result:
        """Ask, check, repair: the first valid spec, or the last problems after the repairs allowed."""
        resolver = Snapshot(self.resolver)
        msgs = messages(mode, self.context(resolver).text, history, prompt)
        log.info("assistant prompt (%s): %s", mode, self.redact(prompt))
        problems: list[Problem] = []
        last_yaml = ""
        limit = self.settings.max_repairs
        for attempt in range(limit + 1):
            answer = self.model(msgs)
            log.info("assistant answer %d (%d bytes): %s", attempt, len(answer), self.redact(answer[:4000]))
            try:
                result = self.check(answer, mode, resolver)
                result.repairs = attempt
                return result
            except SpecError as e:
                problems = e.problems
                log.info("assistant answer %d refused: %s", attempt, self.redact(str(e))[:4000])
            if len(answer.encode("utf-8", "surrogatepass")) <= ANSWER_ECHO_BYTES:
                last_yaml = answer
                echo = answer
            else:
                echo = f"(an answer of {len(answer)} characters, not repeated here)"
            msgs += [
                {"role": "assistant", "content": echo},
                {"role": "user", "content": repair_prompt(problems)},
            ]
        return Result(mode, False, yaml=last_yaml, problems=problems, repairs=limit)

    def check(self, answer: str, mode: Mode, resolver: Resolver | None = None) -> Result:
        """One answer judged against `resolver` (default: the assistant's): SpecError with every located
        problem, or the valid result."""
        resolver = resolver or self.resolver
        g = guard(documents(answer, self.settings.max_answer_bytes), mode, resolver)
        notes: list[str] = []
        bumped = next_version(g.doc, resolver)
        if bumped is not None:
            notes.append(
                f"version {g.doc.metadata.version} of {g.doc.ref.kind}/{g.doc.metadata.name} exists or is "
                f"older than the catalogue's: written as {bumped} (versions are immutable)"
            )
            g.data = copy.deepcopy(g.data)
            g.data["metadata"]["version"] = bumped
            g.doc = parse_document(g.data, "answer")
        warnings = validate(g.doc, resolver, self.placement)
        tried = self.trier(g) if mode == "playbook" and self.trier is not None else None
        text = as_yaml(g.data)
        return Result(
            mode,
            True,
            yaml=text,
            spec=g.data,
            ref=str(g.doc.ref),
            warnings=warnings,
            diff=diff(g.doc, text, resolver, self.stored),
            notes=notes,
            tried=tried,
        )
