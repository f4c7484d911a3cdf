"""Build a Terraform provider schema data file (deploy/terraform/schemas/<provider>.json) from the
provider's own published documentation: the `docs/resources/<type>.md` pages that `tfplugindocs`
generates in the provider's public repository (e.g. github.com/hashicorp/terraform-provider-kubernetes).

Those pages list, per block path (`### Nested Schema for `spec.template``), the Required and Optional
arguments with their type; a type starting with "Block" is a nested block. Read-only attributes are not
arguments and are left out.

Usage: python scripts/build_tf_schema.py GIT_DIR REF PROVIDER VERSION SOURCE_URL OUT TYPE... (reads the
pages with `git show REF:docs/resources/<name>.md`, where <name> is TYPE without the provider prefix).
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
from typing import Any

_SECTION = re.compile(r"^### (?:Nested Schema for `([\w.]+)`|(Required|Optional|Read-Only))\s*$")
_KIND = re.compile(r"^(Required|Optional|Read-Only):\s*$")
_ITEM = re.compile(r"^- `(\w+)`\s*(?:-\s*)?\(([^)]*)\)")


def parse_page(text: str) -> dict[str, Any]:
    """The resource's schema: {"arguments": [...], "blocks": {name: {...}}} from one docs page."""
    found: dict[str, dict[str, bool]] = {"": {}}  # block path -> argument -> is a block
    path, kind = "", ""
    for line in text.splitlines():
        m = _SECTION.match(line)
        if m:
            if m[1]:
                path, kind = m[1], ""
                found.setdefault(path, {})
            else:
                path, kind = "", m[2]
            continue
        k = _KIND.match(line)
        if k:
            kind = k[1]
            continue
        item = _ITEM.match(line)
        if item and kind in ("Required", "Optional"):
            found.setdefault(path, {})[item[1]] = item[2].startswith("Block")
    return _tree(found, "")


def _tree(found: dict[str, dict[str, bool]], path: str) -> dict[str, Any]:
    args = found.get(path, {})
    prefix = f"{path}." if path else ""
    return {
        "arguments": sorted(a for a, block in args.items() if not block),
        "blocks": {b: _tree(found, prefix + b) for b, block in sorted(args.items()) if block},
    }


def main(argv: list[str]) -> None:
    git_dir, ref, provider, version, source, out, *types = argv
    resources = {}
    for rtype in types:
        page = rtype.split("_", 1)[1]
        text = subprocess.run(
            ["git", "--git-dir", git_dir, "show", f"{ref}:docs/resources/{page}.md"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        resources[rtype] = parse_page(text)
    data = {
        "provider": provider,
        "version": version,
        "source": source,
        "date": datetime.date.today().isoformat(),
        "resources": resources,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=False)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
