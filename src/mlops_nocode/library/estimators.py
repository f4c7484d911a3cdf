"""The scikit-learn estimators a step can name, and how their hyperparameters are applied."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

EstimatorTask = Literal["classification", "regression"]


@dataclass(frozen=True)
class Hyperparameters:
    """The hyperparameters steps expose; each estimator uses the ones that apply to it.

    `max_depth` 0 means the estimator's own default (no limit for forests and trees, 3 for gradient boosting).
    """

    n_estimators: int = 100
    max_depth: int = 0
    C: float = 1.0
    alpha: float = 1.0
    n_neighbors: int = 5
    learning_rate: float = 0.1
    random_state: int = 42

    def depth(self, default: int | None = None) -> int | None:
        return self.max_depth if self.max_depth > 0 else default


@dataclass(frozen=True)
class EstimatorKind:
    """One nameable estimator: its task, whether its inputs are standardized first, and its factory."""

    task: EstimatorTask
    scaled: bool
    make: Callable[[Hyperparameters], Any]


ESTIMATORS: dict[str, EstimatorKind] = {
    "logistic_regression": EstimatorKind(
        "classification",
        True,
        lambda h: LogisticRegression(C=h.C, max_iter=2000, random_state=h.random_state),
    ),
    "random_forest": EstimatorKind(
        "classification",
        False,
        lambda h: RandomForestClassifier(
            n_estimators=h.n_estimators, max_depth=h.depth(), random_state=h.random_state, n_jobs=1
        ),
    ),
    "gradient_boosting": EstimatorKind(
        "classification",
        False,
        lambda h: GradientBoostingClassifier(
            n_estimators=h.n_estimators,
            max_depth=h.depth(3),
            learning_rate=h.learning_rate,
            random_state=h.random_state,
        ),
    ),
    "svm": EstimatorKind("classification", True, lambda h: SVC(C=h.C, random_state=h.random_state)),
    "knn": EstimatorKind("classification", True, lambda h: KNeighborsClassifier(n_neighbors=h.n_neighbors)),
    "decision_tree": EstimatorKind(
        "classification",
        False,
        lambda h: DecisionTreeClassifier(max_depth=h.depth(), random_state=h.random_state),
    ),
    "linear_regression": EstimatorKind("regression", False, lambda h: LinearRegression()),
    "ridge": EstimatorKind("regression", True, lambda h: Ridge(alpha=h.alpha, random_state=h.random_state)),
    "lasso": EstimatorKind(
        "regression", True, lambda h: Lasso(alpha=h.alpha, max_iter=10000, random_state=h.random_state)
    ),
    "random_forest_regressor": EstimatorKind(
        "regression",
        False,
        lambda h: RandomForestRegressor(
            n_estimators=h.n_estimators, max_depth=h.depth(), random_state=h.random_state, n_jobs=1
        ),
    ),
    "gradient_boosting_regressor": EstimatorKind(
        "regression",
        False,
        lambda h: GradientBoostingRegressor(
            n_estimators=h.n_estimators,
            max_depth=h.depth(3),
            learning_rate=h.learning_rate,
            random_state=h.random_state,
        ),
    ),
}
CLASSIFIERS = tuple(k for k, v in ESTIMATORS.items() if v.task == "classification")
REGRESSORS = tuple(k for k, v in ESTIMATORS.items() if v.task == "regression")


def estimator_kind(name: str) -> EstimatorKind:
    """The registered estimator called `name`, or a ValueError listing the choices."""
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; choose one of {', '.join(ESTIMATORS)}") from None


def build_estimator(name: str, hyper: Hyperparameters) -> Pipeline:
    """An unfitted Pipeline: a StandardScaler first for scale-sensitive estimators, then the estimator."""
    kind = estimator_kind(name)
    steps: list[tuple[str, Any]] = [("scale", StandardScaler())] if kind.scaled else []
    steps.append(("estimator", kind.make(hyper)))
    return Pipeline(steps)


def final_params(pipeline: Pipeline) -> dict[str, Any]:
    """The scalar parameters of a pipeline's final estimator (for model metadata and cards)."""
    params = pipeline.steps[-1][1].get_params(deep=False)
    return {k: v for k, v in params.items() if v is None or isinstance(v, bool | int | float | str)}
