"""`mlops catalogue ...` as a real process: JSON on every error path, clear refusals, export round trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.catalogue.gitcat_support import git, pipeline_text, playbook_text


def test_json_errors_are_printed_as_json(mlops: Any, tmp_path: Path) -> None:
    for args in (
        ["list", "--kind", "bad"],
        ["list", "--label", "bad"],
        ["export", str(tmp_path / "o"), "--kind", "bad"],
    ):
        r = mlops("catalogue", *args, "--json")
        assert r.code == 2, r
        data = r.json()
        assert data["status"] == "invalid" and data["problems"][0]["where"] in ("--kind", "--label"), r


def test_unusable_home_is_exit_2_everywhere(mlops: Any, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for home in (str(tmp_path / "file"), "/dev/null/x"):
        env = {"MLOPS_HOME": home}
        r = mlops("catalogue", "list", "--json", env=env)
        assert r.code == 2 and "Traceback" not in r.stderr, r
        assert f"MLOPS_HOME {home} is not a usable folder" in r.json()["problems"][0]["what"]
        for cmd in (["plan", "pipeline/iris-classifier"], ["validate", "pipeline/iris-classifier"]):
            r = mlops(*cmd, env=env)
            assert r.code == 2 and "Traceback" not in r.stderr and "is not a usable folder" in r.stderr, r


def test_repos_add_refusals_say_why(mlops: Any, tmp_path: Path) -> None:
    for args, why in (
        (["../evil", "--path", str(tmp_path)], "invalid name '../evil'"),
        (["evil", "--url", "-x"], "starts with '-'"),
        (["evil", "--url", "ext::sh -c touch% pwned"], "can run commands"),
        (["evil", "--url", str(tmp_path), "--branch", "a..b"], "invalid branch 'a..b'"),
    ):
        r = mlops("catalogue", "repos", "add", *args)
        assert r.code == 2 and why in r.stderr and "fix:" in r.stderr, r
        assert "For further information" not in r.stderr
    r = mlops("catalogue", "repos", "add", "far", "--url", str(tmp_path / "nowhere.git"))
    assert r.code == 2 and "does not appear to be a git repository" in " ".join(r.stderr.split()), r
    assert "fsck" not in r.stderr


def test_sync_conflicting_tag_exits_1_and_read_only_does_not_push(mlops: Any, tmp_path: Path) -> None:
    remote = tmp_path / "team.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    assert mlops("catalogue", "repos", "add", "team", "--url", str(remote)).code == 0
    f = tmp_path / "x.yaml"
    f.write_text(playbook_text("x") + "---\n" + playbook_text("y"))
    assert mlops("catalogue", "import", str(f), "--repo", "team").code == 0
    assert mlops("catalogue", "sync", "team").code == 0
    [work] = [
        Path(x["work_tree"])
        for x in mlops("catalogue", "repos", "list", "--json").json()
        if x["name"] == "team"
    ]
    git(work, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "--allow-empty", "-m", "by hand")
    git(work, "tag", "-f", "playbook/x@1.0.0", "HEAD")  # on the branch, but not where the remote has it
    r = mlops("catalogue", "sync", "team", "--json")
    assert r.code == 1 and r.json()["status"] == "conflict", r
    assert "playbook/x@1.0.0" in r.json()["problems"][0]["what"]
    mlops("catalogue", "repos", "remove", "team")
    r = mlops("catalogue", "repos", "add", "ro", "--url", str(remote), "--read-only")
    assert r.code == 0, r
    r = mlops("catalogue", "sync", "ro")
    assert r.code == 0 and "read-only repository: pulled only" in r.stderr, r


def test_consistency_of_history_used_by_base_save_author(mlops: Any, tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text(playbook_text("hello"))
    assert mlops("catalogue", "save", str(f), "-m", "add hello").code == 0
    f.write_text(playbook_text("hello", "1.1.0", "m:g"))
    assert mlops("catalogue", "save", str(f)).code == 0
    assert mlops("catalogue", "delete", "playbook/hello").code == 0
    r = mlops("catalogue", "history", "playbook/hello", "--json")
    assert r.code == 0 and [c["version"] for c in r.json()][1:] == ["1.1.0", "1.0.0"], r
    r = mlops("catalogue", "used-by", "playbook/sklearn-trian", "--json")
    assert r.code == 2 and "did you mean playbook/sklearn-train" in r.stdout, r
    f.write_text(playbook_text("hello", "2.0.0", "m:h"))
    r = mlops("catalogue", "save", str(f), "--base", "deadbeef")
    assert r.code == 2 and "no such commit" in r.stderr, r
    r = mlops("catalogue", "save", str(tmp_path))
    assert r.code == 2 and "is a folder" in r.stderr and "catalogue import" in r.stderr, r
    for author in ("", "Ann <ann@x.org"):
        r = mlops("catalogue", "save", str(f), "--author", author)
        assert r.code == 2 and "invalid author" in r.stderr and "--author" in r.stderr, r
    r = mlops("catalogue", "save", str(f), "--author", "Ann <ann@x.org>", "--json")
    assert r.code == 0, r
    commit = r.json()["saved"][0]["commit"]
    g = tmp_path / "other.yaml"
    g.write_text(playbook_text("other"))
    assert mlops("catalogue", "save", str(g)).code == 0
    r = mlops("catalogue", "save", str(f), "--json")  # a no-op names the commit that saved that version
    assert r.json()["saved"][0] == {
        "ref": "playbook/hello@2.0.0",
        "repo": "local",
        "commit": commit,
        "changed": False,
    }


def test_export_round_trips_into_a_fresh_home(mlops: Any, tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text(playbook_text("xstep", "1.0.0", "m:old"))
    assert mlops("catalogue", "save", str(f)).code == 0
    f.write_text(pipeline_text("xpipe", "playbook/xstep@^1"))
    assert mlops("catalogue", "save", str(f)).code == 0
    f.write_text(playbook_text("xstep", "2.0.0", "m:new"))
    assert mlops("catalogue", "save", str(f)).code == 0
    out, one = tmp_path / "out", tmp_path / "one.yaml"
    r = mlops("catalogue", "export", str(out), "--json")
    assert r.code == 0 and "playbook/xstep@1.0.0" in r.json()["refs"], r
    assert mlops("catalogue", "export", str(one), "--kind", "pipeline").code == 0
    for i, src in enumerate((out, one)):
        env = {"MLOPS_HOME": str(tmp_path / f"fresh{i}")}
        r = mlops("catalogue", "import", str(src), env=env)
        assert r.code == 0, r
        r = mlops("plan", "pipeline/xpipe", "--json", env=env)
        assert r.code == 0 and r.json()["steps"][0]["entrypoint"] == "m:old", r
