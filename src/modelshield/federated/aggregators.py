"""Aggregators over a stack of client (or group) updates, shape ``(n, n_params)``.

Each robust aggregator checks its tolerance constraint first and raises :class:`~modelshield.errors.UserError`
with one line naming it:

* trimmed mean (Yin et al. 2018): ``b = floor(beta * n)`` values are cut from each end of every coordinate;
  needs ``0 <= beta < 0.5`` and ``2 * b < n``.
* Krum / Multi-Krum (Blanchard et al. 2017): tolerates ``f`` Byzantine inputs when ``n > 2f + 2``.
* Bulyan (El Mhamdi et al. 2018): tolerates ``f`` when ``n >= 4f + 3``.

All outputs lie inside the coordinate-wise range of the inputs (none extrapolates).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from modelshield.errors import UserError

__all__ = [
    "AggregatorSpec",
    "bulyan",
    "fedavg",
    "krum",
    "median",
    "multi_krum",
    "parse_aggregator",
    "trimmed_mean",
]


def _stack(updates: object) -> np.ndarray:
    arr = np.asarray(updates, dtype=np.float64)
    if arr.ndim != 2:
        raise UserError(f"updates must be a 2-D stack (n_clients x n_params), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise UserError("no updates to aggregate (0 clients)")
    if not np.all(np.isfinite(arr)):
        raise UserError("updates contain NaN or infinity")
    return arr


def _check_f(f: int) -> None:
    if not isinstance(f, (int, np.integer)) or isinstance(f, bool) or f < 0:
        raise UserError(f"the number of Byzantine inputs f must be an integer >= 0, got {f!r}")


def fedavg(updates: object, weights: object | None = None) -> np.ndarray:
    """Weighted mean (McMahan et al. 2017). ``weights`` (e.g. sample counts) default to equal."""
    arr = _stack(updates)
    if weights is None:
        return arr.mean(axis=0)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (arr.shape[0],):
        raise UserError(
            f"fedavg needs one weight per update: {w.shape[0] if w.ndim else 0} weights, {arr.shape[0]} updates"
        )
    if np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        raise UserError("fedavg weights must be finite, >= 0 and not all zero")
    return (w[:, None] * arr).sum(axis=0) / w.sum()


def median(updates: object) -> np.ndarray:
    """Coordinate-wise median (Yin et al. 2018); tolerates any f < n/2."""
    return np.median(_stack(updates), axis=0)


def trimmed_mean(updates: object, beta: float) -> np.ndarray:
    """Coordinate-wise beta-trimmed mean: drop the ``floor(beta*n)`` largest and smallest values per coordinate."""
    arr = _stack(updates)
    n = arr.shape[0]
    if not (isinstance(beta, (int, float)) and 0.0 <= beta < 0.5):
        raise UserError(f"trimmed mean needs 0 <= beta < 0.5 (2*beta*n < n), got beta={beta!r}")
    b = math.floor(beta * n)
    if 2 * b >= n:
        raise UserError(f"trimmed mean needs 2*beta*n < n: beta={beta} cuts {2 * b} of {n} updates")
    s = np.sort(arr, axis=0)
    return s[b : n - b].mean(axis=0)


def _krum_scores(arr: np.ndarray, f: int) -> np.ndarray:
    """Krum score of each row: sum of squared distances to its ``n - f - 2`` nearest other rows."""
    n = arr.shape[0]
    sq = np.sum(arr**2, axis=1)
    d = np.maximum(sq[:, None] + sq[None, :] - 2.0 * arr @ arr.T, 0.0)
    np.fill_diagonal(d, np.inf)
    m = n - f - 2
    return np.sort(d, axis=1)[:, :m].sum(axis=1)


def _check_krum(n: int, f: int, name: str) -> None:
    _check_f(f)
    if not n > 2 * f + 2:
        raise UserError(f"{name} needs n > 2f + 2: n={n}, f={f} (at least {2 * f + 3} inputs)")


def krum(updates: object, f: int) -> np.ndarray:
    """Krum: the update with the smallest sum of squared distances to its n - f - 2 nearest neighbours."""
    arr = _stack(updates)
    _check_krum(arr.shape[0], f, "Krum")
    return arr[int(np.argmin(_krum_scores(arr, f)))].copy()


def multi_krum(updates: object, f: int, m: int | None = None) -> np.ndarray:
    """Multi-Krum: mean of the ``m`` updates with the lowest Krum scores (default ``m = n - f``)."""
    arr = _stack(updates)
    n = arr.shape[0]
    _check_krum(n, f, "Multi-Krum")
    m = n - f if m is None else m
    if not isinstance(m, (int, np.integer)) or not 1 <= m <= n - f:
        raise UserError(f"Multi-Krum needs 1 <= m <= n - f: m={m!r}, n={n}, f={f}")
    idx = np.argsort(_krum_scores(arr, f), kind="stable")[:m]
    return arr[idx].mean(axis=0)


def bulyan(updates: object, f: int) -> np.ndarray:
    """Bulyan: select ``theta = n - 2f`` updates by repeated Krum, then per coordinate average the
    ``beta = theta - 2f`` values closest to the coordinate's median of the selection."""
    arr = _stack(updates)
    n = arr.shape[0]
    _check_f(f)
    if not n >= 4 * f + 3:
        raise UserError(f"Bulyan needs n >= 4f + 3: n={n}, f={f} (at least {4 * f + 3} inputs)")
    theta = n - 2 * f
    remaining = list(range(n))
    selected: list[int] = []
    while len(selected) < theta:
        sub = arr[remaining]
        # Krum on the remaining set; with fewer than f + 3 rows left, n - f - 2 < 1: take the closest-to-all
        k = len(remaining)
        ff = min(f, max(k - 3, 0))
        pick = int(np.argmin(_krum_scores(sub, ff))) if k > 2 else 0
        selected.append(remaining.pop(pick))
    sel = arr[selected]
    beta = theta - 2 * f
    med = np.median(sel, axis=0)
    order = np.argsort(np.abs(sel - med), axis=0, kind="stable")[:beta]
    return np.take_along_axis(sel, order, axis=0).mean(axis=0)


