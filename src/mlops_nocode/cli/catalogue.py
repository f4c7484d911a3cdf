"""`mlops catalogue ...`: the Git-backed catalogues (list, show, history, diff, save, delete, sync, ...)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mlops_nocode.catalogue.service import Catalogues, parse_ref
from mlops_nocode.cli import catalogue_repos
from mlops_nocode.cli.report import call as _call
from mlops_nocode.cli.report import err, fail, out
from mlops_nocode.spec import Problem, SpecError
from mlops_nocode.spec.refs import KINDS, Kind

app = typer.Typer(
    help="Git-backed catalogues of playbooks, pipelines and meta-pipelines.", no_args_is_help=True
)
app.add_typer(catalogue_repos.app, name="repos")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]
RepoOpt = Annotated[str | None, typer.Option("--repo", "-r", help="Only this configured repository")]
AuthorOpt = Annotated[
    str | None, typer.Option("--author", help="Commit author 'Name <email>' (default: git config)")
]
MessageOpt = Annotated[str | None, typer.Option("--message", "-m", help="Commit message")]


def _catalogues() -> Catalogues:
    from mlops_nocode.compiler.check import check_doc

    return Catalogues.configured(check_doc)


def _kind(kind: str | None, as_json: bool = False) -> Kind | None:
    if kind is None:
        return None
    k = kind.lower().rstrip("s")
    if k not in KINDS:
        fail([Problem(f"unknown kind {kind!r}", "--kind", f"use one of {', '.join(KINDS)}")], as_json)
    return k


def _labels(items: list[str] | None, as_json: bool = False) -> dict[str, str]:
    out_: dict[str, str] = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep or not k:
            fail([Problem(f"invalid --label {item!r}", "--label", "write --label KEY=VALUE")], as_json)
        out_[k] = v
    return out_


def _emit(data: Any) -> None:
    print(json.dumps(data, indent=2))


@app.command("list")
def list_(
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="playbook, pipeline or metapipeline")
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Text in the name or description")
    ] = None,
    label: Annotated[list[str] | None, typer.Option("--label", "-l", help="KEY=VALUE (repeatable)")] = None,
    repo: RepoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List entries (latest version each), filtered by kind, label or free text."""
    k, labels = _kind(kind, as_json), _labels(label, as_json)
    items = _call(lambda: _catalogues().listing(k, search, labels, repo), as_json)
    if as_json:
        _emit([i.to_json() for i in items])
        return
    t = Table(title=f"{len(items)} entries")
    for col in ("ref", "versions", "repo", "description"):
        t.add_column(col, overflow="fold")
    for i in items:
        t.add_row(f"{i.kind}/{i.name}@{i.latest}", str(len(i.versions)), i.repo, i.description)
    out.print(t)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="KIND/NAME[@VERSION|RANGE]")],
    repo: RepoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print one version of an entry as stored (YAML); `--json` adds versions and what uses it."""

    def go() -> dict[str, Any]:
        cats = _catalogues()
        r = parse_ref(ref)
        found, version = cats.find(r, repo)
        e = found.entry(r.kind, r.name)
        assert e is not None
        uses = [u.to_json() for u in cats.used_by(r.kind, r.name)]
        return {
            "ref": f"{r.kind}/{r.name}@{version}",
            "repo": found.name,
            "version": version,
            "versions": e.sorted_versions(),
            "text": found.text_at(e, version),
            "used_by": uses,
        }

    data = _call(go, as_json)
    if as_json:
        _emit(data)
    else:
        sys.stdout.write(data["text"])
        err.print(f"[dim]{data['ref']} from {data['repo']}; versions: {', '.join(data['versions'])}[/]")


@app.command()
def history(
    ref: Annotated[str, typer.Argument(help="KIND/NAME")], repo: RepoOpt = None, as_json: JsonOpt = False
) -> None:
    """Every commit that changed an entry: version, commit, author, date, message."""

    def go() -> tuple[str, list[Any]]:
        cats = _catalogues()
        r = parse_ref(ref)
        holders = [cats.repo(repo)] if repo else [c for c in cats.repos if c.entry(r.kind, r.name)]
        if not holders:  # a deleted entry keeps its history
            holders = [c for c in cats.repos if c.history(r.kind, r.name)]
        target = holders[0] if holders else cats.find(r)[0]
        return target.name, target.history(r.kind, r.name)

    name, changes = _call(go, as_json)
    if as_json:
        _emit([c.to_json() | {"repo": name} for c in changes])
        return
    t = Table(title=f"{ref} in {name}")
    for col in ("version", "commit", "author", "date", "message"):
        t.add_column(col, overflow="fold")
    for c in changes:
        t.add_row(c.version or "-", c.commit[:12], c.author, c.date, c.message)
    out.print(t)


@app.command()
def diff(
    ref: Annotated[str, typer.Argument(help="KIND/NAME")],
    from_: Annotated[str, typer.Argument(metavar="FROM", help="Version (or range) to diff from")],
    to: Annotated[str, typer.Argument(help="Version (or range) to diff to")],
    repo: RepoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Unified diff between two versions of an entry."""

    def go() -> str:
        cats = _catalogues()
        r = parse_ref(ref)
        target = cats.repo(repo) if repo else cats.find(r)[0]
        return target.diff(r.kind, r.name, from_, to)

    text = _call(go, as_json)
    if as_json:
        _emit({"ref": ref, "from": from_, "to": to, "diff": text})
    else:
        sys.stdout.write(text)


