"""Helpers of the Ansible step tests: specs written to a folder (so playbooks have one), compiled with the
built-in catalogue behind them, and run by a real Runner."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from mlops_nocode.catalogue import catalogue_for, load_folder
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner, RunResult

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
