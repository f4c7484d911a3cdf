"""Hatch build hook: build the no-code UI (frontend/, Vite) into src/mlops_nocode/web/dist before the wheel
is packed, so the wheel carries the assets and installing it needs no Node.

Editable installs (`make install`) skip it: the Makefile builds the UI once (`make ui`). A wheel built
where the assets already exist and frontend/ is absent (from an sdist without it) keeps those assets.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class UIBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        frontend = root / "frontend"
        dist = root / "src" / "mlops_nocode" / "web" / "dist"
        if not (frontend / "package.json").is_file():
            if not (dist / "index.html").is_file():
                raise RuntimeError("the UI is neither built (src/mlops_nocode/web/dist) nor buildable (no frontend/)")
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("building the wheel needs npm (Node >= 20) to build the UI in frontend/")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=frontend, check=True)
        subprocess.run([npm, "run", "build"], cwd=frontend, check=True)
