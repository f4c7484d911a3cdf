"""Ansible steps through a real Runner and a real ansible-playbook (PyPI's ansible-core) against
localhost with the local connection: recap metrics, failing tasks, hostile values kept as data, secrets
in a 0600 file that does not survive, playbook files and Git playbooks, missing binary, the step
sandbox, timeout and cancellation with no process left behind (inventories: test_ansible_inventory.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mlops_nocode.runtime.runner import Runner, RunResult
from tests.conftest import none_left, processes_with
from tests.runtime.ansible_support import NOTHING, compile_folder, logs, playbook, run_folder, write_specs

HOSTILE = "{{ lookup('pipe', 'touch MARKER') }}' \"\n!unsafe {% raw %}x{{ 7*6 }}"


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
    assert none_left(marker), processes_with(marker)
    assert not processes_with("ansible-playbook") or all(
        str(home) not in " ".join(p.cmdline()) for p in processes_with("ansible-playbook")
    )


def test_cancel_stops_ansible_and_what_it_started(tmp_path: Path, home: Path) -> None:
    marker = f"mlops-ansible-cancel-{time.time_ns()}"
    write_specs(tmp_path / "specs", _sleeper(marker), "- {id: a, uses: playbook/pb}")
    runner = Runner(compile_folder(tmp_path / "specs"), home=home)
    result: list[RunResult] = []
    t = threading.Thread(target=lambda: result.append(runner.run()))
    t.start()
    end = time.monotonic() + 60
    while not processes_with(marker) and time.monotonic() < end:
        time.sleep(0.1)
    assert processes_with(marker), "the play never started its command"
    runner.cancel()
    t.join(60)
    assert result and result[0].status == "cancelled"
    assert none_left(marker), processes_with(marker)
    assert not [p for p in processes_with("ansible-playbook") if str(home) in " ".join(p.cmdline())]


def test_a_play_that_is_not_valid_fails_with_ansibles_message_in_the_log(tmp_path: Path, home: Path) -> None:
    play = "- {hosts: all, gather_facts: false, tasks: [{name: bad, no_such_module_here: {}}]}"
    write_specs(tmp_path / "specs", playbook(play), "- {id: a, uses: playbook/pb}")
    r, events = run_folder(tmp_path / "specs", home)
    assert r.status == "failed"
    assert "ansible-playbook exited with code 4 (see the step's log)" in (r.steps["a"].error or "")
    assert "no_such_module_here" in logs(events)


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
