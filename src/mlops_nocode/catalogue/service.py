"""The configured catalogues as one service: resolve, list/search, used-by, save, delete, import/export.

This is what the CLI (and the API) call. The compiler's full check of a saved pipeline is injected as
`validator` by the layer above (the catalogue layer cannot import the compiler); by default a save checks
that every ref it uses resolves.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import semver

from mlops_nocode.catalogue.base import Chain, Doc, Index, Resolver, unknown_name
from mlops_nocode.catalogue.folder import duplicate_problems, load_folder, origin_of
from mlops_nocode.catalogue.git import CatalogueError, Identity
from mlops_nocode.catalogue.gitindex import KIND_DIRS
from mlops_nocode.catalogue.gitrepo import GitCatalogue, Listed
from mlops_nocode.catalogue.gitwrite import Saved, Validator, check_refs, delete_entry, save_docs
from mlops_nocode.catalogue.repos import load_config
from mlops_nocode.catalogue.sync import SyncResult, sync
from mlops_nocode.spec import Problem, Ref, RefError, SpecError
from mlops_nocode.spec.refs import KIND_OF_DOC, KINDS, Kind


@dataclass(frozen=True, slots=True)
class Use:
    """One version of an entry that references another: `by` uses `uses`, which resolves to `resolves_to`."""

    by: str
    repo: str
    uses: str
    resolves_to: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"by": self.by, "repo": self.repo, "uses": self.uses, "resolves_to": self.resolves_to}


def parse_ref(text: str, where: str = "REF") -> Ref:
    """A ref from the command line, or a located problem."""
    try:
        return Ref.parse(text)
    except RefError as e:
        raise CatalogueError(Problem(str(e), where, "write KIND/NAME or KIND/NAME@VERSION")) from None


class Catalogues:
    """Git catalogues in priority order (highest first)."""

    def __init__(
        self,
        repos: list[GitCatalogue],
        validator: Validator = check_refs,
        branches: dict[str, str] | None = None,
    ) -> None:
        self.repos = repos
        self.validator = validator
        self.branches = branches or {}

    @classmethod
    def configured(cls, validator: Validator = check_refs) -> Catalogues:
        """The repositories of MLOPS_HOME's configuration (created and seeded on first use)."""
        config = load_config()
        repos = [GitCatalogue(r.work_tree(), r.name, tuple(r.kinds), r.writable) for r in config]
        return cls(repos, validator, {r.name: r.branch for r in config})

    def sync(self, name: str | None = None) -> list[SyncResult]:
        """Sync one repository (or every one that has a remote) with its origin; see `sync.sync`."""
        if name:
            targets = [self.repo(name)]
        else:
            targets = [r for r in self.repos if r.git.ok("remote", "get-url", "origin")]
        return [sync(r, self.branches.get(r.name, "main")) for r in targets]

    def repo(self, name: str) -> GitCatalogue:
        for r in self.repos:
            if r.name == name:
                return r
        known = ", ".join(r.name for r in self.repos) or "none"
        raise CatalogueError(Problem(f"no repository named {name!r}", "--repo", f"configured: {known}"))

    def resolver(self, extra: list[Doc] | None = None) -> Chain:
        """Extra documents (command line) first, then every repository in priority order."""
        if extra:
            problems = duplicate_problems(extra)
            if problems:
                raise CatalogueError(problems)
        head: list[Resolver] = [Index(extra)] if extra else []
        return Chain([*head, *self.repos])

    def find(self, ref: Ref, repo: str | None = None) -> tuple[GitCatalogue, str]:
        """The repository answering a ref (the first that has a matching version) and that version."""
        chain = self.resolver()
        doc = chain.resolve(ref) if repo is None else self.repo(repo).resolve(ref)
        for r in [self.repo(repo)] if repo else self.repos:
            e = r.entry(ref.kind, ref.name)
            if (
                e is not None
                and doc.metadata.version in e.versions
                and r.doc_at(e, doc.metadata.version) is doc
            ):
                return r, doc.metadata.version
        raise CatalogueError(unknown_name(ref, chain.names(ref.kind)))  # pragma: no cover - defensive

    def listing(
        self,
        kind: Kind | None = None,
        text: str | None = None,
        labels: dict[str, str] | None = None,
        repo: str | None = None,
    ) -> list[Listed]:
        """Entries, filtered by kind, labels (all must match) and free text (in name or description)."""
        needle = (text or "").lower()
        out = []
        for r in [self.repo(repo)] if repo else self.repos:
            for item in r.listing():
                if kind and item.kind != kind:
                    continue
                if labels and any(item.labels.get(k) != v for k, v in labels.items()):
                    continue
                if needle and needle not in item.name.lower() and needle not in item.description.lower():
                    continue
                out.append(item)
        return out

    def used_by(self, kind: Kind, name: str) -> list[Use]:
        """Every version of every entry (in any repository) whose steps use `kind/name`."""
        versions = self.resolver().versions(kind, name)
        out = []
        for r in self.repos:
            snap = r.snapshot()
            for (k, n), e in snap.entries.items():
                if k == "playbook" or (k, n) == (kind, name):
                    continue
                for v in e.sorted_versions():
                    for uses in snap.metas[e.versions[v][0]].uses:
                        try:
                            ref = Ref.parse(uses)
                        except RefError:
                            continue
                        if (ref.kind, ref.name) == (kind, name):
                            out.append(Use(f"{k}/{n}@{v}", r.name, uses, ref.range.best(versions)))
        if not versions and not out:
            raise CatalogueError(unknown_name(Ref(kind, name), self.resolver().names(kind)))
        return out

    def _target(self, doc: Doc, repo: str | None) -> GitCatalogue:
        if repo:
            return self.repo(repo)
        kind = KIND_OF_DOC[doc.kind]
        writable = [r for r in self.repos if r.writable and kind in r.kinds]
        for r in writable:
            if r.entry(kind, doc.metadata.name) is not None:
                return r
        if not writable:
            raise CatalogueError(
                Problem(
                    f"no writable repository holds {kind}s",
                    str(doc.ref),
                    "add one: mlops catalogue repos add",
                )
            )
        return writable[0]

    def save(
        self,
        docs: Iterable[Doc | tuple[Doc, str | None]],
        *,
        repo: str | None = None,
        author: str | Identity | None = None,
        message: str | None = None,
        base: str | None = None,
    ) -> list[Saved]:
        """Validate and save documents: one commit per repository they go to (see `save_docs`)."""
        items = [d if isinstance(d, tuple) else (d, None) for d in docs]
        if not items:
            raise CatalogueError(Problem("nothing to save", "FILE", "give a file with at least one document"))
        ident = Identity.parse(author) if isinstance(author, str) else author
        groups: dict[str, list[tuple[Doc, str | None]]] = {}
        for doc, text in items:
            groups.setdefault(self._target(doc, repo).name, []).append((doc, text))
        out: list[Saved] = []
        for name, group in groups.items():
            target = self.repo(name)
            others = [r for r in self.repos if r is not target]
            batch = [Index([d for g in groups.values() for d, _ in g])] if len(groups) > 1 else []
            out += save_docs(
                target,
                group,
                author=ident,
                message=message,
                base=base,
                others=[*batch, *others],
                validator=self.validator,
            )
        return out

    def delete(
        self,
        ref: Ref,
        *,
        repo: str | None = None,
        force: bool = False,
        author: str | Identity | None = None,
        message: str | None = None,
    ) -> str:
        """Delete an entry (all its versions leave the working tree; tags stay as history). Refused while
        another entry uses it, unless `force`."""
        if ref.version:
            raise CatalogueError(
                Problem(
                    "versions are immutable: delete the whole entry", str(ref), f"use {ref.kind}/{ref.name}"
                )
            )
        if repo is None:
            holders = [r for r in self.repos if r.entry(ref.kind, ref.name) is not None]
            if not holders:
                raise CatalogueError(unknown_name(ref, self.resolver().names(ref.kind)))
            target = holders[0]
        else:
            target = self.repo(repo)
        ident = Identity.parse(author) if isinstance(author, str) else author

        def referrers() -> list[str]:
            return [] if force else sorted({u.by for u in self.used_by(ref.kind, ref.name)})

        return delete_entry(target, ref.kind, ref.name, author=ident, message=message, referrers=referrers)

    def import_path(self, paths: list[Path], **kwargs: object) -> list[Saved]:
        """Save every document of files/folders (a multi-document YAML file, or an exported folder)."""
        docs = load_folder(paths)
        per_file: dict[str | None, int] = {}
        for d in docs:
            per_file[origin_of(d)] = per_file.get(origin_of(d), 0) + 1
        items: list[tuple[Doc, str | None]] = []
        for d in docs:
            origin = origin_of(d)
            text = Path(origin).read_text(encoding="utf-8") if origin and per_file[origin] == 1 else None
            items.append((d, text))
        return self.save(items, **kwargs)  # type: ignore[arg-type]

    def export(self, out: Path, kind: Kind | None = None, all_versions: bool = False) -> list[str]:
        """Write entries (latest, or every version) to a folder or, when `out` ends in .yaml/.yml, one
        multi-document file. Every version an exported entry's refs resolve to is written too (the
        closure), so the export imports on its own. In a folder, the highest version of each entry is
        `KIND_DIR/NAME.yaml` and the others `KIND_DIR/NAME@VERSION.yaml` (every one with `all_versions`).
        Returns the refs written."""
        seen: set[tuple[Kind, str]] = set()
        picked: dict[tuple[Kind, str, str], GitCatalogue] = {}
        for r in self.repos:
            for item in r.listing():
                if (kind and item.kind != kind) or (item.kind, item.name) in seen:
                    continue
                seen.add((item.kind, item.name))
                for v in item.versions if all_versions else [item.latest]:
                    picked.setdefault((item.kind, item.name, v), r)
        todo = list(picked.items())
        while todo:  # the closure: what the refs of exported versions resolve to
            (k, n, v), r = todo.pop()
            e = r.entry(k, n)
            assert e is not None
            for uses in r.meta_at(e, v).uses:
                try:
                    ref = Ref.parse(uses)
                    found, fv = self.find(ref)
                except (RefError, SpecError):
                    continue  # a dangling ref: exported as it is (the import will report it)
                key = (ref.kind, ref.name, fv)
                if key not in picked:
                    picked[key] = found
                    todo.append((key, found))
        highest: dict[tuple[Kind, str], str] = {}
        for k, n, v in picked:
            if (k, n) not in highest or semver.Version.parse(v) > semver.Version.parse(highest[(k, n)]):
                highest[(k, n)] = v
        texts: list[tuple[str, str, str]] = []  # (ref, relative path, text)
        for (k, n, v), r in picked.items():
            e = r.entry(k, n)
            assert e is not None
            suffix = "" if not all_versions and highest[(k, n)] == v else f"@{v}"
            texts.append((f"{k}/{n}@{v}", f"{KIND_DIRS[k]}/{n}{suffix}.yaml", r.text_at(e, v)))
        texts.sort(key=lambda t: (KINDS.index(Ref.parse(t[0]).kind), t[0]))
        if out.suffix.lower() in (".yaml", ".yml"):
            body = "".join("---\n" + t.rstrip("\n") + "\n" for _, _, t in texts)
            _write_text(out, body)
        else:
            for _, rel, text in texts:
                _write_text(out / rel, text)
        return [ref for ref, _, _ in texts]


