"""Checks of a playbook's own text: the expressions of a command's argv and env, and shell injection.

Errors: an expression that is unterminated, unsupported, uses an unknown filter, or names an input or
output the playbook does not declare. Warnings (validation still passes): a parameter, input or secret
substituted into code that a shell or an interpreter will parse (`sh -c "... ${{ params.x }}"`).
"""

from __future__ import annotations

import os
import re

from mlops_nocode.compiler.ansible_checks import ansible_problems
from mlops_nocode.compiler.pycode import code_problems
from mlops_nocode.compiler.sections import section_problems
from mlops_nocode.spec import Playbook, Problem
from mlops_nocode.spec.expressions import Expr, scan

_SHELL_RE = re.compile(r"(ba|da|z|k|mk|a|c|tc|fi|yash|rc)?sh|fish|busybox")
# interpreter -> flags after which the next argument is code
_INTERPRETERS: list[tuple[re.Pattern[str], tuple[str, ...], str]] = [
    (re.compile(r"(python|pypy)[0-9.]*"), ("-c",), "c"),
    (re.compile(r"perl[0-9.]*"), ("-e", "-E"), "eE"),
    (re.compile(r"ruby[0-9.]*|lua[0-9.]*|luajit|rscript|julia|tclsh[0-9.]*"), ("-e",), "e"),
    (re.compile(r"node(js)?|deno|bun"), ("-e", "--eval", "-p", "--print"), "ep"),
    (re.compile(r"php[0-9.]*"), ("-r",), "r"),
    (re.compile(r"pwsh|powershell(\.exe)?"), ("-c", "-command", "-Command"), ""),
]
_TAINTED = ("params", "inputs", "secrets")


def _code_after_shell(argv: list[str], i: int) -> int | None:
    """Index of the script of `sh [options] -c SCRIPT` starting at argv[i], or None."""
    has_c = False
    j = i + 1
    while j < len(argv) and argv[j][:1] in "-+" and argv[j] not in ("-", "--"):
        flags = argv[j][1:]
        if not argv[j].startswith("--"):
            has_c = has_c or "c" in flags
            if "o" in flags or "O" in flags:
                j += 1  # `-o pipefail`: the option's value
        j += 1
    if j < len(argv) and argv[j] == "--":
        j += 1
    return j if has_c and j < len(argv) else None


def _code_after_interpreter(argv: list[str], i: int, flags: tuple[str, ...], letters: str) -> int | None:
    j = i + 1
    while j < len(argv) and argv[j].startswith("-") and argv[j] != "--":
        arg = argv[j]
        if arg in flags or (letters and not arg.startswith("--") and arg[-1] in letters and len(arg) > 1):
            return j + 1 if j + 1 < len(argv) else None
        j += 1
    return None


def code_arguments(argv: list[str]) -> dict[int, str]:
    """Indexes of the argv items a shell (`shell`) or an interpreter (`interpreter`) parses as code."""
    out: dict[int, str] = {}
    for i, arg in enumerate(argv):
        prog = os.path.basename(arg).lower()
        if _SHELL_RE.fullmatch(prog):
            j = _code_after_shell(argv, i)
            if j is not None:
                out[j] = "shell"
            continue
        for pattern, flags, letters in _INTERPRETERS:
            if pattern.fullmatch(prog):
                j = _code_after_interpreter(argv, i, flags, letters)
                if j is not None:
                    out[j] = "interpreter"
                break
    return out


def _injection(e: Expr, kind: str, where: str) -> Problem | None:
    if e.namespace not in _TAINTED:
        return None
    if kind == "shell" and e.filter == "shell_quote":
        return None
    what = {"params": "parameter", "inputs": "input path", "secrets": "secret"}[e.namespace]
    if kind == "shell":
        fix = (
            f"quote it: ${{{{ {e.namespace}.{e.name} | shell_quote }}}}, or pass it as its own argv item "
            'after the script and use "$1" there'
        )
    else:
        fix = "pass it as its own argv item after the code and read it there (e.g. sys.argv[1])"
    return Problem(
        f"{what} {e.name!r} is substituted into code run by a {kind}: a value holding quotes or "
        f"{'$(...)' if kind == 'shell' else 'code'} would run as code",
        where,
        fix,
    )


def check_playbook(pb: Playbook) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) about a playbook's command argv and env, or the Python code it carries."""
    cmd = pb.spec.command
    if cmd is None:
        return code_problems(pb) + section_problems(pb) + ansible_problems(pb), []
    errors: list[Problem] = []
    warnings: list[Problem] = []
    base = f"{pb.ref} > spec.command"
    outputs = set(pb.spec.outputs) | set(cmd.outputs)
    code = code_arguments(cmd.argv)
    texts = [(f"{base}.argv[{i}]", a, code.get(i)) for i, a in enumerate(cmd.argv)]
    texts += [(f"{base}.env.{k}", v, None) for k, v in cmd.env.items()]
    for where, text, kind in texts:
        if "${{" not in text:
            continue
        exprs, bad = scan(text)
        errors.extend(Problem(b.what, where, b.fix) for b in bad)
        for e in exprs:
            declared = {"inputs": pb.spec.inputs, "outputs": outputs}.get(e.namespace)
            if declared is not None and e.name not in declared:
                known = ", ".join(sorted(declared)) or "none"
                errors.append(
                    Problem(
                        f"'{e.text}' names no {e.namespace[:-1]} of {pb.ref}",
                        where,
                        f"declare it under spec.{e.namespace} (known: {known})",
                    )
                )
            if kind is not None:
                warning = _injection(e, kind, where)
                if warning is not None:
                    warnings.append(warning)
    return errors, warnings
