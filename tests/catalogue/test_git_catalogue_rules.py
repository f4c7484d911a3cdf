"""Git catalogues: the index follows tag changes, deleted entries, build metadata, multi-version saves,
no-op commits, authors, export closure, and sync's handling of version tags, read-only repos and remotes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops_nocode.catalogue.git import CatalogueError, Conflict, Diverged, Git
from mlops_nocode.catalogue.gitrepo import GitCatalogue
from mlops_nocode.catalogue.home import HomeError, mlops_home
from mlops_nocode.catalogue.repos import RepoConfig
from mlops_nocode.catalogue.service import Catalogues
from mlops_nocode.catalogue.sync import sync
from mlops_nocode.spec import Ref, SpecError
from tests.catalogue.gitcat_support import catalogues, doc, git, new_repo, pipeline_text, playbook_text


@pytest.fixture
def cat(tmp_path: Path) -> Catalogues:
    return catalogues(new_repo(tmp_path / "repo"))


def _ep(r: GitCatalogue | Catalogues, ref: str) -> str:
    resolver = r.resolver() if isinstance(r, Catalogues) else r
    return resolver.resolve(Ref.parse(ref)).spec.python.entrypoint  # type: ignore[union-attr]


def clone(remote: Path, path: Path, name: str, writable: bool = True) -> GitCatalogue:
    path.mkdir(parents=True)
    g = Git(path)
    g.run("init", "-q", "-b", "main")
    g.run("remote", "add", "origin", str(remote))
    return GitCatalogue(path, name, writable=writable)


def bare(path: Path) -> Path:
    git(path.parent, "init", "-q", "--bare", "-b", "main", str(path))
    return path


# -- 1. the index is keyed on HEAD and the tags ---------------------------------------------------------
def test_index_follows_tag_changes_with_head_unchanged(cat: Catalogues, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    cat.save([doc(playbook_text("x", "1.0.0", "m:a"))])
    [s2] = cat.save([doc(playbook_text("x", "1.1.0", "m:b"))])
    r = cat.repos[0]
    assert _ep(r, "playbook/x@1.0.0") == "m:a" and _ep(GitCatalogue(repo), "playbook/x@1.0.0") == "m:a"
    git(repo, "tag", "-f", "playbook/x@1.0.0", s2.commit)  # moved by hand: HEAD does not change
    assert _ep(r, "playbook/x@1.0.0") == "m:b"  # the in-process memo
    assert _ep(GitCatalogue(repo), "playbook/x@1.0.0") == "m:b"  # the on-disk cache
    git(repo, "tag", "-d", "playbook/x@1.0.0")
    assert r.versions("playbook", "x") == ["1.1.0"]
    assert GitCatalogue(repo).versions("playbook", "x") == ["1.1.0"]
    before = r.snapshot()
    git(repo, "pack-refs", "--all")  # the same tags, packed: nothing to rebuild
    assert r.snapshot() is before
    git(repo, "tag", "playbook/x@1.0.5", s2.commit)
    assert r.versions("playbook", "x") == ["1.0.5", "1.1.0"]


# -- 3. deleted entries: versions stay reserved ---------------------------------------------------------
def test_deleted_entry_comes_back_only_above_its_highest_version(cat: Catalogues, tmp_path: Path) -> None:
    for v, ep in [("1.0.0", "m:a"), ("1.1.0", "m:b"), ("2.0.0", "m:c")]:
        cat.save([doc(playbook_text("x", v, ep))])
    cat.delete(Ref.parse("playbook/x"), force=True)
    assert cat.listing() == []
    with pytest.raises(SpecError, match="unknown playbook 'x'"):
        cat.resolver().resolve(Ref.parse("playbook/x@1.0.0"))
    for v, ep in [("1.0.0", "m:z"), ("1.0.0", "m:a"), ("1.1.0", "m:b"), ("1.5.0", "m:z"), ("2.0.0", "m:z")]:
        with pytest.raises(Conflict) as e:
            cat.save([doc(playbook_text("x", v, ep))])
        assert "2.0.1" in e.value.problems[0].fix, (v, ep, e.value.problems)
    assert cat.listing() == [] and not (tmp_path / "repo" / "playbooks" / "x.yaml").exists()
    [s] = cat.save([doc(playbook_text("x", "2.0.1", "m:z"))])  # the hinted version is accepted
    assert s.changed
    [item] = cat.listing()
    assert item.latest == "2.0.1" and _ep(cat, "playbook/x") == "m:z"
    assert _ep(cat, "playbook/x@1.0.0") == "m:a"  # its kept history resolves again


def test_deleted_entry_can_be_restored_at_its_highest_version(cat: Catalogues) -> None:
    cat.save([doc(playbook_text("x", "1.0.0", "m:a"))])
    cat.save([doc(playbook_text("x", "2.0.0", "m:c"))])
    cat.delete(Ref.parse("playbook/x"))
    [s] = cat.save([doc(playbook_text("x", "2.0.0", "m:c"))])
    assert s.changed and cat.listing()[0].latest == "2.0.0" and _ep(cat, "playbook/x") == "m:c"


# -- 7. build metadata does not make another version ----------------------------------------------------
def test_versions_differing_only_by_build_metadata_are_one_version(cat: Catalogues) -> None:
    [s] = cat.save([doc(playbook_text("x", "1.0.0-rc.1+build"))])
    [again] = cat.save([doc(playbook_text("x", "1.0.0-rc.1+build"))])
    assert not again.changed and again.commit == s.commit
    for v in ("1.0.0-rc.1+other", "1.0.0-rc.1"):
        with pytest.raises(Conflict) as e:
            cat.save([doc(playbook_text("x", v))])
        assert "already exists as 1.0.0-rc.1+build" in e.value.problems[0].what
        assert "versions are immutable" in e.value.problems[0].what
    assert cat.repos[0].versions("playbook", "x") == ["1.0.0-rc.1+build"]
    assert cat.save([doc(playbook_text("x", "1.0.1"))])[0].changed


# -- 11. no-op commit, --base, authors ------------------------------------------------------------------
def test_noop_save_reports_the_commit_of_the_existing_version(cat: Catalogues) -> None:
    [s1] = cat.save([doc(playbook_text("x"))])
    cat.save([doc(playbook_text("y"))])
    [again] = cat.save([doc(playbook_text("x"))])
    assert not again.changed and again.commit == s1.commit
    saved = cat.save([doc(playbook_text("x")), doc(playbook_text("z"))])
    assert [(s.changed, s.commit == s1.commit) for s in saved] == [(False, True), (True, False)]


def test_base_that_is_not_a_commit_is_bad_input(cat: Catalogues) -> None:
    cat.save([doc(playbook_text("x"))])
    with pytest.raises(CatalogueError) as e:
        cat.save([doc(playbook_text("x", "1.1.0", "m:b"))], base="deadbeef")
    assert not isinstance(e.value, Conflict) and e.value.problems[0].where == "--base"


@pytest.mark.parametrize(
    "author", ["", "  ", "Ann <ann@x.org", "<ann@x.org>", "Ann <>", "Ann <no mail>", "a@b"]
)
def test_malformed_authors_are_refused(cat: Catalogues, author: str) -> None:
    with pytest.raises(CatalogueError) as e:
        cat.save([doc(playbook_text("x"))], author=author)
    assert e.value.problems[0].where == "--author"
    assert cat.listing() == []


def test_bare_name_and_full_authors_are_accepted(cat: Catalogues, tmp_path: Path) -> None:
    cat.save([doc(playbook_text("x"))], author="Ann Lee")
    cat.save([doc(playbook_text("y"))], author="Bo <bo@x.org>")
    log = git(tmp_path / "repo", "log", "--format=%an <%ae>").split("\n")
    assert log[:2] == ["Bo <bo@x.org>", "Ann Lee <Ann.Lee@localhost>"]


def test_used_by_an_unknown_entry_names_the_close_ones(cat: Catalogues) -> None:
    cat.save([doc(playbook_text("train"))])
    with pytest.raises(CatalogueError) as e:
        cat.used_by("playbook", "trian")
    assert "unknown playbook 'trian'" in e.value.problems[0].what and "train" in e.value.problems[0].fix


# -- 4. several versions of one entry in one save; export closure ---------------------------------------
def test_saving_several_versions_at_once_tags_each_on_its_own_commit(cat: Catalogues, tmp_path: Path) -> None:
    saved = cat.save([doc(playbook_text("x", "2.0.0", "m:b")), doc(playbook_text("x", "1.0.0", "m:a"))])
    assert all(s.changed for s in saved) and saved[0].commit != saved[1].commit
    assert _ep(cat, "playbook/x@1.0.0") == "m:a" and _ep(cat, "playbook/x") == "m:b"
    assert (tmp_path / "repo" / "playbooks" / "x.yaml").read_text().count("m:b") == 1
    fresh = GitCatalogue(tmp_path / "repo")
    assert _ep(fresh, "playbook/x@1.0.0") == "m:a" and _ep(fresh, "playbook/x@2.0.0") == "m:b"


def test_export_includes_the_versions_refs_need(cat: Catalogues, tmp_path: Path) -> None:
    cat.save([doc(playbook_text("x", "1.0.0", "m:a"))])
    cat.save([doc(pipeline_text("p", "playbook/x@^1"))])
    cat.save([doc(playbook_text("x", "2.0.0", "m:b"))])
    out = tmp_path / "out"
    refs = cat.export(out, kind="pipeline")
    assert refs == ["playbook/x@1.0.0", "pipeline/p@1.0.0"]
    assert "m:a" in (out / "playbooks" / "x.yaml").read_text()
    refs = cat.export(tmp_path / "all")
    assert refs == ["playbook/x@1.0.0", "playbook/x@2.0.0", "pipeline/p@1.0.0"]
    assert "m:b" in (tmp_path / "all" / "playbooks" / "x.yaml").read_text()
    assert "m:a" in (tmp_path / "all" / "playbooks" / "x@1.0.0.yaml").read_text()
    other = catalogues(new_repo(tmp_path / "other"))
    other.import_path([tmp_path / "all"])
    assert _ep(other, "playbook/x@^1") == "m:a" and _ep(other, "playbook/x") == "m:b"
    single = tmp_path / "one.yaml"
    cat.export(single)
    third = catalogues(new_repo(tmp_path / "third"))
    third.import_path([single])
    assert _ep(third, "playbook/x@^1") == "m:a" and third.repos[0].versions("playbook", "x") == [
        "1.0.0",
        "2.0.0",
    ]


# -- 5. MLOPS_HOME that cannot be a folder --------------------------------------------------------------
@pytest.mark.parametrize("where", ["file", "/proc/nope", "/dev/null/x"])
def test_unusable_home_is_a_located_problem(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if where == "file":
        (tmp_path / "file").write_text("x")
        where = str(tmp_path / "file")
    monkeypatch.setenv("MLOPS_HOME", where)
    with pytest.raises(HomeError) as e:
        mlops_home()
    p = e.value.problems[0]
    assert p.where == "MLOPS_HOME" and f"MLOPS_HOME {where} is not a usable folder: " in p.what
    assert isinstance(e.value, SpecError)


# -- 9. repository config refusals say why, per field ---------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "where", "why"),
    [
        ({"name": "../evil", "path": "/tmp"}, "NAME", "invalid name '../evil'"),
        ({"name": "e", "url": "-x"}, "--url", "starts with '-'"),
        ({"name": "e", "url": "ext::sh -c touch%20x"}, "--url", "can run commands"),
        ({"name": "e", "url": "/x", "branch": "a..b"}, "--branch", "invalid branch 'a..b'"),
    ],
)
def test_repo_config_refusals_are_located(fields: dict[str, str], where: str, why: str) -> None:
    with pytest.raises(CatalogueError) as e:
        RepoConfig(**fields)  # type: ignore[arg-type]
    [p] = e.value.problems
    assert p.where == where and why in p.what and p.fix and "further information" not in str(e.value)


# -- 2. sync re-points version tags a rebase left behind; differing tags are a named conflict -----------
def test_sync_after_rebase_moves_version_tags_onto_the_branch(tmp_path: Path) -> None:
    remote = bare(tmp_path / "remote.git")
    a, b = clone(remote, tmp_path / "a", "a"), clone(remote, tmp_path / "b", "b")
    ca, cb = catalogues(a), catalogues(b)
    ca.save([doc(playbook_text("base"))])
    sync(a, "main")
    sync(b, "main")
    ca.save([doc(playbook_text("y", "1.0.0", "m:y"))])
    ca.save([doc(playbook_text("y", "1.1.0", "m:y2"))])
    cb.save([doc(playbook_text("z"))])
    sync(b, "main")
    with pytest.raises(Diverged) as e:
        sync(a, "main")
    assert "moves the version tags" in e.value.problems[0].fix
    git(tmp_path / "a", "-c", "user.name=t", "-c", "user.email=t@x", "rebase", "-q", "origin/main")
    r = sync(a, "main")
    assert r.action == "pushed" and r.retagged == ["playbook/y@1.0.0", "playbook/y@1.1.0"]
    for repo in (tmp_path / "a", remote):
        assert git(repo, "for-each-ref", "--no-merged=main", "refs/tags").strip() == ""
    assert _ep(a, "playbook/y@1.0.0") == "m:y" and _ep(a, "playbook/y@1.1.0") == "m:y2"
    assert sync(b, "main").action == "pulled" and _ep(b, "playbook/y@1.0.0") == "m:y"
    for repo in (remote, tmp_path / "a", tmp_path / "b"):
        git(repo, "fsck", "--strict")


def test_sync_names_tags_that_differ_and_exits_as_a_conflict(tmp_path: Path) -> None:
    remote = bare(tmp_path / "remote.git")
    a, b = clone(remote, tmp_path / "a", "a"), clone(remote, tmp_path / "b", "b")
    catalogues(a).save([doc(playbook_text("x", "1.0.0", "m:a"))])
    catalogues(a).save([doc(playbook_text("x", "1.1.0", "m:b"))])
    sync(a, "main")
    sync(b, "main")
    git(tmp_path / "b", "tag", "-f", "playbook/x@1.0.0", "HEAD")  # points elsewhere than on the remote
    with pytest.raises(Conflict) as e:
        sync(b, "main")
    assert (
        "playbook/x@1.0.0" in e.value.problems[0].what
        and "tag -d playbook/x@1.0.0" in e.value.problems[0].fix
    )
    remote_tag = git(remote, "rev-parse", "playbook/x@1.0.0").strip()
    assert remote_tag == git(tmp_path / "a", "rev-parse", "playbook/x@1.0.0").strip()


def test_sync_refuses_to_push_tags_of_dropped_saves(tmp_path: Path) -> None:
    remote = bare(tmp_path / "remote.git")
    a = clone(remote, tmp_path / "a", "a")
    catalogues(a).save([doc(playbook_text("x"))])
    sync(a, "main")
    catalogues(a).save([doc(playbook_text("gone"))])
    git(tmp_path / "a", "reset", "-q", "--hard", "origin/main")  # the save is dropped, its tag stays
    with pytest.raises(Conflict) as e:
        sync(a, "main")
    assert "playbook/gone@1.0.0" in e.value.problems[0].what
    assert "tag -d playbook/gone@1.0.0" in e.value.problems[0].fix
    assert "gone" not in git(remote, "tag")


# -- 6. read-only repositories only pull ----------------------------------------------------------------
def test_read_only_repository_pulls_but_never_pushes(tmp_path: Path) -> None:
    remote = bare(tmp_path / "remote.git")
    w = clone(remote, tmp_path / "w", "w")
    catalogues(w).save([doc(playbook_text("x"))])
    sync(w, "main")
    ro = clone(remote, tmp_path / "ro", "ro", writable=False)
    r = sync(ro, "main")
    assert r.action == "pulled" and "read-only" in r.note and ro.names("playbook") == ["x"]
    (tmp_path / "ro" / "playbooks" / "x.yaml").write_text(playbook_text("x", "1.0.1"))
    git(tmp_path / "ro", "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qam", "by hand")
    git(tmp_path / "ro", "tag", "playbook/x@1.0.1")
    remote_head = git(remote, "rev-parse", "main")
    r = sync(ro, "main")
    assert r.pushed == 0 and "1 local commit(s) not pushed" in r.note
    assert git(remote, "rev-parse", "main") == remote_head and "1.0.1" not in git(remote, "tag")


# -- 10. an unreachable remote is the remote's problem, with git's message ------------------------------
def test_unreachable_remote_keeps_gits_message(tmp_path: Path) -> None:
    a = clone(tmp_path / "nowhere.git", tmp_path / "a", "a")
    with pytest.raises(CatalogueError) as e:
        sync(a, "main")
    p = e.value.problems[0]
    assert "does not appear to be a git repository" in p.what and str(tmp_path / "nowhere.git") in p.what
    assert "fsck" not in p.fix and "the local repository is fine" in p.fix
    assert not os.path.exists(tmp_path / "nowhere.git")
