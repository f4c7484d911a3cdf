"""Writing to a Git catalogue: save (validate + write + one commit + version tags), delete, seed.

Every write holds an exclusive `flock` on `.git/mlops.lock` from reading the current state to tagging
the commit, so saves from threads (each opens its own descriptor) and processes are serialised: history
stays linear and no update is lost. Checks against a base version or commit happen under the lock.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import semver
import yaml

from mlops_nocode.catalogue.base import Chain, Doc, Index, Resolver
from mlops_nocode.catalogue.git import (
    CatalogueError,
    Conflict,
    Git,
    Identity,
    blob_id,
    default_identity,
    identity_env,
)
from mlops_nocode.catalogue.gitindex import Entry, Meta, entry_path, tag_name
from mlops_nocode.catalogue.gitrepo import GitCatalogue
from mlops_nocode.spec import Problem, SpecError
from mlops_nocode.spec.refs import KIND_OF_DOC, Kind

Validator = Callable[[Doc, Resolver], None]
"""Checks one document against the catalogue as it would be after the save; raises SpecError."""

_COMMIT_RE = re.compile(r"^[0-9a-f]{7,40}$")
MAX_MESSAGE = 10_000


@dataclass(frozen=True, slots=True)
class Saved:
    """The outcome of saving one document: `changed` is False when that exact version was already there."""

    ref: str
    repo: str
    commit: str
    changed: bool

    def to_json(self) -> dict[str, object]:
        return {"ref": self.ref, "repo": self.repo, "commit": self.commit, "changed": self.changed}


@contextmanager
def repo_lock(gitdir: Path) -> Iterator[None]:
    """An exclusive lock on one repository, across threads and processes (a fresh descriptor per call)."""
    fd = os.open(gitdir / "mlops.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def canonical_text(doc: Doc) -> str:
    """The YAML a document is stored as when no text of its own is given."""
    data = doc.model_dump(mode="json", by_alias=True, exclude_unset=True)
    ordered = {k: data[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in data}
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, width=110)


def check_refs(doc: Doc, resolver: Resolver) -> None:
    """The default validator: every ref a Pipeline/MetaPipeline uses resolves."""
    steps = getattr(doc.spec, "steps", [])
    problems = []
    for i, step in enumerate(steps):
        try:
            resolver.resolve(step.ref)
        except SpecError as e:
            problems += [replace(p, where=f"{doc.ref} > steps[{i}].uses") for p in e.problems]
    if problems:
        raise SpecError(problems)


def _message(message: str | None, default: str) -> str:
    text = (message or "").strip() or default
    if len(text) > MAX_MESSAGE or "\0" in text:
        raise CatalogueError(Problem("commit message too long or has NUL bytes", "--message", "shorten it"))
    return text + "\n"


def _check_writable(cat: GitCatalogue, kinds: set[Kind]) -> None:
    if not cat.writable:
        raise CatalogueError(
            Problem(
                f"catalogue repository {cat.name!r} is read-only", cat.name, "save to a writable repository"
            )
        )
    for kind in kinds:
        if kind not in cat.kinds:
            raise CatalogueError(
                Problem(
                    f"repository {cat.name!r} does not hold {kind}s",
                    cat.name,
                    "pick a repository configured for that kind (--repo)",
                )
            )


def _check_base(cat: GitCatalogue, kind: Kind, name: str, entry: Entry | None, base: str) -> None:
    """Refuse (Conflict) a save based on anything but the entry's current state."""
    where = f"{kind}/{name}"
    if semver.Version.is_valid(base):
        latest = entry.latest if entry else None
        if latest != base:
            raise Conflict(
                Problem(
                    f"stale save: based on {where}@{base}, but the latest version is {latest or 'none'}",
                    where,
                    "reload the latest version, re-apply your change and save again",
                )
            )
        return
    if not _COMMIT_RE.fullmatch(base):
        raise CatalogueError(
            Problem(f"invalid base {base!r}", "--base", "give a version (1.2.0) or a commit id")
        )
    spec = f"{base}:{entry_path(kind, name)}"
    if not cat.git.ok("cat-file", "-e", f"{base}^{{commit}}"):
        raise CatalogueError(
            Problem(
                f"--base {base}: no such commit in repository {cat.name!r}",
                "--base",
                "give a version (1.2.0) or the id of a commit of this repository "
                f"(`mlops catalogue history {where}`); sync first if it was made elsewhere",
            )
        )
    blob = cat.git.check_objects([spec])[spec]
    if blob != (entry.blob if entry else None):
        raise Conflict(
            Problem(
                f"stale save: {where} changed since commit {base[:12]}",
                where,
                "reload the latest version, re-apply your change and save again",
            )
        )


