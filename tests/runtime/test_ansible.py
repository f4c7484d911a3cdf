"""Ansible steps through a real Runner and a real ansible-playbook (PyPI's ansible-core) against
localhost with the local connection: recap metrics, failing tasks, hostile values kept as data, secrets
in a 0600 file that does not survive, inventories from infra inputs, Git playbooks, missing binary,
timeout and cancellation with no process left behind, and the located errors of `mlops validate`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from mlops_nocode.catalogue import catalogue_for, load_folder
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.spec import SpecError

HOSTILE = "{{ lookup('pipe', 'touch MARKER') }}' \"\n!unsafe {% raw %}x{{ 7*6 }}"


NOTHING = "- {hosts: all, gather_facts: false, tasks: []}"
WIRED = "- {id: infra, uses: playbook/infra}\n- {id: a, uses: playbook/pb, inputs: {servers: infra.hosts}}"
"""An infra step, and the ansible step taking its hosts as its inventory."""


def write_specs(folder: Path, playbook: str, steps: str, files: dict[str, str] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pb.yaml").write_text(textwrap.dedent(playbook), encoding="utf-8")
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    pipeline = f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps:
{textwrap.indent(textwrap.dedent(steps), "    ")}
"""
    (folder / "pipeline.yaml").write_text(pipeline, encoding="utf-8")


def compile_folder(folder: Path) -> Any:
    return compile_plan("pipeline/t", catalogue_for(load_folder([folder])))


def run_folder(folder: Path, home: Path, **kw: Any) -> tuple[RunResult, list[Event]]:
    events: list[Event] = []
    result = Runner(compile_folder(folder), home=home, sink=events.append, **kw).run()
    return result, events


def playbook(
    play: str, *, extra: str = "", outputs: str = "{recap: {type: metrics}}", params: str = ""
) -> str:
    """A playbook spec with an inline play (indented under `play:`)."""
    return f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: pb, version: 1.0.0}}
spec:
  runtime: ansible
  cache: false
  ansible:
{textwrap.indent(textwrap.dedent(extra), "    ")}
    play:
{textwrap.indent(textwrap.dedent(play), "      ")}
  outputs: {outputs}
  parameters: {{type: object, properties: {{{params}}}}}
