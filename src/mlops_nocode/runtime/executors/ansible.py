"""`runtime: ansible`: a playbook run by `ansible-playbook` (PyPI's ansible-core) as a confined, killable
child of the run's fork server.

One attempt: locate the playbook (a file in the spec's folder, or a Git ref exported from a cache under
MLOPS_HOME), write the inventory (from an `infra` input, else localhost through the local connection),
the extra vars and the secret vars (mode 0600) into a private folder beside the attempt, run
ansible-playbook with the default human output in the step's log and a callback plugin
(ansible_plugins/mlops_result.py) writing the recap as JSON, then remove the folder. The recap becomes the
step's metrics; `set_stats` data fills value outputs; file outputs are files the play wrote in
`{{ mlops_output_dir }}`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.runtime.attempt import StepFailure
from mlops_nocode.runtime.collect import Refused, open_regular
from mlops_nocode.runtime.executors import ansible_files as files
from mlops_nocode.runtime.executors.jobs import StepThread, ThreadExecutor, failed
from mlops_nocode.spec.ansible import GitPlaybook, check_limit, check_tag, parse_git

PLUGINS = Path(__file__).with_name("ansible_plugins")
RECAP = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failed",
    "unreachable": "unreachable",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}
VALUE_TYPES = frozenset({"metrics", "text", "json", "endpoint", "infra", "any"})
INSTALL = "pip install ansible-core (or pip install 'mlops-nocode[ansible]')"


class AnsibleSettings(BaseSettings):
    """ANSIBLE_PLAYBOOK_BIN: the ansible-playbook to run (default: the one beside the platform's Python,
    then PATH). ANSIBLE_GIT_TIMEOUT: seconds a `git::` playbook's local git commands may take.
    ANSIBLE_GIT_FILE_URLS: accept `git::file://` playbooks (they read repositories of the Runner's machine,
    outside the step sandbox: for a trusted single-user machine or tests)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    ansible_playbook_bin: str | None = None
    ansible_git_timeout: float = 300.0
    ansible_git_file_urls: bool = False


def find_binary(settings: AnsibleSettings, path: str | None) -> str:
    """The ansible-playbook executable; StepFailure naming how to install it."""
    if settings.ansible_playbook_bin:
        exe = settings.ansible_playbook_bin
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            raise StepFailure(
                f"ansible-playbook not found at {exe!r} (ANSIBLE_PLAYBOOK_BIN): fix the path, or unset it "
                f"and {INSTALL}"
            )
        return os.path.abspath(exe)
    beside = Path(sys.executable).with_name("ansible-playbook")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("ansible-playbook", path=path)
    if not found:
        raise StepFailure(f"ansible-playbook is not installed here: {INSTALL}, or set ANSIBLE_PLAYBOOK_BIN")
    return found


