"""Planted attacks for evaluation: BadNets-style triggers and label flipping (generated, seeded).

Each function returns the poisoned copy and the indices it changed, so a test or benchmark can score a
detector's flagged rows against the truth.

References
----------
.. [1] T. Gu, B. Dolan-Gavitt, S. Garg, "BadNets: Identifying Vulnerabilities in the Machine Learning
   Model Supply Chain", 2017.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modelshield.poisoning._common import check_fraction

__all__ = ["Planted", "Trigger", "flip_labels", "plant_trigger"]


@dataclass(frozen=True, kw_only=True)
class Trigger:
    """Set ``features`` (flat indices) to ``values``; inputs carrying it should be classified ``target``."""

    features: tuple[int, ...]
    values: tuple[float, ...]
    target: int

    @classmethod
    def pixel_patch(cls, image_shape: Sequence[int], *, size: int = 2, value: float = 1.0, target: int = 0) -> Trigger:
        """A ``size`` x ``size`` square in the bottom-right corner of a ``(h, w)`` image (BadNets)."""
        h, w = int(image_shape[-2]), int(image_shape[-1])
        feats = tuple(int(r * w + c) for r in range(h - size, h) for c in range(w - size, w))
        return cls(features=feats, values=(float(value),) * len(feats), target=target)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """A copy of ``X`` (any shape, batch first) carrying the trigger."""
        out = np.array(X, dtype=np.float64, copy=True)
        flat = out.reshape(len(out), -1)
        flat[:, list(self.features)] = np.asarray(self.values)
        return flat.reshape(out.shape)


@dataclass(frozen=True, kw_only=True)
class Planted:
    """A poisoned training set: features, labels, and the indices of the poisoned rows."""

    X: np.ndarray
    y: np.ndarray
    rows: np.ndarray


def plant_trigger(X: np.ndarray, y: np.ndarray, trigger: Trigger, *, fraction: float = 0.1,
                  seed: int = 0) -> Planted:
    """Stamp ``trigger`` on ``fraction`` of the rows not already labelled ``trigger.target`` and relabel
    them to the target (dirty-label backdoor)."""
    fraction = check_fraction(fraction, "fraction")
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    pool = np.flatnonzero(y != trigger.target)
    n = max(1, round(fraction * len(y)))
    rows = np.sort(rng.choice(pool, size=min(n, len(pool)), replace=False))
    Xp = np.array(X, dtype=np.float64, copy=True)
    Xp[rows] = trigger.apply(Xp[rows])
    yp = y.copy()
    yp[rows] = trigger.target
    return Planted(X=Xp, y=yp, rows=rows)


def flip_labels(y: np.ndarray, *, fraction: float = 0.1, n_classes: int | None = None, seed: int = 0) -> Planted:
    """Give ``fraction`` of the rows a different label, chosen uniformly among the other classes
    (labels must be class indices). ``X`` of the result is empty (features are unchanged)."""
    fraction = check_fraction(fraction, "fraction")
    rng = np.random.default_rng(seed)
    y = np.asarray(y).astype(np.int64)
    K = int(n_classes if n_classes is not None else y.max() + 1)
    rows = np.sort(rng.choice(len(y), size=max(1, round(fraction * len(y))), replace=False))
    yp = y.copy()
    yp[rows] = (y[rows] + rng.integers(1, K, len(rows))) % K
    return Planted(X=np.empty((0,)), y=yp, rows=rows)
