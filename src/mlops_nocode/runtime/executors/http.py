"""`runtime: http`: one HTTP request per attempt, its response body the step's output (docs/STEPS.md).

The request is made from a thread of the Runner (executors/jobs.py) with httpx, through connections that
go only where the webhook host policy allows (http_net.py). Values reach the request through one pass of
`${{ params|inputs|secrets.X }}` substitution (http_request.py); header values are never logged, and the
Runner redacts secret values from the log, the events and the error.
"""

from __future__ import annotations

import email.utils
import ssl
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode import __version__
from mlops_nocode.runtime.attempt import Attempt, StepFailure
from mlops_nocode.runtime.executors.base import ALL_PROVIDERS, ExecContext
from mlops_nocode.runtime.executors.http_request import Prepared, prepare, shown
from mlops_nocode.runtime.executors.jobs import StepThread, ThreadExecutor

if TYPE_CHECKING:
    import httpx

    from mlops_nocode.runtime.executors.http_net import GuardedBackend

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods tried again after a timeout or a dropped connection (the server may have acted on the others)."""
MAX_REDIRECTS = 5


class HttpStepSettings(BaseSettings):
    """Limits of http steps, read from the environment of the Runner (`HTTP_STEP_*`)."""

    model_config = SettingsConfigDict(env_prefix="HTTP_STEP_", case_sensitive=False, extra="ignore")

    retry_wait_max: float = Field(
        300.0,
        ge=0,
        le=86400,
        description="seconds: the longest wait before a retry; a Retry-After asking for more fails the step",
    )
    ca_bundle: Path | None = Field(
        None, description="a PEM file of certificate authorities trusted on top of the public ones (certifi)"
    )


class HttpExecutor(ThreadExecutor):
    """Runs http steps on any target (the Runner on a remote machine makes the request itself)."""

    runtime: ClassVar[str] = "http"
    providers = ALL_PROVIDERS

    def __init__(self, ctx: ExecContext) -> None:
        super().__init__(ctx)
        self.backends: dict[str, GuardedBackend] = {}
        self._lock = threading.Lock()
        self._setup: tuple[HttpStepSettings, Any, ssl.SSLContext] | None = None

    def cancel(self, a: Attempt, sig: int) -> None:
        super().cancel(a, sig)
        backend = self.backends.get(a.job)
        if backend is not None:
            backend.interrupt()

    def close(self) -> None:
        for backend in list(self.backends.values()):
            backend.interrupt()
        super().close()

    def setup(self) -> tuple[HttpStepSettings, Any, ssl.SSLContext]:
        """The settings, host policy and TLS context of the run's http steps, made once (loading the
        certificate authorities takes tens of milliseconds); StepFailure when a setting is bad."""
        from mlops_nocode.runtime.executors.http_net import tls_context

        with self._lock:
            if self._setup is None:
                try:
                    settings = HttpStepSettings()
                    policy = _policy()
                except ValidationError as e:
                    raise StepFailure(f"invalid settings for http steps: {_first_error(e)}") from None
                try:
                    context = tls_context(settings.ca_bundle)
                except (OSError, ssl.SSLError) as e:
                    raise StepFailure(
                        f"HTTP_STEP_CA_BUNDLE={settings.ca_bundle}: cannot load it as PEM certificates "
                        f"({e}): fix the path"
                    ) from None
                self._setup = (settings, policy, context)
            return self._setup

    def body(self, job: StepThread) -> dict[str, Any]:
        from mlops_nocode.runtime.executors.http_net import Interrupted, guarded_client

        settings, policy, context = self.setup()
        req = prepare(job.a)
        client, backend = guarded_client(policy, req.timeout, f"mlops-nocode/{__version__}", context)
        self.backends[job.a.job] = backend
        if job.stopping:
            backend.interrupt()
        try:
            with client:
                return _call(job, client, req, settings)
        except Interrupted:
            job.check()
            raise StepFailure("the request was interrupted") from None
        finally:
            self.backends.pop(job.a.job, None)
            if job.stopping:
                job.check()


def _policy() -> Any:
    from mlops_nocode.hosts import HostPolicy
    from mlops_nocode.settings import Settings

    return replace(HostPolicy.from_settings(Settings()), purpose="http step request")


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"


def _call(job: StepThread, client: httpx.Client, req: Prepared, settings: HttpStepSettings) -> dict[str, Any]:
    """Send the request, with retries and redirects as the section says; the step's outputs."""
    import httpx

    from mlops_nocode.hosts import HostRefused

    tries = req.retries + 1
    for n in range(1, tries + 1):
        job.check()
        deadline = time.monotonic() + req.timeout
        job.log(f"{req.method} {req.shown} (try {n}/{tries})")
        try:
            response = _send(job, client, req, deadline)
        except HostRefused as e:
            raise StepFailure(f"{req.method} {req.shown} refused: {e}") from None
        except (httpx.TimeoutException, httpx.TransportError) as e:
            job.check()
            what = _transport_error(e, req)
            retry = isinstance(e, httpx.ConnectError | httpx.ConnectTimeout) or req.method in IDEMPOTENT
            if not retry or n == tries:
                raise StepFailure(what) from None
            _pause(job, req.backoff * 2 ** (n - 1), None, settings, f"{what}: ")
            continue
        try:
            outputs = _answer(job, response, req, deadline, last=n == tries)
        finally:
            response.close()
        if outputs is not None:
            return outputs
        retry_after = response.headers.get("retry-after")
        why = f"{req.method} {req.shown} answered {response.status_code}: "
        _pause(job, req.backoff * 2 ** (n - 1), retry_after, settings, why)
    raise AssertionError("unreachable")  # pragma: no cover


