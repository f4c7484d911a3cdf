"""Which Git repositories hold the catalogues: `MLOPS_HOME/catalogues.yaml`, first-use seeding, add/remove.

```yaml
repositories:
  - {name: local, path: ~/.mlops-nocode/catalogues/local, branch: main, priority: 100}
  - {name: team, url: git@example.com:ml/catalogue.git, branch: main, writable: false, priority: 50,
     kinds: [playbook]}
```
A repository with a `url` is cloned to `MLOPS_HOME/catalogues/NAME` (its `origin`). Higher priority is
consulted first.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlops_nocode.catalogue.folder import builtin_path, load_folder, origin_of
from mlops_nocode.catalogue.git import CatalogueError, Git, default_identity, git_message, identity_env
from mlops_nocode.catalogue.gitindex import entry_path, tag_name
from mlops_nocode.catalogue.gitwrite import canonical_text
from mlops_nocode.catalogue.home import mlops_home
from mlops_nocode.spec import Problem
from mlops_nocode.spec.refs import KIND_OF_DOC, KINDS, Kind, valid_name

CONFIG_FILE = "catalogues.yaml"
LOCAL = "local"
_FIELD_HELP = {
    "name": ("NAME", "name the repository with a DNS-1123 label, e.g. team-specs"),
    "url": ("--url", "give a path, or a file://, ssh (git@host:path) or https URL"),
    "branch": ("--branch", "use letters, digits and . _ / - (no '..', no leading '-', no final '.' or '/')"),
    "path": ("--path", "give the folder of a Git work tree"),
    "kinds": ("--kind", "use playbook, pipeline or metapipeline"),
    "priority": ("--priority", "give a whole number"),
}
_BRANCH_RE = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,200}(?<![./])$")


class RepoConfig(BaseModel):
    """One catalogue repository: a local work tree (`path`) or a remote (`url`, cloned under MLOPS_HOME)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, AfterValidator(valid_name)]
    path: str | None = None
    url: str | None = None
    branch: str = "main"
    kinds: list[Kind] = Field(default_factory=lambda: list(KINDS))
    writable: bool = True
    priority: int = 0

    def __init__(self, **data: Any) -> None:
        """Like any pydantic model, but invalid fields are a CatalogueError with one located problem per
        field (its reason and a fix), not pydantic's report."""
        try:
            super().__init__(**data)
        except ValidationError as e:
            problems = []
            for err in e.errors():
                field = str(err["loc"][0]) if err["loc"] else ""
                where, fix = _FIELD_HELP.get(field, (field or "repository", "see --help"))
                msg = str(err["msg"]).removeprefix("Value error, ")
                problems.append(Problem(msg, where, fix))
            raise CatalogueError(problems) from None

    @field_validator("branch")
    @classmethod
    def _branch(cls, v: str) -> str:
        if not _BRANCH_RE.fullmatch(v):
            raise ValueError(f"invalid branch {v!r}: not a safe Git branch name")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("invalid url: it is empty")
        if v is not None and v.startswith("-"):
            raise ValueError(f"invalid url {v!r}: it starts with '-' (git would read it as an option)")
        if v is not None and "::" in v:
            raise ValueError(f"invalid url {v!r}: 'TRANSPORT::' URLs (ext::, fd::...) can run commands")
        return v

    def work_tree(self, home: Path | None = None) -> Path:
        """Where the catalogue's files are on this machine."""
        if self.path:
            return Path(self.path).expanduser()
        return (home or mlops_home()) / "catalogues" / self.name


def config_path() -> Path:
    return mlops_home() / CONFIG_FILE


