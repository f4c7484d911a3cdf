"""`runtime: litellm`: a chat completion, a text completion or embeddings through a model route, made
from a thread of the Runner with the platform's one model client (integrations/litellm/client.py),
through the platform's LiteLLM proxy when one is configured (integrations/litellm/access.py).

Keys: a route names the secret holding its provider key; the Runner resolves it from its environment
before the attempt starts (`attempt_secrets`, the same source as step secrets) and redacts it like any
step secret. Each model call runs in a worker thread the attempt waits on: a cancel or a timeout stops
waiting at once, and the abandoned call ends by itself within `litellm.timeout`. Only the attempt's own
thread writes the log and the metric events (never after the attempt ended).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from pydantic import ValidationError

from mlops_nocode.runtime.attempt import Attempt, StepFailure
from mlops_nocode.runtime.executors.base import ExecContext
from mlops_nocode.runtime.executors.jobs import StepThread, ThreadExecutor
from mlops_nocode.runtime.executors.litellm_prompt import (
    LlmStepSettings,
    Values,
    embed_texts,
    number,
    numbers,
    parse_answer,
    route_name,
    schema_hint,
)
from mlops_nocode.runtime.redaction import redactor_for
from mlops_nocode.runtime.secrets import value_problem
from mlops_nocode.spec.llm import LitellmRuntime

T = TypeVar("T")


@dataclass
class Prepared:
    """One attempt's call: the section, its route chain and how routes are reached."""

    section: LitellmRuntime
    values: Values
    route: str
    fallbacks: list[str]
    via: Any  # ProxyAccess | None
    keys: dict[str, str] = field(default_factory=dict)

    def mask(self, text: str) -> str:
        """`text` without the keys (a provider's error or a model's answer may echo one): they never
        reach the log file, even before the Runner redacts it."""
        return redactor_for(self.keys.values()).text(text) if self.keys else text


@dataclass
class Totals:
    """Tokens and cost summed over an attempt's calls."""

    calls: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    def add(self, usage_metrics: dict[str, float]) -> None:
        self.calls += 1
        for k, v in usage_metrics.items():
            self.metrics[k] = self.metrics.get(k, 0.0) + v


