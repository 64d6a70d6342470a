"""Shared validation and small numeric helpers of the poisoning engine (private)."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from modelshield.errors import DataError, UserError

#: The one wording for a poisoned-fraction option outside (0, 0.5) (tests assert on it).
FRACTION_MSG = "{name} must be above 0 and below 0.5 (a share of the training rows), got {value}"


#: Matrices below this many values are decomposed on one BLAS thread: for a class's activations (hundreds of
#: rows, tens of units) the thread pool's hand-offs cost 10-300x the work on a loaded box.
SMALL_LINALG_VALUES = 4_000_000


def one_blas_thread_if_small(n_values: int) -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread for a workload of ``n_values`` matrix entries below :data:`SMALL_LINALG_VALUES`."""
    return threadpool_limits(limits=1) if n_values < SMALL_LINALG_VALUES else contextlib.nullcontext()


def check_fraction(value: float, name: str = "poisoned_fraction") -> float:
    """``value`` if it is a share in (0, 0.5); otherwise a :class:`UserError` (exit 2)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UserError(FRACTION_MSG.format(name=name, value=value)) from None
    if not (math.isfinite(v) and 0.0 < v < 0.5):
        raise UserError(FRACTION_MSG.format(name=name, value=value))
    return v


def flat_features(X: Any, what: str = "training data") -> np.ndarray:
    """``X`` as a finite float64 matrix ``(n, d)``; a :class:`DataError` for text or missing values."""
    X = np.asarray(X)
    if X.ndim == 0 or len(X) == 0:
        raise DataError(f"the {what} has no rows")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise DataError(f"the {what} has non-numeric features; encode them first")
    flat = X.reshape(len(X), -1).astype(np.float64, copy=False)
    if not np.all(np.isfinite(flat)):
        row = int(np.argwhere(~np.isfinite(flat))[0][0])
        raise DataError(f"the {what} has a missing or infinite value in row {row}")
    return flat


def label_codes(y: Any, what: str = "training data") -> tuple[np.ndarray, np.ndarray]:
    """``(codes, classes)``: labels as indices 0..K-1 into the sorted distinct labels."""
    if y is None:
        raise DataError(f"the {what} has no labels", cli_hint="give the label column with --target")
    classes, codes = np.unique(np.asarray(y), return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"the {what} has a single class; label checks need at least two")
    return codes.astype(np.int64), classes


def standardise(ref: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale ``ref`` and ``others`` by ``ref``'s mean and spread (constant columns keep scale 1)."""
    mu = ref.mean(axis=0)
    sd = ref.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return [(a - mu) / sd for a in (ref, *others)]


def nearest_distances(A: np.ndarray, B: np.ndarray | None = None, *, k: int = 1,
                      chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances from each row of ``A`` to its ``k`` nearest rows of ``B`` (``B=None``: ``A``
    itself, a row never its own neighbour), and their indices; chunked matrix products, no Python loop
    per row. Returns ``(dist, idx)`` of shape ``(len(A), k)``, nearest first."""
    self_mode = B is None
    B = A if B is None else B
    k = min(k, len(B) - (1 if self_mode else 0))
    if k < 1:
        return np.full((len(A), 1), np.inf), np.zeros((len(A), 1), dtype=np.int64)
    bb = np.einsum("ij,ij->i", B, B)
    out_d = np.empty((len(A), k))
    out_i = np.empty((len(A), k), dtype=np.int64)
    for s in range(0, len(A), chunk):
        a = A[s : s + chunk]
        d2 = np.einsum("ij,ij->i", a, a)[:, None] + bb[None, :] - 2.0 * (a @ B.T)
        np.maximum(d2, 0.0, out=d2)
        if self_mode:
            d2[np.arange(len(a)), np.arange(s, s + len(a))] = np.inf
        if k < d2.shape[1]:
            part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        else:
            part = np.tile(np.arange(d2.shape[1]), (len(a), 1))
        pd = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(pd, axis=1, kind="stable")
        out_i[s : s + len(a)] = np.take_along_axis(part, order, axis=1)
        out_d[s : s + len(a)] = np.sqrt(np.take_along_axis(pd, order, axis=1))
    return out_d, out_i


def robust_z(values: np.ndarray) -> np.ndarray:
    """``(v - median) / (1.4826 * MAD)`` (MAD 0: the mean absolute deviation, then 1)."""
    med = np.median(values)
    mad = 1.4826 * np.median(np.abs(values - med))
    if mad <= 1e-12:
        mad = float(np.mean(np.abs(values - med))) or 1.0
    return (values - med) / mad
