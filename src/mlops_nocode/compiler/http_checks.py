"""Plan-time checks of an `http:` section beyond its expressions' names (compiler/sections.py): the outputs
it fills, which inputs it may send and how, and what its URL's literal part already says."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from mlops_nocode.compiler.sections import strings
from mlops_nocode.spec import Playbook, Problem
from mlops_nocode.spec.expressions import EXPR_RE
from mlops_nocode.spec.sections import HttpRuntime

VALUE_PORTS = frozenset({"metrics", "text", "json", "endpoint", "infra", "any"})
FILE_PORTS = frozenset({"file", "dataset", "model"})
"""Inputs of these types are files: their content can be sent (`body_file`), never their path."""


def http_problems(pb: Playbook) -> list[Problem]:
    """Located problems of a playbook's `http:` section ([] for other runtimes)."""
    section = pb.spec.http
    if pb.spec.runtime != "http" or section is None:
        return []
    where = f"{pb.ref} > spec.http"
    return [
        *_output_problems(pb, section, where),
        *_input_problems(pb, section, where),
        *_url(section, where),
    ]


def _output_problems(pb: Playbook, h: HttpRuntime, where: str) -> list[Problem]:
    problems: list[Problem] = []
    declared = pb.spec.outputs
    known = ", ".join(sorted(declared)) or "none"
    for key, name in (("output", h.output), ("status_output", h.status_output)):
        if name is not None and name not in declared:
            problems.append(
                Problem(
                    f"{key} {name!r} is not a declared output",
                    f"{where}.{key}",
                    f"declare it under spec.outputs, or name one of: {known}",
                )
            )
    if h.output in declared and declared[h.output].type == "directory":
        problems.append(
            Problem(
                f"output {h.output!r} is a directory: a response body is one value or one file",
                f"{where}.output",
                "declare it as json, text or file",
            )
        )
    if h.status_output in declared and declared[h.status_output].type not in ("json", "any", "text"):
        problems.append(
            Problem(
                f"status_output {h.status_output!r} is a {declared[h.status_output].type}: a status code "
                "is a number",
                f"{where}.status_output",
                "declare it as json",
            )
        )
    filled = {h.output, h.status_output}
    for name in declared:
        if name not in filled:
            problems.append(
                Problem(
                    f"output {name!r} is never filled: an http step fills `output` (the body) and "
                    "`status_output` (the status code)",
                    f"{pb.ref} > spec.outputs.{name}",
                    "name it in http.output or http.status_output, or remove it",
                )
            )
    return problems


def _input_problems(pb: Playbook, h: HttpRuntime, where: str) -> list[Problem]:
    problems: list[Problem] = []
    inputs = pb.spec.inputs
    if h.body_file is not None:
        m = EXPR_RE.fullmatch(h.body_file.strip())
        if m is None or m[1] != "inputs" or m[3] is not None:
            problems.append(
                Problem(
                    "body_file must be one expression naming a file input",
                    f"{where}.body_file",
                    "write body_file: ${{ inputs.NAME }} with NAME a file, dataset or model input",
                )
            )
        elif m[2] in inputs and inputs[m[2]].type not in FILE_PORTS | {"any"}:
            problems.append(
                Problem(
                    f"body_file names input {m[2]!r}, a {inputs[m[2]].type}: only a file is sent as body",
                    f"{where}.body_file",
                    "send a value input through json, form or body instead",
                )
            )
    dumped = h.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    dumped.pop("body_file", None)
    for key, text in strings(dumped, where):
        for m in EXPR_RE.finditer(text):
            if m[1] == "inputs" and m[2] in inputs and inputs[m[2]].type not in VALUE_PORTS:
                problems.append(
                    Problem(
                        f"input {m[2]!r} is a {inputs[m[2]].type} (a file): its path is never sent",
                        key,
                        f"upload its content with body_file: ${{{{ inputs.{m[2]} }}}}, or declare a value "
                        "input (json, text)",
                    )
                )
    return problems


def _url(h: HttpRuntime, where: str) -> list[Problem]:
    if h.url.lstrip().startswith("${{"):
        return []
    literal = EXPR_RE.sub("x", h.url)
    try:
        parts = urlsplit(literal)
        host, _ = parts.hostname, parts.port
    except ValueError as e:
        return [
            Problem(f"the URL is malformed ({e})", f"{where}.url", "fix the URL: https://host[:port]/path")
        ]
    if not host:
        return [Problem("the URL has no host", f"{where}.url", "write https://HOST/path")]
    if parts.username is not None or parts.password is not None:
        return [
            Problem(
                "the URL carries a user name or password (they would show in the plan and logs)",
                f"{where}.url",
                "send credentials in a header from a secret: Authorization: 'Bearer ${{ secrets.TOKEN }}'",
            )
        ]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return []
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return [
            Problem(
                f"{host} is link-local, multicast or unspecified (cloud metadata services answer on "
                "169.254.169.254): http steps never call it",
                f"{where}.url",
                "call a routable address of the service",
            )
        ]
    return []
