"""The git CLI, run without a shell (argv lists only), and the errors of Git-backed catalogues."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlops_nocode.spec import Problem, SpecError

_SCRUBBED = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_NAMESPACE")
DEFAULT_IDENTITY = ("mlops", "mlops@localhost")
_IDENT_RE = re.compile(r"([^<>@\n\r\0]*[^<>@\s][^<>@\n\r\0]*?)\s*<([^<>\s@]+@[^<>\s@]+)>")


class CatalogueError(SpecError):
    """A catalogue operation refused or failed; nothing was changed. (CLI exit 2, HTTP 400/422.)"""


class Conflict(CatalogueError):
    """A save based on a stale version or commit, or a version that exists with other content.

    (CLI exit 1, HTTP 409.)"""


class Diverged(CatalogueError):
    """Local and remote histories both have commits the other lacks; sync changed nothing. (CLI exit 1.)"""


@dataclass(frozen=True, slots=True)
class Identity:
    """A commit author or committer."""

    name: str
    email: str

    @classmethod
    def parse(cls, text: str) -> Identity:
        """`Name <email@host>` or a bare name (its email is then NAME@localhost); anything else (empty, an
        unbalanced `<`, no name, an email without `@`, control characters) is a located problem."""
        t = text.strip()
        m = _IDENT_RE.fullmatch(t)
        if m:
            return cls(m[1].strip(), m[2])
        if t and not any(c in t for c in "<>@\n\r\0"):
            return cls(t, f"{t.replace(' ', '.')}@localhost")
        why = "it is empty" if not t else "write 'Name <email@example.com>' or a bare name"
        raise CatalogueError(
            Problem(
                f"invalid author {text!r}: {why}",
                "--author",
                "e.g. --author 'Ann Lee <ann@example.org>' (or leave it out to use git config)",
            )
        )

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


def git_message(stderr: str, lines: int = 4) -> str:
    """The first meaningful lines of git's stderr (hints and blank lines dropped), joined."""
    kept = [s.strip() for s in stderr.splitlines() if s.strip() and not s.strip().startswith("hint:")]
    return " | ".join(kept[:lines]) or "git gave no message"


@functools.cache
def git_binary() -> str:
    """The git executable, or a clear problem naming what to install."""
    found = shutil.which("git")
    if not found:
        raise CatalogueError(
            Problem("git is not installed", "catalogue", "install git (e.g. apt-get install git)")
        )
    return found


def blob_id(data: bytes) -> str:
    """The SHA-1 git gives a blob with these bytes (without running git)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class Git:
    """Runs git in one repository's work tree. Every call is an argv list; nothing goes through a shell."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"})
        env.update(extra or {})
        return env

    def run_bytes(
        self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `git -C ROOT ARGS...`; raise CatalogueError with git's message when it fails and `check`."""
        argv = [git_binary(), "-C", str(self.root), *args]
        try:
            proc = subprocess.run(argv, input=input, capture_output=True, env=self.env(env), check=False)
        except OSError as e:
            raise CatalogueError(
                Problem(f"cannot run git: {e}", str(self.root), "check the git install")
            ) from None
        if check and proc.returncode != 0:
            msg = proc.stderr.decode(errors="replace").strip() or proc.stdout.decode(errors="replace")
            raise CatalogueError(
                Problem(
                    f"git {args[0]} failed: {msg.strip()[:2000]}",
                    str(self.root),
                    "check the repository (`git -C PATH fsck`); if it is corrupt, re-clone it",
                )
            )
        return proc

    def run(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None, check: bool = True
    ) -> str:
        """Like run_bytes, with text in and out."""
        data = input.encode() if input is not None else None
        return self.run_bytes(*args, input=data, env=env, check=check).stdout.decode(errors="replace")

    def ok(self, *args: str) -> bool:
        """Whether `git ARGS` exits 0."""
        return self.run_bytes(*args, check=False).returncode == 0

    def cat_blobs(self, specs: list[str]) -> dict[str, bytes | None]:
        """The content of many objects (`SHA` or `REV:PATH`), one `git cat-file --batch` (None: missing)."""
        if not specs:
            return {}
        raw = self.run_bytes("cat-file", "--batch", input=("\n".join(specs) + "\n").encode()).stdout
        out: dict[str, bytes | None] = {}
        pos = 0
        for spec in specs:
            end = raw.index(b"\n", pos)
            header = raw[pos:end].split()
            pos = end + 1
            if len(header) != 3:  # "<spec> missing" / "ambiguous"
                out[spec] = None
                continue
            size = int(header[2])
            out[spec] = raw[pos : pos + size]
            pos += size + 1
        return out

    def check_objects(self, specs: list[str]) -> dict[str, str | None]:
        """The object id of many `REV:PATH` specs with one `git cat-file --batch-check`; None if missing."""
        if not specs:
            return {}
        raw = self.run("cat-file", "--batch-check=%(objectname) %(objecttype)", input="\n".join(specs) + "\n")
        out: dict[str, str | None] = {}
        for spec, line in zip(specs, raw.splitlines(), strict=True):
            parts = line.split()
            out[spec] = parts[0] if len(parts) == 2 and parts[1] == "blob" else None
        return out


@functools.cache
def default_identity() -> Identity:
    """`git config user.name/user.email` when set, else `mlops <mlops@localhost>` (looked up once)."""
    git = Git(Path.cwd())
    name = git.run("config", "--global", "user.name", check=False).strip()
    email = git.run("config", "--global", "user.email", check=False).strip()
    try:
        return Identity.parse(f"{name or DEFAULT_IDENTITY[0]} <{email or DEFAULT_IDENTITY[1]}>")
    except CatalogueError:
        return Identity(*DEFAULT_IDENTITY)


def identity_env(author: Identity, committer: Identity) -> dict[str, str]:
    """Environment that sets a commit's author and committer (works on a machine with no git config)."""
    return {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": committer.name,
        "GIT_COMMITTER_EMAIL": committer.email,
    }
