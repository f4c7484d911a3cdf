"""Sync a Git catalogue with its `origin`: fast-forward pull, push, or stop on divergence changing nothing.

Version tags travel with the branch. Before pushing, a version tag left on a commit that is not on the
branch (a rebase rewrote the save that made it) is moved to the branch commit holding the same content;
a tag that points elsewhere on each side is a conflict naming it. A read-only repository only pulls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops_nocode.catalogue.git import CatalogueError, Conflict, Diverged, git_message
from mlops_nocode.catalogue.gitindex import TAG_RE, entry_path
from mlops_nocode.catalogue.gitrepo import GitCatalogue
from mlops_nocode.catalogue.gitwrite import repo_lock
from mlops_nocode.spec import Problem
from mlops_nocode.spec.refs import Kind

_SAFE = ("-c", "protocol.ext.allow=never")


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What a sync did: `up-to-date`, `pulled` (fast-forward) or `pushed`; commits moved each way; the
    version tags moved onto the branch (`retagged`); a `note` (e.g. a read-only repository not pushed)."""

    repo: str
    action: str
    pulled: int
    pushed: int
    head: str
    retagged: list[str] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "repo": self.repo,
            "action": self.action,
            "pulled": self.pulled,
            "pushed": self.pushed,
            "head": self.head,
            "retagged": self.retagged,
            "note": self.note,
        }


def _remote(cat: GitCatalogue, url: str, *args: str, fix: str = "") -> str:
    """Run a git command that talks to `origin`; its failure is the remote's, not the local repository's."""
    proc = cat.git.run_bytes(*_SAFE, *args, check=False)
    if proc.returncode != 0:
        raise CatalogueError(
            Problem(
                f"git {args[0]} with the remote of {cat.name!r} ({url}) failed: "
                f"{git_message(proc.stderr.decode(errors='replace'))}",
                cat.name,
                fix
                or "check the remote URL (`git -C "
                f"{cat.root} remote -v`), the network and your access to it; the local repository is fine "
                "and was not changed",
            )
        )
    return proc.stdout.decode(errors="replace")


def _local_tags(cat: GitCatalogue) -> dict[str, str]:
    raw = cat.git.run("for-each-ref", "--format=%(refname:lstrip=2)%00%(objectname)", "refs/tags")
    return dict(line.split("\0", 1) for line in raw.splitlines() if "\0" in line)


def _remote_tags(cat: GitCatalogue, url: str) -> dict[str, str]:
    out = {}
    for line in _remote(cat, url, "ls-remote", "--tags", "origin").splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/tags/") and not ref.endswith("^{}"):
            out[ref[len("refs/tags/") :]] = sha
    return out


def repoint_tags(cat: GitCatalogue) -> tuple[list[str], list[str]]:
    """Move every version tag whose commit is not on the branch (HEAD) to the oldest branch commit whose
    file for that entry has the same blob. Returns (moved, stranded): stranded tags have no such commit."""
    git = cat.git
    fmt = "%(refname:lstrip=2)%00%(objectname)%00%(*objectname)"
    raw = git.run("for-each-ref", "--no-merged=HEAD", f"--format={fmt}", "refs/tags")
    moved: list[str] = []
    stranded: list[str] = []
    for line in raw.splitlines():
        tag, obj, peeled = line.split("\0")
        m = TAG_RE.match(tag)
        if not m:
            continue
        kind: Kind = m["kind"]  # type: ignore[assignment]
        path = entry_path(kind, m["name"])
        spec = f"{peeled or obj}:{path}"
        blob = git.check_objects([spec])[spec]
        candidates = git.run("log", "--format=%H", "HEAD", "--", path).split() if blob else []
        blobs = git.check_objects([f"{c}:{path}" for c in candidates])
        same = [c for c in candidates if blobs[f"{c}:{path}"] == blob]
        if not same:
            stranded.append(tag)
            continue
        git.run("update-ref", f"refs/tags/{tag}", same[-1], obj)
        moved.append(tag)
    return moved, stranded


