"""`runtime: terraform`: a module applied with variables from parameters and inputs; its outputs become the
step's typed outputs (`infra`/`json` as JSON, `text` as text, `metrics` as an object of numbers).

Each step has a working directory in its run's folder, `runs/<run id>/terraform/<step>`, holding a copy
of its module, its variables, its local state and a lock (`state: run`, the default: one state per run
and step). With `state: NAME`, the state lives in MLOPS_HOME/terraform/shared/<name> between runs: under
that folder's lock it is copied into the working directory, applied there, and copied back with the
module and variables used (whatever the apply's end). The lock is held from the module's copy to the
outputs: a second run applying the same state waits for it (up to TERRAFORM_LOCK_TIMEOUT seconds), then
fails saying who holds it.

Terraform runs through the one runner class (iac/terraform.py), each command a confined child of the run's
fork server (`StepThread.command`): killed with its process group at a cancel or a timeout. `init`, then
`plan` (printed in the step's log), then `apply` of that saved plan, then `output -json`. Variables are
written as JSON (`mlops.auto.tfvars.json`, mode 0600; no HCL is ever built from values); a variable whose
whole value is `${{ secrets.X }}` reaches terraform only as `TF_VAR_<name>` in its environment. A run
with `ephemeral: true` steps destroys their infrastructure when it ends, whatever its end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.iac.process import Completed
from mlops_nocode.iac.terraform import TerraformError, TerraformRunner, TerraformSettings
from mlops_nocode.runtime.attempt import Attempt, StepFailure, step_stem
from mlops_nocode.runtime.executors.base import ExecContext
from mlops_nocode.runtime.executors.jobs import StepThread, ThreadExecutor
from mlops_nocode.runtime.executors.tfsource import install, module_folder
from mlops_nocode.spec.expressions import EXPR_RE
from mlops_nocode.spec.sections import TerraformRuntime

VARS_FILE = "mlops.auto.tfvars.json"  # terraform reads *.auto.tfvars.json by itself: plan, apply, destroy
BACKEND_FILE = "mlops_backend_override.tf.json"  # forces the local state in the working directory
META_FILE = "mlops-step.json"  # what `mlops infra destroy` needs: which secrets feed which variables
CAPTURE = 'exec "$@" >"$MLOPS_TF_STDOUT"'  # a command's stdout into a file: values never pass the shell


class TerraformStepSettings(BaseSettings):
    """Settings of terraform steps (environment variables of the same name, upper case)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    terraform_git_file_urls: bool = Field(
        False, description="allow git::file:// module sources (they can read any repository of this machine)"
    )


def work_dir(run_dir: Path, step_id: str) -> Path:
    """The working directory of a step in its run: module copy, variables, state, lock."""
    return run_dir / "terraform" / step_stem(step_id, 0).rsplit("@", 1)[0]


def shared_dir(home: Path, name: str) -> Path:
    """Where a shared state (`state: NAME`) lives between runs, with the last module and variables."""
    return home / "terraform" / "shared" / name


