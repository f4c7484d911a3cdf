"""A test provider standing in for a remote target (it replaces `k3s` through PROVIDER_MODULES): its
provision creates a folder, its launch starts the "remote" Runner as a second local process
(`mlops execute plan.json --deployment NAME --report-to URL`), its status reads that process, its
teardown stops it. Test controls, in the deployment's working folder: a file `lose` makes the instance
"lost"; FAKE_PROVISION_FAIL in the environment makes provision fail after creating something."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from mlops_nocode.providers.base import (
    Bundle,
    Deployment,
    Features,
    LaunchSpec,
    Offer,
    ProviderError,
    Provisioned,
    TargetState,
)

PRICE = 0.25


class FakeRemote:
    """Runs each deployment's Runner as a local process."""

    name = "k3s"
    features = Features(runtimes=frozenset({"python", "command"}), provisions=True, iac="terraform")

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def state(self, env: Mapping[str, str]) -> TargetState:
        return TargetState(self.name, credentials=True)

    def offers(self) -> list[Offer]:
        return [Offer(self.name, "test-node", 2, 4, PRICE)]

    def refresh_offers(self, env: Mapping[str, str]) -> list[Offer]:
        return self.offers()

    def render(self, deployment: Deployment) -> Bundle:
        root = {
            "resource": {"terraform_data": {deployment.name: {"input": [s.id for s in deployment.steps]}}}
        }
        return Bundle(
            deployment.name,
            self.name,
            {"main.tf.json": json.dumps(root, indent=2)},
            ({"type": "terraform_data", "name": deployment.name},),
            PRICE,
            1.0,
            ("MLOPS_RUN_TOKEN",),
        )

    def provision(self, bundle: Bundle, workdir: Path, env: Mapping[str, str]) -> Provisioned:
        bundle.write(workdir)
        (workdir / "instance").write_text("up")
        if env.get("FAKE_PROVISION_FAIL") == "crash":
            raise RuntimeError("a bug in the provider")
        if env.get("FAKE_PROVISION_FAIL"):
            raise ProviderError("quota exceeded", "fake API", "ask for more quota", created=["instance"])
        return Provisioned(bundle.deployment, self.name, tuple(bundle.resources), str(workdir))

    def launch(self, provisioned: Provisioned, spec: LaunchSpec, env: Mapping[str, str]) -> None:
        workdir = Path(str(provisioned.workdir))
        (workdir / "plan.json").write_text(spec.plan_json)
        runner_env = {**os.environ, **env}  # MLOPS_HOME: this machine stands for the remote one
        if env.get("FAKE_REMOTE_HOME"):  # another "machine": it shares only the S3 store with the gateway's
            runner_env["MLOPS_HOME"] = env["FAKE_REMOTE_HOME"]
        argv = [sys.executable, "-m", "mlops_nocode.cli.main", "execute", str(workdir / "plan.json")]
        argv += ["--deployment", provisioned.deployment, "--report-to", spec.report_to]
        with open(workdir / "runner.log", "ab") as log:
            self.procs[str(workdir)] = subprocess.Popen(
                argv, env=runner_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def status(self, provisioned: Provisioned, env: Mapping[str, str]) -> str:
        workdir = Path(str(provisioned.workdir))
        if not (workdir / "instance").exists():
            return "destroyed"
        if (workdir / "lose").exists():
            return "lost"
        proc = self.procs.get(str(workdir))
        return "pending" if proc is None else "running" if proc.poll() is None else "exited"

    def teardown(self, provisioned: Provisioned, env: Mapping[str, str]) -> None:
        workdir = Path(str(provisioned.workdir))
        proc = self.procs.pop(str(workdir), None)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        (workdir / "instance").unlink(missing_ok=True)
        with open(workdir.parent / "teardowns.log", "a") as f:
            f.write(provisioned.deployment + "\n")


PROVIDER = FakeRemote()
