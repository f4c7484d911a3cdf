"""The pipeline the monitoring tests run: one Python step that reports a metric with `ctx.metric`."""

from __future__ import annotations

from typing import Any


def metric_pipeline(
    name: str, values: tuple[float, ...] = (0.93,), *, step: str = "fit", metric: str = "accuracy"
) -> list[dict[str, Any]]:
    """Pipeline `name` whose step `step` reports `metric` once per value, in order (the last one is the
    value a successful run leaves), as inline documents for a launch."""
    code = (
        "def main(ctx):\n"
        + "".join(f"    ctx.metric({metric!r}, {v!r})\n" for v in values)
        + "    return {}\n"
    )
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": f"{name}-{step}", "version": "1.0.0"},
        "spec": {"runtime": "python", "python": {"code": code, "entrypoint": "main"}},
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {"steps": [{"id": step, "uses": f"playbook/{name}-{step}"}]},
    }
    return [playbook, pipeline]
