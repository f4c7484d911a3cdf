"""`submit: job`: a run's ray deployment submitted as a Ray Job, so no process of ours stays connected.

The job's entrypoint is the Runner, `mlops execute plan.json --deployment NAME --report-to URL`; the plan
travels in the job's working_dir (a plan holds no secret value); the run token reaches the job's
environment only (runtime_env.env_vars, set at launch, never rendered). Ray's job API
(`ray.job_submission.JobSubmissionClient`, the dashboard's REST API) submits, reads the status and stops.
"""

from __future__ import annotations

import json
import secrets
import shlex
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_nocode.providers.base import Bundle, Deployment, LaunchSpec, ProviderError, Provisioned

TOKEN_ENV = "MLOPS_RUN_TOKEN"
ENTRYPOINT = "mlops"
_ENDED = {"SUCCEEDED", "FAILED", "STOPPED"}
EXIT_GRACE_S = 20.0  # how long teardown lets a job's Runner exit by itself before stopping it


def placeholder(name: str) -> str:
    return f"<from the environment at launch: {name}>"


def entrypoint(deployment: str, report_to: str) -> str:
    """The job's command line (every part quoted for the shell Ray runs it with)."""
    args = [ENTRYPOINT, "execute", "plan.json", "--deployment", deployment, "--report-to", report_to]
    return " ".join(shlex.quote(a) for a in args)


def request(d: Deployment, dashboard: str, report_to: str = "<the gateway's REPORT_URL>") -> dict[str, Any]:
    """The job request for deployment `d` (what `render` shows and `launch` sends, token aside)."""
    return {
        "dashboard": dashboard,
        "entrypoint": entrypoint(d.name, report_to),
        "runtime_env": {
            "working_dir": "<a folder holding plan.json (the placed plan)>",
            "env_vars": {TOKEN_ENV: placeholder(TOKEN_ENV)},
        },
        "metadata": {"mlops_run": d.run_id, "mlops_deployment": d.name},
        "steps": [s.id for s in d.steps],
    }


def bundle(d: Deployment, dashboard: str) -> Bundle:
    text = json.dumps(request(d, dashboard), indent=2) + "\n"
    resources = ({"type": "ray_job", "name": f"mlops-{d.run_id}-{d.name}"},)
    return Bundle(d.name, "ray", {"job.json": text}, resources, 0.0, env=(TOKEN_ENV,))


def _client(dashboard: str) -> Any:
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as e:
        raise ProviderError(
            f"Ray's job client cannot be imported ({e})",
            "ray",
            "install the ray extra on the gateway's workers: pip install 'mlops-nocode[ray]'",
        ) from None
    try:
        return JobSubmissionClient(dashboard)
    except Exception as e:  # ConnectionError, RuntimeError... by Ray version
        raise ProviderError(
            f"the Ray dashboard at {dashboard} does not answer: {type(e).__name__}: {str(e)[:300]}",
            "target.options.dashboard",
            "start the cluster with its dashboard (ray start --head --include-dashboard=true) and give its "
            "URL in the target's dashboard option (default: port 8265 on the address's host)",
        ) from None


def provision(b: Bundle, workdir: Path) -> Provisioned:
    """Check the job API answers and name the job (it is submitted at launch, with the plan)."""
    req = json.loads(b.files["job.json"])
    _client(req["dashboard"])
    run = str(req["metadata"]["mlops_run"])
    submission = f"mlops-{run}-{b.deployment}-{secrets.token_hex(3)}"[:100]
    handle = {"dashboard": req["dashboard"], "submission_id": submission}
    return Provisioned(b.deployment, "ray", ({"type": "ray_job", "name": submission},), str(workdir), handle)


def launch(p: Provisioned, spec: LaunchSpec, env: Mapping[str, str]) -> None:
    """Submit the job: the plan in its working_dir, the run token in its environment only."""
    folder = Path(str(p.workdir)) / "job"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / "plan.json").write_text(spec.plan_json, encoding="utf-8")
    env_vars = {n: env[n] for n in (TOKEN_ENV, *spec.env_names) if n in env}
    client = _client(str(p.handle["dashboard"]))
    try:
        client.submit_job(
            entrypoint=entrypoint(p.deployment, spec.report_to),
            submission_id=str(p.handle["submission_id"]),
            runtime_env={"working_dir": str(folder), "env_vars": env_vars},
            metadata={"mlops_deployment": p.deployment},
        )
        (folder / "submitted").touch()  # from now on, a job Ray does not know is lost
    except Exception as e:
        raise ProviderError(
            f"the Ray job could not be submitted: {type(e).__name__}: {_clean(str(e), env_vars)}",
            f"ray job {p.handle['submission_id']}",
            "check the cluster's dashboard and that the nodes have mlops-nocode installed",
        ) from None


def _clean(text: str, values: Mapping[str, str]) -> str:
    for v in values.values():
        if v:
            text = text.replace(v, "***")
    return text[:400]


def status(p: Provisioned) -> str:
    """pending (also before it is submitted) / running / exited (the job ended: its Runner has reported
    how) / lost (a submitted job that Ray no longer knows)."""
    client = _client(str(p.handle["dashboard"]))
    try:
        found = str(client.get_job_status(str(p.handle["submission_id"])))
    except Exception as e:
        if "does not exist" in str(e) or "404" in str(e):
            submitted = (Path(str(p.workdir)) / "job" / "submitted").exists()
            return "lost" if submitted else "pending"
        raise ProviderError(
            f"the Ray job's status cannot be read: {type(e).__name__}: {str(e)[:300]}",
            f"ray job {p.handle['submission_id']}",
            "check that the cluster's dashboard answers",
        ) from None
    name = found.rsplit(".", 1)[-1].upper()
    if name == "PENDING":
        return "pending"
    return "exited" if name in _ENDED else "running"


def teardown(p: Provisioned, grace: float = EXIT_GRACE_S) -> None:
    """Stop the job when it still runs after `grace` seconds (its Runner exits by itself once it has
    reported the run's end, or a cancel); safe twice, and when it was never submitted."""
    if not p.handle.get("submission_id"):
        return
    client = _client(str(p.handle["dashboard"]))
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if str(client.get_job_status(str(p.handle["submission_id"]))).rsplit(".", 1)[-1] in _ENDED:
                return
        except Exception:
            break
        time.sleep(0.5)
    try:
        client.stop_job(str(p.handle["submission_id"]))
    except Exception as e:
        if "does not exist" in str(e) or "404" in str(e):
            return
        raise ProviderError(
            f"the Ray job could not be stopped: {type(e).__name__}: {str(e)[:300]}",
            f"ray job {p.handle['submission_id']}",
            f"stop it by hand: ray job stop --address {p.handle['dashboard']} {p.handle['submission_id']}",
        ) from None
