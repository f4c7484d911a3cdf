"""Checks of the Python source a playbook carries (`python.code`): it parses, and defines its function.

The source is only parsed (never imported or run) here: a syntax error becomes a Problem located at the
line and column of the code (`... > spec.python.code:LINE:COLUMN`), so an editor can show it where it is.
"""

from __future__ import annotations

import ast
import warnings

from mlops_nocode.spec import Playbook, Problem


def code_problems(pb: Playbook) -> list[Problem]:
    """Why the playbook's `python.code` cannot run: a syntax error, no top-level function named by
    `python.entrypoint`, or one that cannot take every input and parameter by name ([] when it has no
    code, or the code is fine)."""
    py = pb.spec.python
    if py is None or py.code is None:
        return []
    where = f"{pb.ref} > spec.python.code"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes is not our business
            tree = ast.parse(py.code, filename="python.code")
    except SyntaxError as e:
        line, col = e.lineno or 1, e.offset or 1
        text = (e.text or "").strip()
        shown = f": {text[:120]}" if text else ""
        return [
            Problem(
                f"syntax error at line {line}, column {col}: {e.msg}{shown}",
                f"{where}:{line}:{col}",
                "fix the code at that line (the step's code must be valid Python 3)",
            )
        ]
    except (ValueError, RecursionError, MemoryError) as e:
        return [Problem(f"the code cannot be parsed: {type(e).__name__}", where, "simplify the code")]
    functions = {
        node.name: node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    found = functions.get(py.entrypoint)
    if found is None:
        known = ", ".join(sorted(functions)) or "none"
        return [
            Problem(
                f"the code defines no top-level function {py.entrypoint!r} (functions: {known})",
                f"{pb.ref} > spec.python.entrypoint",
                f"define 'def {py.entrypoint}(ctx, ...)' at the top level of the code, or name one of "
                "its functions in python.entrypoint",
            )
        ]
    if isinstance(found, ast.AsyncFunctionDef):
        return [
            Problem(
                f"{py.entrypoint!r} is an async function",
                f"{where}:{found.lineno}:{found.col_offset + 1}",
                f"write 'def {py.entrypoint}(...)' without async: the step calls it directly",
            )
        ]
    return _signature_problems(pb, found, where)


def _signature_problems(pb: Playbook, func: ast.FunctionDef, where: str) -> list[Problem]:
    """The inputs and parameters the function cannot take as keyword arguments (a TypeError at run)."""
    args = func.args
    if args.kwarg is not None:
        return []
    accepted = {a.arg for a in (*args.args, *args.kwonlyargs)}
    properties = pb.spec.parameters.get("properties")
    names = [*pb.spec.inputs, *(properties if isinstance(properties, dict) else {})]
    missing = [n for n in names if n not in accepted]
    if not missing:
        return []
    listed = ", ".join(repr(n) for n in missing)
    return [
        Problem(
            f"{func.name}() does not take {listed}: the step passes every input and parameter by name",
            f"{where}:{func.lineno}:{func.col_offset + 1}",
            f"add {', '.join(missing)} to its arguments (or **kwargs)",
        )
    ]