class TerraformExecutor(ThreadExecutor):
    """Applies a terraform module per step; destroys ephemeral ones when the run ends."""

    runtime = "terraform"
    providers = frozenset({"local"})

    def __init__(self, ctx: ExecContext) -> None:
        super().__init__(ctx)
        self.ephemeral: dict[Path, tuple[dict[str, str], Path]] = {}  # workdir -> (TF_VAR env, log)

    def start(self, a: Attempt) -> None:
        if TerraformRunner.find_binary(self.ctx.environ) is None:
            chosen = self.ctx.environ.get("TERRAFORM_BINARY")
            raise StepFailure(
                (
                    f"TERRAFORM_BINARY={chosen!r} is not an executable"
                    if chosen
                    else "terraform is not installed"
                )
                + ": install terraform >= 1.5 or OpenTofu (`tofu`), put it on PATH, or set TERRAFORM_BINARY"
            )
        super().start(a)

    def body(self, job: StepThread) -> dict[str, Any]:
        a = job.a
        try:
            cfg = TerraformRuntime.model_validate(a.step.config or {})
        except ValidationError as e:
            raise StepFailure(f"the step's terraform section is invalid: {e}") from None
        values, secret_env, secret_names = variables(a, cfg)
        workdir = work_dir(self.ctx.run_dir, a.step.id)
        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        allow_file = TerraformStepSettings().terraform_git_file_urls
        src = module_folder(job, cfg.module, self.ctx.home, allow_file, cfg.files)
        runner = TerraformRunner(
            workdir,
            env=secret_env,
            binary=TerraformRunner.find_binary(self.ctx.environ),
            execute=lambda *args: self._execute(job, runner, *args),
            interrupted=lambda: job.stopping,
            plan_parent=workdir,
            plugin_cache_dir=TerraformSettings().terraform_plugin_cache_dir
            or workdir.parent / "plugin-cache",
        )
        shared = shared_dir(self.ctx.home, cfg.state) if cfg.state != "run" else None
        holder = TerraformRunner(shared, interrupted=lambda: job.stopping) if shared else runner
        meta = {
            "run_id": self.ctx.run_id,
            "step": a.step.id,
            "module": cfg.module or "(inline files)",
            "secrets": secret_names,
        }
        job.log(f"== terraform working directory {workdir}" + (f" (shared state {shared})" if shared else ""))
        try:
            if shared:
                shared.mkdir(parents=True, exist_ok=True, mode=0o700)
            with holder.locked():  # a shared state: its lock, taken before its state is copied in
                try:
                    with runner.locked():
                        install(src, workdir)
                        if src.name.endswith(".module"):  # a git export made for this attempt
                            shutil.rmtree(src, ignore_errors=True)
                        if shared:
                            _copy_state(shared, workdir)
                        _write_private(workdir / VARS_FILE, json.dumps(values, indent=2))
                        backend = {"terraform": {"backend": {"local": {"path": "terraform.tfstate"}}}}
                        (workdir / BACKEND_FILE).write_text(json.dumps(backend))
                        _write_private(workdir / META_FILE, json.dumps(meta))
                        if cfg.ephemeral:  # destroyed at the run's end even if what follows fails
                            self.ephemeral[workdir] = (secret_env, a.log)
                        job.log("== terraform init")
                        runner.init()
                        job.log("== terraform plan")
                        runner.plan()
                        job.log("== terraform apply")
                        runner.apply()
                        records = runner.output_records()
                finally:
                    if shared:  # whatever happened, the shared state is the one terraform left
                        install(workdir, shared)
                        _copy_state(workdir, shared)
        except TerraformError as e:
            raise StepFailure(" ".join(x for x in (e.what, f"({e.where})", e.fix) if x)) from None
        finally:
            runner.close()
        return step_outputs(a, cfg, records)

    def _execute(
        self,
        job: StepThread,
        runner: TerraformRunner,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        capture: bool,
        writable: list[Path],
    ) -> Completed:
        """One terraform command as a confined child of the fork server; its output into the step's log."""
        start = job.a.log.stat().st_size if job.a.log.exists() else 0
        extra = {k: v for k, v in env.items() if k.startswith("TF_") or k == "CHECKPOINT_DISABLE"}
        if not os.path.isfile(extra.get("TF_CLI_CONFIG_FILE", "/")):
            extra.pop("TF_CLI_CONFIG_FILE", None)  # terraform would warn about it at every command
        out = cwd / f".mlops-stdout-{os.getpid()}-{id(job)}"
        if capture:
            argv = ["/bin/sh", "-c", CAPTURE, "terraform", *argv]
            extra["MLOPS_TF_STDOUT"] = str(out)
        try:
            code = job.command(argv, env=extra, cwd=cwd, grants=[(str(p), "rw") for p in writable])
            stdout = out.read_text(encoding="utf-8", errors="replace") if capture and out.exists() else ""
        finally:
            out.unlink(missing_ok=True)
        lines = [runner.redactor.text(x) for x in _since(job.a.log, start)]
        return Completed(code, False, lines, runner.redactor.text(stdout) if stdout else "")

    def close(self) -> None:
        super().close()
        for workdir, (env, log) in list(self.ephemeral.items()):
            self.ephemeral.pop(workdir)
            with contextlib.suppress(TerraformError, OSError):  # said in the step's log; the others still go
                destroy(workdir, env, log)


