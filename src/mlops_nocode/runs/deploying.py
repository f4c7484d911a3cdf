"""The lifecycle of a run's remote deployments: render → provision (in MLOPS_HOME/deployments/<run>/<name>/,
its own state) → launch the Runner (`mlops execute plan.json --deployment NAME --report-to URL`, with a
token of this deployment in MLOPS_RUN_TOKEN) → follow → teardown (unless the run is kept), and `destroy`
of whatever a run recorded as existing, at any time.

Every deployment of a run starts at once (provisioning takes minutes; it overlaps the steps upstream);
a Runner waits, step by step, for inputs made on other deployments (runtime.handoff). A deployment that
fails to provision, or whose instance is lost, fails its steps in the shared results, so the Runners
waiting for them skip what depended on them, and the run fails with the reason.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlops_nocode.compiler.plan import Plan
from mlops_nocode.providers.base import Deployment, LaunchSpec, Provider, ProviderError, Provisioned
from mlops_nocode.runs.deployrecords import ENDED, DeploymentRecords
from mlops_nocode.runs.flow import LOCAL, deployments, driven_here, provider_for
from mlops_nocode.runtime.handoff import StepResults

log = logging.getLogger("mlops_nocode.deploying")
EXIT_GRACE = 10.0  # seconds a Runner that exited has to get its end recorded


def _why(e: ProviderError) -> str:
    return f"{e.what} ({e.where}; {e.fix})"


class RemoteDeployments:
    """The remote deployments of one claimed run, brought up on threads and followed until they end."""

    def __init__(
        self,
        records: DeploymentRecords,
        home: Path,
        run_id: str,
        plan: Plan,
        results: StepResults,
        token_for: Callable[[str], str],
        report_url: str,
        env: Mapping[str, str],
        poll: float = 2.0,
    ) -> None:
        self.records, self.home, self.run_id, self.plan = records, home, run_id, plan
        self.results, self.token_for, self.report_url, self.env, self.poll = (
            results,
            token_for,
            report_url,
            dict(env),
            poll,
        )
        every = deployments(plan, run_id)
        self.remote = [d for d in every if not driven_here(d.provider, d.options)]
        # this worker's part: the local and the ray (driver mode) deployments, run by its Runner
        self.here = tuple(d.name for d in every if driven_here(d.provider, d.options)) or (LOCAL,)
        self.failures: list[str] = []
        self._up: dict[str, tuple[Provider, Provisioned]] = {}
        self._ended: dict[str, str] = {}  # name -> succeeded / failed / cancelled
        self._exited_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._done = threading.Event()  # every deployment ended, or the run stops following them
        self._follower = threading.Thread(target=self._follow_loop, name=f"follow-{run_id}", daemon=True)

    def start(self) -> None:
        """Bring every remote deployment up, each on its own thread (after destroying what an earlier
        attempt of the run left: its worker died; no orphans)."""
        destroy(self.records, self.run_id, self.env)
        for d in self.remote:
            self.records.record(self.run_id, d.name, d.provider, "rendered", provisioned=None, details=None)
            t = threading.Thread(target=self._bring_up, args=(d,), name=f"deploy-{d.name}", daemon=True)
            self._threads.append(t)
            t.start()
        self._follower.start()

    def _bring_up(self, d: Deployment) -> None:
        provider = provider_for(d.provider)
        if provider is None:
            self._failed(d, f"target provider {d.provider!r} is not available on this worker")
            return
        workdir = self.home / "deployments" / self.run_id / d.name
        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            bundle = provider.render(d)
            self.records.record(
                self.run_id, d.name, d.provider, "provisioning", price_per_hour=bundle.price_per_hour
            )
            provisioned = provider.provision(bundle, workdir, self.env)
        except Exception as e:  # a provider's bug too: the run must end, and leave nothing behind
            created = e.created if isinstance(e, ProviderError) else ()
            why = _why(e) if isinstance(e, ProviderError) else f"internal error: {type(e).__name__}: {e}"
            if not isinstance(e, ProviderError):
                log.exception("run %s: provisioning %s failed", self.run_id, d.name)
            leftover = Provisioned(d.name, d.provider, tuple({"name": c} for c in created), str(workdir))
            self._teardown(provider, leftover)
            self._failed(d, f"provisioning failed: {why}", status_="destroyed")
            return
        self.records.record(self.run_id, d.name, d.provider, "running", provisioned=provisioned.to_json())
        with self._lock:
            self._up[d.name] = (provider, provisioned)
        spec = LaunchSpec(
            self.plan.to_text(), self.report_url, tuple(s.id for s in d.steps), ("MLOPS_RUN_TOKEN",)
        )
        try:
            provider.launch(provisioned, spec, {**self.env, "MLOPS_RUN_TOKEN": self.token_for(d.name)})
        except Exception as e:
            why = _why(e) if isinstance(e, ProviderError) else f"internal error: {type(e).__name__}: {e}"
            self._failed(d, f"the Runner could not be started: {why}")

    def _failed(self, d: Deployment, why: str, status_: str = "failed") -> None:
        """A deployment that will not run its steps: recorded, and its steps failed for the others."""
        log.warning("run %s, deployment %s: %s", self.run_id, d.name, why)
        with self._lock:
            self._ended[d.name] = "failed"
            self.failures.append(f"deployment {d.name} ({d.provider}): {why}")
        self.records.record(self.run_id, d.name, d.provider, status_, details=why)
        for s in d.steps:
            if self.results.get(self.run_id, s.id) is None:
                record = {"status": "failed", "outputs": {}, "error": why, "deployment": d.name}
                self.results.put(self.run_id, s.id, record)

    def follow(self) -> bool:
        """One look at every deployment still running; True when all have ended."""
        rows = {r["name"]: r for r in self.records.of(self.run_id)}
        for d in self.remote:
            if d.name in self._ended:
                continue
            row = rows.get(d.name, {})
            if row.get("status") in ENDED:
                self._ended[d.name] = row["status"]
                if row["status"] == "failed":
                    self.failures.append(f"deployment {d.name}: {row.get('details') or 'failed'}")
                continue
            with self._lock:
                up = self._up.get(d.name)
            if up is None:
                continue
            provider, provisioned = up
            try:
                state = provider.status(provisioned, self.env)
            except Exception as e:
                why = _why(e) if isinstance(e, ProviderError) else f"{type(e).__name__}: {e}"
                log.warning("run %s: status of deployment %s unknown: %s", self.run_id, d.name, why)
                continue
            if state == "lost":
                self._teardown(provider, provisioned)
                self._failed(d, f"its instance was lost while it ran ({d.provider} says lost)", "destroyed")
            elif state in ("exited", "destroyed"):
                first = self._exited_at.setdefault(d.name, time.monotonic())
                if time.monotonic() - first > EXIT_GRACE:
                    self._failed(d, "its Runner exited without reporting its end")
        return all(d.name in self._ended for d in self.remote)

    def _follow_loop(self) -> None:
        """Follow (on its own thread, while this worker's Runner runs) until every deployment ended: a
        lost instance is seen, and its steps failed for the Runners waiting for them, at once."""
        while not self._done.is_set():
            try:
                if self.follow():
                    break
            except Exception:
                log.exception("run %s: cannot follow its deployments", self.run_id)
            self._done.wait(self.poll)
        self._done.set()

    def wait(self, stop: Callable[[], bool]) -> None:
        """Until every deployment has ended, or `stop()` (a cancel)."""
        while not self._done.wait(0.2):
            if stop():
                self._done.set()

    def teardown(self) -> None:
        """Destroy what every deployment provisioned (safe twice)."""
        self._done.set()
        if self._follower.is_alive():
            self._follower.join(30.0)
        for t in self._threads:
            t.join(60.0)
        with self._lock:
            up = dict(self._up)
        for name, (provider, provisioned) in up.items():
            if self._teardown(provider, provisioned):
                self.records.record(self.run_id, name, provisioned.provider, "destroyed")

    def _teardown(self, provider: Provider, provisioned: Provisioned) -> bool:
        try:
            provider.teardown(provisioned, self.env)
        except Exception as e:
            why = _why(e) if isinstance(e, ProviderError) else f"{type(e).__name__}: {e}"
            self.failures.append(f"teardown of deployment {provisioned.deployment} failed: {why}")
            log.error("run %s: teardown of %s failed: %s", self.run_id, provisioned.deployment, why)
            return False
        return True

    def outcome(self) -> tuple[str, str | None]:
        """failed (with why) when a deployment failed, cancelled when one was, else succeeded."""
        if self.failures:
            return "failed", "; ".join(self.failures)
        if "cancelled" in self._ended.values():
            return "cancelled", "cancelled"
        return "succeeded", None

    def step_outputs(self) -> dict[str, dict[str, Any]]:
        """The outputs of the steps behind the pipeline's outputs, as the other Runners recorded them."""
        found: dict[str, dict[str, Any]] = {}
        for b in self.plan.outputs.values():
            record = self.results.get(self.run_id, b.step)
            if record is not None and record.get("status") == "succeeded":
                found[b.step] = dict(record.get("outputs") or {})
        return found

    def outputs(self) -> dict[str, Any]:
        """The pipeline's outputs made on remote deployments, from the shared results."""
        found: dict[str, Any] = {}
        for name, b in self.plan.outputs.items():
            record = self.results.get(self.run_id, b.step)
            rec = (record or {}).get("outputs", {}).get(b.output) if record else None
            if isinstance(rec, dict):
                found[name] = rec["value"] if "value" in rec else rec.get("path")
        return found


def provider_env() -> dict[str, str]:
    """The environment providers get (their credentials), without the platform's own variables."""
    from mlops_nocode.runtime.sandbox import RESERVED_ENV

    return {k: v for k, v in os.environ.items() if k not in RESERVED_ENV}


def destroy(records: DeploymentRecords, run_id: str, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Tear down everything the run recorded as existing (any time, also after a failure); returns the
    deployments as recorded afterwards. A teardown that fails keeps its record (retry later)."""
    for row in records.of(run_id):
        if row["status"] == "destroyed" or not row["provisioned"]:
            continue
        provisioned = Provisioned.from_json(row["provisioned"])
        provider = provider_for(provisioned.provider)
        if provider is None:
            why = f"target provider {provisioned.provider!r} is not available here: cannot tear it down"
            records.record(run_id, row["name"], row["provider"], row["status"], details=why)
            continue
        try:
            provider.teardown(provisioned, env)
        except ProviderError as e:
            records.record(run_id, row["name"], row["provider"], row["status"], details=_why(e))
            continue
        records.record(run_id, row["name"], row["provider"], "destroyed")
    return records.of(run_id)