def sync(cat: GitCatalogue, branch: str) -> SyncResult:
    """Fetch `origin`, then fast-forward, push (writable repositories only), or raise Diverged (nothing
    changed) with the commands to resolve it. Version tags are fetched and pushed too (see the module)."""
    git = cat.git
    proc = git.run_bytes("remote", "get-url", "origin", check=False)
    if proc.returncode != 0:
        raise CatalogueError(
            Problem(
                f"repository {cat.name!r} has no remote",
                cat.name,
                f"add one: git -C {cat.root} remote add origin URL (or configure the repository with --url)",
            )
        )
    url = proc.stdout.decode(errors="replace").strip()
    tracking = f"refs/remotes/origin/{branch}"
    note = ""
    retagged: list[str] = []
    with repo_lock(cat.gitdir):
        heads = _remote(cat, url, "ls-remote", "--heads", "origin", f"refs/heads/{branch}")
        remote = ""
        if heads.strip():
            _remote(cat, url, "fetch", "-q", "--no-tags", "origin", f"+refs/heads/{branch}:{tracking}")
            remote = git.run("rev-parse", tracking).strip()
        local = cat.head()
        pulled = pushed = 0
        if remote and local != remote:
            ahead, behind = 0, 1
            if local:
                counts = git.run("rev-list", "--left-right", "--count", f"{local}...{remote}").split()
                ahead, behind = int(counts[0]), int(counts[1])
            if (
                local
                and not git.ok("merge-base", "--is-ancestor", remote, local)
                and not git.ok("merge-base", "--is-ancestor", local, remote)
            ):
                raise Diverged(
                    Problem(
                        f"repository {cat.name!r} and origin/{branch} have diverged: {ahead} local commit(s) "
                        f"are not on the remote and {behind} remote commit(s) are not here; "
                        "nothing was changed",
                        cat.name,
                        f"replay your saves on top of the remote: `git -C {cat.root} rebase origin/{branch}` "
                        f"(resolve any conflict, `git -C {cat.root} rebase --continue`), then "
                        f"`mlops catalogue sync {cat.name}`: it moves the version tags of the rebased saves "
                        "onto their new commits before pushing. Or drop your saves and keep the remote: "
                        f"`git -C {cat.root} reset --hard origin/{branch}`, then delete the tags of the "
                        f"dropped versions (`mlops catalogue sync {cat.name}` names them)",
                    )
                )
            if not local or git.ok("merge-base", "--is-ancestor", local, remote):
                if local:
                    git.run("merge", "-q", "--ff-only", tracking)
                else:
                    git.run("reset", "-q", "--hard", tracking)
                pulled = behind
            else:
                pushed = ahead
        elif local and not remote:
            pushed = int(git.run("rev-list", "--count", local).strip())
        writable = cat.writable
        if not writable and pushed:
            note = (
                f"read-only repository: pulled only; {pushed} local commit(s) not pushed "
                "(configure it writable to push)"
            )
            pushed = 0
        elif not writable:
            note = "read-only repository: pulled only"
        if writable and cat.head():
            retagged, stranded = repoint_tags(cat)
            if stranded:
                raise Conflict(
                    Problem(
                        f"version tag(s) {', '.join(stranded)} point to commits that are not on {branch} "
                        f"(left behind by a rebase or reset) and no commit on {branch} holds those "
                        "versions; nothing was pushed",
                        cat.name,
                        "if those versions were dropped, delete their tags: "
                        f"`git -C {cat.root} tag -d {' '.join(stranded)}`, then "
                        f"`mlops catalogue sync {cat.name}`; to keep them, save them again under new "
                        "versions after deleting the tags",
                    )
                )
        if remote or cat.head():
            theirs = _remote_tags(cat, url)
            ours = _local_tags(cat)
            differ = sorted(t for t, sha in theirs.items() if t in ours and ours[t] != sha)
            if differ:
                raise Conflict(
                    Problem(
                        f"version tag(s) differ between {cat.name!r} and its remote: {', '.join(differ)}; "
                        "the same version points to other commits on each side, so no tag was pushed",
                        cat.name,
                        "to take the remote's versions: "
                        f"`git -C {cat.root} tag -d {' '.join(differ)}`, then `mlops catalogue sync "
                        f"{cat.name}`; to keep a change of yours, save it under a new version first",
                    )
                )
            _remote(cat, url, "fetch", "-q", "origin", "refs/tags/*:refs/tags/*")
        if pushed:
            _remote(
                cat,
                url,
                "push",
                "-q",
                "origin",
                f"HEAD:refs/heads/{branch}",
                fix=f"the remote refused the push (someone may have pushed meanwhile): run "
                f"`mlops catalogue sync {cat.name}` again",
            )
        if writable and cat.head():
            _remote(cat, url, "push", "-q", "origin", "refs/tags/*:refs/tags/*")
        if pushed:
            git.run("update-ref", tracking, cat.head())
    action = "pulled" if pulled else "pushed" if pushed else "up-to-date"
    return SyncResult(cat.name, action, pulled, pushed, cat.head(), retagged, note)