class AnsibleExecutor(ThreadExecutor):
    """Runs ansible steps on the machine of the Runner. Only `local` targets declare it: a remote target
    would need ansible-core in its image and a Runner there, which the k3s/cloud providers do not ship
    yet; a playbook that configures remote machines reaches them over SSH from here (its inventory)."""

    runtime = "ansible"
    providers = frozenset({"local"})

    def body(self, job: StepThread) -> dict[str, Any]:
        a = job.a
        section: dict[str, Any] = a.step.config or {}
        settings = AnsibleSettings()
        exe = find_binary(settings, self.ctx.box.env.get("PATH"))
        work = a.base.with_name(a.base.name + ".ansible")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(mode=0o700)
        try:
            return self._play(job, section, exe, work, settings)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _play(
        self, job: StepThread, section: dict[str, Any], exe: str, work: Path, settings: AnsibleSettings
    ) -> dict[str, Any]:
        a = job.a
        if section.get("play"):
            playbook = work / "play.yml"
            playbook.write_text(yaml.safe_dump(section["play"], sort_keys=False), encoding="utf-8")
        else:
            playbook = self._playbook(job, str(section["playbook"]), work, settings)
        plain, secret = files.variables(a, section)
        inv_name = section.get("inventory")
        if inv_name and inv_name in a.inputs:
            inv = files.inventory(files.input_value(a, inv_name), inv_name)
        else:  # none named, or an optional input left unwired
            inv_name, inv = None, files.localhost_inventory()
        (work / "inventory.yml").write_text(files.dump_inventory(inv), encoding="utf-8")
        (work / "vars.yml").write_text(files.dump_vars(plain), encoding="utf-8")
        (work / "ansible.cfg").write_text("", encoding="utf-8")
        argv = [exe, "-i", str(work / "inventory.yml"), "-e", f"@{work / 'vars.yml'}"]
        secrets_file = work / "secrets.yml"
        if secret:
            files.write_private(secrets_file, files.dump_vars(secret))
            argv += ["-e", f"@{secrets_file}"]
        vals = files.Values(a)
        if section.get("limit"):
            argv += ["--limit", _checked_limit(vals.text(section["limit"], "limit"))]
        for flag, key in (("--tags", "tags"), ("--skip-tags", "skip_tags")):
            tags = [_checked_tag(vals.text(t, key)) for t in section.get(key) or []]
            if tags:
                argv += [flag, ",".join(tags)]
        if section.get("check"):
            argv.append("--check")
        argv += ["--", str(playbook)]
        result_file = work / "result.json"
        env = _environment(work, result_file)
        job.log(
            f"== ansible-playbook {playbook.name} ({'inventory ' + inv_name if inv_name else 'localhost'})"
        )
        try:
            code = job.command(argv, env=env, cwd=a.out_dir, grants=[(str(work), "rw")], secrets=a.secrets)
        finally:
            with contextlib.suppress(FileNotFoundError):
                secrets_file.unlink()
        report = _read_result(result_file, int(self.ctx.limits.step_values_max_bytes))
        recap = _recap(report)
        _write_metrics(a.events, recap)
        if code != 0:
            raise _failure(report, code)
        return self._outputs(job, section, report, recap)

    def _outputs(
        self, job: StepThread, section: dict[str, Any], report: dict[str, Any], recap: dict[str, int]
    ) -> dict[str, Any]:
        stats = report.get("stats")
        stats = stats if isinstance(stats, dict) else {}
        mapped: dict[str, str] = section.get("outputs") or {}
        outputs: dict[str, Any] = {}
        for name, kind in job.a.step.outputs.items():
            if kind not in VALUE_TYPES:
                outputs[name] = mapped.get(name, name)
            elif name in stats:
                outputs[name] = stats[name]
            elif kind == "metrics":
                outputs[name] = recap
            else:
                raise StepFailure(
                    f"output {name!r}: the play set no stats named {name!r}: add a task "
                    f"`ansible.builtin.set_stats: {{data: {{{name}: ...}}}}`"
                )
        return outputs

    def _playbook(self, job: StepThread, where: str, work: Path, settings: AnsibleSettings) -> Path:
        if where.startswith("git::"):
            try:
                git = parse_git(where)
            except ValueError as e:
                raise StepFailure(f"ansible.playbook: {e}") from None
            if git.url.startswith("file://") and not settings.ansible_git_file_urls:
                raise StepFailure(
                    f"ansible.playbook {git.url!r}: file:// repositories are read on the Runner's machine, "
                    "outside the step sandbox; set ANSIBLE_GIT_FILE_URLS=true there to allow them"
                )
            root = work / "src"
            fetch_git(job, git, self.ctx.home, root, settings.ansible_git_timeout)
            rel = git.path
        else:
            if not job.a.step.spec_dir:
                raise StepFailure(
                    f"ansible.playbook {where!r} is relative to the playbook spec's folder, and this plan "
                    "step has none (its spec was not loaded from a file): load the spec from a catalogue"
                )
            root, rel = Path(job.a.step.spec_dir), where
        real_root = root.resolve()
        path = (real_root / rel).resolve()
        if not path.is_relative_to(real_root) or not path.is_file():
            raise StepFailure(f"ansible.playbook {where!r}: {rel} is not a file inside {root}")
        return path


