"""CLI robustness: every bad input is a located problem with exit 2, never a traceback."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PLAYBOOKS, CliResult, spawn_mlops, wait_for_text, wait_gone

Mlops = Callable[..., CliResult]

PIPE = """
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: p, version: 1.0.0}
spec:
  parameters:
    type: object
    properties:
      n: {type: integer, default: 4}
      label: {type: string, default: x}
      opts: {type: object, default: {a: 10, b: 20}}
  steps:
    - {id: a, uses: playbook/add, with: {n: "${{ params.n }}"}}
    - {id: e, uses: playbook/call, with: {action: echo, arg: ["${{ params.label }}", "${{ params.opts }}"]}}
  outputs: {y: a.y, e: e.y}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: bare, version: 1.0.0}
spec: {steps: [{id: a, uses: playbook/add}]}
"""


def no_traceback(r: CliResult) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r


@pytest.mark.parametrize(
    "args",
    [
        ["run", "{f}", "--events", "{tmp}"],
        ["run", "{f}", "--events", "{tmp}/missing/e.jsonl"],
        ["plan", "{f}", "--out", "{tmp}/missing/p.json"],
        ["plan", "{f}", "--out", "{f}/bundles"],  # a folder --out under a file
        ["schema", "--out", "{tmp}/missing/s.json"],
        ["run", "{f}", "--parallel", "0"],
        ["run", "{f}", "--json", "--events", "-"],
        ["run", "{f}", "--set", "zzz=1", "--pipeline", "bare"],
        ["run", "{f}", "--pipeline", "nope"],
        ["run", "{f}", "--set", "n=.nan"],
        ["run", "{f}", "--set", "=3"],
    ],
)
def test_bad_arguments_exit_2_without_traceback(
    mlops: Mlops, write_spec: Callable[..., Path], tmp_path: Path, args: list[str]
) -> None:
    f = write_spec(PLAYBOOKS + PIPE)
    r = mlops(*[a.format(f=f, tmp=tmp_path) for a in args])
    assert r.code == 2, r
    no_traceback(r)


def test_bad_throttle_setting_is_named(mlops: Mlops, write_spec: Callable[..., Path]) -> None:
    r = mlops("run", str(write_spec(PLAYBOOKS + PIPE)), env={"CPU_THRESHOLD": "abc"})
    assert r.code == 2 and "CPU_THRESHOLD" in r.stderr, r
    no_traceback(r)


def test_unknown_pipeline_lists_the_known_ones(mlops: Mlops, write_spec: Callable[..., Path]) -> None:
    r = mlops("run", str(write_spec(PLAYBOOKS + PIPE)), "--pipeline", "nope")
    assert "p, bare" in r.stderr


def test_set_string_keeps_text_and_objects_merge(mlops: Mlops, write_spec: Callable[..., Path]) -> None:
    f = write_spec(PLAYBOOKS + PIPE)
    r = mlops("run", str(f), "--json", "--pipeline", "p", "--set", "label=007", "--set", "opts.a=5")
    assert r.code == 0, r
    assert r.json()["outputs"]["e"] == ["007", {"a": 5, "b": 20}]


STEP = '{"format": "mlops-nocode/plan/v1", "root": "r", "steps": [{"id": "a", "playbook": "p", "digest": "d",'


@pytest.mark.parametrize(
    "plan",
    [
        "[1, 2]",
        '"x"',
        "not json",
        '{"format": "mlops-nocode/plan/v1"}',
        STEP + ' "runtime": "python", "needs": ["ghost"]}]}',
        STEP + ' "runtime": "no-such-runtime"}]}',
        STEP + ' "runtime": "python", "timeout": "10m"}]}',
        STEP + ' "runtime": "python", "params": [1]}]}',
        '{"format": "mlops-nocode/plan/v1", "root": "r", "steps": [],'
        ' "outputs": {"o": {"step": "a", "output": "y"}}}',
    ],
)
def test_malformed_plans_are_refused(mlops: Mlops, tmp_path: Path, plan: str) -> None:
    f = tmp_path / "plan.json"
    f.write_text(plan)
    r = mlops("execute", str(f))
    assert r.code == 2, r
    no_traceback(r)


def test_execute_finds_step_modules_beside_the_spec_from_anywhere(mlops: Mlops, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "localsteps.py").write_text("def hello(*, who: str):\n    return {'y': f'hello {who}'}\n")
    (proj / "spec.yaml").write_text("""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: hello, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "localsteps:hello"}
  outputs: {y: {type: text}}
  parameters: {type: object, properties: {who: {type: string, default: world}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: hi, version: 1.0.0}
spec: {steps: [{id: h, uses: playbook/hello}], outputs: {y: h.y}}
""")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = elsewhere / "link.yaml"
    link.symlink_to(proj / "spec.yaml")
    r = mlops("run", str(link), "--json", cwd=elsewhere)
    assert r.code == 0, r
    assert r.json()["outputs"] == {"y": "hello world"}
    plan = tmp_path / "plan.json"
    assert mlops("plan", str(proj / "spec.yaml"), "--out", str(plan)).code == 0
    r = mlops("execute", str(plan), "--json", "--no-cache", cwd=Path("/"))
    assert r.code == 0, r
    assert r.json()["outputs"] == {"y": "hello world"}


def test_plan_file_and_spec_folder_move_together(mlops: Mlops, tmp_path: Path) -> None:
    """plan.json holds no absolute local path: moved elsewhere with the spec folder, it still runs."""
    bundle = tmp_path / "bundle"
    specs = bundle / "specs"
    (specs / "data").mkdir(parents=True)
    (specs / "localsteps.py").write_text("def hello(*, who: str):\n    return {'y': f'hello {who}'}\n")
    (specs / "data" / "greeting.txt").write_text("bonjour")
    (specs / "spec.yaml").write_text("""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: hello, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "localsteps:hello"}
  outputs: {y: {type: text}}
  parameters: {type: object, properties: {who: {type: string, default: world}}}
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: read, version: 1.0.0}
spec:
  runtime: command
  files: [data/greeting.txt]
  command:
    argv: [cp, "${{ spec.dir }}/data/greeting.txt", "${{ outputs.t }}"]
    outputs: {t: t.txt}
  outputs: {t: {type: text}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: hi, version: 1.0.0}