class LitellmExecutor(ThreadExecutor):
    """Runs litellm steps on the local target (routes and keys live with the gateway's MLOPS_HOME)."""

    runtime: ClassVar[str] = "litellm"
    providers = frozenset({"local"})

    def __init__(self, ctx: ExecContext) -> None:
        super().__init__(ctx)
        self._prepared: dict[str, Prepared] = {}
        self._settings: LlmStepSettings | None = None

    def settings(self) -> LlmStepSettings:
        if self._settings is None:
            try:
                self._settings = LlmStepSettings()
            except ValidationError as e:
                err = e.errors()[0]
                name = ".".join(str(p) for p in err["loc"]).upper()
                raise StepFailure(
                    f"invalid settings for litellm steps: LLM_STEP_{name}: {err['msg']}"
                ) from None
        return self._settings

    def attempt_secrets(self, a: Attempt) -> dict[str, str]:
        """The values this attempt uses itself, by name (the Runner redacts them): the provider keys of
        its routes, or the key of the proxy it goes through. StepFailure for a missing route or key."""
        from mlops_nocode.integrations.litellm.access import proxy_access
        from mlops_nocode.integrations.litellm.routes import RouteError, get_route, load_routes

        try:
            section = LitellmRuntime.model_validate(a.step.config or {})
        except ValidationError as e:
            raise StepFailure(f"the step's litellm section is not valid: {e.errors()[0]['msg']}") from None
        values = Values(a, self.settings())
        route = route_name(values, section.model, "model")
        fallbacks = [route_name(values, f, f"fallbacks[{i}]") for i, f in enumerate(section.fallbacks)]
        via = proxy_access(self.ctx.home, self.ctx.environ)
        p = Prepared(section, values, route, fallbacks, via)
        kind = section.mode
        try:
            known = load_routes(self.ctx.home)
            first = get_route(self.ctx.home, route, kind, known)
            names = [*fallbacks, *(n for n in first.fallbacks if n not in fallbacks)]
            chain = [first, *(get_route(self.ctx.home, n, kind, known) for n in names)]
        except RouteError as e:
            raise StepFailure(str(e)) from None
        if via is not None:
            p.keys = {"LITELLM_PROXY_KEY": via.key}
        else:
            for r in chain:
                name = r.api_key_secret
                if name is None or name in p.keys:
                    continue
                if name not in self.ctx.environ:
                    raise StepFailure(
                        f"model route {r.name!r} needs secret {name!r}, which is not set: export {name}=... "
                        f"before `mlops run`, or, for runs of the gateway, store it with PUT "
                        f"/api/v1/secrets/{name}"
                    )
                if problem := value_problem(name, self.ctx.environ[name], short=False):
                    raise StepFailure(f"{problem[0]}: {problem[1]}")
                p.keys[name] = self.ctx.environ[name]
        self._prepared[a.job] = p
        return dict(p.keys)

    def body(self, job: StepThread) -> dict[str, Any]:
        p = self._prepared.pop(job.a.job, None)
        if p is None:  # a Runner that did not ask for the secrets first
            self.attempt_secrets(job.a)
            p = self._prepared.pop(job.a.job)
        s = p.section
        where = f"through the LiteLLM proxy at {p.via.url}" if p.via is not None else "directly"
        fall = f" (fallbacks: {', '.join(p.fallbacks)})" if p.fallbacks else ""
        job.log(f"{s.mode} on model route {p.route!r}{fall}, {where}")
        totals = Totals()
        if s.mode == "embedding":
            return self._embedding(job, p, totals)
        return self._answer(job, p, totals)

    def _answer(self, job: StepThread, p: Prepared, totals: Totals) -> dict[str, Any]:
        from mlops_nocode.integrations.litellm import client

        s, v = p.section, p.values
        temperature = number(v, s.temperature, "temperature", integer=False)
        max_tokens = number(v, s.max_tokens, "max_tokens", integer=True)
        wants_json = s.json_schema is not None or "json" in s.outputs.values()
        if s.mode == "completion":
            prompt = v.text(s.prompt or "")

            def ask(msgs: list[dict[str, Any]]) -> client.Answer:
                return client.complete(
                    self.ctx.home, p.route, prompt, secrets=p.keys, via=p.via, temperature=temperature,
                    max_tokens=max_tokens, timeout=s.timeout, retries=s.retries, backoff=s.backoff,
                    fallbacks=p.fallbacks, should_stop=lambda: job.stopping,
                )  # fmt: skip

            messages: list[dict[str, Any]] = []
            response_format = None
        else:
            messages = [{"role": m.role, "content": v.text(m.content)} for m in s.messages or []]
            response_format = None
            if wants_json:
                route = self._call(job, p, lambda: _route(self.ctx.home, p.route))
                if s.json_schema is not None and self._call(
                    job, p, lambda: client.supports_json_schema(route)
                ):
                    schema = {"name": "answer", "schema": s.json_schema}
                    response_format = {"type": "json_schema", "json_schema": schema}
                    job.log("   the answer is constrained by json_schema (natively)")
                else:
                    response_format = {"type": "json_object"}
                    messages.insert(0, {"role": "system", "content": schema_hint(s.json_schema)})
                    job.log("   the answer is asked as JSON (the schema is in the system message)")

            def ask(msgs: list[dict[str, Any]]) -> client.Answer:
                return client.chat(
                    self.ctx.home, p.route, msgs, secrets=p.keys, via=p.via, temperature=temperature,
                    max_tokens=max_tokens, response_format=response_format, timeout=s.timeout,
                    retries=s.retries, backoff=s.backoff, fallbacks=p.fallbacks,
                    should_stop=lambda: job.stopping,
                )  # fmt: skip

        tries = s.retries + 1 if wants_json else 1
        for n in range(1, tries + 1):
            answer = self._call(job, p, functools.partial(ask, messages))
            self._record(
                job, p, totals, answer.usage.metrics(), answer.route, answer.attempts, answer.failures
            )
            if not wants_json:
                return self._outputs(p, answer.text, None, totals)
            parsed, why = parse_answer(answer.text, s.json_schema)
            if why is None:
                return self._outputs(p, answer.text, parsed, totals)
            job.log(p.mask(f"   the answer is {why}; it starts: {answer.text[:300]!r}"))
            if n < tries and s.mode == "chat":
                job.log(f"   asking again with the reason (repair {n}/{tries - 1})")
                messages = [
                    *messages,
                    {"role": "assistant", "content": answer.text},
                    {"role": "user", "content": f"That answer is {why}. Answer again with the JSON only."},
                ]
            elif n < tries:
                job.log(f"   asking again ({n + 1}/{tries})")
        raise StepFailure(
            p.mask(f"the model's answer is {why}")
            + f" (after {tries} tr{'ies' if tries > 1 else 'y'}; the answers are in the step's log): make "
            "the prompt ask for the schema, pick a route that supports json_schema, or raise litellm.retries"
        )

    def _embedding(self, job: StepThread, p: Prepared, totals: Totals) -> dict[str, Any]:
        from mlops_nocode.integrations.litellm import client

        s = p.section
        texts = embed_texts(p.values, s.input or "")
        batch = self.settings().embed_batch
        vectors: list[list[float]] = []
        for start in range(0, len(texts), batch):
            part = texts[start : start + batch]
            call = functools.partial(
                client.embed, self.ctx.home, p.route, part, secrets=p.keys, via=p.via, timeout=s.timeout,
                retries=s.retries, backoff=s.backoff, should_stop=lambda: job.stopping,
            )  # fmt: skip
            got = self._call(job, p, call)
            if len(got.vectors) != len(part):
                raise StepFailure(
                    f"route {got.route!r} gave {len(got.vectors)} vectors for {len(part)} texts"
                )
            vectors.extend(got.vectors)
            self._record(job, p, totals, got.usage.metrics(), got.route, got.attempts, [])
        job.log(f"   {len(vectors)} vectors of {len(vectors[0])} dimensions")
        out: dict[str, Any] = {}
        for name, what in s.outputs.items():
            if what == "metrics":
                out[name] = dict(totals.metrics)
            elif job.a.step.outputs.get(name) in ("file", "dataset"):
                out[name] = _write_vectors(job, name, texts, vectors, job.a.step.outputs[name])
            else:
                out[name] = vectors
        return out

    def _outputs(self, p: Prepared, text: str, parsed: Any, totals: Totals) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, what in p.section.outputs.items():
            if what == "text":
                out[name] = text
            elif what == "json":
                out[name] = parsed
            elif what == "metrics":
                out[name] = {**numbers(parsed), **totals.metrics}
        return out

    def _record(
        self,
        job: StepThread,
        p: Prepared,
        totals: Totals,
        usage: dict[str, float],
        route: str,
        attempts: int,
        failures: list[str],
    ) -> None:
        """The call's log lines and per-call metric events; its usage added to the totals."""
        totals.add(usage)
        for failure in failures:
            job.log(p.mask(f"   failed: {failure}"))
        used = "" if route == p.route else " (a fallback)"
        tokens = int(usage.get("total_tokens", 0))
        cost = f", ${usage['cost_usd']:.6f}" if "cost_usd" in usage else ""
        what = f"route {route!r}{used} answered after {attempts} attempt(s)"
        job.log(f"   call {totals.calls}: {what}, {tokens} tokens{cost}")
        labels = {"call": str(totals.calls), "route": route}
        with open(job.a.events, "a", encoding="utf-8") as f:
            for k, v in usage.items():
                f.write(json.dumps({"type": "metric", "name": k, "value": v, "labels": labels}) + "\n")

    def _call(self, job: StepThread, p: Prepared, fn: Callable[[], T]) -> T:
        """`fn()` in a worker thread, waited for until it ends or the attempt is stopped; model errors
        become StepFailure with their reason."""
        from mlops_nocode.integrations.litellm.client import LitellmMissing, ModelCallError
        from mlops_nocode.integrations.litellm.routes import RouteError

        box: list[Any] = []
        done = threading.Event()

        def work() -> None:
            try:
                box.append(("ok", fn()))
            except BaseException as e:  # handed to the attempt's thread
                box.append(("error", e))
            finally:
                done.set()

        threading.Thread(target=work, name=f"llm call {job.a.job}", daemon=True).start()
        while not done.wait(0.05):
            job.check()
        job.check()
        kind, value = box[0]
        if kind == "ok":
            return value  # type: ignore[no-any-return]
        if isinstance(value, ModelCallError | RouteError | LitellmMissing):
            raise StepFailure(p.mask(str(value))) from None
        raise value


def _route(home: Any, name: str) -> Any:
    from mlops_nocode.integrations.litellm.routes import get_route

    return get_route(home, name)


def _write_vectors(
    job: StepThread, name: str, texts: list[str], vectors: list[list[float]], kind: str
) -> str:
    """Embeddings as a file output: a dataset (Parquet: text, embedding) or a JSON file."""
    if kind == "dataset":
        import pandas as pd

        rel = f"{name}.parquet"
        pd.DataFrame({"text": texts, "embedding": vectors}).to_parquet(job.a.out_dir / rel, index=False)
        return rel
    rel = f"{name}.json"
    (job.a.out_dir / rel).write_text(json.dumps({"texts": texts, "vectors": vectors}), encoding="utf-8")
    return rel


__all__ = ["LitellmExecutor", "LlmStepSettings"]
