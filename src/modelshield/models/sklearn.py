"""Adapter for scikit-learn estimators and pipelines (and anything with the same API)."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelshield.models.base import BaseModel, Capability, InputSpec

__all__ = ["SklearnModel"]


class SklearnModel(BaseModel):
    """Wrap a fitted scikit-learn estimator or ``Pipeline``.

    Classifiers without ``predict_proba`` get one-hot scores from ``predict`` (or a softmax of
    ``decision_function``), and lose the ``probabilities`` capability.
    """

    framework = "sklearn"

    def __init__(self, estimator: Any, *, format: str = "object", source: str | None = None):
        from sklearn.base import is_regressor  # lazy: keeps scikit-learn off CLI start-up (the CLI imports this module)

        self.estimator = estimator
        self.format = format
        task = "regression" if is_regressor(estimator) else "classification"
        caps = {Capability.RETRAINABLE}
        if task == "classification" and hasattr(estimator, "predict_proba"):
            caps.add(Capability.PROBABILITIES)
        n_in = getattr(estimator, "n_features_in_", None)
        names = getattr(estimator, "feature_names_in_", None)
        spec = InputSpec(
            shape=(int(n_in),) if n_in is not None else None,
            feature_names=tuple(map(str, names)) if names is not None else None,
        )
        classes = getattr(estimator, "classes_", None)
        super().__init__(classes=classes, input_spec=spec, capabilities=frozenset(caps), source=source)
        self.task = task

    def _to_input(self, X: np.ndarray) -> Any:
        names = self.input_spec.feature_names
        if names is not None and X.ndim == 2:
            import pandas as pd  # lazy: keeps pandas off CLI start-up (the CLI imports this module)

            return pd.DataFrame(X, columns=list(names))
        return X

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.task != "classification":
            raise TypeError("predict_proba is not available for a regression model")
        est = self.estimator
        Xi = self._to_input(X)
        if hasattr(est, "predict_proba"):
            return est.predict_proba(Xi)
        if hasattr(est, "decision_function"):
            d = np.asarray(est.decision_function(Xi), dtype=np.float64)
            if d.ndim == 1:
                d = np.stack([-d, d], axis=1)
            d = d - d.max(axis=1, keepdims=True)
            e = np.exp(d)
            return e / e.sum(axis=1, keepdims=True)
        pred = np.asarray(est.predict(Xi))
        return (pred[:, None] == self.classes[None, :]).astype(np.float64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._prepare(X)
        self.query_count += len(X)
        return np.asarray(self.estimator.predict(self._to_input(X)))

    def clone_unfitted(self) -> Any:
        """An unfitted copy with the same hyper-parameters (for shadow models)."""
        from sklearn.base import clone  # lazy: keeps scikit-learn off CLI start-up (the CLI imports this module)

        return clone(self.estimator)
