"""Contract check: every resource argument and nested block a Terraform module uses exists in its
provider's documented schema, kept as a data file per provider in deploy/terraform/schemas/:

    {"provider": "hashicorp/kubernetes", "version": "x.y.z", "source": "<URL of the docs or source>",
     "date": "YYYY-MM-DD",
     "resources": {"<type>": {"arguments": [...], "blocks": {"<block>": {"arguments": [...], "blocks": {}}}}},
     "data_sources": {...same shape, optional...}}

Nothing is skipped silently: a resource of a provider without a schema file, a resource type missing from
its schema, or a module file the checker cannot read is a problem. Meta-arguments (count, for_each,
depends_on, provider, lifecycle, provisioner, connection) belong to Terraform, not to a provider.

    python -m tests.iac.schema_check [MODULE_DIR...]          check (default: every shipped module)
    python -m tests.iac.schema_check --from-terraform FILE PROVIDER VERSION DATE URL
        prints a schema file built from `terraform providers schema -json` output (FILE)
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "deploy" / "terraform" / "modules"
SCHEMAS = ROOT / "deploy" / "terraform" / "schemas"
BUILTIN = "terraform.io/builtin/terraform"
META_ARGUMENTS = frozenset({"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner",
                            "connection"})  # fmt: skip
SCHEMA_KEYS = ("provider", "version", "source", "date", "resources")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
BLOCK = "__is_block__"
COMMENTS = "__comments__"  # python-hcl2 8 keeps the comments written inside a block under this key


def unquote(text: str) -> str:
    """python-hcl2 keeps the quotes of labels and string values: `"a"` -> `a`."""
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def normalise_source(source: str) -> str:
    source = unquote(source).lower()
    return source.removeprefix("registry.terraform.io/")


def load_module(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every `*.tf` file of a module, parsed; a `.tf.json` file or a parse error raises ValueError."""
    if json_files := sorted(folder.glob("*.tf.json")):
        raise ValueError(f"{json_files[0]}: shipped modules are HCL (the checker reads *.tf only)")
    parsed = []
    for path in sorted(folder.glob("*.tf")):
        try:
            parsed.append((path, hcl2.loads(path.read_text(encoding="utf-8"))))
        except Exception as exc:  # python-hcl2 raises lark errors of many kinds
            raise ValueError(f"{path}: not parseable HCL: {exc}") from exc
    return parsed


def required_providers(files: list[tuple[Path, dict[str, Any]]]) -> dict[str, dict[str, str]]:
    """local name -> {"source", "version"} from the module's terraform { required_providers }."""
    out: dict[str, dict[str, str]] = {}
    for _, doc in files:
        for terraform in doc.get("terraform", []):
            for block in terraform.get("required_providers", []):
                for name, spec in block.items():
                    if name != BLOCK and isinstance(spec, dict):
                        out[name] = {k: unquote(str(v)) for k, v in spec.items()}
    return out


