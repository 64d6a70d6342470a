"""Input defense: a schema learned from reference data, and OOD / adversarial-input scores.

:class:`InputSchema` checks width, finiteness, ranges (reference range widened by a margin) and
categories (integer-valued features with few distinct values). :class:`MahalanobisDetector` is the
built-in OOD score (Mahalanobis distance to the reference mean, Ledoit-Wolf covariance); the
adversarial-input score comes from the robustness detector
(``modelshield.attacks.detect.NoiseConsistencyDetector``) when it is importable; the backdoor-trigger
score is STRIP (:mod:`modelshield.serve.monitors.strip`, optional).
:class:`InputDefense` combines them and applies the policy ``log`` / ``flag`` / ``reject`` (one policy for
all, or a detector's own).

References
----------
.. [1] Lee, K., Lee, K., Lee, H., Shin, J. (2018). A simple unified framework for detecting
   out-of-distribution samples and adversarial attacks. NeurIPS. (Mahalanobis score.)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelshield.serve.monitors.base import Detector

__all__ = ["InputDefense", "InputSchema", "MahalanobisDetector", "Screening", "default_detectors"]


class InputSchema:
    """Shape, dtype, ranges and categories learned from reference data."""

    def __init__(self, X_ref: np.ndarray, *, margin: float = 0.1, max_categories: int = 20,
                 feature_names: list[str] | None = None) -> None:
        X = np.asarray(X_ref, dtype=np.float64).reshape(len(X_ref), -1)
        self.n_features = X.shape[1]
        self.feature_names = list(feature_names or [f"x{i}" for i in range(self.n_features)])
        lo, hi = X.min(0), X.max(0)
        span = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
        self.low = lo - margin * span
        self.high = hi + margin * span
        integral = np.all(X == np.round(X), axis=0)
        self.categories: dict[int, np.ndarray] = {}
        for j in np.flatnonzero(integral):  # a loop over features, not samples
            vals = np.unique(X[:, j])
            if len(vals) <= max_categories:
                self.categories[int(j)] = vals

    def describe(self) -> dict[str, Any]:
        return {"n_features": self.n_features, "feature_names": self.feature_names,
                "low": self.low.tolist(), "high": self.high.tolist(),
                "categories": {self.feature_names[j]: v.tolist() for j, v in self.categories.items()}}

    def violations(self, X: np.ndarray) -> np.ndarray:
        """Number of schema violations per row (non-finite, out of range, unknown category)."""
        bad = ~np.isfinite(X)
        Xf = np.where(bad, 0.0, X)
        bad |= (Xf < self.low) | (Xf > self.high)
        for j, vals in self.categories.items():
            bad[:, j] |= ~np.isin(Xf[:, j], vals)
        return bad.sum(1)


class MahalanobisDetector:
    """Mahalanobis distance of an input to the reference data (Ledoit-Wolf covariance)."""

    def fit(self, model: Any, X_ref: np.ndarray) -> MahalanobisDetector:
        from sklearn.covariance import LedoitWolf  # lazy: scikit-learn is slow to import; only this path needs it

        X = np.asarray(X_ref, dtype=np.float64).reshape(len(X_ref), -1)
        lw = LedoitWolf().fit(X)
        self.mean_ = lw.location_
        self.precision_ = lw.precision_
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        D = np.asarray(X, dtype=np.float64).reshape(len(X), -1) - self.mean_
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", D, self.precision_, D), 0.0))


def default_detectors(*, adversarial: bool = True) -> dict[str, tuple[Detector, str]]:
    """``{"ood": built-in Mahalanobis, "adversarial": the robustness detector when importable}``.

    The adversarial detector is ``modelshield.attacks.detect.NoiseConsistencyDetector``
    (noise-consistency score; costs ``n_draws + 1`` model rows per scored row).
    """
    out: dict[str, tuple[Detector, str]] = {"ood": (MahalanobisDetector(), "mahalanobis")}
    if adversarial:
        try:
            from modelshield.attacks.detect import NoiseConsistencyDetector  # lazy: pulls in yaml only when used
        except ImportError:
            pass
        else:
            out["adversarial"] = (NoiseConsistencyDetector(), "robustness.NoiseConsistencyDetector")
    return out


@dataclass(frozen=True)
class Screening:
    """Per-request result of the input defense."""

    violations: np.ndarray  # per row
    scores: dict[str, np.ndarray]  # detector name -> per-row score
    flagged: np.ndarray  # per row: schema violation or any score above its threshold
    decision: str  # "ok" | "flagged" | "rejected"
    proba: np.ndarray | None = None  # the model's probabilities for X when a detector already computed them
    flagged_by: tuple[str, ...] = ()  # "schema" and the names of the detectors that flagged a row

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_violations": int(self.violations.sum()), "flagged_rows": int(self.flagged.sum())}
        if self.flagged_by:
            out["flagged_by"] = list(self.flagged_by)
        for name, sc in self.scores.items():
            out[f"{name}_max"] = round(float(sc.max(initial=0.0)), 6)
        return out


class _SharedPrediction:
    """The model as the detectors see it: remembers, per thread, the last batch it predicted.

    The noise-consistency detector predicts ``[X; noisy copies of X]`` in one batch; when the first
    ``len(X)`` rows of that batch are exactly ``X`` (checked, not assumed), their probabilities are the
    model's answer for ``X`` and the gateway does not predict ``X`` a second time.
    """

    def __init__(self, model: Any) -> None:
        self._model = model
        self._local = threading.local()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = self._model.predict_proba(X)
        self._local.last = (X, p)
        return p

    def forget(self) -> None:
        self._local.last = None

    def take(self, X: np.ndarray) -> np.ndarray | None:
        """Probabilities of ``X`` from the last batch this thread predicted, if it began with ``X``."""
        last = getattr(self._local, "last", None)
        self._local.last = None
        if last is None:
            return None
        B, p = last
        n = len(X)
        B = np.asarray(B)
        if (len(B) < n or B.shape[1:] != X.shape[1:] or B.dtype != X.dtype or not isinstance(p, np.ndarray)
                or len(p) != len(B) or not np.array_equal(B[:n], X)):
            return None
        return p[:n]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


#: the decision a policy gives a flagged request, in rising order of strength
_POLICY_RANK = {"log": 0, "flag": 1, "reject": 2}
_DECISIONS = ("ok", "flagged", "rejected")


class InputDefense:
    """Schema + detectors + policy. Each detector's threshold is the ``quantile`` of its reference scores,
    unless the detector sets its own ``calibrated_threshold`` (a float) when fitted (STRIP: an order
    statistic on reference rows it does not overlay). ``policies`` gives a detector a policy of its own
    (the others and the schema use ``policy``); a request gets the strongest decision of the policies of
    whatever flagged it.

    When a detector's model batch begins with the screened rows themselves, :meth:`screen` returns
    their probabilities in ``Screening.proba`` (one model call per request instead of two).
    """

    def __init__(self, schema: InputSchema, detectors: dict[str, Detector] | None, *, model: Any,
                 X_ref: np.ndarray, policy: str = "flag", quantile: float = 0.999,
                 policies: dict[str, str] | None = None) -> None:
        self.schema = schema
        self.detectors = dict(detectors or {})
        self.policy = policy
        self.policies = {n: policies.get(n, policy) if policies else policy for n in self.detectors}
        for n, pol in self.policies.items():
            if pol not in _POLICY_RANK:
                raise ValueError(f"unknown input policy {pol!r} for {n}; choose log, flag or reject")
        self.thresholds: dict[str, float] = {}
        self._shared = _SharedPrediction(model)
        for name, det in self.detectors.items():
            det.fit(self._shared, X_ref)
            own = getattr(det, "calibrated_threshold", None)
            if isinstance(own, float):
                self.thresholds[name] = float(own)
                continue
            ref = np.asarray(det.score(X_ref), dtype=np.float64)
            self.thresholds[name] = float(np.quantile(ref, quantile)) if len(ref) else float("inf")

    def screen(self, X: np.ndarray) -> Screening:
        v = self.schema.violations(X)
        safe = np.where(np.isfinite(X), X, 0.0)
        self._shared.forget()
        scores = {n: np.asarray(d.score(safe), dtype=np.float64).reshape(-1) for n, d in self.detectors.items()}
        proba = self._shared.take(X)
        flagged = v > 0
        level = _POLICY_RANK[self.policy] if flagged.any() else 0
        by = ["schema"] if flagged.any() else []
        for n, sc in scores.items():
            hit = sc > self.thresholds[n]
            if hit.any():
                flagged = flagged | hit
                level = max(level, _POLICY_RANK[self.policies[n]])
                by.append(n)
        return Screening(violations=v, scores=scores, flagged=flagged, decision=_DECISIONS[level], proba=proba,
                         flagged_by=tuple(by))
