"""The step cache key holds the code a step can depend on: real runs through the real `mlops` command.

Each test runs a pipeline, changes (or leaves) one piece of code or one file, and runs it again: a change
must rerun the step (and give the new result), no change must reuse the cached outputs.
"""

from __future__ import annotations

import os
import shutil
import stat
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult

Mlops = Callable[..., CliResult]

PYTHON_STEP = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: py, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "my_steps:run"}
  outputs: {y: {type: json}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: p, version: 1.0.0}
spec:
  steps: [{id: a, uses: playbook/py}]
  outputs: {y: a.y}
"""

COMMAND_STEP = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: cmd, version: 1.0.0}
spec:
  runtime: command
  command:
    argv: [python3, "${{ spec.dir }}/script.py", "${{ outputs.r }}"]
    outputs: {r: r.json}
  outputs: {r: {type: json}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: p, version: 1.0.0}
spec:
  steps: [{id: b, uses: playbook/cmd}]
  outputs: {y: b.r}
"""


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def run(mlops: Mlops, spec: Path, **kw: Any) -> tuple[Any, bool]:
    """Run the spec; return its output `y` and whether its one step came from the cache."""
    r = mlops("run", str(spec), "--json", **kw)
    assert r.code == 0, r
    summary = r.json()
    (step,) = summary["steps"].values()
    return summary["outputs"]["y"], step["cached"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def test_python_step_reruns_when_a_helper_module_beside_it_changes(mlops: Mlops, project: Path) -> None:
    write(
        project,
        {
            "spec.yaml": PYTHON_STEP,
            "my_steps.py": "from helper import value\n\ndef run():\n    return {'y': value()}\n",
            "helper.py": "def value():\n    return 1\n",
            "pkg/__init__.py": "",
            "pkg/deep.py": "FACTOR = 1\n",
        },
    )
    spec = project / "spec.yaml"
    assert run(mlops, spec) == (1, False)
    assert run(mlops, spec) == (1, True)  # nothing changed: a hit
    write(project, {"helper.py": "def value():\n    return 2\n"})
    assert run(mlops, spec) == (2, False)
    assert run(mlops, spec) == (2, True)
    write(project, {"pkg/deep.py": "FACTOR = 2\n"})  # a package beside it (importable by the step)
    assert run(mlops, spec) == (2, False)
    write(project, {"notes.txt": "not code"})  # a file that is no module: not part of the key
    assert run(mlops, spec) == (2, True)


def test_command_step_reruns_when_its_script_or_a_module_beside_it_changes(
    mlops: Mlops, project: Path
) -> None:
    write(
        project,
        {
            "spec.yaml": COMMAND_STEP,
            "script.py": """
                import json, sys
                from helper import value
                open(sys.argv[1], "w").write(json.dumps(value() * 10))
            """,
            "helper.py": "def value():\n    return 1\n",
        },
    )
    spec = project / "spec.yaml"
    assert run(mlops, spec) == (10, False)
    assert run(mlops, spec) == (10, True)
    write(project, {"helper.py": "def value():\n    return 3\n"})
    assert run(mlops, spec) == (30, False)
    script = (project / "script.py").read_text().replace("* 10", "* 100")
    write(project, {"script.py": script})
    assert run(mlops, spec) == (300, False)
    assert run(mlops, spec) == (300, True)


def test_declared_files_are_part_of_the_key_and_read_under_spec_dir(mlops: Mlops, project: Path) -> None:
    spec_text = """
        apiVersion: mlops-nocode/v1
        kind: Playbook
        metadata: {name: conf, version: 1.0.0}
        spec:
          runtime: command
          files: [conf/*.json]
          command:
            argv: [python3, -c, "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])",
                   "${{ spec.dir }}/conf/settings.json", "${{ outputs.r }}"]
            outputs: {r: r.json}
          outputs: {r: {type: json}}
        ---
        apiVersion: mlops-nocode/v1
        kind: Pipeline
        metadata: {name: p, version: 1.0.0}
        spec:
          steps: [{id: c, uses: playbook/conf}]
          outputs: {y: c.r}
    """
    write(project, {"spec.yaml": spec_text, "conf/settings.json": '{"depth": 1}'})
    spec = project / "spec.yaml"
    assert run(mlops, spec) == ({"depth": 1}, False)
    assert run(mlops, spec) == ({"depth": 1}, True)
    write(project, {"conf/settings.json": '{"depth": 2}'})
    assert run(mlops, spec) == ({"depth": 2}, False)
    write(project, {"conf/other.json": "{}"})  # a new file the pattern matches
    assert run(mlops, spec) == ({"depth": 2}, False)


def test_executable_on_path_is_part_of_the_key(mlops: Mlops, project: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "my-tool"
    tool.write_text('#!/bin/sh\necho 1 > "$1"\n')
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    spec_text = COMMAND_STEP.replace(
        '[python3, "${{ spec.dir }}/script.py", "${{ outputs.r }}"]', "[my-tool, r.json]"
    )
    write(project, {"spec.yaml": spec_text})
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    spec = project / "spec.yaml"
    assert run(mlops, spec, env=env) == (1, False)
    assert run(mlops, spec, env=env) == (1, True)
    tool.write_text('#!/bin/sh\necho 22 > "$1"\n')  # an upgraded tool: another size and time
    assert run(mlops, spec, env=env) == (22, False)


def test_moving_the_spec_folder_keeps_the_cache(mlops: Mlops, project: Path, tmp_path: Path) -> None:
    """The key holds contents and names relative to the spec's folder, not where the folder is."""
    write(
        project, {"spec.yaml": COMMAND_STEP, "script.py": SCRIPT, "helper.py": "def value():\n    return 4\n"}
    )
    assert run(mlops, project / "spec.yaml") == (40, False)
    moved = tmp_path / "elsewhere" / "project"
    moved.parent.mkdir()
    shutil.move(project, moved)
    assert run(mlops, moved / "spec.yaml") == (40, True)


SCRIPT = """
import json, sys
from helper import value
open(sys.argv[1], "w").write(json.dumps(value() * 10))
"""


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ("[../outside.txt]", "leaves the spec file's folder"),
        ("[/etc/passwd]", "is absolute"),
        ("[missing.txt]", "'missing.txt' matches no file"),
        ("[link.txt]", "link.txt leads outside the playbook's folder"),
    ],
)
def test_declared_files_stay_inside_the_spec_folder(
    mlops: Mlops, project: Path, tmp_path: Path, files: str, error: str
) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    (project / "link.txt").symlink_to(tmp_path / "outside.txt")
    spec_text = COMMAND_STEP.replace("  runtime: command\n", f"  runtime: command\n  files: {files}\n")
    write(project, {"spec.yaml": spec_text, "script.py": SCRIPT, "helper.py": "def value():\n    return 1\n"})
    for cmd in ("validate", "run"):
        r = mlops(cmd, str(project / "spec.yaml"))
        assert r.code == 2, r
        assert error in r.stderr and "spec.files[0]" in r.stderr.replace("\n", ""), r