def load_schemas(folder: Path = SCHEMAS) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Schema files by normalised provider source, and the problems of malformed files."""
    schemas: dict[str, dict[str, Any]] = {}
    problems = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            problems.append(f"{path}: not JSON: {exc}")
            continue
        missing = [k for k in SCHEMA_KEYS if not data.get(k)]
        if missing or not DATE.match(str(data.get("date", ""))):
            problems.append(f"{path}: needs non-empty {', '.join(SCHEMA_KEYS)} and a YYYY-MM-DD date")
            continue
        schemas[normalise_source(data["provider"])] = data
    return schemas, problems


def _is_block(value: Any) -> bool:
    items = value if isinstance(value, list) else []
    return bool(items) and all(isinstance(v, dict) and v.get(BLOCK) for v in items)


def check_body(body: Mapping[str, Any], schema: Mapping[str, Any], where: str, top: bool) -> Iterator[str]:
    """Problems of one resource body (or nested block) against its schema node."""
    arguments = set(schema.get("arguments", []))
    blocks: Mapping[str, Any] = schema.get("blocks", {})
    for key, value in body.items():
        if key in (BLOCK, COMMENTS) or (top and key in META_ARGUMENTS):
            continue
        if key == "dynamic" and isinstance(value, list):
            for item in value:
                for label, dyn in dict(item).items():
                    if label == BLOCK:
                        continue
                    name = unquote(label)
                    if name not in blocks:
                        yield f"{where}: dynamic block {name!r} is not in the provider's schema"
                        continue
                    for content in dyn.get("content", []):
                        yield from check_body(content, blocks[name], f"{where}.{name}", False)
        elif _is_block(value):
            if key not in blocks:
                yield f"{where}: block {key!r} is not in the provider's schema"
                continue
            for item in value:
                yield from check_body(item, blocks[key], f"{where}.{key}", False)
        elif key not in arguments:
            yield f"{where}: argument {key!r} is not in the provider's schema"


def check_module(folder: Path, schemas: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every problem of one module: resources and data sources against their providers' schemas."""
    try:
        files = load_module(folder)
    except ValueError as exc:
        return [str(exc)]
    providers = required_providers(files)
    problems = []
    for path, doc in files:
        for kind, section in (("resource", "resources"), ("data", "data_sources")):
            for entry in doc.get(kind, []):
                for rtype_q, named in entry.items():
                    rtype = unquote(rtype_q)
                    for name_q, body in named.items():
                        where = f"{path.relative_to(folder.parent)}: {kind} {rtype}.{unquote(name_q)}"
                        problems += _check_resource(rtype, body, providers, schemas, section, where)
    return problems


def _check_resource(
    rtype: str,
    body: Mapping[str, Any],
    providers: Mapping[str, Mapping[str, str]],
    schemas: Mapping[str, Mapping[str, Any]],
    section: str,
    where: str,
) -> list[str]:
    local = unquote(str(body.get("provider", ""))).removeprefix("${").split(".")[0] or rtype.split("_")[0]
    source = providers.get(local, {}).get("source") or (BUILTIN if local == "terraform" else "")
    if not source:
        return [f"{where}: provider {local!r} is not in required_providers (versions.tf)"]
    schema = schemas.get(normalise_source(source))
    if schema is None:
        return [f"{where}: no schema file for provider {source!r}: add deploy/terraform/schemas/{local}.json"]
    node = schema.get(section, {}).get(rtype)
    if node is None:
        return [f"{where}: {rtype!r} is not among the {section} of {source} {schema['version']}"]
    return list(check_body(body, node, where, True))


def from_terraform(
    provider_schemas: Mapping[str, Any], source: str, version: str, date: str, url: str
) -> dict[str, Any]:
    """A schema file from `terraform providers schema -json` output, for the provider `source`."""
    full = {normalise_source(k): v for k, v in provider_schemas["provider_schemas"].items()}[
        normalise_source(source)
    ]

    def node(block: Mapping[str, Any]) -> dict[str, Any]:
        attributes = block.get("attributes", {})
        return {
            "arguments": sorted(k for k, a in attributes.items() if a.get("optional") or a.get("required")),
            "blocks": {k: node(b["block"]) for k, b in sorted(block.get("block_types", {}).items())},
        }

    return {
        "provider": source,
        "version": version,
        "source": url,
        "date": date,
        "resources": {k: node(v["block"]) for k, v in sorted(full.get("resource_schemas", {}).items())},
        "data_sources": {k: node(v["block"]) for k, v in sorted(full.get("data_source_schemas", {}).items())},
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--from-terraform"] and len(argv) == 6:
        data = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
        print(json.dumps(from_terraform(data, *argv[2:6]), indent=2))
        return 0
    schemas, problems = load_schemas()
    folders = [Path(a) for a in argv] or sorted(p for p in MODULES.glob("*") if p.is_dir())
    for folder in folders:
        problems += check_module(folder, schemas)
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(folders)} modules checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
