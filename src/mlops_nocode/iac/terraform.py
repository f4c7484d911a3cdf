"""The one class through which Terraform (or OpenTofu) is run.

One runner works in one per-deployment working directory that holds the root module (`main.tf.json`,
written by a provider's renderer), its own local state (`terraform.tfstate`) and a lock file: a second
runner on the same directory waits up to TERRAFORM_LOCK_TIMEOUT seconds, then fails saying who holds it.

Secrets reach terraform only through `env` (TF_VAR_* variables in its process environment): never in a
file or on its command line. Every value of `env` is masked (`***`) in every line passed to `on_line`,
in error messages and in the plan returned; the saved plan (which holds variable values) lives in a
private temporary folder outside the working directory and is deleted once applied or replaced.

Settings (environment): TERRAFORM_BINARY (path or name of terraform/tofu; default: `terraform`, else
`tofu`, on PATH), TERRAFORM_TIMEOUT (seconds one command may run), TERRAFORM_LOCK_TIMEOUT (seconds to
wait for another runner's lock), TERRAFORM_PLUGIN_CACHE_DIR (shared provider cache; default
MLOPS_HOME/terraform/plugin-cache).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.iac.process import Completed, clean_env, run_streamed
from mlops_nocode.providers.base import ProviderError
from mlops_nocode.runtime.redaction import redactor_for

__all__ = ["MIN_VERSION", "Execute", "TerraformError", "TerraformRunner", "TerraformSettings"]

MIN_VERSION = (1, 5)
INSTALL_HINT = "install terraform >= 1.5 or OpenTofu (`tofu`) and put it on PATH, or set TERRAFORM_BINARY"
LOCK_FILE = ".mlops-terraform.lock"


Execute = Callable[[list[str], Path, dict[str, str], bool, list[Path]], Completed]
"""How a runner runs one terraform command when not itself: (argv, cwd, env, capture stdout, folders the
command must be able to write besides `cwd`) -> how it ended (its tail masked, stdout when captured)."""


class TerraformError(ProviderError):
    """terraform/tofu failed or is missing: what, where (the working directory or the binary), fix."""


class TerraformSettings(BaseSettings):
    """How terraform is found and run (environment variables of the same name, upper case)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    terraform_binary: str | None = Field(None, description="terraform or tofu to use; wins over PATH")
    terraform_timeout: float = Field(3600.0, gt=0, description="seconds one terraform command may run")
    terraform_lock_timeout: float = Field(
        300.0, ge=0, description="seconds to wait for another run's lock on the same working directory"
    )
    terraform_plugin_cache_dir: Path | None = Field(
        None, description="provider plugin cache shared by runs (default MLOPS_HOME/terraform/plugin-cache)"
    )


