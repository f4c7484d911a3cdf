"""`runtime: container`: a step run as a container by the local engine, Podman or Docker.

The engine runs unconfined (it confines its own workload) in its own session; the container gets:
- the step's inputs mounted read-only under /mlops/inputs/<name>, its output folder at /mlops/out (the
  `outputs` of the section name files there, exactly as for command steps);
- no network unless the section asks, every capability dropped, no privilege escalation, the invoking
  user's uid:gid (so the files it leaves are owned by whoever runs `mlops`);
- its environment: the section's `env` and the step's declared secrets. Values that hold a secret never
  travel in the engine's argv: the engine gets `--env NAME` and the value in its own environment.
The container is named after the run, step and attempt; whatever ends the attempt (exit, cancel, timeout,
a crash of the engine client), it is removed with `rm -f` through the engine before the attempt ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
from typing import Any, ClassVar, Literal

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.compiler.plan import Plan, PlanStep
from mlops_nocode.runtime.attempt import Attempt, StepFailure, output_rel, tail
from mlops_nocode.runtime.executors.jobs import StepThread, ThreadExecutor
from mlops_nocode.runtime.secrets import fill as fill_secrets
from mlops_nocode.spec.expressions import EXPR_RE, apply_filter
from mlops_nocode.spec.sections import RESERVED_ENGINE_ENV, ContainerRuntime
from mlops_nocode.spec.values import memory_bytes

INPUTS, OUT = "/mlops/inputs", "/mlops/out"
ENGINES = ("podman", "docker")
_SAFE_NAME = re.compile(r"[^a-zA-Z0-9_.-]")
_ENGINE_CHECK_S = 15.0
_CLEANUP_S = 60.0


class ContainerSettings(BaseSettings):
    """CONTAINER_ENGINE: `auto` (Podman, else Docker with a daemon that answers), `podman` or `docker`."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    container_engine: Literal["auto", "podman", "docker"] = "auto"


class EngineMissing(StepFailure):
    """No usable container engine on this machine."""


@dataclasses.dataclass(frozen=True, slots=True)
class Engine:
    name: str  # podman | docker
    path: str


def find_engine(choice: str, path: str | None) -> Engine:
    """The engine to use (`choice`: auto, podman or docker); EngineMissing naming both and why not."""
    reasons = []
    for name in ENGINES if choice == "auto" else (choice,):
        exe = shutil.which(name, path=path)
        if not exe:
            reasons.append(f"{name}: not found on PATH")
            continue
        if name == "docker":  # the client alone runs nothing: its daemon must answer
            why = _docker_daemon_problem(exe)
            if why:
                reasons.append(f"docker: the client is at {exe} but {why}")
                continue
        return Engine(name, exe)
    raise EngineMissing(
        "no container engine can run this step (" + "; ".join(reasons) + "): install Podman "
        "(apt-get install podman) or Docker with a running daemon"
        + (", or set CONTAINER_ENGINE=auto to use whichever is present" if choice != "auto" else "")
    )


