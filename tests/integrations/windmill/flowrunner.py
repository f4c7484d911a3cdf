"""A small stand-in for Windmill's flow executor (no Windmill server installs here): it runs an OpenFlow
the way Windmill documents it — modules in order, `branchall` branches, `input_transforms` evaluated as
static values (`$var:` read from the workspace's variables) or JavaScript run by Node with `flow_input`
and `results` — and calls the scripts of f/mlops (imported from a folder laid out as f/mlops/NAME.py, as
Windmill's Python workers import them) or the inline Python scripts."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

JS = (
    "const [flow_input, results] = JSON.parse(process.argv[1]);"
    "process.stdout.write(JSON.stringify(({expr})) ?? 'null');"
)


def install_scripts(scripts: Path, root: Path) -> None:
    """Lay the scripts out as the package f.mlops under `root`, importable like on a Windmill worker."""
    pkg = root / "f" / "mlops"
    pkg.mkdir(parents=True, exist_ok=True)
    (root / "f" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    for s in scripts.glob("*.py"):
        (pkg / s.name).write_text(s.read_text())
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    importlib.invalidate_caches()


class FlowRunner:
    def __init__(self, variables: dict[str, str]) -> None:
        self.variables = variables
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _value(self, t: dict[str, Any], flow_input: dict[str, Any], results: dict[str, Any]) -> Any:
        if t["type"] == "static":
            v = t.get("value")
            if isinstance(v, str) and v.startswith("$var:"):
                return self.variables[v[len("$var:") :]]
            return v
        assert t["type"] == "javascript", t
        out = subprocess.run(
            ["node", "-e", JS.replace("{expr}", t["expr"]), json.dumps([flow_input, results])],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(out.stdout)

    def run(self, flow: dict[str, Any], flow_input: dict[str, Any]) -> dict[str, Any]:
        results: dict[str, Any] = {}
        self._modules(flow["value"]["modules"], flow_input, results)
        return results

    def _modules(
        self, modules: list[dict[str, Any]], flow_input: dict[str, Any], results: dict[str, Any]
    ) -> None:
        for m in modules:
            v = m["value"]
            if v["type"] == "branchall":
                for b in v["branches"]:
                    self._modules(b["modules"], flow_input, results)
                continue
            args = {k: self._value(t, flow_input, results) for k, t in v["input_transforms"].items()}
            if v["type"] == "script":
                main = importlib.import_module(v["path"].replace("/", ".")).main
            else:
                assert v["type"] == "rawscript" and v["language"] == "python3"
                ns: dict[str, Any] = {"__name__": f"wm_{m['id']}"}
                exec(compile(v["content"], m["id"], "exec"), ns)
                main = ns["main"]
            self.calls.append((m["id"], args))
            results[m["id"]] = json.loads(json.dumps(main(**args), default=str))
