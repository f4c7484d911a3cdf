"""`mlops catalogue repos add|list|remove`: which Git repositories hold the catalogues."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mlops_nocode.catalogue.repos import RepoConfig, add_repo, load_config, remove_repo
from mlops_nocode.cli.report import call, err, fail, out
from mlops_nocode.spec import Problem
from mlops_nocode.spec.refs import KINDS

app = typer.Typer(
    help="Configure the catalogue repositories (MLOPS_HOME/catalogues.yaml).", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="A short name (DNS-1123 label)")],
    path: Annotated[str | None, typer.Option("--path", help="A local Git work tree")] = None,
    url: Annotated[str | None, typer.Option("--url", help="A remote (cloned under MLOPS_HOME)")] = None,
    branch: Annotated[str, typer.Option("--branch", help="Branch to use")] = "main",
    kind: Annotated[
        list[str] | None, typer.Option("--kind", "-k", help="Kinds it holds (default: all)")
    ] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="Never save to it")] = False,
    priority: Annotated[int, typer.Option("--priority", help="Higher is consulted first")] = 50,
    init: Annotated[bool, typer.Option("--init", help="git init --path when it is not a repository")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register a repository (clone a --url, or use a local --path)."""
    kinds = [k.lower().rstrip("s") for k in kind or KINDS]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        fail([Problem(f"unknown kind {bad[0]!r}", "--kind", f"use {', '.join(KINDS)}")], as_json)

    def go() -> RepoConfig:
        try:
            cfg = RepoConfig(
                name=name,
                path=path,
                url=url,
                branch=branch,
                kinds=kinds,
                writable=not read_only,
                priority=priority,
            )
        except ValueError as e:
            raise_problem(str(e))
        return add_repo(cfg, init=init)

    repo = call(go, as_json)
    if as_json:
        print(json.dumps({"status": "added", "repo": repo.model_dump()}, indent=2))
    else:
        err.print(f"[green]✓[/] added repository {repo.name} ({repo.work_tree()})")


def raise_problem(msg: str) -> None:
    from mlops_nocode.catalogue.git import CatalogueError

    raise CatalogueError(Problem(msg.splitlines()[-1] if msg else msg, "repos add", "see --help"))


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """The configured repositories, highest priority first."""
    repos = call(load_config, as_json)
    if as_json:
        print(json.dumps([r.model_dump() | {"work_tree": str(r.work_tree())} for r in repos], indent=2))
        return
    t = Table(title="catalogue repositories")
    for col in ("name", "priority", "source", "branch", "kinds", "mode"):
        t.add_column(col, overflow="fold")
    for r in repos:
        t.add_row(
            r.name,
            str(r.priority),
            r.url or str(r.work_tree()),
            r.branch,
            ", ".join(r.kinds),
            "read-write" if r.writable else "read-only",
        )
    out.print(t)


@app.command()
def remove(name: Annotated[str, typer.Argument(help="Repository name")], as_json: JsonOpt = False) -> None:
    """Unregister a repository (its files are left where they are)."""
    repo = call(lambda: remove_repo(name), as_json)
    if as_json:
        print(json.dumps({"status": "removed", "repo": repo.model_dump()}, indent=2))
    else:
        err.print(f"[green]✓[/] removed repository {repo.name} (files kept in {repo.work_tree()})")