def test_validate_checks_the_files_of_a_playbook_no_pipeline_uses(mlops: Mlops, project: Path) -> None:
    playbook_only = COMMAND_STEP.split("---")[0].replace(
        "  runtime: command\n", "  runtime: command\n  files: [nope.py]\n"
    )
    write(project, {"pb.yaml": playbook_only})
    r = mlops("validate", str(project / "pb.yaml"))
    assert r.code == 2, r
    assert "'nope.py' matches no file" in r.stderr


def test_a_playbook_shipping_files_is_not_saved_to_a_catalogue_without_them(
    mlops: Mlops, project: Path
) -> None:
    """A catalogue stores documents only: saving one that needs files beside it would break its runs."""
    playbook_only = COMMAND_STEP.split("---")[0].replace(
        "  runtime: command\n", "  runtime: command\n  files: [script.py]\n"
    )
    write(project, {"pb.yaml": playbook_only, "script.py": SCRIPT})
    r = mlops("catalogue", "save", str(project / "pb.yaml"))
    assert r.code == 2, r
    assert "cannot be saved to a catalogue" in r.stderr and "playbook/cmd@1.0.0 > spec.files" in r.stderr
    assert "playbook/cmd" not in mlops("catalogue", "list", "--kind", "playbook").stdout


def test_what_the_key_reads_is_bounded(tmp_path: Path) -> None:
    """A parameter can name any path in argv: the key never blocks on it (a FIFO, /proc, /dev) and never
    reads a big file whole (it is keyed by size and times)."""
    import threading

    from mlops_nocode.runtime.codekey import MAX_HASHED_BYTES, file_digest

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(MAX_HASHED_BYTES + 1)  # sparse: no disk used
    results: dict[str, str] = {}

    def digest_all() -> None:
        for path in (fifo, Path("/proc/self/status"), Path("/dev/zero"), big):
            results[str(path)] = file_digest(path)

    worker = threading.Thread(target=digest_all, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), f"blocked after {results}"
    assert results[str(fifo)] == results["/proc/self/status"] == results["/dev/zero"] == "not-a-regular-file"
    assert results[str(big)].startswith(f"large:{MAX_HASHED_BYTES + 1}:")
