"""`mlops catalogue ...` as a real process: save/show/history/diff, conflicts, repos, import/export, run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.catalogue.gitcat_support import git, pipeline_text, playbook_text


def test_save_show_history_diff_delete(mlops: Any, tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("# my step\n" + playbook_text("hello", description="say hello"))
    r = mlops("catalogue", "save", str(f), "-m", "add hello", "--author", "Ann <ann@x.org>", "--json")
    assert r.code == 0, r
    [saved] = r.json()["saved"]
    assert saved["ref"] == "playbook/hello@1.0.0" and saved["changed"] and saved["repo"] == "local"
    f.write_text(playbook_text("hello", entrypoint="m:g"))
    r = mlops("catalogue", "save", str(f))
    assert r.code == 1 and "already exists with different content" in r.stderr and "1.0.1" in r.stderr
    f.write_text(playbook_text("hello", "1.0.1", entrypoint="m:g"))
    assert mlops("catalogue", "save", str(f), "--base", "1.0.0").code == 0
    r = mlops("catalogue", "save", str(f), "--base", "1.0.0")  # an identical retry is a no-op
    assert r.code == 0 and "unchanged playbook/hello@1.0.1" in r.stderr, r
    r = mlops("catalogue", "show", "playbook/hello@1.0.0")
    assert r.code == 0 and r.stdout.startswith("# my step\n")  # stored as written
    r = mlops("catalogue", "show", "playbook/hello", "--json")
    assert r.json()["version"] == "1.0.1" and r.json()["versions"] == ["1.0.0", "1.0.1"]
    r = mlops("catalogue", "history", "playbook/hello", "--json")
    assert [(c["version"], c["message"]) for c in r.json()] == [
        ("1.0.1", "save playbook/hello@1.0.1"),
        ("1.0.0", "add hello"),
    ]
    assert r.json()[1]["author"] == "Ann <ann@x.org>"
    r = mlops("catalogue", "diff", "playbook/hello", "1.0.0", "1.0.1")
    assert r.code == 0 and '+  python: {entrypoint: "m:g"}' in r.stdout
    r = mlops("catalogue", "list", "--search", "HELLO", "--json")
    assert [i["ref"] for i in r.json()] == ["playbook/hello@1.0.1"]
    r = mlops("catalogue", "list", "--label", "category=classification", "--kind", "pipeline", "--json")
    assert "pipeline/iris-classifier@1.0.0" in [i["ref"] for i in r.json()]
    r = mlops("catalogue", "delete", "playbook/sklearn-train")
    assert r.code == 1 and "is used by" in r.stderr and "--force" in r.stderr
    assert mlops("catalogue", "delete", "playbook/hello").code == 0
    r = mlops("catalogue", "used-by", "playbook/sklearn-train", "--json")
    assert {u["by"] for u in r.json()} >= {"pipeline/tabular-classification@1.0.0"}


def test_hostile_input_is_refused_with_exit_2(mlops: Any, home: Path, tmp_path: Path) -> None:
    for ref in ["playbook/../x", "playbook//etc/passwd", "playbook/a;touch pwned", "../../x"]:
        for cmd in (["show", ref], ["delete", ref], ["history", ref]):
            r = mlops("catalogue", *cmd)
            assert r.code == 2 and "Traceback" not in r.stderr, r
    r = mlops("catalogue", "repos", "add", "../evil", "--path", str(tmp_path))
    assert r.code == 2 and "Traceback" not in r.stderr
    r = mlops("catalogue", "repos", "add", "evil", "--url", "--upload-pack=touch pwned")
    assert r.code == 2 and "Traceback" not in r.stderr
    r = mlops("catalogue", "repos", "add", "plain", "--path", str(tmp_path))
    assert r.code == 2 and "not a Git repository" in r.stderr
    assert not list(tmp_path.rglob("pwned")) and not list(Path.cwd().glob("pwned"))


def test_repos_import_export_and_run_a_pinned_version(mlops: Any, tmp_path: Path) -> None:
    remote = tmp_path / "team.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    r = mlops("catalogue", "repos", "add", "team", "--url", str(remote), "--priority", "200", "--json")
    assert r.code == 0, r
    r = mlops("catalogue", "repos", "list", "--json")
    assert [x["name"] for x in r.json()] == ["team", "local"]
    specs = tmp_path / "specs.yaml"
    specs.write_text(playbook_text("t1") + "---\n" + pipeline_text("team-pipe", "playbook/t1@1.0.0"))
    r = mlops("catalogue", "import", str(specs), "--repo", "team", "--json")
    assert r.code == 0 and {s["repo"] for s in r.json()["saved"]} == {"team"}, r
    r = mlops("catalogue", "sync", "team", "--json")
    assert r.json()["repos"][0]["action"] == "pushed", r
    out = tmp_path / "export"
    r = mlops("catalogue", "export", str(out), "--json")
    assert r.code == 0 and (out / "pipelines" / "team-pipe.yaml").exists()
    assert (out / "playbooks" / "sklearn-train.yaml").exists()
    one = tmp_path / "all.yaml"
    assert mlops("catalogue", "export", str(one), "--kind", "pipeline").code == 0
    assert one.read_text().count("kind: Pipeline") >= 5
    r = mlops("plan", "pipeline/team-pipe@1.0.0", "--json")
    assert r.code == 0 and r.json()["steps"][0]["entrypoint"] == "m:f", r
    r = mlops("run", "pipeline/iris-classifier@1.0.0", "--json", "--no-cache")
    assert r.code == 0 and r.json()["pipeline"] == "pipeline/iris-classifier@1.0.0", r
    assert mlops("catalogue", "repos", "remove", "team").code == 0
    assert mlops("plan", "pipeline/team-pipe").code == 2
