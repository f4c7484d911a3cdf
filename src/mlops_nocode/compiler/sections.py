"""Checks of the expressions in a playbook's runtime section (`container:`, `http:`, `terraform:`,
`ansible:`): every `${{ ... }}` must be well formed and name a declared parameter, input or output."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlops_nocode.spec import Playbook, Problem
from mlops_nocode.spec.expressions import scan
from mlops_nocode.spec.sections import RESERVED_ENGINE_ENV, SECTIONS

NAMESPACES: dict[str, tuple[str, ...]] = {
    "container": ("params", "inputs", "secrets", "outputs"),
    "http": ("params", "inputs", "secrets"),
    "terraform": ("params", "inputs", "secrets"),
    "ansible": ("params", "inputs", "secrets"),
    "litellm": ("params", "inputs"),  # a secret in a prompt would be sent to the model's provider
    "serve": ("params", "inputs", "secrets"),
}
"""The expressions each section may hold (`outputs.X`: the path of an output inside the container)."""


def strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string of a JSON value with its location (`a.b[2].c`); keys of objects are not scanned."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{where}[{i}]")


def section_problems(pb: Playbook) -> list[Problem]:
    """Located problems of the expressions in the playbook's runtime section ([] for other runtimes)."""
    runtime = pb.spec.runtime
    section = pb.spec.section
    if runtime not in SECTIONS or section is None:
        return []
    props = pb.spec.parameters.get("properties") if isinstance(pb.spec.parameters, dict) else None
    declared: dict[str, Any] = {
        "inputs": pb.spec.inputs,
        "outputs": pb.spec.outputs,
        **({"params": props} if isinstance(props, dict) else {}),
    }
    problems: list[Problem] = terraform_problems(pb)
    dumped = section.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for where, text in strings(dumped, f"{pb.ref} > spec.{runtime}"):
        if "${{" not in text:
            continue
        exprs, bad = scan(text, NAMESPACES[runtime])
        problems.extend(Problem(b.what, where, b.fix) for b in bad)
        for e in exprs:
            names = declared.get(e.namespace)
            if names is not None and e.name not in names:
                known = ", ".join(sorted(names)) or "none"
                place = "parameters.properties" if e.namespace == "params" else e.namespace
                problems.append(
                    Problem(
                        f"'{e.text}' names no {e.namespace.rstrip('s')} of {pb.ref}",
                        where,
                        f"declare it under spec.{place} (known: {known})",
                    )
                )
    if runtime == "container":
        problems.extend(container_problems(pb, dumped))
    if runtime == "serve":
        problems.extend(serve_problems(pb, dumped))
    if runtime == "http":  # compiler/http_checks.py (it imports this module, hence imported here)
        from mlops_nocode.compiler.http_checks import http_problems

        problems.extend(http_problems(pb))
    if runtime == "litellm":
        from mlops_nocode.compiler.llm_checks import llm_problems

        problems.extend(llm_problems(pb))
    return problems


def container_problems(pb: Playbook, dumped: dict[str, Any]) -> list[Problem]:
    """What a container section cannot do: secrets anywhere but `env` (the engine's argv is visible to
    every user of the machine), an env entry holding a secret under a name of the engine's environment."""
    problems: list[Problem] = []
    for key in ("command", "args", "workdir"):
        for where, text in strings(dumped.get(key), f"{pb.ref} > spec.container.{key}"):
            exprs, _ = scan(text, NAMESPACES["container"])
            if any(e.namespace == "secrets" for e in exprs):
                problems.append(
                    Problem(
                        "a secret in the container's command line would be visible to every user of the "
                        "machine (and in the engine's records)",
                        where,
                        "pass it through container.env (e.g. env: {TOKEN: '${{ secrets.TOKEN }}'}) and "
                        "read the variable in the container",
                    )
                )
    for key, value in (dumped.get("env") or {}).items():
        exprs, _ = scan(str(value), NAMESPACES["container"])
        if any(e.namespace == "secrets" for e in exprs) and RESERVED_ENGINE_ENV.fullmatch(key):
            problems.append(
                Problem(
                    f"env {key} holds a secret, and {key} is a name of the container engine's own "
                    "environment (the secret travels there)",
                    f"{pb.ref} > spec.container.env.{key}",
                    f"rename it (e.g. APP_{key})",
                )
            )
    return problems


TERRAFORM_VALUE_TYPES = frozenset({"metrics", "text", "json", "endpoint", "infra", "any"})


def terraform_problems(pb: Playbook) -> list[Problem]:
    """Plan-time checks of a `terraform:` section: its module folder exists, its outputs map onto
    declared value outputs, and secrets reach it only as whole variables (TF_VAR_name)."""
    from mlops_nocode.compiler.files import playbook_dir
    from mlops_nocode.spec.sections import TerraformRuntime, git_module_parts

    section = pb.spec.section
    if pb.spec.runtime != "terraform" or not isinstance(section, TerraformRuntime):
        return []
    where = f"{pb.ref} > spec.terraform"
    problems: list[Problem] = []
    folder = playbook_dir(pb)
    if section.module is not None and git_module_parts(section.module) is None and folder is not None:
        module = folder / section.module
        if not module.is_dir() or not any(
            p.is_file() for pattern in ("*.tf", "*.tf.json") for p in module.glob(pattern)
        ):
            problems.append(
                Problem(
                    f"module folder {section.module!r} does not exist or holds no .tf/.tf.json file",
                    f"{where}.module",
                    f"create it next to the playbook's spec file ({folder}) or fix the path",
                )
            )
    for name, port in pb.spec.outputs.items():
        if port.type not in TERRAFORM_VALUE_TYPES:
            problems.append(
                Problem(
                    f"output {name!r} has type {port.type}: terraform outputs are values",
                    f"{pb.ref} > spec.outputs.{name}",
                    f"declare it as one of {', '.join(sorted(TERRAFORM_VALUE_TYPES))} (infra: a JSON object)",
                )
            )
    for name, value in section.variables.items():
        for at, text in strings(value, f"{where}.variables.{name}"):
            exprs, _ = scan(text, NAMESPACES["terraform"])
            if any(e.namespace == "secrets" for e in exprs) and not (
                at == f"{where}.variables.{name}" and len(exprs) == 1 and text.strip() == exprs[0].text
            ):
                problems.append(
                    Problem(
                        "a secret inside a larger variable value would be written to a file",
                        at,
                        f"give the secret a variable of its own whose whole value is '${{{{ secrets.X }}}}' "
                        f"(it then reaches terraform only as TF_VAR_{name})",
                    )
                )
    return problems


def serve_problems(pb: Playbook, dumped: dict[str, Any]) -> list[Problem]:
    """What a serve section cannot do: outputs other than endpoints (the step's one value is its
    endpoint), a secret on the command line (visible to every user of the machine)."""
    problems: list[Problem] = []
    for name, port in pb.spec.outputs.items():
        if port.type != "endpoint":
            problems.append(
                Problem(
                    f"output {name!r} has type {port.type}: a serve step's outputs are its endpoint",
                    f"{pb.ref} > spec.outputs.{name}",
                    "declare it as type endpoint (its value is {url, service})",
                )
            )
    for where, text in strings(dumped.get("command"), f"{pb.ref} > spec.serve.command"):
        exprs, _ = scan(text, NAMESPACES["serve"])
        if any(e.namespace == "secrets" for e in exprs):
            problems.append(
                Problem(
                    "a secret on the service's command line would be visible to every user of the machine",
                    where,
                    "pass it through serve.env (e.g. env: {TOKEN: '${{ secrets.TOKEN }}'})",
                )
            )
    return problems
