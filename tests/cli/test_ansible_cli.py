"""`mlops run` of the built-in playbook/ansible-configure (from the catalogue MLOPS_HOME seeds), a real
ansible-playbook against localhost: outputs, recap metrics, parameters kept as data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult

PIPELINE = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: configure, version: 1.0.0}
spec:
  steps:
    - id: conf
      uses: playbook/ansible-configure
      with:
        service: "svc-{{ lookup('env', 'HOME') }}"
        settings: {workers: 3, motd: "hello\\n{{ 7 * 6 }}"}
  outputs: {summary: conf.summary, recap: conf.recap, config: conf.config}
"""


def test_mlops_run_configures_this_machine(
    mlops: Callable[..., CliResult], write_spec: Callable[[str, str], Path]
) -> None:
    spec = write_spec(PIPELINE, "configure.yaml")
    assert (r := mlops("validate", str(spec))).code == 0, r
    r = mlops("run", str(spec), "--json")
    assert r.code == 0, r
    out = r.json()["outputs"]
    assert out["summary"] == {"service": "svc-{{ lookup('env', 'HOME') }}", "hosts": ["localhost"]}
    assert out["recap"]["failed"] == 0 and out["recap"]["changed"] == 2 and out["recap"]["hosts"] == 1
    config = json.loads((Path(out["config"]) / "localhost.json").read_text())
    assert config["settings"]["workers"] == 3 and config["settings"]["motd"] == "hello\n{{ 7 * 6 }}"
    assert config["service"] == "svc-{{ lookup('env', 'HOME') }}"