def _answer(
    job: StepThread, response: httpx.Response, req: Prepared, deadline: float, last: bool
) -> dict[str, Any] | None:
    """The outputs from an expected answer; None for one worth another try; StepFailure otherwise."""
    status = response.status_code
    job.log(f"<- {status} {response.reason_phrase}")
    if status in req.expect or (not req.expect and 200 <= status < 300):
        return _outputs(job, response, req, deadline)
    what = f"{req.method} {req.shown} answered {status} {response.reason_phrase}"
    if response.has_redirect_location:
        nxt = response.next_request
        where = shown(str(nxt.url)) if nxt is not None else "an unreadable Location"
        raise StepFailure(
            f"{what} (a redirect to {where}): redirects are not followed; set http.follow_redirects: "
            "true, or call the final URL"
        )
    if status in RETRY_STATUS and not last:
        return None
    _log_body(job, response)
    expected = ", ".join(map(str, req.expect)) or "200-299"
    raise StepFailure(f"{what} (expected {expected}; the start of the answer is in the log)")


def _send(job: StepThread, client: httpx.Client, req: Prepared, deadline: float) -> httpx.Response:
    """One try: the request and the redirects it may follow; the final response, opened as a stream."""
    request = req.build(client)
    for _hop in range(MAX_REDIRECTS + 1):
        response = client.send(request, stream=True)
        nxt = response.next_request
        if not req.follow_redirects or not response.has_redirect_location or nxt is None:
            return response
        response.close()
        job.check()
        if time.monotonic() > deadline:
            raise StepFailure(f"{req.method} {req.shown}: redirects took longer than {req.timeout:g} s")
        if nxt.url.scheme not in ("http", "https"):
            raise StepFailure(f"a redirect leads to {nxt.url.scheme}://: only http and https are followed")
        if (nxt.url.scheme, nxt.url.host, nxt.url.port) != (
            request.url.scheme,
            request.url.host,
            request.url.port,
        ):
            for name in req.headers:  # the step's own headers (they may carry secrets) stay with their origin
                nxt.headers.pop(name, None)
        job.log(f"-> redirected ({response.status_code}) to {shown(str(nxt.url))}")
        request = nxt
    raise StepFailure(f"{req.method} {req.shown}: more than {MAX_REDIRECTS} redirects")


def _pause(
    job: StepThread, delay: float, retry_after: str | None, settings: HttpStepSettings, why: str
) -> None:
    """Wait before the next try: Retry-After when the server gives one, else `delay` (capped)."""
    cap = settings.retry_wait_max
    asked = _retry_after(retry_after) if retry_after else None
    if asked is not None and asked > cap:
        raise StepFailure(
            f"{why}the server asks to wait {asked:g} s before trying again (Retry-After), more than "
            f"HTTP_STEP_RETRY_WAIT_MAX ({cap:g} s): raise it, or run the step later"
        )
    wait = min(cap, asked if asked is not None else delay)
    job.log(f"   trying again in {wait:g} s{' (Retry-After)' if asked is not None else ''}")
    job.wait(wait)


def _retry_after(value: str) -> float | None:
    """Seconds a Retry-After header asks for (a number of seconds or an HTTP date); None if unreadable."""
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _transport_error(e: Exception, req: Prepared) -> str:
    import httpx

    kind = "timed out" if isinstance(e, httpx.TimeoutException) else "failed"
    detail = str(e) or type(e).__name__
    return f"{req.method} {req.shown} {kind} ({detail[:200]})"


def _log_body(job: StepThread, response: httpx.Response) -> None:
    """The start of an unexpected answer, in the log (redacted there like any log line)."""
    head = b""
    for chunk in response.iter_raw():
        head += chunk
        if len(head) >= 2048:
            break
    if head:
        job.log("   " + head[:2048].decode("utf-8", errors="replace"))


def _outputs(job: StepThread, response: httpx.Response, req: Prepared, deadline: float) -> dict[str, Any]:
    from mlops_nocode.runtime.executors.http_body import read_body

    out: dict[str, Any] = {}
    if req.status_output:
        out[req.status_output] = response.status_code
    if req.output:
        out[req.output] = read_body(job, response, req.output, deadline)
    else:
        response.close()
    return out


__all__ = ["HttpExecutor", "HttpStepSettings"]
