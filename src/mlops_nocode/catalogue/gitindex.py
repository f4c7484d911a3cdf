"""The index of one Git catalogue at one commit: entries, their versions (tags) and blob metadata.

Built with three git calls whatever the size (`ls-tree`, `for-each-ref`, `cat-file --batch-check`) plus
one `cat-file --batch` for blobs not seen before, and cached as JSON in the repository's git dir, keyed by
the HEAD commit plus a digest of the tags (`tags_digest`), so moving or deleting a version tag (by hand, or a
sync fetching tags) refreshes it. Blob metadata and tag->blob lookups are immutable, so a stale cache makes
the next build incremental.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import semver

from mlops_nocode.catalogue.git import CatalogueError, Git
from mlops_nocode.spec import Problem, SpecError
from mlops_nocode.spec.refs import KIND_OF_DOC, KINDS, NAME_PATTERN, Kind, check_name
from mlops_nocode.spec.yamlio import parse_texts

KIND_DIRS: dict[Kind, str] = {
    "playbook": "playbooks",
    "pipeline": "pipelines",
    "metapipeline": "metapipelines",
}
DIR_KINDS: dict[str, Kind] = {v: k for k, v in KIND_DIRS.items()}
_PATH_RE = re.compile(rf"^(playbooks|pipelines|metapipelines)/({NAME_PATTERN})\.yaml$")
TAG_RE = re.compile(rf"^(?P<kind>playbook|pipeline|metapipeline)/(?P<name>{NAME_PATTERN})@(?P<version>\S+)$")
CACHE_FILE = "mlops-index.json"
_FORMAT = 2


def entry_path(kind: Kind, name: str) -> str:
    """`playbooks/NAME.yaml`, after checking NAME is a DNS-1123 label (so it cannot leave the repository)."""
    if kind not in KINDS:
        raise CatalogueError(Problem(f"unknown kind {kind!r}", str(kind), f"use one of {', '.join(KINDS)}"))
    problem = check_name(name)
    if problem:
        raise CatalogueError(Problem(problem, f"{kind}/{name}", "name entries with a DNS-1123 label"))
    return f"{KIND_DIRS[kind]}/{name}.yaml"


def tag_name(kind: Kind, name: str, version: str) -> str:
    """The tag marking the commit that saved one version: `KIND/NAME@VERSION`."""
    return f"{kind}/{name}@{version}"


@dataclass(frozen=True, slots=True)
class Meta:
    """What the index keeps of one blob: identity, description, labels and the refs it uses."""

    kind: str
    name: str
    version: str
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    uses: tuple[str, ...] = ()
    error: str = ""

    @classmethod
    def parse(cls, data: bytes, source: str) -> Meta:
        """Read the identity of a spec blob without full validation (it was validated when saved)."""
        try:
            docs = parse_texts(data.decode("utf-8"), source)
        except (SpecError, UnicodeDecodeError) as e:
            return cls("", "", "", error=str(e))
        if len(docs) != 1 or not isinstance(docs[0], dict):
            return cls("", "", "", error="not one spec document")
        d: dict[str, Any] = docs[0]
        meta: dict[str, Any] = _mapping(d.get("metadata"))
        spec = _mapping(d.get("spec"))
        steps: list[Any] = spec["steps"] if isinstance(spec.get("steps"), list) else []
        labels = _mapping(meta.get("labels"))
        return cls(
            KIND_OF_DOC.get(str(d.get("kind")), ""),
            str(meta.get("name", "")),
            str(meta.get("version", "0.1.0")),
            str(meta.get("description", "")),
            {str(k): str(v) for k, v in labels.items()},
            tuple(str(s["uses"]) for s in steps if isinstance(s, dict) and "uses" in s),
        )

    def to_json(self) -> list[Any]:
        return [
            self.kind,
            self.name,
            self.version,
            self.description,
            self.labels,
            list(self.uses),
            self.error,
        ]

    @classmethod
    def from_json(cls, v: list[Any]) -> Meta:
        return cls(v[0], v[1], v[2], v[3], v[4], tuple(v[5]), v[6])


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(slots=True)
class Entry:
    """One entry at HEAD: the blob of its file, and every version (tagged, plus the file's own)."""

    kind: Kind
    name: str
    blob: str
    versions: dict[str, tuple[str, str | None]]  # version -> (blob, tagged commit or None)

    @property
    def path(self) -> str:
        return f"{KIND_DIRS[self.kind]}/{self.name}.yaml"

    def sorted_versions(self) -> list[str]:
        """Versions from oldest to newest (semver order)."""
        return sorted(self.versions, key=_semver_key)

    @property
    def latest(self) -> str:
        return self.sorted_versions()[-1]


def _semver_key(v: str) -> semver.Version:
    return semver.Version.parse(v) if semver.Version.is_valid(v) else semver.Version(0)


@dataclass(slots=True)
class Snapshot:
    """The index of a repository at commit `head` ("" for a repository without commits) with the tags
    whose `tags_digest` is `tags`."""

    head: str
    tags: str = ""
    entries: dict[tuple[Kind, str], Entry] = field(default_factory=dict)
    metas: dict[str, Meta] = field(default_factory=dict)
    tagblobs: dict[str, str | None] = field(default_factory=dict)  # "COMMIT:PATH" -> blob

    def to_json(self) -> dict[str, Any]:
        used = {e.blob for e in self.entries.values()} | {
            b for e in self.entries.values() for b, _ in e.versions.values()
        }
        return {
            "format": _FORMAT,
            "head": self.head,
            "tags": self.tags,
            "entries": [
                [e.kind, e.name, e.blob, {v: list(bc) for v, bc in e.versions.items()}]
                for e in self.entries.values()
            ],
            "metas": {b: m.to_json() for b, m in self.metas.items() if b in used},
            "tagblobs": self.tagblobs,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        snap = cls(str(data["head"]), str(data["tags"]))
        for kind, name, blob, versions in data["entries"]:
            snap.entries[(kind, name)] = Entry(
                kind, name, blob, {v: (b, c) for v, (b, c) in versions.items()}
            )
        snap.metas = {b: Meta.from_json(m) for b, m in data["metas"].items()}
        snap.tagblobs = dict(data["tagblobs"])
        return snap


def read_head(gitdir: Path) -> str | None:
    """The commit HEAD points to, read from the ref files (no git process); "" when the branch has no
    commit yet; None when the layout is unusual (the caller then asks git)."""
    try:
        head = (gitdir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head if re.fullmatch(r"[0-9a-f]{40}", head) else None
        ref = head[5:]
        loose = gitdir / ref
        if loose.is_file():
            sha = loose.read_text().strip()
            return sha if re.fullmatch(r"[0-9a-f]{40}", sha) else None
        packed = gitdir / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
        return ""
    except OSError:
        return None


def tags_stamp(gitdir: Path) -> tuple[tuple[str, int, int], ...] | None:
    """Modification times of packed-refs and of the tag folders (refs/tags and the folders in it).

    Git adds, moves or removes a tag by renaming or removing a file in its folder, or by rewriting
    packed-refs, so an unchanged stamp means unchanged tags: a few `stat` calls however many tags there
    are. None when it cannot be read.
    """
    try:
        common = _common_dir(gitdir)
        paths = [common / "packed-refs", common / "refs" / "tags"]
        with os.scandir(common / "refs" / "tags") as it:
            paths += [Path(e.path) for e in it if e.is_dir(follow_symlinks=False)]
        out = []
        for p in paths:
            try:
                st = p.stat()
                out.append((str(p.relative_to(common)), st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                out.append((str(p.relative_to(common)), 0, 0))
        return tuple(out)
    except OSError:
        return None


def _common_dir(gitdir: Path) -> Path:
    if (gitdir / "commondir").is_file():  # a linked work tree: tags live in the main git dir
        return (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
    return gitdir


def digest_tags(refs: dict[str, str]) -> str:
    """A digest of tags (`refs/tags/NAME` -> object id): equal digests mean equal tags."""
    text = "\n".join(f"{k} {v}" for k, v in sorted(refs.items()))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def read_tags(gitdir: Path, git: Git) -> dict[str, str]:
    """Every tag and what it points to, read from the ref files (packed-refs, then the loose files that
    override it) without a git process; asks `git for-each-ref` for unusual layouts (reftable)."""
    try:
        common = _common_dir(gitdir)
        if (common / "reftable").exists():
            raise OSError("reftable")
        refs: dict[str, str] = {}
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                sha, _, ref = line.partition(" ")
                if ref.startswith("refs/tags/"):
                    refs[ref] = sha
        stack = [(str(common / "refs" / "tags"), "refs/tags/")]
        while stack:
            folder, prefix = stack.pop()
            try:
                it = os.scandir(folder)
            except FileNotFoundError:
                continue
            with it:
                for ent in it:
                    if ent.is_dir(follow_symlinks=False):
                        stack.append((ent.path, prefix + ent.name + "/"))
                    elif not ent.name.endswith(".lock"):
                        try:
                            with open(ent.path, "rb") as fh:
                                refs[prefix + ent.name] = fh.read().decode().strip()
                        except FileNotFoundError:  # deleted meanwhile
                            continue
        return refs
    except (OSError, UnicodeDecodeError):
        text = git.run("for-each-ref", "--format=%(refname) %(objectname)", "refs/tags")
        pairs = (line.split(" ", 1) for line in text.splitlines() if " " in line)
        return {ref: sha for ref, sha in pairs}


def tags_digest(gitdir: Path, git: Git) -> str:
    """A digest of every tag and what it points to (see `read_tags`)."""
    return digest_tags(read_tags(gitdir, git))


def load_cache(gitdir: Path) -> Snapshot | None:
    """The cached index (any commit), or None when there is none or it cannot be read."""
    try:
        data = json.loads((gitdir / CACHE_FILE).read_text())
        return Snapshot.from_json(data) if data.get("format") == _FORMAT else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_cache(gitdir: Path, snap: Snapshot) -> None:
    """Write the index atomically (concurrent readers see the old or the new file, never half of one)."""
    fd, tmp = tempfile.mkstemp(dir=gitdir, prefix=".mlops-index.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(snap.to_json(), fh, separators=(",", ":"))
        os.replace(tmp, gitdir / CACHE_FILE)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def build(
    git: Git, head: str, kinds: tuple[Kind, ...], previous: Snapshot | None, tags: str = ""
) -> Snapshot:
    """Index the repository at `head` with the tags whose digest is `tags`, reusing what `previous` (any
    commit, any tags) already read."""
    snap = Snapshot(head, tags)
    if previous is not None:
        snap.metas = dict(previous.metas)
        snap.tagblobs = dict(previous.tagblobs)
    if not head:
        return snap
    files: dict[tuple[Kind, str], str] = {}
    dirs = [KIND_DIRS[k] for k in kinds]
    for line in git.run("ls-tree", "-r", "--full-tree", head, "--", *dirs).splitlines():
        info, _, path = line.partition("\t")
        m = _PATH_RE.match(path)
        parts = info.split()
        if m and len(parts) == 3 and parts[1] == "blob":
            files[(DIR_KINDS[m[1]], m[2])] = parts[2]
    tagged: dict[tuple[Kind, str], dict[str, str]] = {}
    fmt = "%(refname:lstrip=2)%00%(objectname)%00%(*objectname)"
    for line in git.run("for-each-ref", f"--format={fmt}", "refs/tags").splitlines():
        tag, obj, peeled = line.split("\0")
        m = TAG_RE.match(tag)
        if m and (m["kind"], m["name"]) in files and semver.Version.is_valid(m["version"]):
            tagged.setdefault((cast(Kind, m["kind"]), m["name"]), {})[m["version"]] = peeled or obj
    need = [
        f"{c}:{KIND_DIRS[k]}/{n}.yaml"
        for (k, n), vs in tagged.items()
        for c in vs.values()
        if f"{c}:{KIND_DIRS[k]}/{n}.yaml" not in snap.tagblobs
    ]
    snap.tagblobs.update(git.check_objects(need))
    blobs = set(files.values()) | {b for b in snap.tagblobs.values() if b}
    missing = sorted(b for b in blobs if b not in snap.metas)
    for blob, data in git.cat_blobs(missing).items():
        snap.metas[blob] = (
            Meta.parse(data or b"", blob) if data is not None else Meta("", "", "", error="missing")
        )
    for (kind, name), blob in files.items():
        versions: dict[str, tuple[str, str | None]] = {}
        for version, commit in tagged.get((kind, name), {}).items():
            tb = snap.tagblobs.get(f"{commit}:{KIND_DIRS[kind]}/{name}.yaml")
            if tb:
                versions[version] = (tb, commit)
        meta = snap.metas[blob]
        if not meta.error and meta.version not in versions and semver.Version.is_valid(meta.version):
            versions[meta.version] = (blob, None)
        if versions:
            snap.entries[(kind, name)] = Entry(kind, name, blob, versions)
    return snap
