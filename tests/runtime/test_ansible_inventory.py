"""Ansible steps: inventories built from infra inputs (and refused when malformed or hostile), and the
errors `mlops validate` reports, located, before anything runs. Real Runner, real ansible-playbook."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.catalogue import catalogue_for, load_folder
from mlops_nocode.compiler import compile_plan
from mlops_nocode.spec import SpecError
from tests.runtime.ansible_support import (
    NOTHING,
    WIRED,
    compile_folder,
    logs,
    playbook,
    run_folder,
    write_specs,
)


def test_an_infra_input_becomes_the_inventory(tmp_path: Path, home: Path) -> None:
    infra = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: infra, version: 1.0.0}
spec:
  runtime: python
  python:
    code: |
      def make():
          return {"hosts": {"hosts": [
              {"name": "web-1", "connection": "local", "groups": ["web"],
               "vars": {"role": "{{ lookup('pipe', 'id') }}"}},
              {"name": "db-1", "connection": "local", "groups": ["db"]}],
              "vars": {"region": "here"}}}
    entrypoint: make
  outputs: {hosts: {type: infra}}
"""
    play = """
    - hosts: web
      gather_facts: false
      tasks:
        - ansible.builtin.set_stats:
            data: {seen: {host: "{{ inventory_hostname }}", role: "{{ role }}", region: "{{ region }}"}}
            per_host: false
    """
    spec = playbook(play, extra="inventory: servers", outputs="{seen: {type: json}, recap: {type: metrics}}")
    spec = spec.replace("  cache: false", "  cache: false\n  inputs: {servers: {type: infra}}")
    write_specs(tmp_path / "specs", spec, WIRED, files={"infra.yaml": infra})
    r, events = run_folder(tmp_path / "specs", home)
    assert r.status == "succeeded", (r.summary(), logs(events))
    assert r.steps["a"].outputs["seen"]["value"] == {
        "host": "web-1",
        "role": "{{ lookup('pipe', 'id') }}",
        "region": "here",
    }
    assert r.steps["a"].outputs["recap"]["value"]["hosts"] == 1


@pytest.mark.parametrize(
    ("hosts", "error"),
    [
        ([{"name": "x; rm -rf /", "connection": "local"}], "is not a new host name"),
        ([{"name": "a", "connection": "docker"}], "is not one of ssh, local, paramiko"),
        ([{"name": "a", "address": "h\nansible_connection: local"}], "is not a single-line string"),
        ([{"name": "a", "vars": {"ansible_host x": 1}}], "is not an Ansible variable name"),
        ([{"name": "a", "groups": ["all"]}], "is not a group name"),
        ([{"name": "a", "become": True}], "has unknown keys ['become']"),
        ([7], "is not an object or a host name"),
        (["-i evil"], "is not a new host name"),
        ([{"name": "a", "vars": {"ansible_ssh_common_args": "-o ProxyCommand=id"}}], "is reserved"),
        ([{"name": "a", "vars": {"ANSIBLE_python_interpreter": "/bin/sh"}}], "is reserved"),
    ],
)
def test_a_malformed_inventory_is_refused_before_ansible_runs(
    tmp_path: Path, home: Path, hosts: list[Any], error: str
) -> None:
    infra = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: infra, version: 1.0.0}}
spec:
  runtime: python
  python:
    code: |
      def make():
          return {{"hosts": {{"hosts": {hosts!r}}}}}
    entrypoint: make
  outputs: {{hosts: {{type: infra}}}}
