"""The executor registry: runtime name -> the executor that runs its steps (base.py: the interface).

Executors are registered by name with the import path of their class, imported on first use (a vendor
SDK an executor needs is imported only when a step of its runtime runs). Adding a runtime means adding
one module here and one line to BUILTIN (or calling `register` from a plugin).
"""

from __future__ import annotations

import importlib

from mlops_nocode.runtime.executors.base import ALL_PROVIDERS, Executor

BUILTIN: dict[str, str] = {
    "python": "mlops_nocode.runtime.executors.forked:PythonExecutor",
    "command": "mlops_nocode.runtime.executors.forked:CommandExecutor",
    "container": "mlops_nocode.runtime.executors.container:ContainerExecutor",
    "terraform": "mlops_nocode.runtime.executors.terraform:TerraformExecutor",
    "ansible": "mlops_nocode.runtime.executors.ansible:AnsibleExecutor",
    "http": "mlops_nocode.runtime.executors.http:HttpExecutor",
    "litellm": "mlops_nocode.runtime.executors.litellm:LitellmExecutor",
    "serve": "mlops_nocode.runtime.executors.serve:ServeExecutor",
}
ON_RAY: dict[str, str] = {
    "python": "mlops_nocode.runtime.executors.ray:RayPythonExecutor",
    "command": "mlops_nocode.runtime.executors.ray:RayCommandExecutor",
}
"""Steps placed on a `ray` target run as Ray tasks on the cluster: runtime -> the executor that does it
(the runtimes not named here run in the Runner's own process, as on `local`: http, for one)."""
_classes: dict[str, type[Executor]] = {}
_paths: dict[str, str] = dict(BUILTIN)

__all__ = ["ALL_PROVIDERS", "Executor", "UnknownRuntime", "executor_class", "register", "runtimes_for"]


class UnknownRuntime(LookupError):
    """No executor is registered for a runtime."""


def register(runtime: str, target: str | type[Executor]) -> None:
    """Register (or replace) the executor of `runtime`: a class, or `module:Class` imported on use."""
    _classes.pop(runtime, None)
    if isinstance(target, str):
        _paths[runtime] = target
    else:
        _paths.pop(runtime, None)
        _classes[runtime] = target


def executor_class(runtime: str, provider: str = "local") -> type[Executor]:
    """The executor class of `runtime` for steps placed on `provider`; UnknownRuntime when none is
    registered."""
    if provider == "ray" and runtime in ON_RAY:
        module, _, name = ON_RAY[runtime].partition(":")
        ray_cls: type[Executor] = getattr(importlib.import_module(module), name)
        return ray_cls
    cls = _classes.get(runtime)
    if cls is None:
        path = _paths.get(runtime)
        if path is None:
            raise UnknownRuntime(
                f"no executor runs runtime {runtime!r} (this version runs: {', '.join(sorted(known()))})"
            )
        module, _, name = path.partition(":")
        cls = _classes[runtime] = getattr(importlib.import_module(module), name)
    return cls


def known() -> frozenset[str]:
    """Every runtime with a registered executor."""
    return frozenset(_paths) | frozenset(_classes)


def runtimes_for(provider: str) -> frozenset[str]:
    """The runtimes whose executors declare that `provider`'s targets can run them."""
    return frozenset(r for r in known() if provider in executor_class(r).providers)
