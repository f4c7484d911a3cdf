"""/api/v1/catalogue: list, show, history, diff, used-by, save (409 when stale), delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, status

from mlops_nocode.api import examples as E
from mlops_nocode.api.auth import Principal
from mlops_nocode.api.schemas import ErrorOut, SaveRequest
from mlops_nocode.api.state import Gateway, gateway
from mlops_nocode.catalogue.git import CatalogueError, Identity
from mlops_nocode.catalogue.service import Catalogues, parse_ref
from mlops_nocode.runs.compiling import inline_docs
from mlops_nocode.spec import Problem, SpecError, load_text
from mlops_nocode.spec.refs import KINDS, Kind, RefError, VersionRange

router = APIRouter(prefix="/catalogue", tags=["catalogue"])
KEY_EMAIL_DOMAIN = "api-key.mlops-nocode.invalid"  # commit e-mails of API keys (a reserved TLD: RFC 2606)
ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "stale base, immutable version, or entry in use"},
    422: {"description": "invalid, with located problems", "model": ErrorOut},
}


def _catalogues() -> Catalogues:
    from mlops_nocode.compiler.check import check_doc

    return Catalogues.configured(check_doc)


def _kind(kind: str) -> Kind:
    k = kind.lower().rstrip("s")
    if k not in KINDS:
        raise SpecError(Problem(f"unknown kind {kind!r}", "kind", f"use one of {', '.join(KINDS)}"))
    return k


def _version(value: str, where: str) -> None:
    """A version or range (`1.0.0`, `^1.2`, `latest`), or a located problem."""
    try:
        if not value.strip() or any(c.isspace() for c in value):
            raise RefError(f"invalid version constraint {value!r}")
        VersionRange.parse(value)
    except RefError as e:
        raise SpecError(
            Problem(str(e), where, "give a version (1.0.0) or a range (^1.2, ~1.2.3, latest)")
        ) from None


def _labels(values: list[str]) -> dict[str, str]:
    """`key=value` label filters (all must match), or a located problem naming the bad one."""
    out: dict[str, str] = {}
    for i, value in enumerate(values):
        key, sep, wanted = value.partition("=")
        if not sep or not key.strip() or len(value) > 200:
            raise SpecError(
                Problem(
                    f"invalid label filter {value[:200]!r}",
                    f"query.label[{i}]",
                    "write KEY=VALUE (e.g. label=task=classification), at most 200 characters",
                )
            )
        out[key.strip()] = wanted.strip()
    return out


@router.get("", responses=E.json_example([E.CATALOGUE_ENTRY]))
def list_entries(
    kind: str | None = Query(default=None),
    search: str | None = Query(default=None, max_length=200),
    label: list[str] = Query(default=[], max_length=20, description="KEY=VALUE; repeat: all must match"),
) -> list[dict[str, Any]]:
    """Entries (latest version each), filtered by kind, free text and labels (`label=KEY=VALUE`,
    repeatable: every one must match)."""
    found = _catalogues().listing(_kind(kind) if kind else None, search, _labels(label) or None)
    return [i.to_json() for i in found]


@router.get("/{kind}/{name}", responses={**ERRORS, **E.json_example(E.CATALOGUE_SHOW)})
def show(kind: str, name: str, version: str | None = Query(default=None, max_length=64)) -> dict[str, Any]:
    """One version (default: latest) as stored, with every version and what uses the entry."""
    cats = _catalogues()
    r = parse_ref(f"{_kind(kind)}/{name}" + (f"@{version}" if version else ""))
    found, v = cats.find(r)
    e = found.entry(r.kind, r.name)
    assert e is not None
    return {
        "ref": f"{r.kind}/{r.name}@{v}",
        "repo": found.name,
        "version": v,
        "versions": e.sorted_versions(),
        "text": found.text_at(e, v),
        "used_by": [u.to_json() for u in cats.used_by(r.kind, r.name)],
    }


@router.get("/{kind}/{name}/history", responses={**ERRORS, **E.json_example([E.CHANGE])})
def history(kind: str, name: str) -> list[dict[str, Any]]:
    """Every commit that changed the entry: version, commit, author, date, message."""
    cats = _catalogues()
    r = parse_ref(f"{_kind(kind)}/{name}")
    holders = [c for c in cats.repos if c.entry(r.kind, r.name)]
    target = holders[0] if holders else cats.find(r)[0]
    return [c.to_json() | {"repo": target.name} for c in target.history(r.kind, r.name)]


@router.get("/{kind}/{name}/diff", responses={**ERRORS, **E.json_example(E.DIFF)})
def diff(
    kind: str, name: str, from_: str = Query(alias="from", max_length=64), to: str = Query(max_length=64)
) -> dict[str, Any]:
    """Unified diff between two versions (or ranges); an invalid one is a 422 located at `query.from` or
    `query.to`."""
    cats = _catalogues()
    r = parse_ref(f"{_kind(kind)}/{name}")
    for value, where in ((from_, "query.from"), (to, "query.to")):
        _version(value, where)
    return {"ref": str(r), "from": from_, "to": to, "diff": cats.find(r)[0].diff(r.kind, r.name, from_, to)}


@router.get("/{kind}/{name}/used-by", responses={**ERRORS, **E.json_example([E.USED_BY])})
def used_by(kind: str, name: str) -> list[dict[str, Any]]:
    """Which entries, at which versions, use this one."""
    return [u.to_json() for u in _catalogues().used_by(_kind(kind), name)]


def _committer(request: Request, gw: Gateway) -> tuple[Identity, str]:
    """The commit identity of the API key calling (a session or token counts as its key), and the
    `API-Key:` trailer naming it: the history says which key made a change, whatever the body claims."""
    principal: Principal = request.state.principal
    key = gw.keys.get(principal.subject)
    name = key.name if key else "unknown"
    ident = Identity(f"{name} (API key {principal.subject})", f"key-{principal.subject}@{KEY_EMAIL_DOMAIN}")
    return ident, f"API-Key: {principal.subject} ({name})"


def _message(text: str, trailers: list[str]) -> str:
    """The commit message with our trailers as its last paragraph (so a trailer written in the message
    itself is never the one git reads)."""
    return f"{text.rstrip()}\n\n" + "\n".join(trailers)


def _stated_author(author: str | None) -> list[str]:
    """The author the caller states, kept as an unverified `Stated-Author:` trailer (never the author)."""
    if author is None:
        return []
    try:
        return [f"Stated-Author: {Identity.parse(author)}"]
    except CatalogueError as e:
        raise SpecError(
            [
                Problem(p.what, "body.author", "write 'Name <email@example.org>' or a bare name")
                for p in e.problems
            ]
        ) from None


@router.post("", status_code=status.HTTP_201_CREATED, responses={**ERRORS, **E.json_example(E.SAVED, 201)})
def save(body: SaveRequest, request: Request, gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """Validate and save documents in one commit. Versions are immutable; a stale `base` answers 409.

    The commit's author is the API key that sent it (`NAME (API key ID)`, and an `API-Key:` trailer);
    `author`, when given, is recorded as an unverified `Stated-Author:` trailer."""
    if (body.spec is None) == (body.text is None):
        raise SpecError(Problem("give exactly one of spec or text", "body", "send the documents once"))
    if body.text is not None:
        docs = load_text(body.text, "text")
        items = [(d, body.text if len(docs) == 1 else None) for d in docs]
    else:
        assert body.spec is not None
        items = [(d, None) for d in inline_docs(body.spec, "spec")]
    ident, trailer = _committer(request, gw)
    refs = [str(d.ref) for d, _ in items]
    default = f"save {refs[0]}" if len(refs) == 1 else f"save {len(refs)} entries: {', '.join(refs[:20])}"
    message = _message(body.message or default, [trailer, *_stated_author(body.author)])
    saved = _catalogues().save(items, repo=body.repo, author=ident, message=message, base=body.base)
    return {"status": "saved", "saved": [s.to_json() for s in saved]}


@router.delete("/{kind}/{name}", responses={**ERRORS, **E.json_example(E.DELETED)})
def delete(
    kind: str, name: str, request: Request, force: bool = Query(default=False), gw: Gateway = Depends(gateway)
) -> dict[str, Any]:
    """Delete the entry (history and tags stay); refused while another entry uses it unless `force`.
    The commit names the API key that asked, as a save's does."""
    ref = parse_ref(f"{_kind(kind)}/{name}")
    ident, trailer = _committer(request, gw)
    commit = _catalogues().delete(
        ref, force=force, author=ident, message=_message(f"delete {ref}", [trailer])
    )
    return {"status": "deleted", "commit": commit}
