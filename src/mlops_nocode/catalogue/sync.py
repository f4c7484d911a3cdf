"""Sync a Git catalogue with its `origin`: fast-forward pull, push, or stop on divergence changing nothing."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_nocode.catalogue.git import CatalogueError, Diverged
from mlops_nocode.catalogue.gitrepo import GitCatalogue
from mlops_nocode.catalogue.gitwrite import repo_lock
from mlops_nocode.spec import Problem

_SAFE = ("-c", "protocol.ext.allow=never")


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What a sync did: `up-to-date`, `pulled` (fast-forward) or `pushed`; commits moved each way."""

    repo: str
    action: str
    pulled: int
    pushed: int
    head: str

    def to_json(self) -> dict[str, object]:
        return {
            "repo": self.repo,
            "action": self.action,
            "pulled": self.pulled,
            "pushed": self.pushed,
            "head": self.head,
        }


def _tag_problem(cat: GitCatalogue, what: str, msg: str) -> CatalogueError:
    return CatalogueError(
        Problem(
            f"version tags differ between {cat.name!r} and its remote ({what}): {msg.strip()[:1500]}",
            cat.name,
            "the same KIND/NAME@VERSION was saved with different content on both sides; delete the local "
            f"tag (`git -C {cat.root} tag -d TAG`) after saving your change under a new version",
        )
    )


def sync(cat: GitCatalogue, branch: str) -> SyncResult:
    """Fetch `origin`, then fast-forward, push, or raise Diverged (nothing changed) with the commands to
    resolve it. Version tags are fetched and pushed too; a tag that differs on both sides is an error."""
    git = cat.git
    if not git.ok("remote", "get-url", "origin"):
        raise CatalogueError(
            Problem(
                f"repository {cat.name!r} has no remote",
                cat.name,
                f"add one: git -C {cat.root} remote add origin URL (or configure the repository with --url)",
            )
        )
    tracking = f"refs/remotes/origin/{branch}"
    with repo_lock(cat.gitdir):
        heads = git.run(*_SAFE, "ls-remote", "--heads", "origin", f"refs/heads/{branch}")
        remote = ""
        if heads.strip():
            git.run(*_SAFE, "fetch", "-q", "--no-tags", "origin", f"+refs/heads/{branch}:{tracking}")
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
                        f"replay your saves on top of the remote, then sync again: "
                        f"`git -C {cat.root} rebase origin/{branch}` (resolve any conflict, "
                        f"`git -C {cat.root} rebase --continue`), then `mlops catalogue sync {cat.name}`. "
                        f"Or keep the remote: `git -C {cat.root} reset --hard origin/{branch}`",
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
        if remote or local:
            proc = git.run_bytes(*_SAFE, "fetch", "-q", "origin", "refs/tags/*:refs/tags/*", check=False)
            if proc.returncode != 0:
                raise _tag_problem(cat, "fetch", proc.stderr.decode(errors="replace"))
        if pushed:
            git.run(*_SAFE, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        if local:
            proc = git.run_bytes(*_SAFE, "push", "-q", "origin", "refs/tags/*:refs/tags/*", check=False)
            if proc.returncode != 0:
                raise _tag_problem(cat, "push", proc.stderr.decode(errors="replace"))
        if pushed:
            git.run("update-ref", tracking, cat.head())
    action = "pulled" if pulled else "pushed" if pushed else "up-to-date"
    return SyncResult(cat.name, action, pulled, pushed, cat.head())
