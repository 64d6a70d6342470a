"""Output hardening: return less than the model knows, to make extraction and inversion harder.

Options (all vectorised): ``top_k`` returns only the ``k`` most likely labels (no scores);
``probabilities=False`` returns labels only; ``noise`` adds Gaussian noise of that standard
deviation to the probabilities, renormalised and never changing the top label; ``decimals`` rounds.

References
----------
.. [1] Tramèr, F., Zhang, F., Juels, A., Reiter, M., Ristenpart, T. (2016). Stealing machine
   learning models via prediction APIs. USENIX Security. (Rounding and label-only outputs.)
.. [2] Lee, T., Edwards, B., Molloy, I., Su, D. (2019). Defending against neural network model
   stealing attacks using deceptive perturbations. IEEE S&P Workshops. (Label-preserving noise.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["OutputHardening"]


class OutputHardening:
    """Turns probabilities into the response body ``{"predictions", "probabilities"?, "classes", "top_k"?}``."""

    def __init__(self, *, top_k: int | None = None, decimals: int | None = None, noise: float = 0.0,
                 probabilities: bool = True, seed: int | None = None) -> None:
        self.top_k, self.decimals, self.noise = top_k, decimals, noise
        self.probabilities = probabilities
        self._rng = np.random.default_rng(seed)

    @property
    def active(self) -> bool:
        return bool(self.top_k or self.decimals is not None or self.noise > 0 or not self.probabilities)

    def perturb(self, proba: np.ndarray) -> np.ndarray:
        P = np.asarray(proba, dtype=np.float64)
        if self.noise > 0:
            top = P.argmax(1)
            Q = np.clip(P + self._rng.normal(0.0, self.noise, P.shape), 1e-6, None)
            Q /= Q.sum(1, keepdims=True)
            newtop = Q.argmax(1)
            rows = np.flatnonzero(newtop != top)  # swap so the returned label never changes
            a, b = Q[rows, top[rows]].copy(), Q[rows, newtop[rows]].copy()
            Q[rows, top[rows]], Q[rows, newtop[rows]] = b, a
            P = Q
        if self.decimals is not None:
            P = np.round(P, self.decimals)
        return P

    def body(self, proba: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
        P = np.asarray(proba, dtype=np.float64)
        idx = P.argmax(1)
        out: dict[str, Any] = {"predictions": classes[idx].tolist()}
        if self.top_k:
            k = min(self.top_k, P.shape[1])
            order = np.argsort(-P, axis=1, kind="stable")[:, :k]
            out["top_k"] = classes[order].tolist()
        elif self.probabilities:
            out["probabilities"] = self.perturb(P).tolist()
        out["classes"] = classes.tolist()
        return out
