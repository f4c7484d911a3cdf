"""Git catalogues: versioning rules, ranges, history and diff, used-by, delete protection, safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops_nocode.catalogue.git import CatalogueError, Conflict
from mlops_nocode.catalogue.gitindex import CACHE_FILE, entry_path
from mlops_nocode.catalogue.gitrepo import GitCatalogue
from mlops_nocode.catalogue.repos import load_config
from mlops_nocode.catalogue.service import Catalogues
from mlops_nocode.compiler import compile_plan
from mlops_nocode.spec import Ref, SpecError
from tests.catalogue.gitcat_support import catalogues, doc, git, new_repo, pipeline_text, playbook_text


@pytest.fixture
def cat(tmp_path: Path) -> Catalogues:
    return catalogues(new_repo(tmp_path / "repo"))


def test_versions_are_immutable(cat: Catalogues, tmp_path: Path) -> None:
    [s] = cat.save([doc(playbook_text("x"))], author="Ann <ann@example.org>", message="first")
    assert s.changed and s.ref == "playbook/x@1.0.0"
    [again] = cat.save([doc(playbook_text("x"))])
    assert not again.changed and again.commit == s.commit
    with pytest.raises(Conflict) as e:
        cat.save([doc(playbook_text("x", entrypoint="m:g"))])
    assert "already exists with different content" in e.value.problems[0].what
    assert "bump metadata.version, e.g. to 1.0.1" in e.value.problems[0].fix
    cat.save([doc(playbook_text("x", "1.1.0", "m:g"))])
    with pytest.raises(Conflict) as e:
        cat.save([doc(playbook_text("x", "1.0.5", "m:h"))])
    assert "older than the latest version 1.1.0" in e.value.problems[0].what
    repo = tmp_path / "repo"
    assert git(repo, "log", "--format=%s").split("\n")[:2] == ["save playbook/x@1.1.0", "first"]
    assert git(repo, "log", "-1", "--skip=1", "--format=%an <%ae>").strip() == "Ann <ann@example.org>"
    assert (repo / "playbooks" / "x.yaml").read_text().count("m:g") == 1  # work tree holds the latest
    assert sorted(git(repo, "tag").split()) == ["playbook/x@1.0.0", "playbook/x@1.1.0"]


def test_ranges_resolve_and_old_versions_come_from_history(cat: Catalogues) -> None:
    for v, ep in [("1.0.0", "m:a"), ("1.2.0", "m:b"), ("1.2.5", "m:c"), ("1.3.0", "m:d"), ("2.0.0", "m:e")]:
        cat.save([doc(playbook_text("x", v, ep))])
    r = cat.resolver()
    got = {
        q: r.resolve(Ref.parse(f"playbook/x{q}")).spec.python.entrypoint
        for q in ["@1.2.0", "@^1.2", "@~1.2", "", "@^1"]
    }  # type: ignore[union-attr]
    assert got == {"@1.2.0": "m:b", "@^1.2": "m:d", "@~1.2": "m:c", "": "m:e", "@^1": "m:d"}
    assert cat.repos[0].versions("playbook", "x") == ["1.0.0", "1.2.0", "1.2.5", "1.3.0", "2.0.0"]
    with pytest.raises(SpecError) as e:
        r.resolve(Ref.parse("playbook/x@^3"))
    assert "use one of the known versions: 1.0.0, 1.2.0, 1.2.5, 1.3.0, 2.0.0" in e.value.problems[0].fix


def test_pinned_pipeline_keeps_running_the_old_playbook(cat: Catalogues) -> None:
    cat.save([doc(playbook_text("x", "1.0.0", "m:old"))])
    cat.save([doc(pipeline_text("p", "playbook/x@1.0.0")), doc(pipeline_text("q", "playbook/x"))])
    cat.save([doc(playbook_text("x", "1.1.0", "m:new"))])
    r = cat.resolver()
    assert compile_plan("pipeline/p", r).steps[0].entrypoint == "m:old"  # type: ignore[attr-defined]
    assert compile_plan("pipeline/q", r).steps[0].entrypoint == "m:new"  # type: ignore[attr-defined]


def test_save_validates_with_the_compiler(cat: Catalogues, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        cat.save([doc(pipeline_text("p", "playbook/missing"))])
    assert "unknown playbook 'missing'" in str(e.value)
    # a playbook and the pipeline using it may come together
    saved = cat.save([doc(playbook_text("x")), doc(pipeline_text("p", "playbook/x@^1"))])
    assert [s.changed for s in saved] == [True, True] and saved[0].commit == saved[1].commit
    assert git(tmp_path / "repo", "rev-list", "--count", "HEAD").strip() == "1"


def test_history_diff_and_used_by(cat: Catalogues) -> None:
    cat.save([doc(playbook_text("x", "1.0.0", "m:a"))], message="one")
    cat.save([doc(playbook_text("x", "1.1.0", "m:b"))], message="two", author="Bo <bo@x.org>")
    cat.save([doc(pipeline_text("p", "playbook/x@~1.0"))])
    cat.save([doc(pipeline_text("p", "playbook/x", "1.0.1"))])
    repo = cat.repos[0]
    h = repo.history("playbook", "x")
    assert [(c.version, c.message) for c in h] == [("1.1.0", "two"), ("1.0.0", "one")]
    assert h[0].author == "Bo <bo@x.org>" and len(h[0].commit) == 40 and h[0].date[:2] == "20"
    d = repo.diff("playbook", "x", "1.0.0", "1.1.0")
    assert "--- playbook/x@1.0.0" in d and "-    entrypoint: m:a\n+    entrypoint: m:b" in d
    uses = {(u.by, u.uses, u.resolves_to) for u in cat.used_by("playbook", "x")}
    assert uses == {
        ("pipeline/p@1.0.0", "playbook/x@~1.0", "1.0.0"),
        ("pipeline/p@1.0.1", "playbook/x", "1.1.0"),
    }


def test_delete_is_refused_while_used_unless_forced(cat: Catalogues, tmp_path: Path) -> None:
    cat.save([doc(playbook_text("x")), doc(pipeline_text("p", "playbook/x"))])
    with pytest.raises(Conflict) as e:
        cat.delete(Ref.parse("playbook/x"))
    assert "used by pipeline/p@1.0.0" in e.value.problems[0].what
    cat.delete(Ref.parse("pipeline/p"), message="drop p")
    cat.delete(Ref.parse("playbook/x"))
    assert cat.listing() == [] and not (tmp_path / "repo" / "playbooks" / "x.yaml").exists()
    # the deleted version stays immutable: other content is refused, the same content is a restore
    with pytest.raises(Conflict):
        cat.save([doc(playbook_text("x", entrypoint="m:other"))])
    [s] = cat.save([doc(playbook_text("x"))])
    assert s.changed and cat.repos[0].versions("playbook", "x") == ["1.0.0"]
    cat.save([doc(pipeline_text("p", "playbook/x"))])
    cat.delete(Ref.parse("playbook/x"), force=True)


def test_base_version_or_commit_must_be_current(cat: Catalogues) -> None:
    [s1] = cat.save([doc(playbook_text("x"))])
    cat.save([doc(playbook_text("y"))])  # another entry moving HEAD does not make x stale
    cat.save([doc(playbook_text("x", "1.1.0", "m:b"))], base=s1.commit)
    for stale in ("1.0.0", s1.commit):
        with pytest.raises(Conflict) as e:
            cat.save([doc(playbook_text("x", "1.2.0", "m:c"))], base=stale)
        assert "stale save" in e.value.problems[0].what
    cat.save([doc(playbook_text("x", "1.2.0", "m:c"))], base="1.1.0")
    with pytest.raises(CatalogueError) as e:  # not a commit at all: bad input, not a conflict
        cat.save([doc(playbook_text("x", "1.3.0", "m:d"))], base="0" * 40)
    assert not isinstance(e.value, Conflict) and "no such commit" in e.value.problems[0].what


def test_hostile_names_never_build_a_path(cat: Catalogues, tmp_path: Path) -> None:
    repo = cat.repos[0]
    for name in ["../x", "/etc/passwd", "a;touch pwned", "$(touch pwned)", "x/../../y", "`id`", "-rf", "A"]:
        with pytest.raises(CatalogueError):
            entry_path("playbook", name)
        with pytest.raises(CatalogueError):
            repo.path_of("playbook", name)
        assert repo.history("playbook", "ok") == []
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "repo" / "playbooks").symlink_to(outside, target_is_directory=True)
    with pytest.raises(CatalogueError) as e:
        cat.save([doc(playbook_text("x"))])
    assert "outside the repository" in e.value.problems[0].what
    assert list(outside.iterdir()) == []
    os.remove(tmp_path / "repo" / "playbooks")
    msg = "$(touch pwned); `touch pwned2` && rm -rf /\n--author=evil"
    cat.save([doc(playbook_text("x"))], message=msg, author="Eve $(id) <e@x.org>")
    assert git(tmp_path / "repo", "log", "-1", "--format=%B").strip() == msg.strip()
    assert git(tmp_path / "repo", "log", "-1", "--format=%an").strip() == "Eve $(id)"
    assert not list(Path.cwd().glob("pwned*")) and not list(tmp_path.rglob("pwned*"))


def test_not_a_repository_or_corrupt_is_a_clear_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(CatalogueError) as e:
        GitCatalogue(plain)
    assert "not a Git repository" in e.value.problems[0].what
    with pytest.raises(CatalogueError) as e:
        GitCatalogue(tmp_path / "nowhere")
    assert "not found" in e.value.problems[0].what
    git(tmp_path, "init", "-q", "--bare", "bare.git")
    with pytest.raises(CatalogueError) as e:
        GitCatalogue(tmp_path / "bare.git")
    assert "bare repository" in e.value.problems[0].what
    cat = catalogues(new_repo(tmp_path / "repo"))
    cat.save([doc(playbook_text("x"))])
    objects = tmp_path / "repo" / ".git" / "objects"
    for f in objects.glob("??/*"):
        f.chmod(0o644)
        f.write_bytes(b"garbage")
    (tmp_path / "repo" / ".git" / CACHE_FILE).unlink()
    with pytest.raises(CatalogueError) as e:
        GitCatalogue(tmp_path / "repo").names("playbook")
    assert "git" in e.value.problems[0].what and "fsck" in e.value.problems[0].fix


def test_index_is_cached_per_commit(cat: Catalogues, tmp_path: Path) -> None:
    cat.save([doc(playbook_text("x")), doc(playbook_text("y", description="find me"))])
    fresh = GitCatalogue(tmp_path / "repo")
    assert fresh.names("playbook") == ["x", "y"]
    cache = tmp_path / "repo" / ".git" / CACHE_FILE
    assert cache.exists()
    other = GitCatalogue(tmp_path / "repo")
    assert other.snapshot().head == fresh.head() and other.names("playbook") == ["x", "y"]
    found = catalogues(other).listing(text="FIND", labels={"team": "ml"})
    assert [i.name for i in found] == ["y"]


def test_first_use_seeds_one_commit_with_tags(home: Path) -> None:
    [cfg] = load_config()
    root = cfg.work_tree()
    assert root == home / "catalogues" / "local"
    assert git(root, "rev-list", "--count", "HEAD").strip() == "1"
    tags = git(root, "tag").split()
    assert "pipeline/iris-classifier@1.0.0" in tags and len(tags) == len(list(root.rglob("*.yaml")))
    cat = Catalogues.configured()
    assert (
        cat.resolver().resolve(Ref.parse("pipeline/iris-classifier@1.0.0")).metadata.name == "iris-classifier"
    )
    assert git(root, "fsck", "--strict").strip() == ""
