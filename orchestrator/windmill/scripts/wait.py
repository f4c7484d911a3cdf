"""Wait for a run's end (polling the gateway every few seconds); return the run, or fail the Windmill job
when the run failed or was cancelled, with the gateway's reason."""

import time

from f.mlops.gateway_client import GatewayError, call, quoted

TERMINAL = {"succeeded", "failed", "cancelled"}


def main(
    gateway_url: str, gateway_key: str, run_id: str, timeout_s: int = 6 * 3600, poll_s: float = 2.0,
    outputs: dict = None, fail_on_error: bool = True,
) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        run = call(gateway_url, gateway_key, "GET", f"/api/v1/runs/{quoted(run_id)}")
        if run["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            raise GatewayError(f"run {run_id} still {run['status']} after {timeout_s} s")
        time.sleep(poll_s)
    if fail_on_error and run["status"] != "succeeded":
        raise GatewayError(f"run {run_id} {run['status']}: {run.get('details') or 'no details'}")
    return {"pipeline_id": run["id"], "status": run["status"], "details": run.get("details"),
            "outputs": run.get("outputs") or {}, "declared_outputs": outputs or {}}