def _same_version(a: str, b: str) -> bool:
    """Equal in semver precedence: versions differing only by build metadata (`+...`) are one version."""
    return semver.Version.parse(a).compare(b) == 0


def _semver_max(versions: list[str]) -> semver.Version:
    return max((semver.Version.parse(v) for v in versions), key=lambda v: v)


def _latest_to_pass(versions: Iterable[str], version: str) -> semver.Version | None:
    """The version a new `version` must not be below: the highest release (a release may follow a
    pre-release of a later version: 1.2.1 after 1.3.0-rc.1), or for a pre-release the highest of all."""
    parsed = [semver.Version.parse(v) for v in versions if semver.Version.is_valid(v)]
    if not semver.Version.parse(version).prerelease:
        parsed = [v for v in parsed if not v.prerelease]
    return max(parsed) if parsed else None


def _plan_one(cat: GitCatalogue, doc: Doc, old_tags: dict[str, str]) -> bool:
    """Whether `doc` must be written: False if that exact version exists; Conflict if it exists with other
    content (build metadata does not make another version), or is below the latest. Versions are kept
    forever: a deleted entry (its tags are in `old_tags`) comes back only above its highest tagged version,
    or as that version unchanged (a restore)."""
    kind, name, version = KIND_OF_DOC[doc.kind], doc.metadata.name, doc.metadata.version
    entry = cat.entry(kind, name)
    where = f"{kind}/{name}@{version}"
    prefix = f"{kind}/{name}@"
    deleted = {
        t[len(prefix) :]: c
        for t, c in old_tags.items()
        if t.startswith(prefix) and semver.Version.is_valid(t[len(prefix) :])
    }
    known = list(entry.versions) if entry is not None else list(deleted)
    highest = _semver_max(known) if known else None
    same = [v for v in known if _same_version(v, version)]
    if same:
        found = version if version in same else same[0]
        if entry is not None:
            existing = cat.doc_at(entry, found)
        else:
            from mlops_nocode.spec import load_text

            existing = load_text(cat.blob_text(f"{deleted[found]}:{entry_path(kind, name)}"), where)[0]
        if existing != doc:
            also = f" as {found} (build metadata does not make another version)" if found != version else ""
            assert highest is not None
            raise Conflict(
                Problem(
                    f"{where} already exists{also} with different content (versions are immutable)",
                    f"{where} > metadata.version",
                    f"bump metadata.version, e.g. to {highest.bump_patch()}",
                )
            )
        if entry is not None:
            return False
    if entry is None and highest is not None and highest.compare(version) > 0:
        raise Conflict(
            Problem(
                f"{kind}/{name} was deleted and its versions up to {highest} stay reserved "
                "(versions are immutable)",
                f"{where} > metadata.version",
                f"save it as a version above {highest}, e.g. {highest.bump_patch()} "
                f"(or restore {highest} unchanged)",
            )
        )
    latest = _latest_to_pass(entry.versions if entry is not None else [], version)
    if latest is not None and semver.Version.parse(version).compare(latest) < 0:
        raise Conflict(
            Problem(
                f"{where} is older than the latest version {latest}",
                f"{where} > metadata.version",
                f"save it as a version above {latest}, e.g. {latest.bump_patch()}",
            )
        )
    return True


def _version_commit(cat: GitCatalogue, doc: Doc) -> str:
    """The commit that saved an existing version (its tag; else the last commit that changed its file)."""
    kind = KIND_OF_DOC[doc.kind]
    entry = cat.entry(kind, doc.metadata.name)
    if entry is not None and doc.metadata.version in entry.versions:
        commit = entry.versions[doc.metadata.version][1]
        if commit:
            return commit
    path = entry_path(kind, doc.metadata.name)
    return cat.git.run("log", "-1", "--format=%H", "HEAD", "--", path).strip() or cat.head()


