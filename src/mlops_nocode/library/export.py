"""Model export: a folder holding the model file and a model card describing it."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from typing import Any

import sklearn

from mlops_nocode.library.modelfile import load_model
from mlops_nocode.library.reporting import jsonable, read_metrics_input
from mlops_nocode.runtime.context import StepContext

MODEL_FILE = "model.joblib"
CARD_FILE = "model_card.json"


def export_model(
    *,
    model: str,
    metrics: str | None = None,
    name: str = "model",
    version: str = "1.0.0",
    description: str = "",
    ctx: StepContext,
) -> dict[str, Any]:
    """Write `bundle/model.joblib` and `bundle/model_card.json` (metrics included when connected)."""
    _estimator, meta = load_model(model)
    bundle = ctx.output_dir / "bundle"
    bundle.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, bundle / MODEL_FILE)
    card: dict[str, Any] = {
        "name": name,
        "version": version,
        "description": description,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "task": meta.get("task"),
        "estimator": meta.get("estimator"),
        "params": meta.get("params", {}),
        "features": meta.get("features", []),
        "target": meta.get("target"),
        "classes": meta.get("classes"),
        "metrics": read_metrics_input(metrics) if metrics is not None else {},
        "sklearn_version": sklearn.__version__,
        "trained_with_sklearn_version": meta.get("sklearn_version"),
        "files": {"model": MODEL_FILE},
    }
    (bundle / CARD_FILE).write_text(json.dumps(jsonable(card), indent=2) + "\n", encoding="utf-8")
    ctx.log.info("exported %s %s to %s", name, version, bundle)
    return {"bundle": bundle}
