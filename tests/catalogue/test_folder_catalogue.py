"""Folder catalogues: what a folder walk reads, duplicate definitions, and suggestions across catalogues."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_nocode.catalogue import Chain, Index, catalogue_for, load_folder
from mlops_nocode.catalogue.base import Resolver
from mlops_nocode.spec import Ref, SpecError, load_text
from mlops_nocode.spec.loader import iter_spec_files


def playbook(name: str, version: str = "1.0.0", entrypoint: str = "m:f") -> str:
    return f"""apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: {name}, version: {version}}}
spec:
  runtime: python
  python: {{entrypoint: "{entrypoint}"}}
"""


def write(root: Path, rel: str, text: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def test_folder_walk_skips_hidden_and_non_spec_files(tmp_path: Path) -> None:
    write(tmp_path, "hello.yaml", playbook("hello"))
    write(tmp_path, "sub/other.yml", playbook("other"))
    write(tmp_path, ".github/workflows/ci.yml", "on: push\njobs: {build: {runs-on: ubuntu-latest}}\n")
    write(tmp_path, ".hidden.yaml", playbook("hidden"))
    write(tmp_path, "package.json", '{"name": "web", "version": "1.0.0"}')
    write(tmp_path, "data/rows.json", "[1, 2, 3]")
    write(tmp_path, "docker-compose.yml", "services: {web: {image: nginx}}\n")
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "helm/values.yaml", "replicas: {{ .Values.n }\n")
    write(tmp_path, "notes.json", "\xff not json")
    (tmp_path / "latin1.yaml").write_bytes("caf\xe9: 1\n".encode("latin-1"))
    files = iter_spec_files([tmp_path])
    assert all(not any(part.startswith(".") for part in f.relative_to(tmp_path).parts) for f in files)
    docs = load_folder([tmp_path])
    assert sorted(d.metadata.name for d in docs) == ["hello", "other"]


def test_folder_walk_still_reports_broken_specs(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", playbook("ok"))
    write(tmp_path, "typo.yaml", playbook("typo").replace("mlops-nocode/v1", "mlops-nocode/v2"))
    write(tmp_path, "nokind.yaml", "kind: Playbook\nmetadata: {name: x}\n")
    write(tmp_path, "broken.yaml", playbook("broken") + "  colour: [\n")
    with pytest.raises(SpecError) as e:
        load_folder([tmp_path])
    text = str(e.value)
    assert "apiVersion is 'mlops-nocode/v2'" in text
    assert "apiVersion is None" in text
    assert "broken.yaml:" in text and "not valid YAML/JSON" in text


def test_hidden_folder_given_explicitly_is_walked(tmp_path: Path) -> None:
    write(tmp_path, ".specs/a.yaml", playbook("a"))
    assert [d.metadata.name for d in load_folder([tmp_path / ".specs"])] == ["a"]


def test_named_non_spec_file_is_strict(tmp_path: Path) -> None:
    f = write(tmp_path, "package.json", '{"name": "web"}')
    with pytest.raises(SpecError) as e:
        load_folder([f])
    assert "apiVersion is None" in str(e.value)


def test_same_ref_twice_with_different_content(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", playbook("hello"))
    write(tmp_path, "sub/b.yaml", playbook("hello", entrypoint="m:g"))
    with pytest.raises(SpecError) as e:
        load_folder([tmp_path])
    [p] = e.value.problems
    a, b = tmp_path / "a.yaml", tmp_path / "sub" / "b.yaml"
    assert p.what == f"playbook/hello@1.0.0 is defined twice with different content: {a} and {b}"
    assert p.where == str(b)
    assert p.fix == "bump the version of one or remove it"


def test_same_ref_twice_in_one_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", playbook("hello") + "---\n" + playbook("hello", entrypoint="m:g"))
    with pytest.raises(SpecError) as e:
        load_folder([tmp_path])
    assert "playbook/hello@1.0.0 is defined twice with different content" in str(e.value)


def test_identical_duplicates_and_other_versions_are_fine(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", playbook("hello"))
    write(tmp_path, "b.yaml", playbook("hello").replace("metadata:", "x-note: copy\nmetadata:"))
    write(tmp_path, "c.yaml", playbook("hello", version="1.1.0", entrypoint="m:g"))
    docs = load_folder([tmp_path, tmp_path / "a.yaml"])
    assert len(docs) == 4
    assert catalogue_for(docs, builtin=False).resolve(Ref.parse("playbook/hello")).metadata.version == "1.1.0"


def test_duplicates_across_separate_loads_on_one_command(tmp_path: Path) -> None:
    a = write(tmp_path, "one/a.yaml", playbook("hello"))
    b = write(tmp_path, "two/b.yaml", playbook("hello", entrypoint="m:g"))
    docs = load_folder([tmp_path / "one"]) + load_folder([b])
    with pytest.raises(SpecError) as e:
        catalogue_for(docs)
    assert f"defined twice with different content: {a} and {b}" in str(e.value)


def test_overriding_a_builtin_entry_stays_allowed() -> None:
    builtin = catalogue_for(None).resolve(Ref.parse("playbook/sklearn-train@1.0.0"))
    text = builtin.model_dump_json(by_alias=True).replace(builtin.spec.python.entrypoint, "m:f")  # type: ignore[union-attr]
    [mine] = load_text(text)
    assert catalogue_for([mine]).resolve(Ref.parse("playbook/sklearn-train@1.0.0")) is mine


def test_did_you_mean_looks_at_every_catalogue() -> None:
    docs = load_text(playbook("hello"))
    with pytest.raises(SpecError) as e:
        catalogue_for(docs).resolve(Ref.parse("playbook/helo"))
    [p] = e.value.problems
    assert p.what == "unknown playbook 'helo'" and "did you mean playbook/hello" in p.fix
    with pytest.raises(SpecError) as e:
        catalogue_for(docs).resolve(Ref.parse("playbook/sklearn-tran"))
    assert "did you mean playbook/sklearn-train" in e.value.problems[0].fix


def test_unknown_name_lists_names_of_every_catalogue() -> None:
    chain = Chain([Index(load_text(playbook("zzz-one"))), Index(load_text(playbook("zzz-two")))])
    assert chain.names("playbook") == ["zzz-one", "zzz-two"]
    with pytest.raises(SpecError) as e:
        chain.resolve(Ref.parse("playbook/qqq"))
    assert "known playbooks: zzz-one, zzz-two" in e.value.problems[0].fix
    with pytest.raises(SpecError) as e:
        Chain([]).resolve(Ref.parse("playbook/qqq"))
    assert e.value.problems[0].what == "unknown playbook 'qqq'"


def test_no_matching_version_lists_versions_of_every_catalogue() -> None:
    chain = Chain([Index(load_text(playbook("a", "1.0.0"))), Index(load_text(playbook("a", "2.0.0")))])
    assert chain.resolve(Ref.parse("playbook/a@^2")).metadata.version == "2.0.0"
    with pytest.raises(SpecError) as e:
        chain.resolve(Ref.parse("playbook/a@^3"))
    assert "use one of the known versions: 1.0.0, 2.0.0" in e.value.problems[0].fix


def test_index_and_chain_are_resolvers() -> None:
    index = Index(load_text(playbook("a")))
    resolvers: list[Resolver] = [index, Chain([index])]
    for r in resolvers:
        assert r.names("playbook") == ["a"] and r.names("pipeline") == []


def test_folder_walk_follows_links_once_and_reports_utf16_specs(tmp_path: Path) -> None:
    write(tmp_path, "shared/a.yaml", playbook("a"))
    (tmp_path / "shared" / "loop").symlink_to(tmp_path / "shared", target_is_directory=True)
    (tmp_path / "linked").symlink_to(tmp_path / "shared", target_is_directory=True)
    assert iter_spec_files([tmp_path]) == [tmp_path / "linked" / "a.yaml"]
    assert [d.metadata.name for d in load_folder([tmp_path])] == ["a"]
    (tmp_path / "shared" / "u16.yaml").write_bytes(playbook("u").encode("utf-16"))
    with pytest.raises(SpecError) as e:
        load_folder([tmp_path / "shared"])
    assert "not UTF-8 text: it is UTF-16" in str(e.value)