spec:
  steps: [{id: h, uses: playbook/hello}, {id: r, uses: playbook/read}]
  outputs: {y: h.y, t: r.t}
""")
    plan = bundle / "plan.json"
    assert mlops("plan", str(specs / "spec.yaml"), "--out", str(plan)).code == 0
    assert str(tmp_path) not in plan.read_text()
    moved = tmp_path / "far" / "away"
    moved.parent.mkdir()
    bundle.rename(moved)
    r = mlops("execute", str(moved / "plan.json"), "--json", "--no-cache", cwd=Path("/"))
    assert r.code == 0, r
    assert r.json()["outputs"] == {"y": "hello world", "t": "bonjour"}


def test_unavailable_target_reported_once(mlops: Mlops) -> None:
    hidden = {"TEST_HIDE": "exoscale"}  # a version without the exoscale provider
    r = mlops(
        "plan", "metapipeline/ml-portfolio", "--target", "exoscale", "--json", module="providers", env=hidden
    )
    assert r.code == 2
    problems = r.json()["problems"]
    assert len(problems) == 1 and problems[0]["where"] == "--target"


def test_second_ctrl_c_still_records_the_cancelled_run(
    write_spec: Callable[..., Path], tmp_path: Path, home: Path
) -> None:
    pid_file = tmp_path / "pid"
    f = write_spec(
        PLAYBOOKS
        + f"""
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: stubborn, version: 1.0.0}}
spec:
  steps: [{{id: s, uses: playbook/call, with: {{action: note_term, arg: '{pid_file}'}}}}]