class TerraformRunner:
    """Runs `terraform` (or `tofu`) in one per-deployment working directory holding the root module
    (`main.tf.json`), its own state and lock. Secrets reach it only through `env` (TF_VAR_*)."""

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        binary: str | None = None,
        on_line: Callable[[str], None] | None = None,
        *,
        timeout: float | None = None,
        lock_timeout: float | None = None,
        plugin_cache_dir: Path | None = None,
        execute: Execute | None = None,
        interrupted: Callable[[], bool] | None = None,
        plan_parent: Path | None = None,
    ) -> None:
        self.workdir, self.env, self.binary, self.on_line = workdir, dict(env or {}), binary, on_line
        settings = TerraformSettings()
        self.timeout = timeout if timeout is not None else settings.terraform_timeout
        self.lock_timeout = lock_timeout if lock_timeout is not None else settings.terraform_lock_timeout
        self.plugin_cache_dir = plugin_cache_dir or settings.terraform_plugin_cache_dir
        self.redactor = redactor_for(self.env.values())
        self._plan_dir: Path | None = None
        self._initialised = False
        self.execute = (
            execute  # e.g. a step's confined, cancellable commands (runtime/executors/terraform.py)
        )
        self.interrupted = interrupted  # stop waiting for the lock when this says so
        self._held = 0
        self.plan_parent = plan_parent  # where the saved plan's private folder goes (default: the temp dir)

    # -- finding the binary ------------------------------------------------------------------------

    @staticmethod
    def find_binary(env: Mapping[str, str] | None = None) -> str | None:
        """The path of `terraform` or `tofu` (TERRAFORM_BINARY wins), or None when neither is present."""
        source = os.environ if env is None else env
        path = source.get("PATH", os.defpath)
        chosen = source.get("TERRAFORM_BINARY") or TerraformSettings().terraform_binary
        if chosen:
            return shutil.which(chosen, path=path)
        return shutil.which("terraform", path=path) or shutil.which("tofu", path=path)

    def require_binary(self) -> str:
        """The binary this runner uses, checked to be terraform >= 1.5 or tofu: TerraformError if not."""
        if self.binary and (found := shutil.which(self.binary)):
            return _checked_version(found)
        if self.binary:
            raise TerraformError(
                f"the terraform binary {self.binary!r} is not an executable", self.binary, INSTALL_HINT
            )
        found = self.find_binary()
        if found:
            self.binary = _checked_version(found)
            return self.binary
        chosen = os.environ.get("TERRAFORM_BINARY")
        what = (
            f"TERRAFORM_BINARY={chosen!r} is not an executable"
            if chosen
            else "neither `terraform` nor `tofu` is on PATH"
        )
        raise TerraformError(what, "TERRAFORM_BINARY" if chosen else "PATH", INSTALL_HINT)

    # -- the lifecycle ----------------------------------------------------------------------------

    def init(self) -> None:
        """`terraform init` (offline when the root module needs no provider download)."""
        if not (self.workdir / "main.tf.json").is_file() and not any(self.workdir.glob("*.tf")):
            raise TerraformError(
                "no root module to initialise (main.tf.json is missing)",
                str(self.workdir),
                "render the deployment first (`mlops plan`), which writes main.tf.json there",
            )
        with self._locked():
            self._init()

    def plan(self) -> dict[str, Any]:
        """The saved plan as `terraform show -json` prints it (secret values masked)."""
        with self._locked():
            self._ensure_init()
            plan_file = self._fresh_plan_file()
            args = ["plan", "-input=false", "-no-color", "-lock-timeout=0s", f"-out={plan_file}"]
            self._check("plan", self._run(*args))
            shown = self._run("show", "-json", "-no-color", str(plan_file), capture=True)
            self._check("show", shown)
        data: dict[str, Any] = self.redactor.data(json.loads(shown.stdout))
        return data

    def apply(self) -> dict[str, Any]:
        """Apply (the saved plan if `plan()` ran, else a fresh one); returns the outputs. On failure,
        destroys what was created, then raises a TerraformError saying what was created and destroyed."""
        with self._locked():
            self._ensure_init()
            before = {r["address"] for r in self.resources()}
            plan_file = self._plan_dir / "tfplan" if self._plan_dir else None
            args = ["apply", "-input=false", "-no-color", "-lock-timeout=0s", "-auto-approve"]
            done = self._run(*args, *([str(plan_file)] if plan_file else []))
            self._drop_plan()
            if done.returncode != 0 or done.timed_out:
                raise self._undo_failed_apply(done, before)
        return self.outputs()

    def outputs(self) -> dict[str, Any]:
        """The root module's outputs, name -> value (sensitive ones included: callers must not print them)."""
        return {k: v.get("value") for k, v in self.output_records().items()}

    def output_records(self) -> dict[str, dict[str, Any]]:
        """The root module's outputs as `terraform output -json` gives them: name -> {value, sensitive...}."""
        if not self._state_file().exists():
            return {}
        done = self._run("output", "-json", "-no-color", capture=True)
        self._check("output", done)
        records: dict[str, dict[str, Any]] = json.loads(done.stdout or "{}")
        return records

    def resources(self) -> list[dict[str, str]]:
        """What the state holds: [{"type", "name", "address"}]."""
        if not self._state_file().exists():
            return []
        done = self._run("show", "-json", "-no-color", capture=True)
        self._check("show", done)
        values = json.loads(done.stdout or "{}").get("values") or {}
        return [
            {"type": r["type"], "name": r["name"], "address": r["address"]}
            for r in _walk_modules(values.get("root_module") or {})
        ]

    def destroy(self) -> None:
        """Destroy everything the state holds (nothing to do when nothing was ever created)."""
        if not self.workdir.is_dir() or not self._state_file().exists():
            return
        with self._locked():
            self._ensure_init()
            args = ["destroy", "-input=false", "-no-color", "-lock-timeout=0s", "-auto-approve"]
            self._check("destroy", self._run(*args))

    def close(self) -> None:
        """Delete the saved plan, if any (it holds variable values)."""
        self._drop_plan()

    def __enter__(self) -> TerraformRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------------------------------

    def _undo_failed_apply(self, done: Completed, before: set[str]) -> TerraformError:
        """Destroy what the failed apply created (only that: what existed before it stays), and say so."""
        failure = "timed out" if done.timed_out else "failed"
        reason = "\n".join(done.error_lines())
        created = [a for a in (r["address"] for r in self.resources()) if a not in before]
        kept = f"; what existed before the apply was left as it was ({len(before)})" if before else ""
        try:
            if created:
                targets = [f"-target={a}" for a in created] if before else []
                args = ["destroy", "-input=false", "-no-color", "-lock-timeout=0s", "-auto-approve"]
                self._check("destroy", self._run(*args, *targets))
        except TerraformError as exc:
            left = [r["address"] for r in self.resources()]
            return TerraformError(
                f"terraform apply {failure}: {reason}\nthe destroy that followed failed too: {exc.what}\n"
                f"created: {', '.join(created)}; still existing: {', '.join(left) or 'none'}",
                str(self.workdir),
                "fix the cause, then run `mlops destroy` for this run (it retries the destroy)",
                created=left,
            )
        left = [r["address"] for r in self.resources()]
        return TerraformError(
            f"terraform apply {failure}: {reason}\n"
            f"created then destroyed: {', '.join(created) or 'nothing'}{kept}",
            str(self.workdir),
            "fix the cause shown above and deploy again",
            created=left,
        )

    def _run(self, *args: str, capture: bool = False) -> Completed:
        binary = self.require_binary()
        env = clean_env({**self.env, **self._automation_env()})
        if self.execute is not None:
            writable = [p for p in (self._plan_dir, self.plugin_cache_dir) if p is not None]
            if "TF_PLUGIN_CACHE_DIR" in env:
                writable.append(Path(env["TF_PLUGIN_CACHE_DIR"]))
            return self.execute([binary, *args], self.workdir, env, capture, writable)
        return run_streamed(
            [binary, *args], self.workdir, env, self.redactor, self.on_line, self.timeout, capture
        )

    def _automation_env(self) -> dict[str, str]:
        env = {"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
        cache = self.plugin_cache_dir
        if cache is None and "TF_PLUGIN_CACHE_DIR" not in os.environ:
            from mlops_nocode.catalogue.home import mlops_home

            cache = mlops_home() / "terraform" / "plugin-cache"
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            env["TF_PLUGIN_CACHE_DIR"] = str(cache)
        return env

    def _check(self, command: str, done: Completed) -> None:
        if done.returncode == 0 and not done.timed_out:
            return
        if done.timed_out:
            what = f"terraform {command} did not finish within {self.timeout:g}s and was stopped"
            fix = "raise TERRAFORM_TIMEOUT, or look at what the provider is waiting for"
        else:
            what = f"terraform {command} failed (exit {done.returncode}):\n" + "\n".join(done.error_lines())
            fix = "fix the cause shown above; the working directory keeps the state for `mlops destroy`"
        raise TerraformError(what, str(self.workdir), fix, created=self._existing())

    def _existing(self) -> list[str]:
        try:
            return [r["address"] for r in self.resources()] if self._state_file().exists() else []
        except (TerraformError, OSError, ValueError):
            return []

    def _init(self) -> None:
        self._check("init", self._run("init", "-input=false", "-no-color", "-lock-timeout=0s"))
        self._initialised = True

    def _ensure_init(self) -> None:
        # a module without providers to download leaves no .terraform folder: init once per runner then
        if not self._initialised and not (self.workdir / ".terraform").is_dir():
            self._init()

    def _state_file(self) -> Path:
        return self.workdir / "terraform.tfstate"

    def _fresh_plan_file(self) -> Path:
        self._drop_plan()
        # mode 0700, outside workdir unless told otherwise (a confined terraform writes only where allowed)
        self._plan_dir = Path(tempfile.mkdtemp(prefix=".mlops-tfplan-", dir=self.plan_parent))
        return self._plan_dir / "tfplan"

    def _drop_plan(self) -> None:
        if self._plan_dir is not None:
            shutil.rmtree(self._plan_dir, ignore_errors=True)
            self._plan_dir = None

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this working directory's lock across several operations (plan then apply): the lock is
        re-entrant within this runner, so the operations inside do not wait for it again."""
        with self._locked():
            yield

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold this working directory's lock (waiting up to `lock_timeout`), for one operation."""
        if self._held:
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
            return
        if not self.workdir.is_dir():
            raise TerraformError(
                "the working directory does not exist", str(self.workdir), "render the deployment first"
            )
        self.workdir.chmod(0o700)  # the state may hold what providers return (addresses, keys)
        fd = os.open(self.workdir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise self._lock_error(fd) from None
                    if self.interrupted is not None and self.interrupted():
                        raise TerraformError(
                            "stopped while waiting for another run's lock", str(self.workdir / LOCK_FILE), ""
                        ) from None
                    time.sleep(0.1)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._held = 1
            try:
                yield
            finally:
                self._held = 0
        finally:
            os.close(fd)

    def _lock_error(self, fd: int) -> TerraformError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        return TerraformError(
            f"another terraform run holds the lock on this working directory (process {holder}); "
            f"waited {self.lock_timeout:g}s",
            str(self.workdir / LOCK_FILE),
            "wait for that run to finish (or raise TERRAFORM_LOCK_TIMEOUT); remove the lock file only "
            "if that process no longer exists",
        )


_versions: dict[str, str] = {}


def _checked_version(binary: str) -> str:
    """`binary` if it is terraform >= 1.5 or OpenTofu; a TerraformError naming what to install if not."""
    if binary in _versions:
        return binary
    done = run_streamed(
        [binary, "version", "-json"], Path("/"), clean_env({}), redactor_for(()), None, 60, capture=True
    )
    try:
        version = str(json.loads(done.stdout)["terraform_version"])
        major, minor = (int(x) for x in version.split(".")[:2])
    except (ValueError, KeyError, TypeError):
        raise TerraformError(
            f"{binary} does not answer `version -json` as terraform or tofu does", binary, INSTALL_HINT
        ) from None
    if (major, minor) < MIN_VERSION:
        raise TerraformError(f"{binary} is version {version}, too old", binary, INSTALL_HINT)
    _versions[binary] = version
    return binary


def _walk_modules(module: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    out = list(module.get("resources") or [])
    for child in module.get("child_modules") or []:
        out += _walk_modules(child)
    return out
