"""One Git repository as a catalogue: resolves refs (a `Resolver`), lists, shows, history and diffs.

Layout: `playbooks/NAME.yaml`, `pipelines/NAME.yaml`, `metapipelines/NAME.yaml` hold the latest version of
each entry; every saved version is tagged `KIND/NAME@VERSION` on the commit that wrote it, and older
versions are read from those commits. Writes are in `gitwrite`.
"""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass
from pathlib import Path

from mlops_nocode.catalogue.base import Doc, no_matching_version, unknown_name
from mlops_nocode.catalogue.git import CatalogueError, Git
from mlops_nocode.catalogue.gitindex import (
    KIND_DIRS,
    Entry,
    Meta,
    Snapshot,
    build,
    digest_tags,
    entry_path,
    load_cache,
    read_head,
    read_tags,
    save_cache,
    tags_stamp,
)
from mlops_nocode.spec import Problem, Ref, SpecError, load_text
from mlops_nocode.spec.refs import KINDS, Kind


@dataclass(frozen=True, slots=True)
class Listed:
    """One entry as listed: its latest version and what the index knows of it."""

    repo: str
    kind: Kind
    name: str
    latest: str
    versions: list[str]
    description: str
    labels: dict[str, str]

    def to_json(self) -> dict[str, object]:
        return {
            "ref": f"{self.kind}/{self.name}@{self.latest}",
            "repo": self.repo,
            "kind": self.kind,
            "name": self.name,
            "latest": self.latest,
            "versions": self.versions,
            "description": self.description,
            "labels": self.labels,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """One commit in the history of an entry."""

    commit: str
    version: str
    author: str
    date: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("commit", "version", "author", "date", "message")}


def open_repository(root: Path) -> tuple[Path, Path]:
    """The work tree and git dir of a non-bare repository rooted at `root`, or a clear problem."""
    where = str(root)
    if not root.is_dir():
        raise CatalogueError(Problem("catalogue repository not found", where, "check the path in the config"))
    git = Git(root)
    proc = git.run_bytes("rev-parse", "--is-bare-repository", "--absolute-git-dir", check=False)
    lines = proc.stdout.decode(errors="replace").splitlines()
    if proc.returncode != 0 or len(lines) < 2:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise CatalogueError(
            Problem(
                f"not a Git repository ({msg[0] if msg else 'git rev-parse failed'})",
                where,
                "point the catalogue at a Git work tree, or create one with "
                "`mlops catalogue repos add NAME --path PATH --init`",
            )
        )
    top_proc = git.run_bytes("rev-parse", "--show-toplevel", check=False)
    if lines[0] == "true" or top_proc.returncode != 0:
        raise CatalogueError(
            Problem(
                "a bare repository has no work tree to hold the catalogue",
                where,
                "add it as a remote instead: `mlops catalogue repos add NAME --url PATH`",
            )
        )
    top, gitdir = Path(top_proc.stdout.decode().strip()), Path(lines[1])
    if top.resolve() != root.resolve():
        raise CatalogueError(
            Problem(
                f"{root} is inside the Git repository {top}, not the root of one",
                where,
                f"use {top} as the catalogue path, or `git init` {root}",
            )
        )
    return top, gitdir


