"""The one way the platform calls a model: through a route (routes.py), with the LiteLLM SDK, or through
the platform's LiteLLM proxy when one is configured (`via`). Retries with backoff on answers worth
retrying (429, 5xx, timeouts, connection errors), then the route's fallbacks in order. Keys come only
from the secrets the caller passes (a route names its secret); none is read from the environment."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_nocode.integrations.litellm.routes import ModelRoute, RouteError, get_route, load_routes

NO_KEY = "sk-no-key-configured"  # what a keyless route sends, so that LiteLLM never reads an env key


class ModelCallError(RuntimeError):
    """A model call that failed after its retries and fallbacks; `status` is the last HTTP status."""

    def __init__(self, message: str, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class LitellmMissing(RuntimeError):
    """The optional `litellm` package is not installed."""


@dataclass(frozen=True)
class ProxyAccess:
    """The platform's LiteLLM proxy: its base URL and the key a caller uses there."""

    url: str
    key: str


@dataclass
class Usage:
    """Tokens and cost of one call (cost None when neither the route nor LiteLLM knows the prices)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """As step metrics (tokens, and cost when known)."""
        out = {
            f"{prefix}prompt_tokens": float(self.prompt_tokens),
            f"{prefix}completion_tokens": float(self.completion_tokens),
            f"{prefix}total_tokens": float(self.total_tokens),
        }
        if self.cost_usd is not None:
            out[f"{prefix}cost_usd"] = self.cost_usd
        return out


@dataclass
class Answer:
    """A chat or text completion: the text, the route that answered, tokens and cost, attempts made."""

    text: str
    route: str
    usage: Usage
    attempts: int = 1
    failures: list[str] = field(default_factory=list)


@dataclass
class Embeddings:
    """One vector per input, in order."""

    vectors: list[list[float]]
    route: str
    usage: Usage
    attempts: int = 1


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: the shipped price map
    try:
        import litellm
    except ImportError:
        raise LitellmMissing(
            "calling a model needs the `litellm` package: pip install 'mlops-nocode[llm]'"
        ) from None
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


def preload() -> None:
    """Import LiteLLM now (seconds), e.g. while a service starts rather than on its first request;
    LitellmMissing when the `llm` extra is not installed."""
    _litellm()


def _target(route: ModelRoute, secrets: Mapping[str, str], via: ProxyAccess | None) -> dict[str, Any]:
    if via is not None:
        return {"model": f"litellm_proxy/{route.name}", "api_base": via.url, "api_key": via.key}
    key = NO_KEY
    if route.api_key_secret:
        if route.api_key_secret not in secrets:
            raise RouteError(
                f"model route {route.name!r} needs secret {route.api_key_secret!r}, which is not set: "
                f"store it (PUT /api/v1/secrets/{route.api_key_secret}, or export it for `mlops run`)"
            )
        key = secrets[route.api_key_secret]
    kw: dict[str, Any] = {"model": route.model, "api_key": key}
    if route.api_base:
        kw["api_base"] = route.api_base
    return kw


def _cost(litellm: Any, route: ModelRoute, resp: Any, usage: Usage) -> float | None:
    if route.input_cost_per_token is not None or route.output_cost_per_token is not None:
        return (route.input_cost_per_token or 0.0) * usage.prompt_tokens + (
            route.output_cost_per_token or 0.0
        ) * usage.completion_tokens
    try:
        return float(litellm.completion_cost(completion_response=resp, model=route.model))
    except Exception:
        return None


def _usage(resp: Any) -> Usage:
    u = getattr(resp, "usage", None)
    if u is None:
        return Usage()
    get = u.get if isinstance(u, dict) else lambda k, d=0: getattr(u, k, d)
    return Usage(int(get("prompt_tokens", 0) or 0), int(get("completion_tokens", 0) or 0))


def _priced(route: ModelRoute, resp: Any) -> Usage:
    usage = _usage(resp)
    usage.cost_usd = _cost(_litellm(), route, resp, usage)
    return usage


_ONCE = {"num_retries": 0, "max_retries": 0}  # retries and fallbacks are `call`'s, not LiteLLM's or the SDK's


def _given(**options: Any) -> dict[str, Any]:
    """The options a caller set (LiteLLM's defaults stand for the others)."""
    return {k: v for k, v in options.items() if v is not None}


def _status(exc: Exception) -> int | None:
    status = getattr(exc, "status_code", None)
    return int(status) if isinstance(status, int) else None


def _retryable(exc: Exception) -> bool:
    status = _status(exc)
    if status is not None:
        return status == 429 or status >= 500 or status == 408
    name = type(exc).__name__
    return name in {"Timeout", "APIConnectionError", "ServiceUnavailableError", "InternalServerError"}


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def call(
    home: Path | None,
    route_name: str,
    do: Callable[[Any, ModelRoute, dict[str, Any]], Any],
    *,
    kind: str,
    secrets: Mapping[str, str],
    via: ProxyAccess | None = None,
    retries: int = 2,
    backoff: float = 0.5,
    fallbacks: Sequence[str] = (),
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[Any, ModelRoute, int, list[str]]:
    """Run `do(litellm, route, target_kwargs)` against `route_name`, retrying what is worth retrying
    (`retries` more times, backoff doubling) then each fallback route in turn (the route's own fallbacks
    after `fallbacks`). Returns (response, route that answered, attempts, failures seen)."""
    litellm = _litellm()
    routes = load_routes(home)
    first = get_route(home, route_name, kind, routes)
    chain = [first.name, *fallbacks, *(f for f in first.fallbacks if f not in fallbacks)]
    failures: list[str] = []
    attempts = 0
    last: Exception | None = None
    for name in chain:
        route = first if name == first.name else get_route(home, name, kind, routes)
        target = _target(route, secrets, via)
        for attempt in range(retries + 1):
            if should_stop():
                raise ModelCallError("stopped")
            attempts += 1
            try:
                return do(litellm, route, target), route, attempts, failures
            except (RouteError, LitellmMissing):
                raise
            except Exception as exc:
                last = exc
                failures.append(f"{route.name}: {_one_line(exc)}")
                if not _retryable(exc):
                    break
                if attempt < retries:
                    time.sleep(backoff * 2**attempt)
    assert last is not None
    raise ModelCallError(
        f"the model call failed after {attempts} attempt(s) on {', '.join(chain)}: {failures[-1]}",
        status=_status(last),
        retryable=_retryable(last),
    )


def chat(
    home: Path | None,
    route: str,
    messages: list[dict[str, Any]],
    *,
    secrets: Mapping[str, str],
    via: ProxyAccess | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    response_format: dict[str, Any] | None = None,
    timeout: float = 60.0,
    retries: int = 2,
    backoff: float = 0.5,
    fallbacks: Sequence[str] = (),
    should_stop: Callable[[], bool] = lambda: False,
) -> Answer:
    """A chat completion through `route`."""

    def do(litellm: Any, r: ModelRoute, target: dict[str, Any]) -> Any:
        extra = _given(temperature=temperature, max_tokens=max_tokens, response_format=response_format)
        return litellm.completion(messages=messages, **_ONCE, timeout=timeout, **target, **extra)

    resp, r, attempts, failures = call(
        home, route, do, kind="chat", secrets=secrets, via=via, retries=retries,
        backoff=backoff, fallbacks=fallbacks, should_stop=should_stop,
    )  # fmt: skip
    return Answer(resp.choices[0].message.content or "", r.name, _priced(r, resp), attempts, failures)


def complete(
    home: Path | None,
    route: str,
    prompt: str,
    *,
    secrets: Mapping[str, str],
    via: ProxyAccess | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    timeout: float = 60.0,
    retries: int = 2,
    backoff: float = 0.5,
    fallbacks: Sequence[str] = (),
    should_stop: Callable[[], bool] = lambda: False,
) -> Answer:
    """A text completion through `route` (a `completion` route)."""

    def do(litellm: Any, r: ModelRoute, target: dict[str, Any]) -> Any:
        extra = _given(temperature=temperature, max_tokens=max_tokens)
        return litellm.text_completion(prompt=prompt, **_ONCE, timeout=timeout, **target, **extra)

    resp, r, attempts, failures = call(
        home, route, do, kind="completion", secrets=secrets, via=via, retries=retries,
        backoff=backoff, fallbacks=fallbacks, should_stop=should_stop,
    )  # fmt: skip
    return Answer(resp.choices[0].text or "", r.name, _priced(r, resp), attempts, failures)


def embed(
    home: Path | None,
    route: str,
    texts: Sequence[str],
    *,
    secrets: Mapping[str, str],
    via: ProxyAccess | None = None,
    timeout: float = 60.0,
    retries: int = 2,
    backoff: float = 0.5,
    should_stop: Callable[[], bool] = lambda: False,
) -> Embeddings:
    """Embeddings of `texts` through `route` (an `embedding` route), one vector per text, in order."""

    def do(litellm: Any, r: ModelRoute, target: dict[str, Any]) -> Any:
        return litellm.embedding(input=list(texts), **_ONCE, timeout=timeout, **target)

    resp, r, attempts, _ = call(
        home,
        route,
        do,
        kind="embedding",
        secrets=secrets,
        via=via,
        retries=retries,
        backoff=backoff,
        should_stop=should_stop,
    )
    rows = sorted(resp.data, key=lambda d: d["index"] if isinstance(d, dict) else d.index)
    vectors = [list(d["embedding"] if isinstance(d, dict) else d.embedding) for d in rows]
    return Embeddings(vectors, r.name, _priced(r, resp), attempts)


def supports_json_schema(route: ModelRoute) -> bool:
    """Whether `route` takes response_format json_schema: its own setting, else LiteLLM's model map."""
    if route.supports_json_schema is not None:
        return route.supports_json_schema
    try:
        return bool(_litellm().supports_response_schema(model=route.model))
    except LitellmMissing:
        raise
    except Exception:
        return False