def save_docs(
    cat: GitCatalogue,
    docs: list[tuple[Doc, str | None]],
    *,
    author: Identity | None = None,
    message: str | None = None,
    base: str | None = None,
    others: list[Resolver] | None = None,
    validator: Validator = check_refs,
) -> list[Saved]:
    """Save documents (each with its own YAML text, or None for a canonical dump) in one commit.

    Nothing is written unless every document passes: versions are immutable (same content again is a
    no-op, other content under an existing version is a Conflict), `base` (a version or commit, only
    with one document) must be current, and each document must pass `validator` against this
    repository plus `others` as they would be after the save.
    """
    if base is not None and len(docs) != 1:
        raise CatalogueError(Problem("a base applies to one document", "--base", "save one document"))
    seen: dict[tuple[str, str, str], Doc] = {}
    for doc, _ in docs:
        key = (doc.kind, doc.metadata.name, doc.metadata.version)
        if seen.setdefault(key, doc) != doc:
            raise CatalogueError(
                Problem(f"{doc.ref} is given twice with different content", str(doc.ref), "keep one")
            )
    _check_writable(cat, {KIND_OF_DOC[d.kind] for d, _ in docs})
    for doc, _ in docs:
        entry_path(KIND_OF_DOC[doc.kind], doc.metadata.name)
    with repo_lock(cat.gitdir):
        snap = cat.snapshot()
        new_names = [
            f"refs/tags/{KIND_OF_DOC[d.kind]}/{d.metadata.name}@*"
            for d, _ in docs
            if (KIND_OF_DOC[d.kind], d.metadata.name) not in snap.entries
        ]
        old_tags: dict[str, str] = {}
        if new_names:
            fmt = "%(refname:lstrip=2)%00%(objectname)%00%(*objectname)"
            for line in cat.git.run("for-each-ref", f"--format={fmt}", *new_names).splitlines():
                tag, obj, peeled = line.split("\0")
                old_tags[tag] = peeled or obj
        todo: dict[tuple[str, str, str], tuple[Doc, str | None]] = {}
        for doc, text in docs:
            if _key(doc) not in todo and _plan_one(cat, doc, old_tags):
                todo[_key(doc)] = (doc, text)
        if base is not None and todo:  # an identical retry is a no-op, whatever its base
            doc = docs[0][0]
            kind = KIND_OF_DOC[doc.kind]
            _check_base(cat, kind, doc.metadata.name, snap.entries.get((kind, doc.metadata.name)), base)
        after = Chain([Index([d for d, _ in docs]), cat, *(others or [])])
        problems: list[Problem] = []
        for doc, _ in docs:
            try:
                validator(doc, after)
            except SpecError as e:
                problems += e.problems
        if problems:
            raise SpecError(list(dict.fromkeys(problems)))
        if not todo:
            return [Saved(str(d.ref), cat.name, _version_commit(cat, d), False) for d, _ in docs]
        unchanged = {str(d.ref): _version_commit(cat, d) for d, _ in docs if _key(d) not in todo}
        commits = _commit_layers(cat, list(todo.values()), author, message, snap.head, old_tags)
    return [
        Saved(str(d.ref), cat.name, commits[str(d.ref)], True)
        if str(d.ref) in commits
        else Saved(str(d.ref), cat.name, unchanged[str(d.ref)], False)
        for d, _ in docs
    ]


def _key(doc: Doc) -> tuple[str, str, str]:
    return (doc.kind, doc.metadata.name, doc.metadata.version)


def _commit_layers(
    cat: GitCatalogue,
    items: list[tuple[Doc, str | None]],
    author: Identity | None,
    message: str | None,
    parent: str,
    keep_tags: dict[str, str],
) -> dict[str, str]:
    """Commit the documents: one commit when each entry has one new version, else one commit per layer
    (every entry's oldest new version first), so each version is tagged on a commit holding it. On failure
    everything is undone. Returns the commit of each ref."""
    per_entry: dict[tuple[str, str], list[tuple[Doc, str | None]]] = {}
    for doc, text in items:
        per_entry.setdefault((doc.kind, doc.metadata.name), []).append((doc, text))
    for group in per_entry.values():
        group.sort(key=lambda dt: semver.Version.parse(dt[0].metadata.version))
    depth = max(len(g) for g in per_entry.values())
    layers = [[g[i] for g in per_entry.values() if len(g) > i] for i in range(depth)]
    paths = {cat.path_of(KIND_OF_DOC[d.kind], d.metadata.name) for d, _ in items}
    before = {p: p.read_bytes() if p.exists() else None for p in paths}
    made: list[str] = []
    out: dict[str, str] = {}
    head = parent
    try:
        for layer in layers:
            refs = [str(d.ref) for d, _ in layer]
            default = (
                f"save {refs[0]}" if len(refs) == 1 else f"save {len(refs)} entries: {', '.join(refs[:20])}"
            )
            head = _commit(cat, layer, author, _message(message, default), head, keep_tags)
            made += [
                tag_name(KIND_OF_DOC[d.kind], d.metadata.name, d.metadata.version)
                for d, _ in layer
                if tag_name(KIND_OF_DOC[d.kind], d.metadata.name, d.metadata.version) not in keep_tags
            ]
            out.update(dict.fromkeys(refs, head))
    except BaseException:
        if made:  # earlier layers were committed: take them back too
            cat.git.run("update-ref", "--stdin", input="".join(f"delete refs/tags/{t}\n" for t in made))
            if parent:
                cat.git.run("reset", "-q", "--soft", parent, check=False)
            for p, data in before.items():
                cat.git.run("reset", "-q", "--", str(p.relative_to(cat.root.resolve())), check=False)
                if data is None:
                    p.unlink(missing_ok=True)
                else:
                    p.write_bytes(data)
        raise
    return out