@dataclass(frozen=True, kw_only=True)
class AggregatorSpec:
    """A parsed aggregator: ``name`` plus its parameter (``beta`` for trimmed mean, ``m`` for Multi-Krum)."""

    name: str
    beta: float | None = None
    m: int | None = None

    @property
    def needs_f(self) -> bool:
        return self.name in ("krum", "multikrum", "bulyan")

    def check(self, n: int, f: int) -> None:
        """Validate the tolerance constraint for ``n`` inputs and ``f`` Byzantine ones, before any work."""
        if self.name in ("krum", "multikrum"):
            _check_krum(n, f, "Krum" if self.name == "krum" else "Multi-Krum")
            if self.m is not None and not 1 <= self.m <= n - f:
                raise UserError(f"Multi-Krum needs 1 <= m <= n - f: m={self.m}, n={n}, f={f}")
        elif self.name == "bulyan":
            _check_f(f)
            if not n >= 4 * f + 3:
                raise UserError(f"Bulyan needs n >= 4f + 3: n={n}, f={f} (at least {4 * f + 3} inputs)")
        elif self.name == "trimmed-mean":
            b = math.floor((self.beta or 0.0) * n)
            if 2 * b >= n:
                raise UserError(f"trimmed mean needs 2*beta*n < n: beta={self.beta} cuts {2 * b} of {n} updates")
        elif self.name == "median" and f > 0 and not n > 2 * f:
            raise UserError(f"the median needs n > 2f: n={n}, f={f}")

    def fn(self, f: int) -> Callable[..., np.ndarray]:
        """The aggregation function ``(updates, weights) -> vector``."""
        if self.name == "fedavg":
            return fedavg
        if self.name == "median":
            return lambda u, w=None: median(u)
        if self.name == "trimmed-mean":
            return lambda u, w=None: trimmed_mean(u, float(self.beta or 0.0))
        if self.name == "krum":
            return lambda u, w=None: krum(u, f)
        if self.name == "multikrum":
            return lambda u, w=None: multi_krum(u, f, self.m)
        return lambda u, w=None: bulyan(u, f)


_NAMES = ("fedavg", "median", "trimmed-mean", "krum", "multikrum", "bulyan")


def parse_aggregator(text: str) -> AggregatorSpec:
    """Parse ``fedavg|median|trimmed-mean:0.2|krum|multikrum[:m]|bulyan``."""
    name, _, arg = str(text).strip().lower().partition(":")
    if name not in _NAMES:
        raise UserError(f"unknown aggregator {text!r}; choose one of {', '.join(_NAMES)}")
    try:
        if name == "trimmed-mean":
            beta = float(arg) if arg else 0.2
            if not 0.0 <= beta < 0.5:
                raise UserError(f"trimmed mean needs 0 <= beta < 0.5 (2*beta*n < n), got beta={beta}")
            return AggregatorSpec(name=name, beta=beta)
        if name == "multikrum":
            return AggregatorSpec(name=name, m=int(arg) if arg else None)
    except ValueError as exc:
        raise UserError(f"bad aggregator parameter in {text!r}") from exc
    if arg:
        raise UserError(f"aggregator {name} takes no parameter, got {text!r}")
    return AggregatorSpec(name=name)