"""
    spec = playbook(NOTHING, extra="inventory: servers")
    spec = spec.replace("  cache: false", "  cache: false\n  inputs: {servers: {type: infra}}")
    write_specs(tmp_path / "specs", spec, WIRED, files={"infra.yaml": infra})
    r, events = run_folder(tmp_path / "specs", home)
    assert r.status == "failed"
    assert error in (r.steps["a"].error or ""), r.steps["a"].error
    assert "ansible-playbook" not in logs(events)


@pytest.mark.parametrize(
    ("section", "where", "what"),
    [
        ("playbook: ../site.yml", "spec.ansible", "is not a relative path inside the folder"),
        ("playbook: git::https://h.example/r.git//site.yml", "spec.ansible", "has no ref"),
        ("playbook: 'git::ext::sh -c id//x.yml?ref=v1'", "spec.ansible", "the URL must start with"),
        ("playbook: site.yml", "spec.ansible.playbook", "is not among the playbook's shipped files"),
        ("inventory: nope", "spec.ansible.inventory", "inventory 'nope' names no input"),
        ("limit: '@/etc/passwd'", "spec.ansible", "is not a host pattern"),
        ("tags: ['a,b']", "spec.ansible", "is not a tag name"),
        ("extra_vars: {x: '${{ params.nope }}'}", "spec.ansible", "names no param"),
        ("extra_vars: {'bad-name': 1}", "spec.ansible", "is not an Ansible variable name"),
        (
            "extra_vars: {}\nplay: [{hosts: all, tasks: [{debug: {msg: '${{ params.v }}'}}]}]",
            "spec.ansible.play[0].tasks[0].debug.msg",
            "plays are not substituted",
        ),
    ],
)
def test_plan_time_errors_are_located(tmp_path: Path, section: str, where: str, what: str) -> None:
    spec = playbook(NOTHING, extra=section)
    if section.startswith("playbook") or "\nplay:" in section:
        spec = spec.replace(f"    play:\n      {NOTHING}\n", "")
    write_specs(tmp_path / "specs", spec, "- {id: a, uses: playbook/pb}")
    with pytest.raises(SpecError) as e:
        compile_folder(tmp_path / "specs")
    found = [(p.where, p.what) for p in e.value.problems]
    assert any(where in w and what in t for w, t in found), found


@pytest.mark.parametrize("name", ["my-param", "ansible_python_interpreter", "mlops_output_dir"])
def test_a_parameter_that_cannot_be_a_var_is_located(tmp_path: Path, name: str) -> None:
    spec = playbook(NOTHING, params=f"'{name}': {{type: string, default: x}}")
    write_specs(tmp_path / "specs", spec, "- {id: a, uses: playbook/pb}")
    with pytest.raises(SpecError) as e:
        compile_folder(tmp_path / "specs")
    assert any(f"spec.parameters.properties.{name}" in p.where for p in e.value.problems), e.value.problems


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("limit", "@/etc/passwd", "ansible.limit: limit '@/etc/passwd' is not a host pattern"),
        ("tags", "a,b --check", "ansible.tags: tag 'a,b --check' is not a tag name"),
        ("limit", "all\nlocalhost", "holds a newline"),
    ],
)
def test_hostile_limit_or_tags_from_parameters_are_refused(
    tmp_path: Path, home: Path, field: str, value: str, error: str
) -> None:
    expr = "'${{ params.v }}'" if field == "limit" else "['${{ params.v }}']"
    spec = playbook(NOTHING, extra=f"{field}: {expr}", params="v: {type: string}")
    write_specs(tmp_path / "specs", spec, f"- {{id: a, uses: playbook/pb, with: {{v: {json.dumps(value)}}}}}")
    r, events = run_folder(tmp_path / "specs", home)
    assert r.status == "failed"
    assert error in (r.steps["a"].error or ""), r.steps["a"].error
    assert "PLAY" not in logs(events)


def test_an_unreachable_host_fails_the_step_naming_it(tmp_path: Path, home: Path) -> None:

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    infra = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: infra, version: 1.0.0}}
spec:
  runtime: python
  python:
    code: |
      def make():
          return {{"hosts": {{"hosts": [{{"name": "gone-1", "address": "127.0.0.1", "port": {port},
                                          "connection": "ssh", "user": "nobody"}}]}}}}
    entrypoint: make
  outputs: {{hosts: {{type: infra}}}}
"""
    play = "- {hosts: all, gather_facts: false, tasks: [{name: Ping it, ansible.builtin.ping: {}}]}"
    spec = playbook(play, extra="inventory: servers")
    spec = spec.replace("  cache: false", "  cache: false\n  inputs: {servers: {type: infra}}")
    write_specs(tmp_path / "specs", spec, WIRED, files={"infra.yaml": infra})
    r, events = run_folder(tmp_path / "specs", home)
    assert r.status == "failed"
    error = r.steps["a"].error or ""
    assert "task 'Ping it' unreachable on gone-1" in error and "exited with code 4" in error, error
    metrics = {e.data["name"]: e.data["value"] for e in events if e.type == "metric"}
    assert metrics["ansible_unreachable"] == 1


def test_targets_that_cannot_run_ansible_refuse_it_at_validation(tmp_path: Path) -> None:
    from mlops_nocode.providers.placement import placement_problems

    write_specs(tmp_path / "specs", playbook(NOTHING), "- {id: a, uses: playbook/pb}")
    docs = catalogue_for(load_folder([tmp_path / "specs"]))
    plan = compile_plan("pipeline/t", docs, target={"provider": "k3s"})
    found = [p.what for p in placement_problems(plan)]
    assert any("uses runtime 'ansible', which k3s cannot run" in w for w in found), found
    assert not placement_problems(compile_plan("pipeline/t", docs, target={"provider": "local"}))


def test_a_terraform_style_list_of_host_names_is_an_inventory(tmp_path: Path, home: Path) -> None:
    infra = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: infra, version: 1.0.0}
spec:
  runtime: python
  python:
    code: |
      def make():
          return {"hosts": {"id": "ws-1", "name": "ws", "size": 2, "hosts": ["localhost"]}}
    entrypoint: make
  outputs: {hosts: {type: infra}}
"""
    play = """
    - hosts: all
      gather_facts: false
      tasks:
        - ansible.builtin.set_stats:
            data: {seen: {host: "{{ inventory_hostname }}", connection: "{{ ansible_connection }}"}}
            per_host: false
    """
    spec = playbook(play, extra="inventory: servers", outputs="{seen: {type: json}}")
    spec = spec.replace("  cache: false", "  cache: false\n  inputs: {servers: {type: infra}}")
    write_specs(tmp_path / "specs", spec, WIRED, files={"infra.yaml": infra})
    r, events = run_folder(tmp_path / "specs", home)
    assert r.status == "succeeded", (r.summary(), logs(events))
    assert r.steps["a"].outputs["seen"]["value"] == {"host": "localhost", "connection": "local"}


def test_a_terraform_workspace_feeds_the_built_in_ansible_playbook(tmp_path: Path, home: Path) -> None:
    """The built-in terraform-workspace (terraform_data only: no provider to download) hands its `infra`
    output to the built-in ansible-configure, which configures the hosts it lists."""
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(
        """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec:
  steps:
    - {id: tf, uses: playbook/terraform-workspace, with: {name: demo}}
    - {id: conf, uses: playbook/ansible-configure, with: {service: "{{ x }}"}, inputs: {hosts: tf.workspace}}
""",
        encoding="utf-8",
    )
    r, events = run_folder(folder, home)
    assert r.status == "succeeded", (r.summary(), logs(events))
    assert r.steps["conf"].outputs["summary"]["value"] == {"service": "{{ x }}", "hosts": ["localhost"]}
    assert r.steps["conf"].outputs["recap"]["value"]["failed"] == 0
