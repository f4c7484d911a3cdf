"""Reading YAML and JSON text into plain data, strictly: no dates, no duplicate keys, no alias bombs."""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from mlops_nocode.spec.errors import Problem, SpecError

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

_TAG = "tag:yaml.org,2002:"
MAX_NODES = 1_000_000
"""Most values a text may hold once its YAML aliases are expanded."""


class DuplicateKeyError(ConstructorError):
    """A mapping names the same key twice."""


class SpecLoader(_BaseLoader):
    """A safe YAML loader that keeps timestamps as strings and rejects duplicate keys.

    Plain `2024-01-01` stays the string "2024-01-01" (a date would not survive JSON), and types that have
    no JSON form (`!!binary`, `!!set`, `!!omap`, `!!pairs`) are refused with their line.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _TAG + "merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: the base constructor says so with its line
                continue
            if duplicate:
                raise DuplicateKeyError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _as_string(loader: SpecLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


def _no_json_form(loader: SpecLoader, node: yaml.Node) -> Any:
    raise ConstructorError(
        None, None, f"unsupported YAML type {node.tag.replace(_TAG, '!!')}", node.start_mark
    )


SpecLoader.yaml_implicit_resolvers = {  # a copy: other loaders keep resolving timestamps
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TAG + "timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
SpecLoader.add_constructor(_TAG + "timestamp", _as_string)
for _name in ("binary", "set", "omap", "pairs"):
    SpecLoader.add_constructor(_TAG + _name, _no_json_form)


class YamlValueError(SpecError, yaml.YAMLError):
    """A value that is not YAML: a SpecError that `except yaml.YAMLError` also catches."""


class _JsonDuplicateKey(ValueError):
    """A JSON object names the same key twice."""


def _syntax_problem(e: Exception, source: str) -> Problem:
    if isinstance(e, DuplicateKeyError | _JsonDuplicateKey):
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        return Problem(str(getattr(e, "problem", None) or e), where, "remove one of them")
    if isinstance(e, RecursionError):
        return Problem("nested too deeply", source, "flatten the document")
    if isinstance(e, json.JSONDecodeError):
        return Problem(
            f"not valid YAML/JSON: {e.msg}", f"{source}:{e.lineno}:{e.colno}", "fix the syntax there"
        )
    mark = getattr(e, "problem_mark", None)
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    return Problem(
        f"not valid YAML/JSON: {getattr(e, 'problem', None) or e}", where, "fix the syntax at that line"
    )


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _JsonDuplicateKey(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_texts(text: str, source: str = "<text>") -> list[Any]:
    """The documents of a YAML (possibly multi-document) or JSON text as plain data; empty YAML documents
    are dropped and a JSON list is a list of documents. Raises SpecError with the line of any problem."""
    text = text.removeprefix("\ufeff")
    aliases = False
    try:
        if text.lstrip().startswith(("{", "[")):
            try:
                raw = json.loads(text, object_pairs_hook=_json_pairs)
            except json.JSONDecodeError as json_error:
                if source.lower().endswith(".json"):
                    raise
                try:  # a YAML flow collection such as {a: 1}
                    raw = yaml.load(text, Loader=SpecLoader)
                except DuplicateKeyError:
                    raise
                except yaml.YAMLError:
                    raise json_error from None
                aliases = "*" in text
            datas = raw if isinstance(raw, list) else [raw]
        else:
            datas = [d for d in yaml.load_all(text, Loader=SpecLoader) if d is not None]
            aliases = "*" in text
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        raise SpecError(_syntax_problem(e, source)) from None
    if aliases:
        check_expanded_size(datas, source)
    return datas


def yaml_load_value(text: str, /) -> Any:
    """One YAML value (e.g. the VALUE of `--set NAME=VALUE`) read like a spec is: `2024-01-01` stays a
    string, duplicate keys are refused; an empty text is None.

    Raises YamlValueError (both a SpecError and a yaml.YAMLError) when `text` is not one YAML value."""
    try:
        value = yaml.load(text, Loader=SpecLoader)
        if "*" in text:
            check_expanded_size([value], "<value>")
    except SpecError as e:
        raise YamlValueError(e.problems) from None
    except (yaml.YAMLError, RecursionError) as e:
        raise YamlValueError(_syntax_problem(e, "<value>")) from None
    return value


def check_expanded_size(datas: list[Any], source: str) -> None:
    """Refuse data that refers to itself or grows past MAX_NODES values once YAML aliases are expanded."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(value: Any) -> int:
        if not isinstance(value, dict | list):
            return 1
        key = id(value)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise SpecError(
                Problem("a YAML alias refers to itself", source, "remove the alias (*name) inside its anchor")
            )
        active.add(key)
        children = list(value.values()) if isinstance(value, dict) else value
        n = 1 + sum(size(c) for c in children)
        active.discard(key)
        sizes[key] = n
        if n > MAX_NODES:
            raise SpecError(
                Problem(
                    f"more than {MAX_NODES} values once YAML aliases are expanded",
                    source,
                    "use fewer aliases (*name) of large anchors",
                )
            )
        return n

    try:
        for data in datas:
            size(data)
    except RecursionError:
        raise SpecError(Problem("nested too deeply", source, "flatten the document")) from None
