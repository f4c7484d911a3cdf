"""Model files: one joblib file holding a fitted scikit-learn estimator with its metadata attached.

The estimator (usually a `sklearn.pipeline.Pipeline`) is stored as is, so `joblib.load` gives an object
with `predict`. Our metadata (features, target, task, estimator name, params) rides along as the
`mlops_metadata` attribute; a joblib file from elsewhere loads too, with metadata inferred.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import joblib
import sklearn
from sklearn.base import is_classifier, is_outlier_detector, is_regressor

from mlops_nocode.library.reporting import jsonable
from mlops_nocode.runtime.context import StepContext

META_ATTR = "mlops_metadata"
Task = Literal["classification", "regression", "anomaly_detection", "transform", "other"]


def build_metadata(
    estimator: Any,
    *,
    name: str,
    task: Task,
    features: list[str],
    target: str | None,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The metadata dict stored with a model."""
    meta: dict[str, Any] = {
        "estimator": name,
        "task": task,
        "features": list(features),
        "target": target,
        "params": jsonable(params),
        "sklearn_version": sklearn.__version__,
    }
    classes = getattr(estimator, "classes_", None)
    if classes is not None:
        meta["classes"] = jsonable(list(classes))
    return meta


def save_model(estimator: Any, ctx: StepContext, metadata: dict[str, Any], name: str = "model") -> Path:
    """Attach `metadata` to the fitted `estimator` and dump it to `<output_dir>/<name>.joblib`."""
    setattr(estimator, META_ATTR, metadata)
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.output_dir / f"{name}.joblib"
    joblib.dump(estimator, path)
    ctx.log.info("wrote %s (%s, %s)", path.name, metadata.get("estimator"), metadata.get("task"))
    return path


def infer_task(estimator: Any) -> Task:
    """The task of an estimator that carries no metadata."""
    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    if is_outlier_detector(estimator):
        return "anomaly_detection"
    return "transform" if hasattr(estimator, "transform") else "other"


def load_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """The fitted estimator in a model file and its metadata (stored, or inferred from the estimator)."""
    estimator = joblib.load(Path(path))
    stored = getattr(estimator, META_ATTR, None)
    if isinstance(stored, dict):
        return estimator, stored
    names = getattr(estimator, "feature_names_in_", None)
    meta = build_metadata(
        estimator,
        name=type(estimator).__name__,
        task=infer_task(estimator),
        features=[str(n) for n in names] if names is not None else [],
        target=None,
        params={k: v for k, v in estimator.get_params(deep=False).items() if _scalar(v)}
        if hasattr(estimator, "get_params")
        else {},
    )
    return estimator, meta


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)
