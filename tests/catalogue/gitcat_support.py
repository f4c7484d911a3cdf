"""Helpers for the Git catalogue tests: spec texts, a fresh repository, and git inspection."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlops_nocode.catalogue.git import Git
from mlops_nocode.catalogue.gitrepo import GitCatalogue
from mlops_nocode.catalogue.service import Catalogues
from mlops_nocode.compiler.check import check_doc
from mlops_nocode.spec import load_text

Doc = object


def playbook_text(name: str, version: str = "1.0.0", entrypoint: str = "m:f", description: str = "") -> str:
    return f"""apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: {name}, version: {version}, description: "{description}", labels: {{team: ml}}}}
spec:
  runtime: python
  python: {{entrypoint: "{entrypoint}"}}
  outputs: {{y: {{type: json}}}}
"""


def pipeline_text(name: str, uses: str, version: str = "1.0.0") -> str:
    return f"""apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: {name}, version: {version}}}
spec:
  steps:
    - {{id: a, uses: "{uses}"}}
"""


def doc(text: str):  # type: ignore[no-untyped-def]
    [d] = load_text(text)
    return d


def new_repo(path: Path, name: str = "t") -> GitCatalogue:
    path.mkdir(parents=True, exist_ok=True)
    Git(path).run("init", "-q", "-b", "main")
    return GitCatalogue(path, name)


def catalogues(*repos: GitCatalogue) -> Catalogues:
    return Catalogues(list(repos), check_doc, {r.name: "main" for r in repos})


def git(path: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True).stdout
