"""Adversarial-input detection for the serving gateway: a model-agnostic noise-consistency score.

Adversarial examples found by attacks that stop at the first success sit just across the decision
boundary: the model is unsure about them and small random noise flips its decision far more often
than for natural inputs. :class:`NoiseConsistencyDetector` turns both effects into one score that
needs only ``predict_proba`` (so it works for black-box models behind the gateway).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelshield.errors import DataError, UserError
from modelshield.models.base import BaseModel

__all__ = ["NoiseConsistencyDetector", "detection_auc"]


#: batches up to this many rows keep their noise draw (see ``NoiseConsistencyDetector._noise``)
_CACHED_ROWS = 16


@dataclass(kw_only=True)
class NoiseConsistencyDetector:
    """Score inputs by how unstable the model's decision is around them.

    ``score(x) = (flip_rate(x) + 1 - margin(x)) / 2`` where ``margin`` is the gap between the two
    largest predicted probabilities and ``flip_rate`` the fraction of ``n_draws`` Gaussian
    perturbations (``sigma`` reference standard deviations per feature) that change the predicted
    class. Higher means more suspicious; :meth:`threshold` picks the cut-off for a false-positive
    rate on the reference (clean) data. Each scored input costs ``n_draws + 1`` model queries, sent
    as one batch.

    Parameters
    ----------
    sigma : noise scale in units of each feature's standard deviation on the reference data.
    n_draws : noise draws per input.
    seed : seed of the noise (scores are deterministic for a given seed and input order).

    References
    ----------
    Hu, Yu, Guo, Chao & Weinberger, "A New Defense Against Adversarial Images: Turning a Weakness
    into a Strength", NeurIPS 2019. https://arxiv.org/abs/1910.07629
    Roth, Kilcher & Hofmann, "The Odds are Odd: A Statistical Test for Detecting Adversarial
    Examples", ICML 2019. https://arxiv.org/abs/1902.04818

    Examples
    --------
    >>> det = NoiseConsistencyDetector().fit(model, X_train)          # doctest: +SKIP
    >>> suspicious = det.score(X_batch) > det.threshold(fpr=0.01)      # doctest: +SKIP
    """

    sigma: float = 0.1
    n_draws: int = 16
    seed: int = 0
    model_: BaseModel | None = field(default=None, repr=False)
    scale_: np.ndarray | None = field(default=None, repr=False)
    reference_scores_: np.ndarray | None = field(default=None, repr=False)
    _noise_cache: dict[tuple[int, int, float, int], np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def fit(self, model: BaseModel, X_ref: np.ndarray) -> NoiseConsistencyDetector:
        """Learn the per-feature noise scale and the clean score distribution from ``X_ref``."""
        if not self.sigma > 0 or int(self.n_draws) < 1:
            raise UserError("sigma must be > 0 and n_draws >= 1")
        X_ref = np.asarray(X_ref, dtype=np.float64)
        if len(X_ref) < 2:
            raise DataError("the detector needs at least two reference inputs")
        flat = X_ref.reshape(len(X_ref), -1)
        s = flat.std(axis=0)
        self.model_ = model
        self._noise_cache.clear()  # a new scale_
        self.scale_ = np.where(s > 0, s, max(float(np.median(s[s > 0])) if np.any(s > 0) else 1.0, 1e-12))
        self.reference_scores_ = self.score(X_ref)
        return self

    def _check_fitted(self) -> tuple[BaseModel, np.ndarray]:
        if self.model_ is None or self.scale_ is None:
            raise UserError("This NoiseConsistencyDetector is not fitted yet. Call 'fit(model, X_ref)' first.")
        return self.model_, self.scale_

    def score(self, X: np.ndarray) -> np.ndarray:
        """Suspicion score in ``[0, 1]`` per input (higher: more likely adversarial)."""
        model, scale = self._check_fitted()
        X = np.asarray(X, dtype=np.float64)
        n = len(X)
        if n == 0:
            return np.zeros(0)
        flat = X.reshape(n, -1)
        if flat.shape[1] != scale.shape[0]:
            raise DataError(f"inputs have {flat.shape[1]} features; the detector was fitted on {scale.shape[0]}")
        k = int(self.n_draws)
        noise = self._noise(n, k, scale)
        batch = np.concatenate([flat, (flat[:, None, :] + noise).reshape(n * k, -1)])
        p = model.predict_proba(batch.reshape((len(batch), *X.shape[1:])).astype(X.dtype))
        p0, pn = p[:n], p[n:].reshape(n, k, -1)
        top = np.argmax(p0, axis=1)
        srt = np.sort(p0, axis=1)
        margin = srt[:, -1] - (srt[:, -2] if p0.shape[1] > 1 else 0.0)
        flips = (np.argmax(pn, axis=2) != top[:, None]).mean(axis=1)
        return 0.5 * (flips + (1.0 - margin))

    def _noise(self, n: int, k: int, scale: np.ndarray) -> np.ndarray:
        """The noise for a batch of ``n`` rows: the same seeded draw on every call. Batches of up to
        ``_CACHED_ROWS`` rows (a serving gateway's requests) keep it instead of seeding a new generator
        each time (tens of microseconds); ``fit`` clears it."""
        key = (n, k, float(self.sigma), int(self.seed))
        noise = self._noise_cache.get(key)
        if noise is None:
            noise = np.random.default_rng(self.seed).standard_normal((n, k, scale.shape[0])) * (self.sigma * scale)
            if n <= _CACHED_ROWS:
                self._noise_cache[key] = noise
        return noise

    def threshold(self, fpr: float = 0.05) -> float:
        """The score above which an input is flagged, for false-positive rate ``fpr`` on clean data."""
        self._check_fitted()
        if not 0 < fpr < 1:
            raise UserError("fpr must be in (0, 1)")
        assert self.reference_scores_ is not None
        return float(np.quantile(self.reference_scores_, 1 - fpr))

    def predict(self, X: np.ndarray, fpr: float = 0.05) -> np.ndarray:
        """Boolean flag per input: suspicious at false-positive rate ``fpr``."""
        return self.score(X) > self.threshold(fpr)

    def params(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "n_draws": self.n_draws, "seed": self.seed}


def detection_auc(detector: NoiseConsistencyDetector, X_clean: np.ndarray, X_adv: np.ndarray) -> float:
    """ROC AUC of ``detector`` separating adversarial from clean inputs (0.5 = chance)."""
    from sklearn.metrics import roc_auc_score  # lazy: scikit-learn is slow to import; only this path needs it

    if len(X_clean) == 0 or len(X_adv) == 0:
        return float("nan")
    s = np.concatenate([detector.score(X_clean), detector.score(X_adv)])
    lab = np.concatenate([np.zeros(len(X_clean)), np.ones(len(X_adv))])
    return float(roc_auc_score(lab, s))
