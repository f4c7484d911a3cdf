"""The checks of an `ansible:` section that need no catalogue: the playbook's location (a path inside the
spec's folder, or `git::URL//PATH?ref=REF`), var names, tags and `--limit` patterns."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
"""An Ansible variable name (a Python identifier, ASCII)."""
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,254}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
GIT_SCHEMES = ("https", "ssh", "git", "file")


@dataclass(frozen=True)
class GitPlaybook:
    """A playbook in a Git repository: the clone URL, the file inside it, and the ref to check out."""

    url: str
    path: str
    ref: str


def _relative(path: str, what: str) -> str:
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts or _CONTROL.search(path) or "\\" in path:
        raise ValueError(
            f"{what} {path!r} is not a relative path inside the folder: write e.g. site.yml or "
            "plays/site.yml (no leading '/', no '..')"
        )
    return str(p)


def parse_git(value: str) -> GitPlaybook:
    """`git::URL//PATH?ref=REF` -> its parts; ValueError (with the fix) when malformed."""
    body = value[len("git::") :]
    example = "git::https://git.example.com/org/plays.git//site.yml?ref=v1.2.0"
    body, sep, query = body.partition("?")
    ref = query[len("ref=") :] if query.startswith("ref=") else ""
    if not sep or not ref or "&" in ref:
        raise ValueError(f"git playbook {value!r} has no ref: end it with ?ref=TAG|BRANCH|COMMIT ({example})")
    if not _REF.fullmatch(ref) or ".." in ref or ref.endswith((".lock", "/")):
        raise ValueError(f"git ref {ref!r} is not a tag, branch or commit name: use letters, digits, . _ / -")
    scheme, sep, rest = body.partition("://")
    if not sep or scheme not in GIT_SCHEMES:
        raise ValueError(
            f"git playbook {value!r}: the URL must start with {', '.join(s + '://' for s in GIT_SCHEMES)}"
        )
    repo, sep, path = rest.partition("//")
    if not sep or not path:
        raise ValueError(f"git playbook {value!r} names no file: add //PATH before ?ref= ({example})")
    url = f"{scheme}://{repo}"
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise ValueError(f"git playbook URL {url!r} is malformed: {e}") from None
    if _CONTROL.search(url) or (scheme != "file" and not parts.hostname) or (scheme == "file" and not repo):
        raise ValueError(f"git playbook URL {url!r} is malformed: write {example}")
    return GitPlaybook(url, _relative(path, "playbook path"), ref)


def check_playbook(value: str) -> str:
    """A playbook location as written in a spec; ValueError when it cannot be used."""
    if "${{" in value:
        raise ValueError("ansible.playbook is fixed by the playbook spec: expressions are not allowed in it")
    if value.startswith("git::"):
        parse_git(value)
        return value
    return _relative(value, "playbook")


def check_var_name(name: str, where: str) -> str:
    if not VAR_NAME.fullmatch(name):
        raise ValueError(
            f"{where}: {name!r} is not an Ansible variable name: use letters, digits and '_', "
            "not starting with a digit"
        )
    return name


def check_tag(tag: str, expressions: bool = True) -> str:
    """A tag as written (`expressions`: it may hold `${{ }}`, checked once substituted), or as substituted
    at run time; ValueError when it is not a plain tag name."""
    if expressions and "${{" in tag:
        return tag
    if not _TAG.fullmatch(tag):
        raise ValueError(f"tag {tag!r} is not a tag name: use letters, digits and _ . : -")
    return tag


def check_limit(limit: str, expressions: bool = True) -> str:
    """A --limit host pattern; ValueError when it would read a file (`@file`) or holds control characters."""
    if expressions and "${{" in limit:
        return limit
    if not limit.strip() or limit.lstrip().startswith("@") or _CONTROL.search(limit):
        raise ValueError(
            f"limit {limit!r} is not a host pattern: write e.g. web:&prod (no leading '@', which would "
            "read a file, no control characters)"
        )
    return limit
