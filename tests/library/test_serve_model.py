"""serve-model for real: a pipeline trains iris and serves it; the endpoint's predictions equal the model's
own predict() on the same rows; bad input gets precise 422s, a huge body 413; the service stops with the
run (no process left)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.library.modelfile import load_model
from mlops_nocode.runtime import services as sv
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.spec import load_file, load_text
from tests.conftest import none_left

PLAYBOOKS = Path(__file__).resolve().parents[2] / "catalogue" / "playbooks"
PIPELINE = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: iris-serve, version: 1.0.0}
spec:
  steps:
    - {id: load, uses: playbook/sklearn-dataset, with: {name: iris}}
    - id: train
      uses: playbook/sklearn-train
      with: {estimator: logistic_regression}
      inputs: {dataset: load.dataset}
    - {id: serve, uses: playbook/serve-model, with: {name: iris-model, max_rows: 500, max_body_bytes: 20000},
       inputs: {model: train.model}}
  outputs: {endpoint: serve.endpoint}
"""


def docs() -> list[Any]:
    found = []
    for name in ("sklearn-dataset", "sklearn-train", "serve-model"):
        found += load_file(PLAYBOOKS / f"{name}.yaml")
    return found


def test_trained_iris_is_served_with_the_models_own_predictions(home: Path) -> None:
    plan = compile_plan("pipeline/iris-serve", Index(docs() + load_text(PIPELINE)))
    seen: dict[str, Any] = {}

    def sink(e: Event) -> None:
        if e.type == "step.finished" and e.step == "serve":
            seen.update(check_service(home))

    r = Runner(plan, sink=sink).run()
    assert r.status == "succeeded", r.summary()
    endpoint = r.steps["serve"].outputs["endpoint"]["value"]
    assert endpoint == {"url": seen["url"], "service": "iris-model"}
    model_path = r.steps["train"].outputs["model"]["path"]
    estimator, meta = load_model(model_path)
    rows = seen["rows"]
    frame = pd.DataFrame(rows, columns=meta["features"])
    assert seen["predictions"] == [
        int(v) if isinstance(v, np.integer) else v for v in estimator.predict(frame).tolist()
    ]
    assert np.allclose(seen["probabilities"], estimator.predict_proba(frame))
    assert seen["records_predictions"] == seen["predictions"]
    # the run is over: the service was stopped, nothing of it is left
    assert sv.load(home, "iris-model") is None
    assert none_left("--service iris-model")


def check_service(home: Path) -> dict[str, Any]:
    svc = sv.load(home, "iris-model")
    assert svc is not None and svc.state == "healthy"
    with httpx.Client(base_url=svc.url, timeout=30, trust_env=False) as c:
        assert c.get("/health").json() == {"status": "ok"}
        meta = c.get("/metadata").json()
        features = meta["features"]
        assert len(features) == 4 and meta["task"] == "classification" and len(meta["classes"]) == 3
        rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [4.0, 9.0, 0.0, 7.5]]
        answer = c.post("/predict", json={"rows": rows}).json()
        records = [dict(zip(features, row, strict=True)) for row in rows]
        by_records = c.post("/predict", json={"records": records}).json()
        bad = {
            "short_row": c.post("/predict", json={"rows": [[1.0, 2.0]]}),
            "text": c.post("/predict", json={"rows": [["a", "b", "c", "d"]]}),
            "missing_col": c.post("/predict", json={"records": [{features[0]: 1.0}]}),
            "both": c.post("/predict", json={"rows": rows, "records": records}),
            "neither": c.post("/predict", json={}),
            "not_json": c.post("/predict", content=b"{rows: ", headers={"content-type": "application/json"}),
            "nan": c.post(
                "/predict",
                content=b'{"rows": [[NaN, 1, 2, 3]]}',
                headers={"content-type": "application/json"},
            ),
            "too_many": c.post("/predict", json={"rows": [[1.0, 2.0, 3.0, 4.0]] * 501}),
            "huge": c.post("/predict", json={"rows": [[1.0, 2.0, 3.0, 4.0]] * 2000}),
            "injection": c.post("/predict", json={"records": [{"x'; rm -rf /": 1}]}),
        }
    codes = {k: v.status_code for k, v in bad.items()}
    assert codes == {**{k: 422 for k in bad}, "huge": 413}, codes
    assert "rows[0] has 2 values" in bad["short_row"].json()["detail"]
    assert "lacks" in bad["missing_col"].json()["detail"]
    assert "must be finite" in bad["nan"].json()["detail"]
    assert "at most 500" in bad["too_many"].json()["detail"]
    return {
        "url": svc.url,
        "rows": rows,
        "predictions": answer["predictions"],
        "probabilities": answer["probabilities"],
        "records_predictions": by_records["predictions"],
    }
