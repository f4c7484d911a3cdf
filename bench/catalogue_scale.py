"""Git catalogue at scale: 10,000 playbook entries. Warm list, warm resolve, one save vs a bare git commit.

Run alone: `python -m bench.catalogue_scale [--quick]` (quick: 2,000 entries).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import best_of, row, show
from mlops_nocode.catalogue.git import Git, default_identity, identity_env
from mlops_nocode.catalogue.gitrepo import GitCatalogue
from mlops_nocode.catalogue.service import Catalogues
from mlops_nocode.spec import Ref, load_text

PLAYBOOK = """apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: {name}, version: {version}, description: "generated step {name}", labels: {{batch: "{b}"}}}}
spec:
  runtime: python
  python: {{entrypoint: "steps.gen:f{i}"}}
  outputs: {{y: {{type: json}}}}
"""


def generate(root: Path, n: int) -> None:
    """A repository of `n` playbooks written as files, one commit, one tag per entry (one update-ref)."""
    (root / "playbooks").mkdir(parents=True)
    for i in range(n):
        name = f"pb-{i:05d}"
        (root / "playbooks" / f"{name}.yaml").write_text(
            PLAYBOOK.format(name=name, version="1.0.0", b=i % 10, i=i)
        )
    git = Git(root)
    ident = default_identity()
    git.run("init", "-q", "-b", "main")
    git.run("add", "-A")
    git.run("commit", "-q", "-m", f"{n} entries", env=identity_env(ident, ident))
    head = git.run("rev-parse", "HEAD").strip()
    git.run(
        "update-ref",
        "--stdin",
        input="".join(f"create refs/tags/playbook/pb-{i:05d}@1.0.0 {head}\n" for i in range(n)),
    )


def main(quick: bool = False) -> list[dict[str, Any]]:
    n = 2000 if quick else 10_000
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        t = time.perf_counter()
        generate(root, n)
        gen = time.perf_counter() - t
        t = time.perf_counter()
        cold = GitCatalogue(root)
        cold.snapshot()
        build = time.perf_counter() - t
        rows.append(row(f"generate repo ({n} entries, 1 commit)", gen, n))
        rows.append(row("cold index build (ls-tree + for-each-ref + cat-file batch)", build, n))

        def fresh_list() -> None:  # a new process's view: index from the per-commit cache file
            GitCatalogue(root).listing()

        rows.append(row("list, new catalogue object (cache file)", best_of(fresh_list, 5), n))
        cat = Catalogues([GitCatalogue(root)])
        cat.listing()
        rows.append(row("list, warm (in-process)", best_of(cat.listing, 5), n))
        env = {**os.environ, "MLOPS_HOME": tmp}
        (Path(tmp) / "catalogues.yaml").write_text(f"repositories: [{{name: bench, path: {root}}}]\n")
        cli = best_of(
            lambda: subprocess.run(
                [sys.executable, "-m", "mlops_nocode.cli.main", "catalogue", "list", "--json"],
                env=env,
                capture_output=True,
                check=True,
            ),
            3,
        )
        rows.append(row("`mlops catalogue list --json` (whole process)", cli, n))
        resolver = cat.resolver()
        refs = [Ref.parse(f"playbook/pb-{i:05d}@^1") for i in range(0, n, max(1, n // 1000))]
        for r in refs:
            resolver.resolve(r)

        def resolve_all() -> None:
            for r in refs:
                resolver.resolve(r)

        rows.append(row(f"resolve a ref, warm (x{len(refs)})", best_of(resolve_all, 5), len(refs)))
        counter = iter(range(10**6))

        def one_save() -> None:
            i = next(counter)
            [doc] = load_text(PLAYBOOK.format(name=f"pb-{i:05d}", version="1.0.1", b=0, i=i + 1))
            cat.save([doc], message="bench save")

        def bare_commit() -> None:
            i = next(counter)
            p = root / "scratch.txt"
            p.write_text(f"{i}\n")
            g = Git(root)
            g.run("add", "--", "scratch.txt")
            g.run("commit", "-q", "-m", "bare", "--", "scratch.txt")

        bare = best_of(bare_commit, 7)
        save = best_of(one_save, 7)
        rows.append(row("bare git add + commit of one file", bare, 1))
        rows.append(row("catalogue save (validate + write + commit + tag)", save, 1, bare, "bare_commit"))
        git_fsck = subprocess.run(["git", "-C", str(root), "fsck"], capture_output=True)
        rows.append({"case": "git fsck after the run", "ok": git_fsck.returncode == 0})
    show(f"Git catalogue with {n} entries", rows)
    return rows


if __name__ == "__main__":
    main("--quick" in sys.argv)