def _commit(
    cat: GitCatalogue,
    items: list[tuple[Doc, str | None]],
    author: Identity | None,
    message: str,
    parent: str,
    keep_tags: dict[str, str],
) -> str:
    """Write, commit and tag (under the lock); on failure restore the files. Returns the new commit."""
    snap = cat.snapshot()
    written: list[tuple[Doc, str, bytes, bytes | None]] = []
    try:
        for doc, text in items:
            path = cat.path_of(KIND_OF_DOC[doc.kind], doc.metadata.name)
            data = (text if text is not None else canonical_text(doc)).encode("utf-8")
            before = path.read_bytes() if path.exists() else None
            path.parent.mkdir(parents=True, exist_ok=True)
            written.append((doc, str(path.relative_to(cat.root.resolve())), data, before))
            path.write_bytes(data)
        paths = [rel for _, rel, _, _ in written]
        env = identity_env(author or default_identity(), default_identity())
        cat.git.run("add", "--", *paths)
        cat.git.run(
            "commit", "-q", "--no-verify", "--allow-empty", "-F", "-", "--", *paths, input=message, env=env
        )
        head = cat.head()
        cat.tags()  # know the tags as they are before this save's (we hold the repository lock)
        names = (tag_name(KIND_OF_DOC[d.kind], d.metadata.name, d.metadata.version) for d, *_ in written)
        created = {tag: head for tag in names if tag not in keep_tags}
        cat.git.run(
            "update-ref", "--stdin", input="".join(f"create refs/tags/{t} {h}\n" for t, h in created.items())
        )
    except BaseException:
        _restore(cat.git, cat.root, written, parent)
        raise
    if keep_tags:  # an entry deleted earlier comes back with its old versions: let the index rebuild
        return head
    entries = dict(snap.entries)
    metas = dict(snap.metas)
    for doc, rel, data, _ in written:
        kind: Kind = KIND_OF_DOC[doc.kind]
        blob = blob_id(data)
        metas[blob] = Meta.parse(data, rel)
        old = entries.get((kind, doc.metadata.name))
        versions = dict(old.versions) if old else {}
        tag = tag_name(kind, doc.metadata.name, doc.metadata.version)
        versions[doc.metadata.version] = (blob, keep_tags.get(tag, head))
        entries[(kind, doc.metadata.name)] = Entry(kind, doc.metadata.name, blob, versions)
        snap.tagblobs[f"{head}:{rel}"] = blob
    tags = cat.note_tags(created)
    cat.adopt(replace(snap, head=head, tags=tags, entries=entries, metas=metas, tagblobs=dict(snap.tagblobs)))
    return head


def _restore(git: Git, root: Path, written: list[tuple[Doc, str, bytes, bytes | None]], parent: str) -> None:
    """Undo a failed save: the branch back at `parent` if it moved, files and index as they were."""
    if parent and git.run("rev-parse", "HEAD", check=False).strip() not in ("", parent):
        git.run("reset", "-q", "--soft", parent, check=False)
    for _, rel, _, before in written:
        git.run("reset", "-q", "--", rel, check=False)
        p = root / rel
        if before is None:
            p.unlink(missing_ok=True)
        else:
            p.write_bytes(before)


def delete_entry(
    cat: GitCatalogue,
    kind: Kind,
    name: str,
    *,
    author: Identity | None = None,
    message: str | None = None,
    referrers: Callable[[], list[str]] | None = None,
) -> str:
    """Remove an entry's file in one commit (its version tags stay: history, and immutability of those
    versions). Refuses while `referrers()` names anything. Returns the new commit."""
    _check_writable(cat, {kind})
    path = entry_path(kind, name)
    cat.path_of(kind, name)
    with repo_lock(cat.gitdir):
        if cat.entry(kind, name) is None:
            raise CatalogueError(
                Problem(
                    f"unknown {kind} {name!r} in repository {cat.name!r}", f"{kind}/{name}", "check the name"
                )
            )
        users = referrers() if referrers else []
        if users:
            raise Conflict(
                Problem(
                    f"{kind}/{name} is used by {', '.join(users[:10])}" + (" ..." if len(users) > 10 else ""),
                    f"{kind}/{name}",
                    "delete or change those first, or pass --force",
                )
            )
        env = identity_env(author or default_identity(), default_identity())
        cat.git.run("rm", "-q", "--", path)
        cat.git.run(
            "commit",
            "-q",
            "--no-verify",
            "-F",
            "-",
            "--",
            path,
            input=_message(message, f"delete {kind}/{name}"),
            env=env,
        )
        return cat.head()
