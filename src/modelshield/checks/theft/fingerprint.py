"""Decision-boundary fingerprints: recognise copies of a model you cannot retrain (query-only).

A fingerprint is a set of inputs close to the owner's decision boundary together with the owner's
predictions on them. Natural inputs are classified alike by every competent model; points just next
to *this* model's boundary are where independently trained models disagree with it, while copies
derived from it (fine-tuned, pruned, distilled, extracted through its API) inherit its boundary and
keep agreeing. The score of a suspect is its agreement on the fingerprint points; a suspect scoring
at or above the fingerprint's threshold is called derived.

Creation is query-only and works for any classifier (scikit-learn included):

1. pairs of data rows that the owner classifies differently are bisected along the segment between
   them until the boundary is bracketed (``bisection_steps`` batched queries); candidate points are
   placed at several small offsets on either side of it and labelled by the owner;
2. reference models score each candidate: *derived* references are surrogates the owner extracts
   from its own API (query-only), *independent* references are models the owner trains without the
   original (given, or retrained from labelled data for retrainable models); the candidates with the
   largest derived-minus-independent agreement are kept ("conferrable" points, after Lukas et al.);
3. the threshold is placed between the references' scores on the kept points.

References
----------
.. [1] X. Cao, J. Jia, N. Gong. "IPGuard: Protecting Intellectual Property of Deep Neural Networks
   via Fingerprinting the Classification Boundary". AsiaCCS 2021.
.. [2] N. Lukas, Y. Zhang, F. Kerschbaum. "Deep Neural Network Fingerprinting by Conferrable
   Adversarial Examples". ICLR 2021.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelshield.checks.theft._records import read_record, record_bytes
from modelshield.data.dataset import Dataset
from modelshield.errors import DataError, InputNotFoundError, OutputError
from modelshield.models.base import BaseModel

__all__ = [
    "FINGERPRINT_FORMAT",
    "Fingerprint",
    "FingerprintMatch",
    "boundary_candidates",
    "create_fingerprint",
    "extracted_references",
    "retrained_references",
]

FINGERPRINT_FORMAT = "modelshield.fingerprint/1"
DEFAULT_THRESHOLD = 0.75
Predictor = Callable[[np.ndarray], np.ndarray]


def _as_model(model: Any, input_shape: tuple[int, ...] | None = None) -> BaseModel:
    from modelshield.checks.theft._torchutil import as_model

    return as_model(model, input_shape)


@dataclass(frozen=True, kw_only=True)
class FingerprintMatch:
    """A suspect's agreement with a fingerprint and the decision."""

    score: float
    matches: int
    n: int
    threshold: float

    @property
    def derived(self) -> bool:
        return self.score >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"derived": self.derived, "score": self.score, "matches": self.matches, "n": self.n,
                "threshold": self.threshold}


@dataclass(frozen=True, kw_only=True)
class Fingerprint:
    """Boundary points ``X`` with the owner's predicted class *indices* ``labels``, and a threshold."""

    X: np.ndarray
    labels: np.ndarray
    n_classes: int
    threshold: float = DEFAULT_THRESHOLD
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        X = np.asarray(self.X, dtype=np.float64)
        labels = np.asarray(self.labels)
        if len(X) == 0 or labels.shape != (len(X),) or not np.issubdtype(labels.dtype, np.integer):
            raise DataError("a fingerprint needs one integer class index per point")
        if not 0.0 < float(self.threshold) <= 1.0:
            raise DataError(f"fingerprint threshold must lie in (0, 1], got {self.threshold}")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "labels", labels.astype(np.int64))
        object.__setattr__(self, "threshold", float(self.threshold))

    def __len__(self) -> int:
        return len(self.labels)

    def score(self, model: Any) -> float:
        """Agreement of ``model`` with the owner on the fingerprint points."""
        return self.compare(model).score

    def compare(self, model: Any, threshold: float | None = None) -> FingerprintMatch:
        """Query ``model`` on the fingerprint points; ``derived`` when the agreement reaches the threshold."""
        m = _as_model(model, self.X.shape[1:])
        if m.n_classes != self.n_classes:
            raise DataError(f"the model has {m.n_classes} classes but the fingerprint was made for {self.n_classes}")
        agree = m.predict_index(self.X) == self.labels
        k = int(agree.sum())
        return FingerprintMatch(score=k / len(agree), matches=k, n=len(agree),
                                threshold=self.threshold if threshold is None else float(threshold))

    def to_bytes(self) -> bytes:
        header = {"format": FINGERPRINT_FORMAT, "n_classes": int(self.n_classes),
                  "threshold": self.threshold, "meta": self.meta}
        return record_bytes(self.X, self.labels, header)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        p = Path(path)
        try:
            with p.open("wb" if overwrite else "xb") as fh:
                fh.write(self.to_bytes())
        except FileExistsError:
            raise OutputError(f"{p} already exists; pass --force to overwrite it") from None
        return p

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "fingerprint") -> Fingerprint:
        header, X, labels = read_record(data, source=source, what="fingerprint", fmt=FINGERPRINT_FORMAT)
        return cls(X=X, labels=labels, n_classes=int(header["n_classes"]), threshold=float(header["threshold"]),
                   meta=dict(header.get("meta") or {}))

    @classmethod
    def load(cls, path: str | Path) -> Fingerprint:
        p = Path(path)
        if not p.is_file():
            raise InputNotFoundError(f"fingerprint not found: {p}")
        return cls.from_bytes(p.read_bytes(), source=str(p))