"""
    )
    proc = spawn_mlops("run", str(f), "--json")
    try:
        wait_for_text(pid_file)
        step_pid = int(pid_file.read_text())
        proc.send_signal(signal.SIGINT)
        wait_for_text(Path(f"{pid_file}.term"))  # the Runner is stopping its steps: the second Ctrl-C now
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert json.loads(stdout)["status"] == "cancelled"
    summaries = list(home.glob("runs/*/summary.json"))
    assert summaries and json.loads(summaries[0].read_text())["status"] == "cancelled"
    wait_gone([step_pid])


MARKUP = """
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: markup, version: 1.0.0}
spec:
  steps:
    - {id: bad, uses: playbook/call, with: {action: raise, arg: "bad [/foo] [bold]"}}
    - {id: ok, uses: playbook/add}
"""


def test_rich_markup_in_step_errors_is_shown_as_text(mlops: Mlops, write_spec: Callable[..., Path]) -> None:
    f = write_spec(PLAYBOOKS + MARKUP)
    r = mlops("run", str(f))
    assert r.code == 1, r
    no_traceback(r)
    assert "bad [/foo] [bold]" in r.stderr
    r = mlops("run", str(f), "-v", "--no-cache")  # -v shows the step's log, its traceback included
    assert r.code == 1 and "RuntimeError: bad [/foo] [bold]" in r.stderr, r
    r = mlops("run", str(f), "--json")
    assert r.json()["steps"]["ok"]["status"] == "succeeded"
    r = mlops("plan", str(f), env={"COLUMNS": "200"})  # parameters in the plan table are text too
    assert r.code == 0, r
    no_traceback(r)
    assert 'arg="bad [/foo] [bold]"' in r.stdout


def test_a_reader_that_goes_away_does_not_stop_the_run(write_spec: Callable[..., Path], home: Path) -> None:
    f = write_spec(PLAYBOOKS + PIPE)
    proc = spawn_mlops("run", str(f), "-p", "p", text=False)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0
    summary = json.loads(next(home.glob("runs/*/summary.json")).read_text())
    assert summary["status"] == "succeeded"


def test_unwritable_mlops_home_is_reported(
    mlops: Mlops, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    r = mlops("run", str(write_spec(PLAYBOOKS + PIPE)), env={"MLOPS_HOME": str(not_a_dir)})
    assert r.code == 2, r
    no_traceback(r)
    assert "MLOPS_HOME" in r.stderr


HELLO_SPEC = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: hello, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "localsteps:hello"}
  outputs: {y: {type: text}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: hi, version: 1.0.0}
spec: {steps: [{id: h, uses: playbook/hello}], outputs: {y: h.y}}
"""


def test_a_sandbox_of_more_than_a_thousand_grants_runs(mlops: Mlops, tmp_path: Path) -> None:
    """A spec folder holding MLOPS_HOME is granted entry by entry: with 1,100 entries the fork server holds
    descriptors above 1023, which select() refused ("filedescriptor out of range") and the step failed."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "localsteps.py").write_text("def hello():\n    return {'y': 'hello'}\n")
    (proj / "spec.yaml").write_text(HELLO_SPEC)
    for i in range(1100):
        (proj / f"data-{i:04d}").mkdir()
    r = mlops("run", str(proj / "spec.yaml"), "--json", env={"MLOPS_HOME": str(proj / "home")})
    assert r.code == 0, r
    assert r.json()["outputs"] == {"y": "hello"}


def test_the_working_directory_is_not_granted_when_spec_folders_come_first_on_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m` puts the working directory first on sys.path; the CLI then inserts spec folders before
    it. Run from `/`, the whole file system was granted (entry by entry around MLOPS_HOME)."""
    import sys

    from mlops_nocode.runtime import sandbox

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "path", [str(tmp_path / "spec"), str(work), *sys.path[1:]])
    folders = sandbox._python_folders()
    assert str(work) not in folders
    assert str(tmp_path / "spec") not in folders  # the first entry: a source, granted as such
