"""STRIP scoring of live inputs: an input that carries a backdoor trigger keeps its prediction when it is
superimposed with clean inputs, so its prediction entropy under superimposition is abnormally low
(Gao et al. 2019).

:class:`StripDetector` is an input-defence detector (the :class:`~modelshield.serve.monitors.base.Detector`
seam): its clean inputs are the gateway's **reference data** (the ``reference`` file the schema, OOD and
drift statistics come from), split once in two seeded halves: the *overlay pool* that live inputs are
blended with, and the *calibration* half whose entropies set the threshold (an order statistic at
``fpr``; the threshold is never measured on the rows it overlays). The score of a row is its entropy
deficit ``log(K) - mean entropy`` (higher is more suspicious); a row scoring above
:attr:`StripDetector.calibrated_threshold` is flagged.

Cost: one model call per request of ``(n_overlays + 1) x rows`` rows -- the request's own rows come first
in the batch, so their probabilities are the answer and the gateway does not predict them again.
The overlays of a request are drawn from a generator seeded by the detector's seed (secret and random at
start unless configured) and a hash of the request's rows: the same input gets the same score.

References
----------
.. [1] Y. Gao et al., "STRIP: A Defence Against Trojan Attacks on Deep Neural Networks", ACSAC 2019.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import numpy as np

from modelshield.errors import DataError
from modelshield.poisoning.model import prediction_entropy, strip_mix, strip_mode

__all__ = ["StripDetector"]


class StripDetector:
    """STRIP entropy-deficit score of input rows, calibrated on held-out reference rows.

    Parameters
    ----------
    n_overlays : superimpositions per row (each costs one model row).
    alpha : weight of the input in a blend (``alpha * x + (1 - alpha) * o``), or the probability that a
        feature is kept in a swap (unused by ``add``).
    mode : ``auto`` (``add`` for images and rows of 64 features or more, feature ``swap`` for tables),
        ``add`` (``x + o`` clipped to the reference range: the superimposition of Gao et al.'s code, which
        keeps a trigger at full strength), ``blend`` or ``swap``.
    fpr : share of clean calibration rows that score above the threshold.
    seed : seeds the split of the reference rows and every request's overlays; ``None``: a random secret.
    max_pool : overlay-pool rows kept (a seeded sample above it).
    """

    def __init__(self, *, n_overlays: int = 16, alpha: float = 0.5, mode: str = "auto", fpr: float = 0.01,
                 seed: int | None = None, max_pool: int = 5000) -> None:
        if not (0 < fpr < 0.5):
            raise DataError(f"STRIP fpr must be above 0 and below 0.5, got {fpr}")
        if int(n_overlays) < 1 or not (0 < alpha < 1):
            raise DataError("STRIP needs at least one overlay and alpha strictly between 0 and 1")
        self.n_overlays = int(n_overlays)
        self.alpha = float(alpha)
        self.mode = mode
        self.fpr = float(fpr)
        self.seed = int(seed) if seed is not None else secrets.randbits(63)
        self.max_pool = int(max_pool)
        self.calibrated_threshold: float | None = None
        self.calibration: np.ndarray = np.empty(0)

    def fit(self, model: Any, X_ref: np.ndarray) -> StripDetector:
        """Split the reference rows into overlay pool and calibration half; set :attr:`calibrated_threshold`."""
        X = np.asarray(X_ref, dtype=np.float64)
        if len(X) < 20:
            raise DataError(f"STRIP needs at least 20 reference rows (half of them set its threshold), got {len(X)}")
        self._model = model
        self._mode = strip_mode(X, self.mode, wide="add")
        self.bounds = (float(X.min()), float(X.max()))
        rng = np.random.default_rng([self.seed, 0])
        perm = rng.permutation(len(X))
        calib, pool = X[perm[: len(X) // 2]], X[perm[len(X) // 2:]]
        self.pool = pool if len(pool) <= self.max_pool else pool[rng.choice(len(pool), self.max_pool, replace=False)]
        self.calibration = self.score(calib)
        m = len(self.calibration)
        j = max(1, int(np.floor(self.fpr * m)))  # the j-th largest deficit (= j-th smallest entropy)
        self.calibrated_threshold = float(np.sort(self.calibration)[::-1][j - 1])
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        """Entropy deficit ``log(K) - mean entropy`` of each row under ``n_overlays`` superimpositions."""
        Xa = np.asarray(X, dtype=np.float64)
        if len(Xa) == 0:
            return np.empty(0)
        digest = hashlib.blake2b(np.ascontiguousarray(Xa).tobytes(), digest_size=8).digest()
        rng = np.random.default_rng([self.seed, 1, int.from_bytes(digest, "little")])
        mixed = strip_mix(Xa, self.pool, n_overlays=self.n_overlays, mode=self._mode, alpha=self.alpha, rng=rng,
                          bounds=self.bounds)
        # the rows themselves first: their probabilities are the model's answer (one call per request)
        p = np.asarray(self._model.predict_proba(np.concatenate([Xa, mixed])), dtype=np.float64)
        ent = prediction_entropy(p[len(Xa):]).reshape(self.n_overlays, len(Xa)).mean(axis=0)
        return np.log(p.shape[1]) - ent
