"""The :class:`Dataset`: features, labels, names, sensitive columns, and per-feature constraints."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from modelshield.errors import DataError

__all__ = ["Dataset", "FeatureType"]

FeatureType = str  # "continuous" | "integer" | "binary" | "categorical"
FEATURE_TYPES = ("continuous", "integer", "binary", "categorical")


@dataclass(kw_only=True)
class Dataset:
    """A table (or tensor batch) to evaluate a model on.

    Attributes
    ----------
    X : features, shape ``(n, d)`` (or ``(n, *shape)`` for images); float64 when numeric.
    y : labels, shape ``(n,)``, or ``None``.
    feature_names : one name per column of ``X`` (tabular data).
    sensitive : ``name -> values`` (shape ``(n,)``), protected attributes for fairness checks;
        they may or may not also be features.
    lower, upper : per-feature bounds that valid rows respect (default: the observed min/max).
    feature_types : per-feature type, one of ``continuous | integer | binary | categorical``.
    immutable : names of features an attacker cannot change (e.g. age, sex).
    name : a label for reports (file name or demo set name).
    """

    X: np.ndarray
    y: np.ndarray | None = None
    feature_names: list[str] | None = None
    sensitive: dict[str, np.ndarray] = field(default_factory=dict)
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    feature_types: list[FeatureType] | None = None
    immutable: frozenset[str] = frozenset()
    name: str = "data"
    source: str | None = None

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X)
        n = len(self.X)
        if self.y is not None:
            self.y = np.asarray(self.y)
            if len(self.y) != n:
                raise DataError(f"{self.name}: {n} rows of features but {len(self.y)} labels")
        if self.feature_names is not None and self.X.ndim == 2 and len(self.feature_names) != self.X.shape[1]:
            raise DataError(
                f"{self.name}: {len(self.feature_names)} feature names for {self.X.shape[1]} columns"
            )
        for k, v in list(self.sensitive.items()):
            v = np.asarray(v)
            if len(v) != n:
                raise DataError(f"{self.name}: sensitive column {k!r} has {len(v)} values for {n} rows")
            self.sensitive[k] = v
        if self.feature_types is not None:
            bad = [t for t in self.feature_types if t not in FEATURE_TYPES]
            if bad:
                raise DataError(f"unknown feature type {bad[0]!r}; expected one of {', '.join(FEATURE_TYPES)}")
        if self.is_numeric and n:
            flat = self.X.reshape(n, -1).astype(np.float64, copy=False)
            with warnings.catch_warnings():  # an all-NaN column has no bound (NaN); callers report missing values
                warnings.simplefilter("ignore", RuntimeWarning)
                if self.lower is None:
                    self.lower = np.nanmin(flat, axis=0)
                if self.upper is None:
                    self.upper = np.nanmax(flat, axis=0)
            if self.feature_types is None and self.X.ndim == 2:
                self.feature_types = _infer_types(flat)

    # -- shape ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.X)

    @property
    def n_features(self) -> int:
        return int(np.prod(self.X.shape[1:])) if self.X.ndim > 1 else 1

    @property
    def is_numeric(self) -> bool:
        return np.issubdtype(self.X.dtype, np.number) or self.X.dtype == bool

    @property
    def has_labels(self) -> bool:
        return self.y is not None

    @property
    def scale(self) -> np.ndarray:
        """Per-feature spread (std, or range/4 where std is 0) used to size perturbations."""
        flat = self.X.reshape(len(self.X), -1).astype(np.float64)
        s = flat.std(axis=0)
        rng = (self.upper - self.lower) if self.upper is not None and self.lower is not None else s
        return np.where(s > 0, s, np.maximum(rng / 4, 1e-12))

    @property
    def mutable_mask(self) -> np.ndarray:
        """Boolean per feature: may an attacker change it?"""
        names = self.feature_names or []
        return np.array([n not in self.immutable for n in names] or [True] * self.n_features)

    # -- slicing --------------------------------------------------------------------------
    def subset(self, idx: np.ndarray | Sequence[int] | slice) -> Dataset:
        """Rows ``idx`` (bounds and types are kept, not recomputed)."""
        idx = np.arange(len(self))[idx] if isinstance(idx, slice) else np.asarray(idx)
        return replace(
            self,
            X=self.X[idx],
            y=None if self.y is None else self.y[idx],
            sensitive={k: v[idx] for k, v in self.sensitive.items()},
        )

    def sample(self, n: int, seed: int = 0, stratify: bool = True) -> Dataset:
        """At most ``n`` rows, reproducibly (stratified by label when there are labels)."""
        if n >= len(self):
            return self
        rng = np.random.default_rng(seed)
        if stratify and self.y is not None:
            # lazy: keeps scikit-learn off CLI start-up (the CLI imports this module)
            from sklearn.model_selection import train_test_split

            try:
                idx, _ = train_test_split(
                    np.arange(len(self)), train_size=n, random_state=seed, stratify=self.y
                )
                return self.subset(np.sort(idx))
            except ValueError:  # a class too small to stratify
                pass
        return self.subset(np.sort(rng.choice(len(self), size=n, replace=False)))

    def split(self, test_size: float = 0.3, seed: int = 0) -> tuple[Dataset, Dataset]:
        # lazy: keeps scikit-learn off CLI start-up (the CLI imports this module)
        from sklearn.model_selection import train_test_split

        strat = self.y if self.y is not None and len(np.unique(self.y)) < len(self) // 2 else None
        a, b = train_test_split(np.arange(len(self)), test_size=test_size, random_state=seed, stratify=strat)
        return self.subset(np.sort(a)), self.subset(np.sort(b))

    def clip(self, X: np.ndarray) -> np.ndarray:
        """Project rows into the feature bounds (a no-op where bounds are unknown)."""
        if self.lower is None or self.upper is None:
            return X
        shape = X.shape
        return np.clip(X.reshape(len(X), -1), self.lower, self.upper).reshape(shape)

    # -- identity -------------------------------------------------------------------------
    def sha256(self) -> str:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.X).tobytes() if self.is_numeric else repr(self.X.tolist()).encode())
        if self.y is not None:
            h.update(repr(self.y.tolist()).encode())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "rows": len(self),
            "features": self.n_features,
            "feature_names": self.feature_names,
            "sensitive": sorted(self.sensitive),
            "labels": None if self.y is None else _label_counts(self.y),
        }

    def with_sensitive(self, sensitive: Mapping[str, np.ndarray]) -> Dataset:
        return replace(self, sensitive={**self.sensitive, **sensitive})


def _infer_types(flat: np.ndarray) -> list[FeatureType]:
    types: list[FeatureType] = []
    for j in range(flat.shape[1]):
        col = flat[:, j]
        col = col[np.isfinite(col)]
        if col.size and np.all(col == np.round(col)):
            u = np.unique(col)
            types.append("binary" if len(u) <= 2 and set(u.tolist()) <= {0.0, 1.0} else "integer")
        else:
            types.append("continuous")
    return types


def _label_counts(y: np.ndarray) -> dict[str, int]:
    vals, counts = np.unique(y, return_counts=True)
    return {str(v): int(c) for v, c in zip(vals.tolist(), counts.tolist(), strict=True)}