def _write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        raise CatalogueError(
            Problem(f"cannot write {path}: {e.strerror or e}", str(path), "check the path")
        ) from None


def latest_first(versions: list[str]) -> list[str]:
    """Versions newest first (semver order)."""
    return sorted(versions, key=semver.Version.parse, reverse=True)


class Configured:
    """A `Resolver` over the configured catalogues that opens them (and seeds MLOPS_HOME on first use)
    only when a ref is actually looked up, so commands whose specs are self-contained touch nothing."""

    def __init__(self, validator: Validator = check_refs) -> None:
        self._validator = validator
        self._chain: Chain | None = None

    @property
    def chain(self) -> Chain:
        if self._chain is None:
            self._chain = Catalogues.configured(self._validator).resolver()
        return self._chain

    def resolve(self, ref: Ref) -> Doc:
        return self.chain.resolve(ref)

    def versions(self, kind: Kind, name: str) -> list[str]:
        return self.chain.versions(kind, name)

    def names(self, kind: Kind) -> list[str]:
        return self.chain.names(kind)


def configured_catalogue(extra: list[Doc] | None = None) -> Chain:
    """Extra documents (command line) first, then the configured Git catalogues in priority order,
    opened lazily (see `Configured`)."""
    if extra:
        problems = duplicate_problems(extra)
        if problems:
            raise CatalogueError(problems)
    return Chain([*([Index(extra)] if extra else []), Configured()])