def destroy(workdir: Path, env: dict[str, str], log: Path | None = None) -> None:
    """Destroy what the state of `workdir` holds (its output appended to `log`, masked); TerraformError
    when terraform fails. Runs unconfined: the run's step processes are gone when this is called."""

    def on_line(line: str) -> None:
        if log is not None:
            with open(log, "a", encoding="utf-8", errors="replace") as f:
                f.write(line + "\n")

    on_line(f"== terraform destroy ({workdir})")
    try:
        with TerraformRunner(workdir, env=env, on_line=on_line) as runner:
            runner.destroy()
        on_line("== destroyed")
    except TerraformError as e:
        on_line(f"== destroy failed: {e.what} (retry with `mlops infra destroy`)")
        raise


def variables(a: Attempt, cfg: TerraformRuntime) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(values written to the variables file, TF_VAR_* environment of secrets, variable -> secret name).

    A string that is one whole expression takes the value as it is (a number parameter stays a number, a
    json/infra input stays an object); expressions inside a longer string are replaced by their text."""
    values: dict[str, Any] = {}
    env: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, raw in cfg.variables.items():
        whole = EXPR_RE.fullmatch(raw.strip()) if isinstance(raw, str) else None
        if whole and whole[1] == "secrets":
            if whole[2] not in a.secrets:
                raise StepFailure(f"terraform.variables.{name}: secret {whole[2]!r} is not available")
            env[f"TF_VAR_{name}"], names[name] = a.secrets[whole[2]], whole[2]
            continue
        if whole and whole[1] == "params" and _holds_secret(a.step.params.get(whole[2])):
            filled = _value(a, "params", whole[2])  # a pipeline passed a secret into this parameter
            env[f"TF_VAR_{name}"] = filled if isinstance(filled, str) else json.dumps(filled)
            names[name] = f"parameter {whole[2]}"
            continue
        values[name] = _value(a, whole[1], whole[2]) if whole else _substitute(a, raw, f"variables.{name}")
    return values, env, names


def _holds_secret(value: Any) -> bool:
    return "${{" in json.dumps(value) and "secrets." in json.dumps(value)


def _value(a: Attempt, ns: str, name: str) -> Any:
    if ns == "params":
        if _holds_secret(a.step.params.get(name)):
            from mlops_nocode.runtime.secrets import fill

            return fill(a.step.params.get(name), a.secrets)
        return a.step.params.get(name)
    if ns == "inputs":
        rec = a.inputs.get(name)
        if rec is None:
            return None
        return rec["value"] if "value" in rec else str(rec.get("path", ""))
    raise StepFailure(f"${{{{ {ns}.{name} }}}} cannot be used in a terraform variable")


def _substitute(a: Attempt, raw: Any, where: str) -> Any:
    """`raw` with each expression in its strings replaced by the value's text (one pass)."""
    if isinstance(raw, dict):
        return {k: _substitute(a, v, f"{where}.{k}") for k, v in raw.items()}
    if isinstance(raw, list):
        return [_substitute(a, v, f"{where}[{i}]") for i, v in enumerate(raw)]
    if not isinstance(raw, str) or "${{" not in raw:
        return raw

    def text(m: re.Match[str]) -> str:
        if m[1] == "secrets" or (m[1] == "params" and _holds_secret(a.step.params.get(m[2]))):
            raise StepFailure(
                f"terraform.{where}: a secret inside a larger value would be written to a file: give it a "
                "variable of its own whose whole value is the expression"
            )
        v = _value(a, m[1], m[2])
        return v if isinstance(v, str) else json.dumps(v)

    return EXPR_RE.sub(text, raw)


