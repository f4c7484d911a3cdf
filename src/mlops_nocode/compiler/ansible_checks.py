"""Plan-time checks of an `ansible:` section that need the playbook's declarations: the inventory input,
parameter names (each becomes an extra var) and file outputs."""

from __future__ import annotations

from typing import Any

from mlops_nocode.compiler.files import expand, playbook_dir
from mlops_nocode.compiler.sections import strings
from mlops_nocode.spec import Playbook, Problem
from mlops_nocode.spec.ansible import VAR_NAME
from mlops_nocode.spec.sections import AnsibleRuntime

INVENTORY_TYPES = ("infra", "json", "any")
VALUE_TYPES = ("metrics", "text", "json", "endpoint", "infra", "any")


def ansible_problems(pb: Playbook) -> list[Problem]:
    """Located problems of an ansible playbook's section ([] for other runtimes)."""
    section = pb.spec.section
    if pb.spec.runtime != "ansible" or not isinstance(section, AnsibleRuntime):
        return []
    where = f"{pb.ref} > spec.ansible"
    problems: list[Problem] = []
    if section.playbook is not None:
        problems.extend(_shipped_playbook(pb, section.playbook, where))
    for at, text in strings(section.play or [], f"{where}.play"):
        if "${{" in text:
            problems.append(
                Problem(
                    "a play holds '${{ }}': plays are not substituted (a value pasted into a Jinja "
                    "template could run as one)",
                    at,
                    "use the var instead: every parameter is a var of its name ({{ name }}), inputs and "
                    "secrets come through ansible.extra_vars",
                )
            )
            break
    inv = section.inventory
    if inv is not None:
        port = pb.spec.inputs.get(inv)
        if port is None:
            known = ", ".join(sorted(pb.spec.inputs)) or "none"
            problems.append(
                Problem(
                    f"inventory {inv!r} names no input of {pb.ref}",
                    f"{where}.inventory",
                    f"declare it under spec.inputs with type infra (known: {known}), or remove inventory "
                    "to run against localhost",
                )
            )
        elif port.type not in INVENTORY_TYPES:
            problems.append(
                Problem(
                    f"inventory input {inv!r} has type {port.type}, not infra or json",
                    f"{where}.inventory",
                    "give that input type infra (hosts as described in docs/STEPS.md, 'Ansible steps')",
                )
            )
    props: Any = pb.spec.parameters.get("properties") if isinstance(pb.spec.parameters, dict) else None
    for name in props if isinstance(props, dict) else ():
        if not VAR_NAME.fullmatch(name) or name.lower().startswith(("ansible_", "mlops_")):
            problems.append(
                Problem(
                    f"parameter {name!r} cannot be an Ansible extra var",
                    f"{pb.ref} > spec.parameters.properties.{name}",
                    "rename it with letters, digits and '_', not starting with ansible_ or mlops_ (every "
                    "parameter becomes a var of its name; set Ansible's own vars in ansible.extra_vars)",
                )
            )
    for name in section.outputs:
        out = pb.spec.outputs.get(name)
        if out is None or out.type in VALUE_TYPES:
            problems.append(
                Problem(
                    f"ansible.outputs.{name} names no file output of {pb.ref}",
                    f"{where}.outputs.{name}",
                    "declare it under spec.outputs with a file type (file, directory, dataset, model); value "
                    "outputs come from the play's set_stats data",
                )
            )
    return problems


def _shipped_playbook(pb: Playbook, playbook: str, where: str) -> list[Problem]:
    """A playbook file in the spec's folder must be one of its shipped files (`spec.files`): the run reads
    it from there, and a change to it changes the step's cache key."""
    if playbook.startswith("git::"):
        return []
    folder = playbook_dir(pb)
    if folder is None:
        return [
            Problem(
                f"ansible.playbook {playbook!r} is a file of the playbook's folder, and this playbook was "
                "not loaded from a file",
                f"{where}.playbook",
                "save the playbook spec beside its Ansible playbook (a catalogue folder), or use "
                "git::URL//PATH?ref=REF",
            )
        ]
    files, _ = expand(folder, pb.spec.files, "")
    if playbook not in files:
        return [
            Problem(
                f"ansible.playbook {playbook!r} is not among the playbook's shipped files",
                f"{where}.playbook",
                f"list it (and the files it uses) under spec.files, e.g. files: [{playbook}]",
            )
        ]
    return []
