"""The one class through which Terraform (or OpenTofu) is run. INTERFACE ONLY until the terraform
runner lands: providers code against these signatures."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlops_nocode.providers.base import ProviderError


class TerraformError(ProviderError):
    """terraform/tofu failed or is missing: what, where (the working directory or the binary), fix."""


class TerraformRunner:
    """Runs `terraform` (or `tofu`) in one per-deployment working directory holding the root module
    (`main.tf.json`), its own state and lock. Secrets reach it only through `env` (TF_VAR_*)."""

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        binary: str | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.workdir, self.env, self.binary, self.on_line = workdir, dict(env or {}), binary, on_line

    @staticmethod
    def find_binary(env: Mapping[str, str] | None = None) -> str | None:
        """The path of `terraform` or `tofu` (TERRAFORM_BINARY wins), or None when neither is present."""
        raise NotImplementedError

    def init(self) -> None:
        raise NotImplementedError

    def plan(self) -> dict[str, Any]:
        """The saved plan as `terraform show -json` prints it."""
        raise NotImplementedError

    def apply(self) -> dict[str, Any]:
        """Apply; returns the outputs. On failure, destroys what was created, then raises."""
        raise NotImplementedError

    def outputs(self) -> dict[str, Any]:
        raise NotImplementedError

    def resources(self) -> list[dict[str, str]]:
        """What the state holds: [{"type", "name", "address"}]."""
        raise NotImplementedError

    def destroy(self) -> None:
        raise NotImplementedError
