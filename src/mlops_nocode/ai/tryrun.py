"""A written playbook's test run, before it is offered: the editor's "try a draft" documents
(runs/trydraft.py: a sample step feeding the playbook) run by `mlops run` in a child process whose
MLOPS_HOME is a fresh scratch folder, with none of the caller's environment (no secret can reach it), in
its own process group, killed whole at ASSISTANT_TRY_TIMEOUT. A failure becomes located problems (with
the end of the step's log) that go back to the model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlops_nocode.ai.check import as_yaml
from mlops_nocode.ai.guard import PARAMS_KEY, SAMPLES_KEY, Guarded
from mlops_nocode.runs.trydraft import try_documents
from mlops_nocode.spec import Problem, SpecError

MAX_SAMPLE_BYTES = 1024 * 1024
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TZ")
LOG_TAIL = 3000


def _located(problems: list[Problem]) -> list[Problem]:
    out = []
    for p in problems:
        where = p.where.replace("body.inputs", f"answer > {SAMPLES_KEY}").replace("body.playbook", "answer")
        out.append(Problem(p.what, where, p.fix))
    return out


def _log_tail(home: Path) -> str:
    logs = sorted(home.glob("runs/*/steps/**/*.log"), key=lambda p: p.stat().st_mtime)
    mine = [p for p in logs if "samples" not in p.name]
    return "".join(p.read_text(encoding="utf-8", errors="replace") for p in mine)[-LOG_TAIL:]


def _protected() -> str:
    """The caller's MLOPS_HOME (and what it already protects): the written code is the model's, and its
    test run must not read the gateway's keys or database even where a granted folder holds them."""
    paths = [os.environ.get("MLOPS_HOME") or str(Path.home() / ".mlops-nocode")]
    paths += [p for p in os.environ.get("STEP_SANDBOX_PROTECT", "").split(os.pathsep) if p]
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("sqlite:///"):
        paths.append(url.removeprefix("sqlite:///").split("?")[0])
    return os.pathsep.join(paths)


def try_playbook(g: Guarded, timeout: float) -> dict[str, Any]:
    """Run the playbook once on its samples in a scratch MLOPS_HOME; its outputs, or SpecError."""
    try:
        docs = try_documents(g.data, g.samples, g.parameters, MAX_SAMPLE_BYTES)
    except SpecError as e:
        raise SpecError(_located(e.problems)) from None
    with tempfile.TemporaryDirectory(prefix="mlops-assist-try-") as tmp:
        scratch = Path(tmp)
        spec = scratch / "try.yaml"
        spec.write_text("".join("---\n" + as_yaml(d) for d in docs), encoding="utf-8")
        env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
        env |= {"MLOPS_HOME": str(scratch / "home"), "HOME": str(scratch), "THROTTLE_DISABLE": "true"}
        env["STEP_SANDBOX_PROTECT"] = _protected()  # the caller's home stays out of reach of the code
        argv = [sys.executable, "-m", "mlops_nocode.cli.main", "run", str(spec), "--json", "--no-cache"]
        proc = subprocess.Popen(
            argv, cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise SpecError(
                Problem(
                    f"the test run took longer than {timeout:g}s and was stopped",
                    f"answer > {PARAMS_KEY}",
                    "make the code faster or the samples smaller",
                )
            ) from None
        finally:
            if proc.poll() is None:  # pragma: no cover - killed above
                os.killpg(proc.pid, signal.SIGKILL)
        try:
            summary = json.loads(out.decode("utf-8", "replace") or "{}")
        except ValueError:
            summary = {}
        if proc.returncode == 0 and isinstance(summary, dict):
            return {"status": "succeeded", "outputs": summary.get("outputs", {})}
        summary_text = err.decode("utf-8", "replace")[-LOG_TAIL:].replace(str(scratch), "<scratch>")
        tail = _log_tail(scratch / "home").replace(str(scratch), "<scratch>")
        raise SpecError(
            Problem(
                f"the test run on the samples failed:\n{summary_text.strip()}"
                + (f"\nthe step's log ends with:\n{tail.strip()}" if tail.strip() else ""),
                "answer > spec.python.code",
                "fix the code (or the samples) so that the run succeeds",
            )
        )