def boundary_candidates(
    model: BaseModel,
    X: np.ndarray,
    *,
    n_pairs: int = 500,
    bisection_steps: int = 10,
    offsets: Sequence[float] = (0.02, 0.05, 0.1),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Points near ``model``'s decision boundary and the model's class indices on them.

    Each of ``n_pairs`` pairs of rows with different predictions is bisected ``bisection_steps``
    times (one batched query per step); for every offset ``o`` two points are returned, at segment
    positions ``t_lo - o`` and ``t_hi + o`` around the bracketed crossing ``[t_lo, t_hi]``.
    """
    rng = np.random.default_rng(seed)
    shape = X.shape[1:]
    flat = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    pred = model.predict_index(X)
    classes = np.unique(pred)
    if len(classes) < 2:
        raise DataError("the model predicts a single class on these rows; no decision boundary to fingerprint")
    a = rng.integers(0, len(flat), size=n_pairs)
    b = np.empty(n_pairs, dtype=np.int64)
    for c in classes:  # loop over classes, not samples
        sel = pred[a] == c
        others = np.flatnonzero(pred != c)
        b[sel] = rng.choice(others, size=int(sel.sum()))
    A, B, pa = flat[a], flat[b], pred[a]
    lo, hi = np.zeros(n_pairs), np.ones(n_pairs)
    for _ in range(int(bisection_steps)):
        mid = (lo + hi) / 2
        same = model.predict_index((A + mid[:, None] * (B - A)).reshape((n_pairs, *shape))) == pa
        lo = np.where(same, mid, lo)
        hi = np.where(same, hi, mid)
    ts = [np.clip(t, 0.0, 1.0) for o in offsets for t in (lo - o, hi + o)]
    T = np.concatenate(ts)
    P = np.tile(A, (len(ts), 1)) + T[:, None] * np.tile(B - A, (len(ts), 1))
    P = P.reshape((len(P), *shape))
    return P, model.predict_index(P)


def extracted_references(
    model: BaseModel, X: np.ndarray, *, n: int = 2, queries: int = 2000, seed: int = 0
) -> list[Predictor]:
    """``n`` surrogates extracted from ``model`` through its API (Knockoff queries around ``X``):
    the owner's stand-ins for derived copies. Returns ``predict_index`` functions."""
    from modelshield.checks.theft.extraction import knockoff_queries, query_victim, train_surrogate

    flat = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    pool = Dataset(X=flat, feature_types=["continuous"] * flat.shape[1])
    out: list[Predictor] = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        Q = knockoff_queries(pool, queries, rng, noise=0.3)
        answers, _ = query_victim(model, Q.reshape((len(Q), *np.shape(X)[1:])))
        out.append(train_surrogate(Q, answers, model.n_classes, seed=seed + i, steps=400).predict_index)
    return out


def retrained_references(model: BaseModel, X: np.ndarray, y: np.ndarray, *, n: int = 3,
                         seed: int = 0) -> list[Predictor]:
    """``n`` independent models: unfitted clones of a scikit-learn ``model`` (``clone_unfitted``)
    fitted on bootstrap samples of the labelled data ``(X, y)`` with fresh random states."""
    if not hasattr(model, "clone_unfitted") or getattr(model, "framework", "") != "sklearn":
        raise DataError("retrained references need a retrainable scikit-learn model; pass independent models")
    rng = np.random.default_rng([seed, 7])
    out: list[Predictor] = []
    for _ in range(n):
        est = model.clone_unfitted()
        if "random_state" in est.get_params():
            est.set_params(random_state=int(rng.integers(2**31)))
        idx = rng.integers(0, len(X), size=len(X))
        est.fit(np.asarray(X)[idx], np.asarray(y)[idx])
        ref = _as_model(est)
        out.append(ref.predict_index)
    return out


def create_fingerprint(
    model: Any,
    X: np.ndarray | Dataset,
    *,
    n_points: int = 200,
    independent: Sequence[Any] = (),
    derived: Sequence[Any] | None = None,
    n_pairs: int | None = None,
    bisection_steps: int = 10,
    offsets: Sequence[float] = (0.02, 0.05, 0.1),
    threshold: float | None = None,
    seed: int = 0,
) -> Fingerprint:
    """Fingerprint ``model`` with ``n_points`` conferrable points near its decision boundary.

    Parameters
    ----------
    model : the owner's model (any adapter or wrappable object); only queried.
    X : rows from the model's input distribution (the owner's data), or a :class:`Dataset`.
    independent : models (or ``predict_index`` callables) trained without the owner's model; the
        points where they disagree with the owner are preferred. Strongly recommended: without them
        the threshold is the fixed default (0.75) and only derived references guide the selection.
    derived : stand-ins for copies; by default two surrogates extracted through the API.
    threshold : the decision threshold; by default the midpoint between the lowest derived-reference
        score and the highest independent-reference score, each measured leave-one-out (the reference
        scored on points selected without it), clipped to [0.5, 0.95]; 0.75 without references.

    Returns
    -------
    Fingerprint

    Examples
    --------
    >>> fp = create_fingerprint(model, X_train, independent=retrained_references(model, X_train, y_train))
    ... # doctest: +SKIP
    >>> fp.compare(suspect).derived  # doctest: +SKIP
    True
    """
    Xa = X.X if isinstance(X, Dataset) else np.asarray(X)
    m = _as_model(model, Xa.shape[1:])
    P, labels = boundary_candidates(m, Xa, n_pairs=n_pairs or max(4 * n_points, 200),
                                    bisection_steps=bisection_steps, offsets=offsets, seed=seed)
    refs_d: list[Predictor] = [_predictor(r, Xa.shape[1:]) for r in derived] if derived is not None else \
        extracted_references(m, Xa, seed=seed)
    refs_i: list[Predictor] = [_predictor(r, Xa.shape[1:]) for r in independent]
    Ad = np.array([f(P) == labels for f in refs_d], dtype=np.float64).reshape(len(refs_d), len(P))
    Ai = np.array([f(P) == labels for f in refs_i], dtype=np.float64).reshape(len(refs_i), len(P))
    jitter = 1e-6 * np.random.default_rng([seed, 11]).uniform(size=len(P))  # random tie-break
    k = min(n_points, len(P))

    def select(d_rows: np.ndarray, i_rows: np.ndarray) -> np.ndarray:
        gain = (d_rows.mean(axis=0) if len(d_rows) else 1.0) - (i_rows.mean(axis=0) if len(i_rows) else 0.0)
        return np.argsort(-(gain + jitter))[:k]

    keep = select(Ad, Ai)
    Xf, yf = P[keep], labels[keep]
    # leave-one-out: each reference scored on points chosen without it (in-sample scores are biased)
    d_loo = [float(Ad[j, select(np.delete(Ad, j, 0), Ai)].mean()) for j in range(len(Ad))] if len(Ad) > 1 else []
    i_loo = [float(Ai[j, select(Ad, np.delete(Ai, j, 0))].mean()) for j in range(len(Ai))] if len(Ai) > 1 else []
    if threshold is None:
        threshold = DEFAULT_THRESHOLD
        if d_loo and i_loo:
            threshold = float(np.clip((min(d_loo) + max(i_loo)) / 2, 0.5, 0.95))
    return Fingerprint(X=Xf, labels=yf, n_classes=m.n_classes, threshold=threshold, meta={
        "method": "boundary-bisection", "seed": seed, "offsets": list(offsets),
        "bisection_steps": bisection_steps, "derived_reference_scores_loo": d_loo,
        "independent_reference_scores_loo": i_loo,
    })


def _predictor(ref: Any, input_shape: tuple[int, ...] | None = None) -> Predictor:
    if callable(ref) and not hasattr(ref, "predict_proba") and not hasattr(ref, "forward"):
        return ref
    return _as_model(ref, input_shape).predict_index