class GitCatalogue:
    """A Git repository of specs. Thread-safe; the index is memoised per HEAD commit and tags, and cached
    on disk."""

    def __init__(
        self, root: Path, name: str = "local", kinds: tuple[Kind, ...] = KINDS, writable: bool = True
    ) -> None:
        self.root, self.gitdir = open_repository(root)
        self.name = name
        self.kinds = kinds
        self.writable = writable
        self.git = Git(self.root)
        self._lock = threading.RLock()
        self._snap: Snapshot | None = None
        self._docs: dict[str, Doc] = {}  # by blob id: immutable
        self._tag_refs: dict[str, str] | None = None
        self._tags_stamp: tuple[tuple[str, int, int], ...] | None = None
        self._tags_key = ""

    # -- index ------------------------------------------------------------------------------------
    def head(self) -> str:
        """The commit HEAD points to ("" before the first commit)."""
        sha = read_head(self.gitdir)
        if sha is None:
            proc = self.git.run_bytes("rev-parse", "--verify", "-q", "HEAD", check=False)
            sha = proc.stdout.decode().strip() if proc.returncode == 0 else ""
        return sha

    def tags(self) -> str:
        """A digest of the repository's tags (see `gitindex.digest_tags`).

        The tag files are read again only when the tag folders or packed-refs changed (`tags_stamp`):
        with thousands of tags, reading them all costs tens of milliseconds.
        """
        stamp = tags_stamp(self.gitdir)
        with self._lock:
            if stamp is None or stamp != self._tags_stamp or self._tag_refs is None:
                self._tag_refs = read_tags(self.gitdir, self.git)
                self._tags_key = digest_tags(self._tag_refs)
                self._tags_stamp = stamp
            return self._tags_key

    def note_tags(self, created: dict[str, str]) -> str:
        """The tag digest after this process created `created` (tag name -> commit) under the repository
        lock, computed from what it already knew instead of reading every tag file again."""
        with self._lock:
            if self._tag_refs is None:
                return self.tags()
            self._tag_refs.update({f"refs/tags/{name}": sha for name, sha in created.items()})
            self._tags_key = digest_tags(self._tag_refs)
            self._tags_stamp = tags_stamp(self.gitdir)
            return self._tags_key

    def snapshot(self) -> Snapshot:
        """The index at the current HEAD and tags: from memory, else the on-disk cache, else built
        (incrementally, and cached)."""
        head, tags = self.head(), self.tags()
        snap = self._snap
        if snap is not None and (snap.head, snap.tags) == (head, tags):
            return snap
        with self._lock:
            if self._snap is not None and (self._snap.head, self._snap.tags) == (head, tags):
                return self._snap
            cached = load_cache(self.gitdir)
            if cached is not None and (cached.head, cached.tags) == (head, tags):
                self._snap = cached
                return cached
            snap = build(self.git, head, self.kinds, self._snap or cached, tags)
            save_cache(self.gitdir, snap)
            self._snap = snap
            return snap

    def adopt(self, snap: Snapshot) -> None:
        """Install an index a writer computed for the commit it just made (no rebuild)."""
        with self._lock:
            self._snap = snap

    def entry(self, kind: Kind, name: str) -> Entry | None:
        return self.snapshot().entries.get((kind, name))

    # -- Resolver ---------------------------------------------------------------------------------
    def names(self, kind: Kind) -> list[str]:
        return sorted(n for (k, n) in self.snapshot().entries if k == kind)

    def versions(self, kind: Kind, name: str) -> list[str]:
        e = self.entry(kind, name)
        return e.sorted_versions() if e else []

    def resolve(self, ref: Ref) -> Doc:
        e = self.entry(ref.kind, ref.name)
        if e is None:
            raise SpecError(unknown_name(ref, self.names(ref.kind)))
        best = ref.range.best(list(e.versions))
        if best is None:
            raise SpecError(no_matching_version(ref, e.versions))
        return self.doc_at(e, best)

    # -- reads ------------------------------------------------------------------------------------
    def pick(self, ref: Ref) -> tuple[Entry, str]:
        """The entry a ref names and the version it resolves to."""
        e = self.entry(ref.kind, ref.name)
        if e is None:
            raise CatalogueError(unknown_name(ref, self.names(ref.kind)))
        best = ref.range.best(list(e.versions))
        if best is None:
            raise CatalogueError(no_matching_version(ref, e.versions))
        return e, best

    def blob_text(self, blob: str) -> str:
        data = self.git.cat_blobs([blob]).get(blob)
        if data is None:
            raise CatalogueError(
                Problem(f"object {blob} is missing", str(self.root), "the repository is corrupt: re-clone it")
            )
        return data.decode("utf-8", errors="replace")

    def text_at(self, e: Entry, version: str) -> str:
        """The YAML text of one version, as stored."""
        return self.blob_text(e.versions[version][0])

    def doc_at(self, e: Entry, version: str) -> Doc:
        """One version of an entry, validated (memoised by blob id)."""
        blob = e.versions[version][0]
        doc = self._docs.get(blob)
        if doc is None:
            where = f"{self.name}:{e.kind}/{e.name}@{version}"
            docs = load_text(self.blob_text(blob), where)
            if len(docs) != 1:
                raise CatalogueError(Problem("holds several documents", where, "keep one document per file"))
            doc = self._docs[blob] = docs[0]
        return doc

    def meta_at(self, e: Entry, version: str) -> Meta:
        return self.snapshot().metas[e.versions[version][0]]

    def listing(self) -> list[Listed]:
        """Every entry with its latest version's description and labels, sorted by kind and name."""
        snap = self.snapshot()
        out = []
        for (kind, name), e in sorted(snap.entries.items(), key=lambda kv: (KINDS.index(kv[0][0]), kv[0][1])):
            versions = e.sorted_versions()
            meta = snap.metas[e.versions[versions[-1]][0]]
            out.append(Listed(self.name, kind, name, versions[-1], versions, meta.description, meta.labels))
        return out

    def history(self, kind: Kind, name: str) -> list[Change]:
        """Every commit that changed an entry's file, newest first, with the version it saved."""
        path = entry_path(kind, name)
        if not self.head():
            return []
        fmt = "%H%x00%an <%ae>%x00%aI%x00%s%x1e"
        raw = self.git.run("log", f"--format={fmt}", "HEAD", "--", path)
        e = self.entry(kind, name)
        by_commit = {c: v for v, (_, c) in e.versions.items() if c} if e else {}
        tagged = self._tagged_commits(kind, name)
        out = []
        for rec in raw.split("\x1e"):
            rec = rec.strip("\n")
            if not rec:
                continue
            commit, author, date, message = rec.split("\0")
            version = by_commit.get(commit) or tagged.get(commit, "")
            out.append(Change(commit, version, author, date, message))
        return out

    def _tagged_commits(self, kind: Kind, name: str) -> dict[str, str]:
        fmt = "%(refname:lstrip=2)%00%(objectname)%00%(*objectname)"
        raw = self.git.run("for-each-ref", f"--format={fmt}", f"refs/tags/{kind}/{name}@*")
        out = {}
        for line in raw.splitlines():
            tag, obj, peeled = line.split("\0")
            out[peeled or obj] = tag.rpartition("@")[2]
        return out

    def diff(self, kind: Kind, name: str, a: str, b: str) -> str:
        """A unified diff between two versions of an entry (ranges allowed: each picks its best match)."""
        ea, va = self.pick(Ref(kind, name, a))
        _, vb = self.pick(Ref(kind, name, b))
        ta, tb = self.text_at(ea, va), self.text_at(ea, vb)
        lines = difflib.unified_diff(
            ta.splitlines(keepends=True),
            tb.splitlines(keepends=True),
            f"{kind}/{name}@{va}",
            f"{kind}/{name}@{vb}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def path_of(self, kind: Kind, name: str) -> Path:
        """The absolute file of an entry, checked to lie inside the repository (no `..`, no symlink out)."""
        rel = entry_path(kind, name)
        full = (self.root / rel).resolve()
        base = (self.root / KIND_DIRS[kind]).resolve()
        if not full.is_relative_to(self.root.resolve()) or full.parent != base:
            raise CatalogueError(
                Problem(
                    f"{rel} resolves outside the repository ({full})",
                    f"{kind}/{name}",
                    "remove the symbolic link that leads out of the repository",
                )
            )
        return full