def step_outputs(a: Attempt, cfg: TerraformRuntime, records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The step's outputs from terraform's: by the section's `outputs` map, else by the same name."""
    mapping = cfg.outputs or {name: name for name in a.step.outputs}
    out: dict[str, Any] = {}
    for name, tf_name in mapping.items():
        rec = records.get(tf_name)
        if rec is None:
            known = ", ".join(sorted(records)) or "none"
            raise StepFailure(
                f"the module has no output {tf_name!r} for the step's output {name!r} (its outputs: {known})"
            )
        if rec.get("sensitive"):
            raise StepFailure(
                f"terraform output {tf_name!r} is sensitive: step outputs are stored and shown, so it cannot "
                "become one (pass secrets to later steps as secrets, not outputs)"
            )
        value, kind = rec.get("value"), a.step.outputs.get(name, "any")
        if kind == "text" and not isinstance(value, str):
            value = json.dumps(value)
        elif kind == "metrics" and not (
            isinstance(value, dict) and all(isinstance(v, int | float) for v in value.values())
        ):
            raise StepFailure(
                f"output {name!r} (metrics) needs an object of numbers; terraform gave {value!r}"
            )
        out[name] = value
    return out


def _copy_state(src: Path, dst: Path) -> None:
    for name in ("terraform.tfstate", "terraform.tfstate.backup"):
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
            os.chmod(dst / name, 0o600)
        else:
            (dst / name).unlink(missing_ok=True)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _since(log: Path, start: int, max_bytes: int = 256 * 1024) -> list[str]:
    """The lines appended to `log` after byte `start` (at most the last `max_bytes` of them)."""
    try:
        with open(log, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(start, size - max_bytes))
            return f.read().decode("utf-8", errors="replace").splitlines()[-200:]
    except OSError:
        return []


def workdirs(
    home: Path, run_id: str | None = None, step: str | None = None, state: str | None = None
) -> list[Path]:
    """The terraform working directories of a run (or of one of its steps), or of a shared state; a
    ValueError saying what is wrong when there is none."""
    if state is not None:
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", state):
            raise ValueError(f"{state!r} is not a state name (a DNS-1123 label)")
        found = [shared_dir(home, state)]
    else:
        if not run_id or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", run_id):
            raise ValueError(f"{run_id!r} is not a run id")
        base = home / "runs" / run_id / "terraform"
        found = [work_dir(home / "runs" / run_id, step)] if step else sorted(base.glob("*/"))
    found = [d for d in found if (d / META_FILE).is_file()]
    if not found:
        what = f"shared state {state!r}" if state else f"run {run_id}" + (f", step {step}," if step else "")
        raise ValueError(f"{what} has no terraform working directory under {home}")
    return found


def destroy_from_env(workdir: Path, environ: dict[str, str], log: Path | None = None) -> None:
    """Destroy a working directory's infrastructure on demand; the secrets its variables took are read
    from `environ` by name (TerraformError naming a missing one)."""
    meta = json.loads((workdir / META_FILE).read_text())
    env: dict[str, str] = {}
    for variable, secret in dict(meta.get("secrets") or {}).items():
        if secret not in environ:
            raise TerraformError(
                f"variable {variable!r} took secret {secret!r}, which is not set",
                str(workdir),
                f"export {secret}=... (the value the apply used), then destroy again",
            )
        env[f"TF_VAR_{variable}"] = environ[secret]
    destroy(workdir, env, log)


def secrets_of(workdir: Path) -> list[str]:
    """The names of the secrets a working directory's variables took (what a destroy needs again)."""
    meta = json.loads((workdir / META_FILE).read_text())
    return sorted(set(dict(meta.get("secrets") or {}).values()))


def state_of(workdir: Path) -> dict[str, Any]:
    """A working directory's step and the resources its state holds (`type.name`), for display."""
    meta = json.loads((workdir / META_FILE).read_text())
    try:
        state = json.loads((workdir / "terraform.tfstate").read_text())
    except (OSError, ValueError):
        state = {}
    held = [f"{r.get('type')}.{r.get('name')}" for r in state.get("resources", []) if isinstance(r, dict)]
    return {"step": str(meta.get("step", workdir.name)), "workdir": str(workdir), "resources": held}