"""


def logs(events: list[Event]) -> str:
    return "\n".join(str(e.data.get("line")) for e in events if e.type == "log")


def test_a_play_runs_and_its_recap_becomes_the_steps_metrics(tmp_path: Path, home: Path) -> None:
    play = """
    - hosts: all
      gather_facts: false
      tasks:
        - {name: say hello, ansible.builtin.debug: {msg: "hello {{ who }}"}}
        - {name: touch a file, ansible.builtin.copy: {content: "x\\n", dest: "{{ mlops_output_dir }}/f.txt"}}
        - {name: skipped one, ansible.builtin.debug: {msg: no}, when: false}
        - ansible.builtin.set_stats: {data: {answer: {n: 42, who: "{{ who }}"}}, per_host: false}
    """
    outputs = "{recap: {type: metrics}, answer: {type: json}, file: {type: file}}"
    spec = playbook(play, extra="outputs: {file: f.txt}", outputs=outputs, params="who: {type: string}")
    write_specs(tmp_path / "specs", spec, "- {id: a, uses: playbook/pb, with: {who: world}}")
    r, events = run_folder(tmp_path / "specs", home)
    assert r.status == "succeeded", (r.summary(), logs(events))
    out = r.steps["a"].outputs
    assert out["recap"]["value"] == {
        "ok": 3,
        "changed": 1,
        "failed": 0,
        "unreachable": 0,
        "skipped": 1,
        "rescued": 0,
        "ignored": 0,
        "hosts": 1,
    }
    assert out["answer"]["value"] == {"n": 42, "who": "world"}
    assert Path(out["file"]["path"]).read_text() == "x\n"
    metrics = {e.data["name"]: e.data["value"] for e in events if e.type == "metric"}
    assert metrics["ansible_ok"] == 3 and metrics["ansible_changed"] == 1
    text = logs(events)
    assert "PLAY RECAP" in text and "hello world" in text  # the human output stays in the log
    assert not list((home / "runs").glob("*/steps/*.ansible")), "the private folder was left behind"


def test_a_failing_task_fails_the_step_with_its_name(tmp_path: Path, home: Path) -> None:
    play = """
    - hosts: all
      gather_facts: false
      tasks:
        - {name: Check the disk, ansible.builtin.fail: {msg: the disk is full}}
        - {name: never, ansible.builtin.debug: {msg: never}}
    """
    write_specs(tmp_path / "specs", playbook(play), "- {id: a, uses: playbook/pb}")
    r, events = run_folder(tmp_path / "specs", home)
    assert r.status == "failed"
    error = r.steps["a"].error or ""
    assert "task 'Check the disk' failed on localhost: the disk is full" in error, error
    assert "exited with code 2" in error
    metrics = {e.data["name"]: e.data["value"] for e in events if e.type == "metric"}
    assert metrics["ansible_failed"] == 1


def test_hostile_values_arrive_as_data_never_as_templates(tmp_path: Path, home: Path) -> None:
    marker = tmp_path / "evaluated"
    value = HOSTILE.replace("MARKER", str(marker))
    play = """
    - hosts: all
      gather_facts: false
      tasks:
        - ansible.builtin.copy:
            content: "{{ [raw, mixed, nested] | to_json }}"
            dest: "{{ mlops_output_dir }}/v"
        - ansible.builtin.debug: {msg: "{{ raw }}"}
    """
    extra = """
    extra_vars:
      mixed: "before ${{ params.raw }} after"
      nested: {"{{ key }}": ["${{ params.raw }}"]}
    """
    spec = playbook(
        play, extra=extra + "outputs: {v: v}", outputs="{v: {type: file}}", params="raw: {type: string}"
    )
    write_specs(
        tmp_path / "specs", spec, f"- {{id: a, uses: playbook/pb, with: {{raw: {json.dumps(value)}}}}}"
    )
    r, events = run_folder(tmp_path / "specs", home)
    assert r.status == "succeeded", (r.summary(), logs(events))
    got = json.loads(Path(r.steps["a"].outputs["v"]["path"]).read_text())
    assert got == [value, f"before {value} after", {"{{ key }}": [value]}]
    assert not marker.exists(), "a value was evaluated as a Jinja template"


def test_secrets_reach_the_play_through_a_private_file_and_nowhere_else(tmp_path: Path, home: Path) -> None:
    secret = "s3cr3t-'\"-{{ 7*6 }}-value"
    digest = hashlib.sha1(secret.encode()).hexdigest()
    play = f"""
    - hosts: all
      gather_facts: false
      tasks:
        - ansible.builtin.assert:
            that: ["API_TOKEN | hash('sha1') == '{digest}'", "token | hash('sha1') == '{digest}'"]
        - ansible.builtin.debug: {{msg: "the token is {{{{ API_TOKEN }}}}"}}
        - ansible.builtin.stat: {{path: "{{{{ mlops_output_dir }}}}.ansible/secrets.yml"}}
          register: st
        - ansible.builtin.set_stats: {{data: {{mode: "{{{{ st.stat.mode }}}}"}}, per_host: false}}
    """
    spec = playbook(
        play, extra='extra_vars: {token: "${{ secrets.API_TOKEN }}"}', outputs="{mode: {type: text}}"
    )
    spec = spec.replace("  cache: false", "  cache: false\n  secrets: [API_TOKEN]")
    write_specs(tmp_path / "specs", spec, "- {id: a, uses: playbook/pb}")
    r, events = run_folder(tmp_path / "specs", home, environ={"API_TOKEN": secret})
    assert r.status == "succeeded", (r.summary(), logs(events))
    assert r.steps["a"].outputs["mode"]["value"] == "0600"
    assert "the token is ***" in logs(events)
    for f in [*home.rglob("*"), *tmp_path.rglob("*")]:
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f
    assert secret not in json.dumps([e.data for e in events])


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


def test_a_playbook_file_beside_the_spec(tmp_path: Path, home: Path) -> None:
    site = """
    - hosts: all
      gather_facts: false
      tasks:
        - {name: from the file, ansible.builtin.debug: {msg: from the file}}
    """
    spec = playbook("[]", extra="playbook: plays/site.yml").replace("    play:\n      []\n", "")
    spec = spec.replace("  cache: false", "  cache: false\n  files: [plays/site.yml]")
    write_specs(tmp_path / "specs", spec, "- {id: a, uses: playbook/pb}", files={"plays/site.yml": site})
    r, events = run_folder(tmp_path / "specs", home)
    assert r.status == "succeeded", (r.summary(), logs(events))
    assert "from the file" in logs(events)


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_a_playbook_from_a_git_ref(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "repo"
    (src / "plays").mkdir(parents=True)
    (src / "plays" / "site.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug: {msg: version one}\n"
    )
    _git("init", "-q", "-b", "main", cwd=src)
    _git("add", "-A", cwd=src)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one", cwd=src)
    _git("tag", "v1", cwd=src)
    (src / "plays" / "site.yml").write_text("- hosts: all\n  tasks: [{ansible.builtin.fail: {msg: v2}}]\n")
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two", cwd=src)
    url = f"git::file://{src}//plays/site.yml?ref=v1"
    spec = playbook("[]", extra=f"playbook: {json.dumps(url)}").replace("    play:\n      []\n", "")
    write_specs(tmp_path / "specs", spec, "- {id: a, uses: playbook/pb}")
    r, _ = run_folder(tmp_path / "specs", home)  # file:// reads outside the sandbox: refused by default
    assert "set ANSIBLE_GIT_FILE_URLS=true there to allow them" in (r.steps["a"].error or "")
    monkeypatch.setenv("ANSIBLE_GIT_FILE_URLS", "true")
    for _ in range(2):  # a clone, then a fetch into the cache
        r, events = run_folder(tmp_path / "specs", home)
        assert r.status == "succeeded", (r.summary(), logs(events))
        assert "version one" in logs(events)
    assert len(list((home / "cache" / "ansible").glob("*.git"))) == 1
    write_specs(tmp_path / "specs", spec.replace("ref=v1", "ref=nope"), "- {id: a, uses: playbook/pb}")
    r, _ = run_folder(tmp_path / "specs", home)
    assert "git ref 'nope' is not a branch, tag or commit of file://" in (r.steps["a"].error or "")


def test_a_missing_ansible_playbook_names_the_package(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANSIBLE_PLAYBOOK_BIN", str(tmp_path / "nowhere" / "ansible-playbook"))
    write_specs(tmp_path / "specs", playbook(NOTHING), "- {id: a, uses: playbook/pb}")
    r, _ = run_folder(tmp_path / "specs", home)
    assert r.status == "failed"
    assert "ansible-playbook not found at" in (r.steps["a"].error or "")
    assert "pip install ansible-core" in (r.steps["a"].error or "")


def _procs(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(p.info["cmdline"] or []):
                found.append(p)
        except psutil.Error:
            continue
    return found


def _gone(marker: str, deadline: float = 20.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not _procs(marker):
            return True
        time.sleep(0.1)
    return False


def _sleeper(marker: str, timeout: str = "") -> str:
    play = f"""
    - hosts: all
      gather_facts: false
      tasks:
        - ansible.builtin.shell: "(exec -a {marker} sleep 300) & exec -a {marker} sleep 300"
          args: {{executable: /bin/bash}}
    """
    spec = playbook(play)
    return spec.replace("  cache: false", f"  cache: false\n  timeout: {timeout}") if timeout else spec


def test_a_timeout_kills_ansible_and_what_it_started(tmp_path: Path, home: Path) -> None:
    marker = f"mlops-ansible-timeout-{time.time_ns()}"
    write_specs(tmp_path / "specs", _sleeper(marker, "8s"), "- {id: a, uses: playbook/pb}")
    r, _ = run_folder(tmp_path / "specs", home)
    assert r.status == "failed"
    assert "timed out after 8s" in (r.steps["a"].error or ""), r.steps["a"].error
    assert _gone(marker), _procs(marker)
    assert not _procs("ansible-playbook") or all(
        str(home) not in " ".join(p.cmdline()) for p in _procs("ansible-playbook")
    )


def test_cancel_stops_ansible_and_what_it_started(tmp_path: Path, home: Path) -> None:
    marker = f"mlops-ansible-cancel-{time.time_ns()}"
    write_specs(tmp_path / "specs", _sleeper(marker), "- {id: a, uses: playbook/pb}")
    runner = Runner(compile_folder(tmp_path / "specs"), home=home)
    result: list[RunResult] = []
    t = threading.Thread(target=lambda: result.append(runner.run()))
    t.start()
    end = time.monotonic() + 60
    while not _procs(marker) and time.monotonic() < end:
        time.sleep(0.1)
    assert _procs(marker), "the play never started its command"
    runner.cancel()
    t.join(60)
    assert result and result[0].status == "cancelled"
    assert _gone(marker), _procs(marker)
    assert not [p for p in _procs("ansible-playbook") if str(home) in " ".join(p.cmdline())]


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
    import socket

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


def test_a_play_that_is_not_valid_fails_with_ansibles_message_in_the_log(tmp_path: Path, home: Path) -> None:
    play = "- {hosts: all, gather_facts: false, tasks: [{name: bad, no_such_module_here: {}}]}"
    write_specs(tmp_path / "specs", playbook(play), "- {id: a, uses: playbook/pb}")
    r, events = run_folder(tmp_path / "specs", home)
    assert r.status == "failed"
    assert "ansible-playbook exited with code 4 (see the step's log)" in (r.steps["a"].error or "")
    assert "no_such_module_here" in logs(events)


def test_targets_that_cannot_run_ansible_refuse_it_at_validation(tmp_path: Path) -> None:
    from mlops_nocode.providers.placement import placement_problems

    write_specs(tmp_path / "specs", playbook(NOTHING), "- {id: a, uses: playbook/pb}")
    docs = catalogue_for(load_folder([tmp_path / "specs"]))
    plan = compile_plan("pipeline/t", docs, target={"provider": "k3s"})
    found = [p.what for p in placement_problems(plan)]
    assert any("uses runtime 'ansible', which k3s cannot run" in w for w in found), found
    assert not placement_problems(compile_plan("pipeline/t", docs, target={"provider": "local"}))


def test_the_play_runs_in_the_step_sandbox(tmp_path: Path, home: Path) -> None:
    private = home / "private-key.txt"  # MLOPS_HOME: never readable by steps
    home.mkdir(parents=True, exist_ok=True)
    private.write_text("do not read")
    play = f"""
    - hosts: all
      gather_facts: false
      tasks:
        - {{name: Read the platform's file, ansible.builtin.slurp: {{src: "{private}"}}}}
    """
    write_specs(tmp_path / "specs", playbook(play), "- {id: a, uses: playbook/pb}")
    r, events = run_folder(tmp_path / "specs", home)
    assert r.status == "failed"
    assert 'task "Read the platform\'s file" failed on localhost' in (r.steps["a"].error or ""), r.steps[
        "a"
    ].error
    assert "do not read" not in logs(events)
    assert "file is not readable" in (r.steps["a"].error or "").lower()  # as root: only Landlock refuses


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