def fetch_git(job: StepThread, git: GitPlaybook, home: Path, dest: Path, timeout: float) -> str:
    """Export `git.ref` of `git.url` into `dest` through a bare clone cached under MLOPS_HOME; its commit."""
    cache_root = home / "cache" / "ansible"
    cache_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    cache = cache_root / (hashlib.sha256(git.url.encode()).hexdigest()[:32] + ".git")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(dest.parent),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_ALLOW_PROTOCOL": "https:ssh:git:file",
        "LC_ALL": "C",
        **({"SSH_AUTH_SOCK": os.environ["SSH_AUTH_SOCK"]} if "SSH_AUTH_SOCK" in os.environ else {}),
    }
    with open(cache_root / (cache.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one clone or fetch of a repository at a time
        job.log(f"== git: {git.url} at {git.ref}")
        if not (cache / "HEAD").exists():
            shutil.rmtree(cache, ignore_errors=True)
            argv = ["git", "clone", "--bare", "--quiet", "--", git.url, str(cache)]
        else:
            refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
            argv = ["git", f"--git-dir={cache}", "fetch", "--quiet", "--prune", "--", git.url, *refspecs]
        code = job.process(argv, env=env)
        if code != 0:
            raise failed(f"git {argv[1] if argv[1] == 'clone' else 'fetch'} of {git.url}", code)
        try:
            commit = _git(["rev-parse", "--verify", "--quiet", f"{git.ref}^{{commit}}"], cache, env, timeout)
        except StepFailure:
            raise StepFailure(f"git ref {git.ref!r} is not a branch, tag or commit of {git.url}") from None
        tar = dest.parent / "src.tar"
        _git(["archive", "--format=tar", "-o", str(tar), commit], cache, env, timeout)
    dest.mkdir()
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")  # no links out, no absolute paths, no devices
    tar.unlink()
    job.log(f"== git: commit {commit}")
    return commit


def _git(args: list[str], cache: Path, env: dict[str, str], timeout: float) -> str:
    try:
        proc = subprocess.run(
            ["git", f"--git-dir={cache}", *args], env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise StepFailure(f"git {args[0]} took over {timeout:g}s") from None
    if proc.returncode != 0:
        raise StepFailure(f"git {args[0]} failed: {proc.stderr.strip()[:500]}")
    return proc.stdout.strip()


def _environment(work: Path, result_file: Path) -> dict[str, str]:
    home = work / "home"
    return {
        "ANSIBLE_CONFIG": str(work / "ansible.cfg"),  # no ansible.cfg from the cwd, the user or /etc
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(home / "remote"),
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_CALLBACK_PLUGINS": str(PLUGINS),
        "ANSIBLE_CALLBACKS_ENABLED": "mlops_result",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_DIFF_ALWAYS": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "MLOPS_ANSIBLE_RESULT": str(result_file),
    }


def _checked_limit(value: str) -> str:
    try:
        return check_limit(value, expressions=False)
    except ValueError as e:
        raise StepFailure(f"ansible.limit: {e}") from None


def _checked_tag(value: str) -> str:
    try:
        return check_tag(value, expressions=False)
    except ValueError as e:
        raise StepFailure(f"ansible.tags: {e}") from None


def _read_result(path: Path, max_bytes: int) -> dict[str, Any]:
    """The callback's JSON (the play could have replaced it: a link or a huge file is refused)."""
    try:
        with os.fdopen(open_regular(path), "rb") as f:
            raw = f.read(max_bytes + 1)
    except (OSError, Refused):
        return {}
    if len(raw) > max_bytes:
        raise StepFailure(
            f"the play's recap and set_stats data exceed {max_bytes} bytes (STEP_VALUES_MAX_BYTES)"
        )
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _recap(report: dict[str, Any]) -> dict[str, int]:
    totals = dict.fromkeys(RECAP.values(), 0)
    hosts = report.get("hosts")
    hosts = hosts if isinstance(hosts, dict) else {}
    for counts in hosts.values():
        for key, name in RECAP.items():
            value = counts.get(key, 0) if isinstance(counts, dict) else 0
            totals[name] += value if isinstance(value, int) else 0
    totals["hosts"] = len(hosts)
    return totals


def _write_metrics(events: Path, recap: dict[str, int]) -> None:
    with open(events, "a", encoding="utf-8") as f:
        for name, value in recap.items():
            f.write(json.dumps({"name": f"ansible_{name}", "value": value}) + "\n")


def _failure(report: dict[str, Any], code: int) -> StepFailure:
    bad = report.get("failed") if isinstance(report.get("failed"), list) else []
    if not bad:
        return failed("ansible-playbook", code)
    shown = [
        f"task {b.get('task')!r} {b.get('kind', 'failed')} on {b.get('host')}"
        + (f": {str(b['message'])[:300]}" if b.get("message") else "")
        for b in bad[:3]
        if isinstance(b, dict)
    ]
    more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
    return StepFailure("; ".join(shown) + more + f" (ansible-playbook exited with code {code})")