def _docker_daemon_problem(exe: str) -> str | None:
    try:
        done = subprocess.run(
            [exe, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=_ENGINE_CHECK_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"it did not answer ({e})"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return "no daemon answers" + (f" ({lines[-1][:200]})" if lines else "")
    return None


def container_name(run_id: str, step_id: str, attempt: int) -> str:
    """`mlops-<run>-<step>-<attempt>`, in the characters engines accept; long ones end with a hash."""
    name = _SAFE_NAME.sub("-", f"mlops-{run_id}-{step_id.replace('/', '.')}-{attempt}")
    if len(name) > 120:
        name = f"{name[:100]}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"
    return name


def section(step: PlanStep) -> ContainerRuntime:
    """The step's `container:` section, checked again (a plan file is untrusted input)."""
    try:
        return ContainerRuntime.model_validate(step.config or {})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise StepFailure(f"container.{where}: {first['msg']} (in the plan of step {step.id})") from None


def _mount_path(path: str, what: str) -> str:
    if any(c in path for c in ":,\n\0"):
        raise StepFailure(
            f"{what} {path!r} cannot be mounted into a container (':' ',' or a line break in its path): "
            "move MLOPS_HOME to a path without them"
        )
    return path


def engine_call(
    engine: Engine,
    a: Attempt,
    run_id: str,
    *,
    uid: int | None = None,
    gid: int | None = None,
) -> tuple[list[str], dict[str, str], str]:
    """The engine's argv, the environment entries it must be given (values holding secrets) and the
    container's name, for attempt `a`. StepFailure when the section cannot be run as it is."""
    cfg = section(a.step)
    name = container_name(run_id, a.step.id, a.number)
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    secret_env: dict[str, str] = {}
    argv = [engine.path, "run", "--rm", "--name", name, "--label", f"mlops-nocode.run={run_id}"]
    argv += ["--network", cfg.network, "--pull", cfg.pull, "--user", f"{uid}:{gid}"]
    if engine.name == "podman" and uid != 0:
        argv.append("--userns=keep-id")  # rootless: the container's uid is the invoking user's on disk
    argv += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    for port in cfg.ports:
        argv += ["--publish", f"127.0.0.1:{port}:{port}"]
    cpu = float(a.step.resources.get("cpu") or 0)
    if cpu > 0:  # the step's resources are its limits, as a k3s Job's are
        argv += ["--cpus", f"{min(cpu, float(os.cpu_count() or 1)):g}"]
    if memory := a.step.resources.get("memory"):
        try:
            argv += ["--memory", str(memory_bytes(str(memory)))]
        except ValueError:
            raise StepFailure(f"resources.memory {str(memory)[:40]!r} is not a memory quantity") from None
    gpus = int(a.step.resources.get("gpu", 0) or 0)
    if a.gpus:  # the devices the Runner handed this attempt, by UUID (CDI names for podman)
        if engine.name == "podman":
            argv += [x for uuid in a.gpus for x in ("--device", f"nvidia.com/gpu={uuid}")]
        else:
            argv += ["--gpus", f'"device={",".join(a.gpus)}"']  # docker reads the value as CSV
    elif gpus:
        argv += ["--device", "nvidia.com/gpu=all"] if engine.name == "podman" else ["--gpus", str(gpus)]
    for input_name, rec in sorted(a.inputs.items()):
        if rec.get("path"):
            src = _mount_path(str(rec["path"]), f"input {input_name!r}")
            argv += ["--volume", f"{src}:{INPUTS}/{input_name}:ro"]
    argv += ["--volume", f"{_mount_path(str(a.out_dir), 'the output folder')}:{OUT}:rw"]
    if cfg.workdir:
        argv += ["--workdir", cfg.workdir]
    for key, value in cfg.env.items():
        text, secret = substitute(value, a, cfg, where=f"container.env.{key}")
        if secret:
            _engine_env_name(key, f"container.env.{key}")
            secret_env[key] = text
            argv += ["--env", key]
        else:
            argv += ["--env", f"{key}={text}"]
    for key, value in a.secrets.items():
        _engine_env_name(key, f"secret {key}")
        secret_env[key] = value
        argv += ["--env", key]
    command = [substitute(x, a, cfg, where="container.command")[0] for x in cfg.command or []]
    args = [substitute(x, a, cfg, where="container.args")[0] for x in cfg.args]
    if command:
        argv += ["--entrypoint", command[0]]
    argv += [cfg.image, *command[1:], *args]
    return argv, secret_env, name


def _engine_env_name(key: str, where: str) -> None:
    if RESERVED_ENGINE_ENV.fullmatch(key):
        raise StepFailure(
            f"{where}: {key} holds a secret and is a name of the container engine's own environment: "
            "rename it (e.g. APP_" + key + ")"
        )


def substitute(text: str, a: Attempt, cfg: ContainerRuntime, *, where: str) -> tuple[str, bool]:
    """`text` with its expressions replaced in one pass (inputs and outputs as paths inside the
    container); whether a secret went into it. Secrets are allowed in `env` only."""
    used_secret = False
    in_env = where.startswith("container.env.")
    params = fill_secrets(a.step.params, a.secrets) if a.secrets and in_env else a.step.params

    def one(m: re.Match[str]) -> str:
        nonlocal used_secret
        ns, name, flt = m[1], m[2], m[3]
        if ns == "secrets":
            if not in_env:
                raise StepFailure(f"{where}: secrets go into the container through env only")
            used_secret = True
            return apply_filter(a.secrets.get(name, ""), flt)
        if ns == "params":
            v = params.get(name, "")
            if in_env and a.secrets and v != a.step.params.get(name, ""):
                used_secret = True  # a parameter that carried a secret placeholder
            return apply_filter(v if isinstance(v, str) else json.dumps(v), flt)
        if ns == "inputs":
            return apply_filter(f"{INPUTS}/{name}" if name in a.inputs else "", flt)
        if ns == "outputs":
            return apply_filter(f"{OUT}/{output_rel(name, cfg.outputs.get(name, name))}", flt)
        return m[0]

    return EXPR_RE.sub(one, text), used_secret


class ContainerExecutor(ThreadExecutor):
    """Runs each attempt as `<engine> run`, its outputs collected from its output folder."""

    runtime: ClassVar[str] = "container"
    providers = frozenset({"local", "k3s"})
    _engine: Engine | None = None

    def output_files(self, step: Any) -> dict[str, str] | None:
        return dict((step.config or {}).get("outputs", {}))

    def engine(self) -> Engine:
        if self._engine is None:
            choice = ContainerSettings().container_engine
            self._engine = find_engine(choice, os.environ.get("PATH"))
        return self._engine

    def body(self, job: StepThread) -> dict[str, Any]:
        if placed_on(job.a.step) == "k3s":  # the Runner is in the deployment's pod: a Job of its own
            from mlops_nocode.runtime.executors.container_k8s import run_step_job

            return run_step_job(job, self.ctx.run_id, os.environ)  # facts of the pod, as PATH is
        engine = self.engine()
        argv, secret_env, name = engine_call(engine, job.a, self.ctx.run_id)
        job.log(f"$ {' '.join(_quote(x) for x in argv)}")
        env = {**os.environ, **secret_env}
        try:
            code = job.process(argv, env=env)
        finally:
            remove(engine, name)
        if code == 125:
            last = "".join(tail(job.a.log, 1)).strip()
            raise StepFailure(f"{engine.name} could not run the container: {last[:300]} (see the step's log)")
        if code in (126, 127):
            raise StepFailure(
                f"the container's command {'cannot be executed' if code == 126 else 'was not found'} in "
                f"image {section(job.a.step).image} (exit code {code}): fix container.command or the image"
            )
        if code != 0:
            raise StepFailure(f"the container exited with code {code} (see the step's log)")
        return {}


def placed_on(step: PlanStep) -> str:
    """The provider the step was placed on (its target's when the plan is not placed)."""
    return str((step.placement or {}).get("provider") or (step.target or {}).get("provider") or "local")


def remove(engine: Engine, name: str) -> None:
    """Kill and remove the container `name` if it still exists (nothing when `--rm` already did)."""
    argv = [engine.path, "rm", "--force", *(["--time", "0"] if engine.name == "podman" else []), name]
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(argv, capture_output=True, timeout=_CLEANUP_S, check=False, start_new_session=True)


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else json.dumps(arg)


def pin_images(plan: Plan, local: frozenset[str] | None = None, path: str | None = None) -> Plan:
    """The plan with each container image of steps run here (`local`: their ids; None: all) pinned as
    `image@sha256:...` when the engine has that image; unchanged where it cannot tell (no engine, image
    not present yet: it is pulled, or not, at run time as the section's `pull` says)."""
    steps = [s for s in plan.steps if s.runtime == "container" and (local is None or s.id in local)]
    todo = {str((s.config or {}).get("image", "")) for s in steps}
    todo = {i for i in todo if i and "@" not in i}
    if not todo:
        return plan
    try:
        engine = find_engine(ContainerSettings().container_engine, path or os.environ.get("PATH"))
    except (EngineMissing, ValidationError):
        return plan
    pinned = {image: d for image in sorted(todo) if (d := image_digest(engine, image))}
    if not pinned:
        return plan
    new = []
    for s in plan.steps:
        image = str((s.config or {}).get("image", ""))
        if s in steps and image in pinned:
            s = dataclasses.replace(s, config={**(s.config or {}), "image": f"{image}@{pinned[image]}"})
        new.append(s)
    return dataclasses.replace(plan, steps=tuple(new))


def image_digest(engine: Engine, image: str) -> str | None:
    """`sha256:...` of `image` as the engine has it locally; None when it does not have it."""
    fmt = "{{.Digest}}" if engine.name == "podman" else "{{json .RepoDigests}}"
    try:
        done = subprocess.run(
            [engine.path, "image", "inspect", "--format", fmt, "--", image],
            capture_output=True,
            text=True,
            timeout=_ENGINE_CHECK_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = done.stdout.strip()
    if done.returncode != 0 or not out:
        return None
    if engine.name == "docker":
        try:
            digests = json.loads(out)
        except ValueError:
            return None
        out = str(digests[0]).rpartition("@")[2] if digests else ""
    return out if re.fullmatch(r"sha256:[0-9a-f]{64}", out) else None
