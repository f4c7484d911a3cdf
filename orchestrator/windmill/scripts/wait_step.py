"""Follow one step of a run (a module of a flow exported by `mlops windmill export`): wait until every
plan step it stands for (the step itself, or `step/...` for a nested pipeline) has ended; return their
statuses, or fail when one failed. `uses`, `with_`, `inputs`, `depends_on` and `options` describe the step
(they are what `mlops windmill import` reads back); the gateway runs the step itself."""

import time

from f.mlops.gateway_client import GatewayError, call, quoted

ENDED = {"step.finished": "succeeded", "step.failed": "failed", "step.skipped": "skipped"}


def main(
    gateway_url: str, gateway_key: str, run_id: str, step: str, uses: str = "", with_: dict = None,
    inputs: dict = None, depends_on: list = None, options: dict = None, timeout_s: int = 6 * 3600,
    poll_s: float = 1.0,
) -> dict:
    run = quoted(run_id)
    graph = call(gateway_url, gateway_key, "GET", f"/api/v1/runs/{run}/graph")
    mine = {s["id"] for s in graph["steps"] if s["id"] == step or s["id"].startswith(step + "/")}
    if not mine:
        raise GatewayError(f"run {run_id} has no step {step}")
    ended: dict = {}
    seen = 0
    deadline = time.monotonic() + timeout_s
    while mine - ended.keys():
        for event in call(gateway_url, gateway_key, "GET", f"/api/v1/runs/{run}/events?after={seen}"):
            seen = max(seen, event["seq"])
            if event.get("step") in mine and event["type"] in ENDED:
                ended[event["step"]] = {"status": ENDED[event["type"]], "data": event.get("data") or {}}
        if mine - ended.keys():
            status = call(gateway_url, gateway_key, "GET", f"/api/v1/runs/{run}")["status"]
            if status in ("failed", "cancelled"):
                raise GatewayError(f"run {run_id} {status} before step {step} ended")
            if time.monotonic() > deadline:
                raise GatewayError(f"step {step} of run {run_id} still running after {timeout_s} s")
            time.sleep(poll_s)
    failed = sorted(s for s, e in ended.items() if e["status"] == "failed")
    if failed:
        raise GatewayError(f"step(s) {', '.join(failed)} of run {run_id} failed")
    outputs = ended.get(step, {}).get("data", {}).get("outputs", {})
    return {"step": step, "uses": uses, "steps": ended, "outputs": outputs}