@app.command("used-by")
def used_by(ref: Annotated[str, typer.Argument(help="KIND/NAME")], as_json: JsonOpt = False) -> None:
    """Which entries (at which versions) reference this one, and the version each resolves to."""

    def go() -> list[Any]:
        r = parse_ref(ref)
        return _catalogues().used_by(r.kind, r.name)

    uses = _call(go, as_json)
    if as_json:
        _emit([u.to_json() for u in uses])
        return
    t = Table(title=f"used by ({len(uses)})")
    for col in ("entry", "repo", "uses", "resolves to"):
        t.add_column(col)
    for u in uses:
        t.add_row(u.by, u.repo, u.uses, u.resolves_to or "(nothing)")
    out.print(t)


def _saved(results: list[Any], as_json: bool) -> None:
    if as_json:
        _emit({"status": "saved", "saved": [s.to_json() for s in results]})
        return
    for s in results:
        mark = "[green]✓[/] saved" if s.changed else "[dim]=[/] unchanged"
        err.print(f"{mark} {s.ref} in {s.repo} ({s.commit[:12]})")


@app.command()
def save(
    files: Annotated[list[str], typer.Argument(help="Spec files ('-' reads stdin)")],
    repo: RepoOpt = None,
    author: AuthorOpt = None,
    message: MessageOpt = None,
    base: Annotated[
        str | None, typer.Option("--base", help="Version or commit the edit started from (stale = conflict)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate and save specs: one commit; versions are immutable (bump metadata.version to change one)."""

    def go() -> list[Any]:
        cats = _catalogues()
        if files == ["-"]:
            from mlops_nocode.spec import load_text

            text = sys.stdin.read()
            docs = load_text(text, "<stdin>")
            items = [(d, text if len(docs) == 1 else None) for d in docs]
            return cats.save(items, repo=repo, author=author, message=message, base=base)
        for f in files:
            if Path(f).is_dir():
                raise SpecError(
                    Problem(
                        "is a folder",
                        f,
                        "give spec files, or use `mlops catalogue import FOLDER` to save every spec in it",
                    )
                )
            if not Path(f).is_file():
                raise SpecError(Problem("no such file", f, "give a spec file (or '-' for stdin)"))
        return cats.import_path(
            [Path(f) for f in files], repo=repo, author=author, message=message, base=base
        )

    _saved(_call(go, as_json), as_json)


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="Folders or (multi-document) YAML files")],
    repo: RepoOpt = None,
    author: AuthorOpt = None,
    message: MessageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import every spec of folders or files, validated together, in one commit per repository."""
    for p in paths:
        if not p.exists():
            fail([Problem("no such file or folder", str(p), "check the path")], as_json)
    _saved(
        _call(lambda: _catalogues().import_path(paths, repo=repo, author=author, message=message), as_json),
        as_json,
    )


@app.command()
def export(
    out_path: Annotated[
        Path, typer.Argument(metavar="OUT", help="A folder, or a .yaml file (multi-document)")
    ],
    kind: Annotated[str | None, typer.Option("--kind", "-k", help="Only this kind")] = None,
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="Every version, not only the latest")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export entries (the first repository holding each name wins) to a folder or one YAML file."""
    k = _kind(kind, as_json)
    refs = _call(lambda: _catalogues().export(out_path, k, all_versions), as_json)
    if as_json:
        _emit({"status": "exported", "out": str(out_path), "refs": refs})
    else:
        err.print(f"[green]✓[/] exported {len(refs)} entr{'y' if len(refs) == 1 else 'ies'} to {out_path}")


@app.command()
def delete(
    ref: Annotated[str, typer.Argument(help="KIND/NAME")],
    force: Annotated[bool, typer.Option("--force", help="Delete even if other entries use it")] = False,
    repo: RepoOpt = None,
    author: AuthorOpt = None,
    message: MessageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete an entry in one commit (refused while something uses it, unless --force)."""

    def go() -> str:
        return _catalogues().delete(parse_ref(ref), repo=repo, force=force, author=author, message=message)

    commit = _call(go, as_json)
    if as_json:
        _emit({"status": "deleted", "ref": ref, "commit": commit})
    else:
        err.print(f"[green]✓[/] deleted {ref} ({commit[:12]})")


@app.command("sync")
def sync_(
    repo: Annotated[str | None, typer.Argument(help="Repository name (default: all with a remote)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Pull (fast-forward only) and push; on divergence stop, change nothing and say how to resolve."""
    results = _call(lambda: _catalogues().sync(repo), as_json)
    if as_json:
        _emit({"status": "synced", "repos": [r.to_json() for r in results]})
        return
    if not results:
        err.print("no repository has a remote (add one: mlops catalogue repos add NAME --url URL)")
    for r in results:
        what = {"pulled": f"pulled {r.pulled} commit(s)", "pushed": f"pushed {r.pushed} commit(s)"}
        err.print(f"[green]✓[/] {r.repo}: {what.get(r.action, 'up to date')} ({r.head[:12]})")
        if r.retagged:
            err.print(f"  moved version tag(s) onto the branch: {', '.join(r.retagged)}")
        if r.note:
            err.print(f"  {r.note}")