def _locked(home: Path) -> int:
    fd = os.open(home / "catalogues.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _read(path: Path) -> list[RepoConfig]:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        items = data.get("repositories", []) if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ValueError("expected a mapping with a 'repositories' list")
        repos = [RepoConfig.model_validate(i) for i in items]
    except (OSError, ValueError, yaml.YAMLError, ValidationError) as e:
        raise CatalogueError(
            Problem(f"cannot read the catalogue configuration: {e}", str(path), "fix or delete the file")
        ) from None
    dup = [n for n, c in Counter(r.name for r in repos).items() if c > 1]
    if dup:
        raise CatalogueError(Problem(f"repository {dup[0]!r} is configured twice", str(path), "remove one"))
    return repos


def _write(path: Path, repos: list[RepoConfig]) -> None:
    data = {"repositories": [r.model_dump(exclude_none=True) for r in repos]}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".catalogues.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    os.replace(tmp, path)


def load_config() -> list[RepoConfig]:
    """The configured repositories, highest priority first. First use creates the config and a local
    repository seeded with the built-in catalogue."""
    home = mlops_home()
    path = home / CONFIG_FILE
    if not path.exists():
        fd = _locked(home)
        try:
            if not path.exists():
                local = RepoConfig(name=LOCAL, priority=100)
                root = local.work_tree(home)
                if not (root / ".git").exists():
                    seed_repository(root, builtin_path())
                _write(path, [local])
        finally:
            os.close(fd)
    return sorted(_read(path), key=lambda r: -r.priority)


def seed_repository(root: Path, source: Path, branch: str = "main") -> str:
    """`git init` ROOT and commit every spec under SOURCE in one commit, tagging each version."""
    root.mkdir(parents=True, exist_ok=True)
    git = Git(root)
    git.run("init", "-q", "-b", branch)
    docs = load_folder([source]) if source.is_dir() else []
    per_file = Counter(origin_of(d) for d in docs)
    tags = []
    for doc in docs:
        kind: Kind = KIND_OF_DOC[doc.kind]
        rel = entry_path(kind, doc.metadata.name)
        origin = origin_of(doc)
        text = (
            Path(origin).read_text(encoding="utf-8")
            if origin and per_file[origin] == 1
            else canonical_text(doc)
        )
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
        tags.append(tag_name(kind, doc.metadata.name, doc.metadata.version))
    ident = default_identity()
    msg = f"seed the catalogue with {len(docs)} built-in entries\n"
    git.run("add", "-A")
    git.run(
        "commit", "-q", "--no-verify", "--allow-empty", "-F", "-", input=msg, env=identity_env(ident, ident)
    )
    head = git.run("rev-parse", "HEAD").strip()
    git.run("update-ref", "--stdin", input="".join(f"create refs/tags/{t} {head}\n" for t in tags))
    return head


def add_repo(repo: RepoConfig, init: bool = False) -> RepoConfig:
    """Register a repository: clone a `url`, check (or with `init`, create) a `path`. Nothing is registered
    when that fails."""
    from mlops_nocode.catalogue.gitrepo import open_repository

    if bool(repo.path) == bool(repo.url):
        raise CatalogueError(
            Problem("give exactly one of --path and --url", repo.name, "e.g. --path ./specs")
        )
    repos = load_config()
    if any(r.name == repo.name for r in repos):
        raise CatalogueError(
            Problem(f"repository {repo.name!r} is already configured", repo.name, "pick another name")
        )
    root = repo.work_tree()
    if repo.path:
        repo = repo.model_copy(update={"path": str(root.resolve())})
        root = root.resolve()
        if init and not (root / ".git").exists():
            root.mkdir(parents=True, exist_ok=True)
            Git(root).run("init", "-q", "-b", repo.branch)
    else:
        _clone(repo, root)
    open_repository(root)
    home = mlops_home()
    fd = _locked(home)
    try:
        current = _read(home / CONFIG_FILE)
        if any(r.name == repo.name for r in current):
            raise CatalogueError(Problem(f"repository {repo.name!r} is already configured", repo.name, ""))
        _write(home / CONFIG_FILE, [*current, repo])
    finally:
        os.close(fd)
    return repo


def _clone(repo: RepoConfig, root: Path) -> None:
    assert repo.url is not None
    if root.exists() and any(root.iterdir()):
        raise CatalogueError(
            Problem(f"{root} exists and is not empty", repo.name, "remove it or pick a new name")
        )
    root.mkdir(parents=True, exist_ok=True)
    git = Git(root)
    safe = ("-c", "protocol.ext.allow=never")
    heads = git.run_bytes(*safe, "ls-remote", "--heads", "--", repo.url, check=False)
    if heads.returncode != 0:
        root.rmdir()
        raise CatalogueError(
            Problem(
                f"cannot reach {repo.url}: {git_message(heads.stderr.decode(errors='replace'))}",
                "--url",
                "check the URL, the network and your access to it (nothing was registered)",
            )
        )
    git.run("init", "-q", "-b", repo.branch)
    git.run("remote", "add", "origin", "--", repo.url)
    if f"refs/heads/{repo.branch}".encode() in heads.stdout.split():
        git.run(
            *safe,
            "fetch",
            "-q",
            "--no-tags",
            "origin",
            f"+refs/heads/{repo.branch}:refs/remotes/origin/{repo.branch}",
            "+refs/tags/*:refs/tags/*",
        )
        git.run("reset", "-q", "--hard", f"refs/remotes/origin/{repo.branch}")
        git.run("branch", "-q", f"--set-upstream-to=origin/{repo.branch}")


def remove_repo(name: str) -> RepoConfig:
    """Unregister a repository (its files stay where they are)."""
    home = mlops_home()
    load_config()
    fd = _locked(home)
    try:
        repos = _read(home / CONFIG_FILE)
        found = [r for r in repos if r.name == name]
        if not found:
            known = ", ".join(r.name for r in repos) or "none"
            raise CatalogueError(Problem(f"no repository named {name!r}", name, f"configured: {known}"))
        _write(home / CONFIG_FILE, [r for r in repos if r.name != name])
    finally:
        os.close(fd)
    return found[0]
