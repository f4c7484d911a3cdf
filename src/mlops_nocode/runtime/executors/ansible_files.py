"""What an Ansible step's run needs on disk, made by serializers (never by string building): the extra
vars and secret vars files (YAML, every string tagged `!unsafe` so Ansible never evaluates a value as a
Jinja template), the inventory built from an `infra` input, and the values of `${{ }}` expressions."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from mlops_nocode.runtime.attempt import Attempt, StepFailure
from mlops_nocode.runtime.secrets import fill as fill_secrets
from mlops_nocode.spec.ansible import VAR_NAME
from mlops_nocode.spec.expressions import EXPR_RE, apply_filter

HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}")
GROUP_NAME = VAR_NAME
CONNECTIONS = ("ssh", "local", "paramiko")
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
RESERVED_PREFIXES = ("ansible_", "mlops_")
"""Var names that parameters and inputs may not set (extra_vars, written by the playbook's author, may)."""
HOST_KEYS = frozenset({"name", "address", "user", "port", "connection", "groups", "vars"})


class Unsafe(str):
    """A string Ansible must treat as data: written with the `!unsafe` tag."""


class _Dumper(yaml.SafeDumper):
    pass


def _unsafe(dumper: yaml.SafeDumper, value: Unsafe) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", str(value), style='"')


_Dumper.add_representer(Unsafe, _unsafe)


def as_data(value: Any) -> Any:
    """`value` (JSON) with every string, keys included, marked Unsafe."""
    if isinstance(value, str):
        return Unsafe(value)
    if isinstance(value, dict):
        return {Unsafe(str(k)): as_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_data(v) for v in value]
    return value


def dump_vars(variables: dict[str, Any]) -> str:
    """A vars file: top-level names as they are (checked Ansible names), values as data."""
    return yaml.dump(
        {k: as_data(v) for k, v in variables.items()}, Dumper=_Dumper, sort_keys=True, allow_unicode=False
    )


def write_private(path: Path, text: str) -> None:
    """Create `path` with mode 0600 (it must not exist) and write `text`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def input_value(a: Attempt, name: str) -> Any:
    """The value of a value input (json, infra, text...), or the path of a file input."""
    rec = a.inputs[name]
    if "value" in rec:
        return rec["value"]
    if rec.get("type") in {"metrics", "text", "json", "endpoint", "infra", "any"} and rec.get("path"):
        try:
            return json.loads(Path(rec["path"]).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise StepFailure(f"input {name!r} cannot be read: {e}") from None
    return str(rec.get("path", ""))


class Values:
    """Substitutes `${{ params|inputs|secrets.X }}` in the section's strings, noting whether a secret went
    into a value (that value then goes into the 0600 secrets file, never the extra vars file)."""

    def __init__(self, a: Attempt) -> None:
        self.a = a
        raw = a.step.params
        self.params = fill_secrets(raw, a.secrets) if a.secrets else raw
        self.secret_params = {k for k in raw if self.params.get(k) != raw.get(k)}
        self.used_secret = False

    def _one(self, ns: str, name: str) -> Any:
        if ns == "secrets":
            self.used_secret = True
            return self.a.secrets.get(name, "")
        if ns == "params":
            self.used_secret |= name in self.secret_params
            return self.params.get(name)
        if ns == "inputs":
            return input_value(self.a, name) if name in self.a.inputs else None
        raise StepFailure(f"unsupported expression namespace {ns!r} in the ansible section")

    def render(self, value: Any) -> Any:
        """A section value with its expressions replaced: a string that is one expression without a
        filter takes the value itself (a number stays a number); others are substituted as text, once."""
        if isinstance(value, dict):
            return {k: self.render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v) for v in value]
        if not isinstance(value, str) or "${{" not in value:
            return value
        whole = EXPR_RE.fullmatch(value.strip())
        if whole is not None and whole[3] is None:
            return self._one(whole[1], whole[2])

        def sub(m: re.Match[str]) -> str:
            v = self._one(m[1], m[2])
            return apply_filter(v if isinstance(v, str) else json.dumps(v), m[3])

        return EXPR_RE.sub(sub, value)

    def text(self, value: str, where: str) -> str:
        out = self.render(value)
        if not isinstance(out, str):
            out = json.dumps(out)
        if "\0" in out or "\n" in out:
            raise StepFailure(f"ansible.{where}: the value {out!r} holds a newline or NUL character")
        return out


def variables(a: Attempt, section: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(extra vars, secret vars): every parameter by its name, `extra_vars` rendered, the declared secrets
    by their names, and `mlops_output_dir`/`mlops_inputs` (file inputs' paths)."""
    vals = Values(a)
    plain: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    for name, value in vals.params.items():
        if VAR_NAME.fullmatch(name) and not name.lower().startswith(RESERVED_PREFIXES):
            (secret if name in vals.secret_params else plain)[name] = value
    for name, value in (section.get("extra_vars") or {}).items():
        vals.used_secret = False
        rendered = vals.render(value)
        plain.pop(name, None)
        secret.pop(name, None)
        (secret if vals.used_secret else plain)[name] = rendered
    for name, value in a.secrets.items():
        if VAR_NAME.fullmatch(name) and not name.lower().startswith(RESERVED_PREFIXES) and name not in plain:
            secret.setdefault(name, value)
    plain["mlops_output_dir"] = str(a.out_dir)
    plain["mlops_inputs"] = {k: str(r["path"]) for k, r in a.inputs.items() if r.get("path")}
    return plain, secret


def localhost_inventory() -> dict[str, Any]:
    """The inventory when the step names none: localhost through the local connection."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return {"all": {"hosts": {"localhost": local}}}


def inventory(value: Any, where: str) -> dict[str, Any]:
    """An Ansible YAML inventory from an `infra` value (its shape: docs/STEPS.md, 'Ansible steps');
    StepFailure naming the first thing wrong in it."""
    if not isinstance(value, dict) or not isinstance(value.get("hosts"), list) or not value["hosts"]:
        raise StepFailure(
            f"input {where!r} is not an inventory: expected {{'hosts': [{{'name': ..., 'address': ...}}, "
            "...], 'vars': {...}} with at least one host"
        )
    hosts: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    for i, h in enumerate(value["hosts"]):
        at = f"input {where!r}: hosts[{i}]"
        if isinstance(h, str):  # a bare name (a Terraform output's list of hosts); localhost: this machine
            h = {"name": h, **({"connection": "local"} if h in LOCAL_NAMES else {})}
        if not isinstance(h, dict):
            raise StepFailure(f"{at} is not an object or a host name")
        if extra := sorted(set(h) - HOST_KEYS):
            raise StepFailure(f"{at} has unknown keys {extra} (known: {sorted(HOST_KEYS)})")
        name = h.get("name")
        if not isinstance(name, str) or not HOST_NAME.fullmatch(name) or name in hosts:
            raise StepFailure(f"{at}.name {name!r} is not a new host name (letters, digits, _ . -)")
        hv: dict[str, Any] = {}
        if isinstance(h.get("vars"), dict):
            for k in h["vars"]:
                _input_var(k, f"{at}.vars")
            hv.update({k: as_data(v) for k, v in h["vars"].items()})
        elif h.get("vars") is not None:
            raise StepFailure(f"{at}.vars is not an object")
        for key, var in (("address", "ansible_host"), ("user", "ansible_user")):
            if h.get(key) is not None:
                if not isinstance(h[key], str) or not h[key] or any(c in h[key] for c in "\0\r\n"):
                    raise StepFailure(f"{at}.{key} {h[key]!r} is not a single-line string")
                hv[var] = Unsafe(h[key])
        if h.get("port") is not None:
            if not isinstance(h["port"], int) or isinstance(h["port"], bool) or not 0 < h["port"] < 65536:
                raise StepFailure(f"{at}.port {h['port']!r} is not a port number")
            hv["ansible_port"] = h["port"]
        conn = h.get("connection")
        if conn is not None and conn not in CONNECTIONS:
            raise StepFailure(f"{at}.connection {conn!r} is not one of {', '.join(CONNECTIONS)}")
        if conn is not None:
            hv["ansible_connection"] = conn
        if conn == "local":
            hv.setdefault("ansible_python_interpreter", sys.executable)
        hosts[name] = hv or None
        for g in h.get("groups") or []:
            if not isinstance(g, str) or not GROUP_NAME.fullmatch(g) or g in ("all", "ungrouped"):
                raise StepFailure(f"{at}.groups: {g!r} is not a group name (letters, digits, '_')")
            groups.setdefault(g, {"hosts": {}})["hosts"][name] = None
    top: dict[str, Any] = {"hosts": hosts}
    gvars = value.get("vars")
    if gvars is not None:
        if not isinstance(gvars, dict):
            raise StepFailure(f"input {where!r}: vars must map Ansible variable names to values")
        for k in gvars:
            _input_var(k, f"input {where!r}: vars")
        top["vars"] = {k: as_data(v) for k, v in gvars.items()}
    if groups:
        top["children"] = groups
    return {"all": top}


def dump_inventory(inv: dict[str, Any]) -> str:
    return yaml.dump(inv, Dumper=_Dumper, sort_keys=True, allow_unicode=False)


def _input_var(name: Any, where: str) -> None:
    """A var an input sets: an Ansible name, and none of Ansible's own `ansible_*` (connection and
    interpreter settings, some of which run commands: ansible_ssh_common_args, ansible_python_interpreter)."""
    if not isinstance(name, str) or not VAR_NAME.fullmatch(name):
        raise StepFailure(f"{where}: {name!r} is not an Ansible variable name")
    if name.lower().startswith(RESERVED_PREFIXES):
        raise StepFailure(
            f"{where}: {name!r} is reserved: an input cannot set Ansible's own variables (use the host's "
            "address, user, port and connection fields) nor the platform's mlops_* ones"
        )
