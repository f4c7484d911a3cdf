"""Git catalogues: sync with a bare remote, and concurrent saves from threads and processes."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mlops_nocode.catalogue.git import Conflict, Diverged, Git
from mlops_nocode.catalogue.gitrepo import GitCatalogue
from mlops_nocode.catalogue.sync import sync
from tests.catalogue.gitcat_support import catalogues, doc, git, new_repo, playbook_text


def clone(remote: Path, path: Path, name: str) -> GitCatalogue:
    path.mkdir(parents=True)
    g = Git(path)
    g.run("init", "-q", "-b", "main")
    g.run("remote", "add", "origin", str(remote))
    return GitCatalogue(path, name)


def test_sync_fast_forward_push_and_divergence(tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    a, b = clone(remote, tmp_path / "a", "a"), clone(remote, tmp_path / "b", "b")
    ca, cb = catalogues(a), catalogues(b)
    ca.save([doc(playbook_text("x"))])
    r = sync(a, "main")
    assert (r.action, r.pushed) == ("pushed", 1)
    assert "playbook/x@1.0.0" in git(remote, "tag")
    r = sync(b, "main")
    assert (r.action, r.pulled) == ("pulled", 1)
    assert b.versions("playbook", "x") == ["1.0.0"] and (tmp_path / "b" / "playbooks" / "x.yaml").exists()
    assert sync(b, "main").action == "up-to-date"
    cb.save([doc(playbook_text("x", "1.1.0", "m:b"))])
    assert sync(b, "main").action == "pushed"
    assert sync(a, "main").action == "pulled" and a.versions("playbook", "x") == ["1.0.0", "1.1.0"]
    # both sides save: divergence stops and changes nothing
    ca.save([doc(playbook_text("y"))])
    cb.save([doc(playbook_text("z"))])
    sync(b, "main")
    head, tags, files = (
        a.head(),
        git(tmp_path / "a", "tag"),
        sorted(p.name for p in (tmp_path / "a").rglob("*.yaml")),
    )
    with pytest.raises(Diverged) as e:
        sync(a, "main")
    p = e.value.problems[0]
    assert "have diverged: 1 local commit(s)" in p.what and "1 remote commit(s)" in p.what
    assert "rebase origin/main" in p.fix and "mlops catalogue sync a" in p.fix
    assert a.head() == head and git(tmp_path / "a", "tag") == tags
    assert sorted(p.name for p in (tmp_path / "a").rglob("*.yaml")) == files
    assert git(tmp_path / "a", "status", "--porcelain") == ""
    # resolving as told works
    git(tmp_path / "a", "-c", "user.name=t", "-c", "user.email=t@x", "rebase", "-q", "origin/main")
    assert sync(a, "main").action == "pushed"
    assert sorted(a.names("playbook")) == ["x", "y", "z"]
    for repo in (remote, tmp_path / "a", tmp_path / "b"):
        git(repo, "fsck", "--strict")


def _save_many(root: str, names: list[str]) -> None:
    cat = catalogues(GitCatalogue(Path(root)))
    for n in names:
        cat.save([doc(playbook_text(n))], message=f"add {n}")


def _bump(cat: GitCatalogue, results: list[str]) -> None:
    cats = catalogues(cat)
    for _ in range(20):
        latest = cat.versions("playbook", "counter")[-1]
        major, minor, patch = (int(x) for x in latest.split("."))
        try:
            ep = f"m:t{threading.get_ident()}"  # every thread's edit differs
            cats.save([doc(playbook_text("counter", f"{major}.{minor}.{patch + 1}", ep))], base=latest)
        except Conflict:
            continue
        results.append(latest)
        return


def _check_linear(root: Path, commits: int) -> None:
    assert git(root, "rev-list", "--count", "HEAD").strip() == str(commits)
    assert git(root, "rev-list", "--merges", "HEAD").strip() == ""
    assert git(root, "status", "--porcelain").strip() == ""
    git(root, "fsck", "--strict")


def test_concurrent_saves_from_threads(tmp_path: Path) -> None:
    cat = new_repo(tmp_path / "repo")
    catalogues(cat).save([doc(playbook_text("counter", "0.0.0"))])
    threads = [
        threading.Thread(target=_save_many, args=(str(tmp_path / "repo"), [f"t{i}-{j}" for j in range(5)]))
        for i in range(6)
    ]
    results: list[str] = []
    threads += [threading.Thread(target=_bump, args=(cat, results)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cat.names("playbook")) == 31
    assert len(results) == 6 and len(set(results)) == 6  # every bump was based on a distinct version
    assert cat.versions("playbook", "counter")[-1] == "0.0.6"
    _check_linear(tmp_path / "repo", 1 + 30 + 6)


_SAVER = """
import sys
from pathlib import Path
from mlops_nocode.catalogue.gitrepo import GitCatalogue
from mlops_nocode.catalogue.service import Catalogues
from mlops_nocode.spec import load_text
cat = Catalogues([GitCatalogue(Path(sys.argv[1]))])
for name in sys.argv[2:]:
    text = f"apiVersion: mlops-nocode/v1\\nkind: Playbook\\nmetadata: {{name: {name}, version: 1.0.0}}\\n"
    text += "spec: {runtime: python, python: {entrypoint: 'm:f'}}\\n"
    cat.save(load_text(text), message=f"add {name}")
"""


def test_concurrent_saves_from_processes(tmp_path: Path) -> None:
    new_repo(tmp_path / "repo")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SAVER, str(tmp_path / "repo"), *(f"p{i}-{j}" for j in range(5))],
            stderr=subprocess.PIPE,
        )
        for i in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    cat = GitCatalogue(tmp_path / "repo")
    assert len(cat.names("playbook")) == 20
    tags = sorted(git(tmp_path / "repo", "tag").split())
    assert tags == sorted(f"playbook/p{i}-{j}@1.0.0" for i in range(4) for j in range(5))
    _check_linear(tmp_path / "repo", 20)
