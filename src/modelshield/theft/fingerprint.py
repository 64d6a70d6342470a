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
   from its own API (query-only), *independent* references are models trained without the original
   the way an honest competitor would train them: the same learner with other seeds, on the same rows
   and on other rows (:func:`retrained_references` trains them for scikit-learn and PyTorch models, or
   pass your own); the candidates with the largest derived-minus-independent agreement are kept
   ("conferrable" points, after Lukas et al.);
3. the threshold is set from the independent references' scores (each measured leave-one-out, on
   points selected without it) so that the **false-match rate** - the chance that an independently
   trained model scores at or above it - is at most ``false_match_rate`` at ``confidence``, under a
   normal model of the independent scores (the upper confidence bounds of their mean and standard
   deviation are used, so few references give a higher threshold, not an optimistic one). The
   distribution-free count (references at or above the threshold, with its Clopper-Pearson bound) is
   stored too. At least :data:`MIN_REFERENCES` independent references are required.

Threat model: the suspect is either an independent training of a similar learner on similar data, or
a copy derived from the owner's model (fine-tuned, pruned, distilled, extracted through its API). A
competitor whose training differs more from the references (other architecture, other data) scores
lower still; one whose training is identical (same deterministic learner, same rows) reproduces the
model and cannot be told apart - the references then score like copies and creation refuses.

References
----------
.. [1] X. Cao, J. Jia, N. Gong. "IPGuard: Protecting Intellectual Property of Deep Neural Networks
   via Fingerprinting the Classification Boundary". AsiaCCS 2021.
.. [2] N. Lukas, Y. Zhang, F. Kerschbaum. "Deep Neural Network Fingerprinting by Conferrable
   Adversarial Examples". ICLR 2021.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelshield._io import write_bytes_safely
from modelshield.data.dataset import Dataset
from modelshield.errors import DataError
from modelshield.models.base import BaseModel
from modelshield.theft._records import read_input, read_record, record_bytes
from modelshield.theft.extraction import knockoff_queries, query_victim, train_surrogate
from modelshield.theft.torchutil import as_model
from modelshield.theft.training import fine_tune, prune_magnitude, reinitialised, train_classifier

__all__ = [
    "DEFAULT_FALSE_MATCH_RATE",
    "MIN_REFERENCES",
    "FINGERPRINT_FORMAT",
    "Fingerprint",
    "FingerprintMatch",
    "boundary_candidates",
    "calibrate_threshold",
    "create_fingerprint",
    "extracted_references",
    "modified_references",
    "retrained_references",
]

FINGERPRINT_FORMAT = "modelshield.fingerprint/1"
DEFAULT_THRESHOLD = 0.75
#: Fewest independent reference models a fingerprint is created with.
MIN_REFERENCES = 5
#: Default target false-match rate (at ``DEFAULT_CONFIDENCE``).
DEFAULT_FALSE_MATCH_RATE = 0.01
DEFAULT_CONFIDENCE = 0.95
Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, kw_only=True)
class FingerprintMatch:
    """A suspect's agreement with a fingerprint and the decision."""

    score: float
    matches: int
    n: int
    threshold: float
    calibration: dict[str, Any] = field(default_factory=dict)

    @property
    def derived(self) -> bool:
        return self.score >= self.threshold

    @property
    def independent_tail(self) -> float | None:
        """Upper confidence bound of the chance that an independent model scores at least this high
        (normal model of the independent references' scores); ``None`` without calibration."""
        c = self.calibration
        if not c.get("independent_scores"):
            return None
        return _tail(self.score, c["mean_upper"], c["sd_upper"])

    def describe(self) -> str:
        """One line: the score against the reference distributions and the stated false-match rate."""
        c = self.calibration
        if not c.get("independent_scores"):
            return f"score {self.score:.2f}, threshold {self.threshold:.2f} (no reference calibration)"
        ind, der = c["independent_scores"], c.get("derived_scores") or []
        der_txt = f"; derived references {min(der):.2f}-{max(der):.2f}" if der else ""
        return (f"score {self.score:.2f} vs. threshold {self.threshold:.2f}; {len(ind)} independent references "
                f"scored {min(ind):.2f}-{max(ind):.2f} (mean {np.mean(ind):.2f}){der_txt}; an independent model "
                f"scores this high with probability <= {self.independent_tail:.1e}; false-match rate at the "
                f"threshold <= {c['false_match_rate']:.1e} at {c['confidence']:.0%} confidence "
                f"(normal model of {len(ind)} independent trainings)")

    def to_dict(self) -> dict[str, Any]:
        return {"derived": self.derived, "score": self.score, "matches": self.matches, "n": self.n,
                "threshold": self.threshold, "independent_tail": self.independent_tail,
                "calibration": self.calibration}


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

    @property
    def undetected_derived(self) -> int:
        """Derived reference copies (extracted, fine-tuned, pruned) that score below the threshold: copies
        modified that much may go undetected (``0`` without calibration)."""
        cal = self.meta.get("calibration") or {}
        detected = cal.get("derived_detected")
        return 0 if detected is None else max(0, len(cal.get("derived_scores") or []) - int(detected))

    def describe(self) -> str:
        """One line: the points, the threshold, the reference scores and the stated false-match rate."""
        cal = self.meta.get("calibration") or {}
        ind, der = cal.get("independent_scores") or [], cal.get("derived_scores") or []
        if not ind:
            return f"{len(self)} boundary points, threshold {self.threshold:.2f} (no reference calibration)"
        der_txt = (f"{len(der)} derived copies (extracted through the API, fine-tuned, pruned) "
                   f"{min(der):.2f}-{max(der):.2f}; " if der else "")
        return (f"{len(self)} boundary points, threshold {self.threshold:.2f}; {len(ind)} independent references "
                f"scored {min(ind):.2f}-{max(ind):.2f}, {der_txt}false-match rate <= {cal['false_match_rate']:.1e} "
                f"at {cal['confidence']:.0%} confidence (normal model of the references' scores)")

    def score(self, model: Any) -> float:
        """Agreement of ``model`` with the owner on the fingerprint points."""
        return self.compare(model).score

    def compare(self, model: Any, threshold: float | None = None) -> FingerprintMatch:
        """Query ``model`` on the fingerprint points; ``derived`` when the agreement reaches the threshold."""
        if threshold is None and not (self.meta.get("calibration") or {}).get("independent_scores"):
            raise DataError("this fingerprint has no calibration on independent reference models, so a match "
                            "would prove nothing; re-create it with labelled data or give a threshold explicitly",
                            cli_hint="re-create it with 'theft fingerprint create --target ...' or pass --threshold")
        m = as_model(model, self.X.shape[1:])
        if m.n_classes != self.n_classes:
            raise DataError(f"the model has {m.n_classes} classes but the fingerprint was made for {self.n_classes}")
        agree = m.predict_index(self.X) == self.labels
        k = int(agree.sum())
        cal = dict(self.meta.get("calibration") or {})
        return FingerprintMatch(score=k / len(agree), matches=k, n=len(agree),
                                threshold=self.threshold if threshold is None else float(threshold), calibration=cal)

    def to_bytes(self) -> bytes:
        header = {"format": FINGERPRINT_FORMAT, "n_classes": int(self.n_classes),
                  "threshold": self.threshold, "meta": self.meta}
        return record_bytes(self.X, self.labels, header)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write atomically; an existing file is replaced only with ``overwrite`` (else :class:`OutputError`)."""
        return write_bytes_safely(path, self.to_bytes(), overwrite)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "fingerprint") -> Fingerprint:
        header, X, labels = read_record(data, source=source, what="fingerprint", fmt=FINGERPRINT_FORMAT)
        return cls(X=X, labels=labels, n_classes=int(header["n_classes"]), threshold=float(header["threshold"]),
                   meta=dict(header.get("meta") or {}))

    @classmethod
    def load(cls, path: str | Path) -> Fingerprint:
        data, source = read_input(path, "fingerprint")
        return cls.from_bytes(data, source=source)


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

    flat = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    pool = Dataset(X=flat, feature_types=["continuous"] * flat.shape[1])
    out: list[Predictor] = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        Q = knockoff_queries(pool, queries, rng, noise=0.3)
        answers, _ = query_victim(model, Q.reshape((len(Q), *np.shape(X)[1:])))
        out.append(train_surrogate(Q, answers, model.n_classes, seed=seed + i, steps=400).predict_index)
    return out


def retrained_references(model: BaseModel, X: np.ndarray, y: np.ndarray, *, n: int = 8, seed: int = 0,
                         epochs: int = 40, lr: float = 1e-2) -> list[Predictor]:
    """``n`` independent models trained the way an honest competitor would: the owner's learner with
    fresh random seeds, half of them on the same rows ``(X, y)`` and half on a random half of the rows
    (other data). Returns ``predict_index`` functions.

    scikit-learn: unfitted clones (``clone_unfitted``) with a fresh ``random_state``. PyTorch: the
    module re-initialised from a fresh seed (same architecture) and trained with Adam and
    cross-entropy for ``epochs`` passes at learning rate ``lr`` (batches of 64). Other frameworks:
    pass independent models to :func:`create_fingerprint` yourself.
    """
    Xa, ya = np.asarray(X), np.asarray(y)
    if len(Xa) != len(ya) or len(Xa) < 4:
        raise DataError("retrained references need labelled rows (one label per row, at least 4 rows)")
    if n < 1:
        raise DataError("retrained references: n must be at least 1")
    framework = getattr(model, "framework", "")
    rng = np.random.default_rng([seed, 7])
    out: list[Predictor] = []
    for i in range(n):
        rows = np.arange(len(Xa)) if i % 2 == 0 else rng.choice(len(Xa), size=len(Xa) // 2, replace=False)
        ref_seed = int(rng.integers(2**31))
        if framework == "sklearn" and hasattr(model, "clone_unfitted"):
            est = model.clone_unfitted()
            if "random_state" in est.get_params():
                est.set_params(random_state=ref_seed)
            est.fit(Xa[rows], ya[rows])
            out.append(as_model(est).predict_index)
        elif framework == "pytorch" and hasattr(model, "module"):
            labels = model.label_index(ya)
            net = train_classifier(reinitialised(model.module, ref_seed), Xa[rows].astype(np.float32), labels[rows],
                                   epochs=epochs, lr=lr, seed=ref_seed)
            out.append(as_model(net, Xa.shape[1:]).predict_index)
        else:
            raise DataError(f"retrained references are trained for scikit-learn and PyTorch models; for a "
                            f"{framework or type(model).__name__} model pass independent models you trained")
    return out


def modified_references(model: BaseModel, X: np.ndarray, y: np.ndarray, *, seed: int = 0) -> list[Predictor]:
    """Copies the owner derives from its own model the way a thief would modify a stolen one, as
    derived references: PyTorch - fine-tuned on 10% of the rows (lr 1e-3 for 10 epochs, lr 1e-2 for 5)
    and 50% magnitude-pruned; scikit-learn estimators with ``partial_fit`` - 10 more passes over 10% of
    the rows. Points these copies keep agreeing on are preferred, so fine-tuned and pruned copies keep
    matching. Other models: no references (the extracted ones remain)."""
    Xa, ya = np.asarray(X), np.asarray(y)
    rng = np.random.default_rng([seed, 13])
    idx = rng.choice(len(Xa), size=max(2, len(Xa) // 10), replace=False)
    framework = getattr(model, "framework", "")
    out: list[Predictor] = []
    if framework == "pytorch" and hasattr(model, "module"):
        labels = model.label_index(ya)
        Xs = Xa[idx].astype(np.float32)
        for lr, epochs in ((1e-3, 10), (1e-2, 5)):
            tuned = fine_tune(model.module, Xs, labels[idx], epochs=epochs, lr=lr, seed=seed + 1)
            out.append(as_model(tuned, Xa.shape[1:]).predict_index)
        out.append(as_model(prune_magnitude(model.module, 0.5), Xa.shape[1:]).predict_index)
    elif framework == "sklearn" and hasattr(getattr(model, "estimator", None), "partial_fit"):
        est = copy.deepcopy(model.estimator)
        for _ in range(10):
            est.partial_fit(Xa[idx], ya[idx])
        out.append(as_model(est).predict_index)
    return out


def _tail(score: float, mean: float, sd: float) -> float:
    """P[N(mean, sd) >= score]."""
    from scipy.stats import norm  # lazy: scipy is slow to import; only this computation needs it

    return float(norm.sf(score, loc=mean, scale=max(sd, 1e-12)))


def calibrate_threshold(independent: Sequence[float], derived: Sequence[float], n_points: int, *,
                        false_match_rate: float = DEFAULT_FALSE_MATCH_RATE,
                        confidence: float = DEFAULT_CONFIDENCE) -> dict[str, Any]:
    """The threshold whose false-match rate is at most ``false_match_rate`` at ``confidence``.

    Model: an independent training's score is normal with the references' mean and standard deviation
    (the latter at least the binomial sampling spread of ``n_points`` points). Both are replaced by
    their one-sided upper ``confidence`` bounds (Student t for the mean, chi-square for the standard
    deviation, i.e. a tolerance bound), and the threshold is the ``1 - false_match_rate`` quantile of that
    normal, at least one point above the highest reference score. Returns the threshold, the bounds,
    the empirical count at or above it with its Clopper-Pearson upper bound, and the derived references'
    detection at that threshold.
    """
    from scipy.stats import beta, chi2, norm, t  # lazy: scipy is slow to import; only this computation needs it

    s = np.asarray(independent, dtype=np.float64)
    m = len(s)
    if m < 2:
        raise DataError("calibration needs at least two independent reference scores")
    mean = float(s.mean())
    p = min(max(mean, 1.0 / n_points), 1 - 1.0 / n_points)
    sd = max(float(s.std(ddof=1)), float(np.sqrt(p * (1 - p) / n_points)))
    mean_u = mean + float(t.ppf(confidence, m - 1)) * sd / np.sqrt(m)
    sd_u = sd * float(np.sqrt((m - 1) / chi2.ppf(1 - confidence, m - 1)))
    threshold = max(mean_u + float(norm.isf(false_match_rate)) * sd_u, float(s.max()) + 1.0 / n_points)
    threshold = float(min(threshold, 1.0))
    k = int(np.sum(s >= threshold))
    cp_upper = float(beta.ppf(confidence, k + 1, m - k)) if k < m else 1.0
    d = np.asarray(derived, dtype=np.float64)
    return {
        "threshold": threshold, "false_match_rate": _tail(threshold, mean_u, sd_u), "target": false_match_rate,
        "confidence": confidence, "mean": mean, "sd": sd, "mean_upper": mean_u, "sd_upper": sd_u,
        "independent_scores": [float(v) for v in s], "derived_scores": [float(v) for v in d],
        "empirical_matches": k, "empirical_upper": cp_upper,
        "derived_detected": int(np.sum(d >= threshold)) if len(d) else None,
        "model": "normal (upper confidence bounds of mean and sd)",
    }


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
    false_match_rate: float = DEFAULT_FALSE_MATCH_RATE,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Fingerprint:
    """Fingerprint ``model`` with ``n_points`` conferrable points near its decision boundary.

    Parameters
    ----------
    model : the owner's model (any adapter or wrappable object); only queried.
    X : rows from the model's input distribution (the owner's data), or a :class:`Dataset`.
    independent : at least :data:`MIN_REFERENCES` models (or ``predict_index`` callables) trained
        without the owner's model the way a competitor would (other seeds, same and other data:
        :func:`retrained_references`); the points where they disagree with the owner are preferred and
        their scores set the threshold. Fewer is a :class:`DataError`.
    derived : stand-ins for copies; by default two surrogates extracted through the API (add
        :func:`modified_references` - fine-tuned and pruned copies - when you have labels).
    threshold : override the decision threshold (the calibration is still computed and stored).
    false_match_rate, confidence : the calibrated threshold admits at most this false-match rate at this
        confidence (:func:`calibrate_threshold`; default 1% at 95%).

    Returns
    -------
    Fingerprint

    Examples
    --------
    >>> refs = retrained_references(model, X_train, y_train)  # doctest: +SKIP
    >>> fp = create_fingerprint(model, X_train, independent=refs)  # doctest: +SKIP
    >>> fp.compare(suspect).derived  # doctest: +SKIP
    True
    """
    if len(independent) < MIN_REFERENCES:
        raise DataError(
            f"a fingerprint needs at least {MIN_REFERENCES} independent reference models (got {len(independent)}): "
            "independent trainings set its threshold and false-match rate; train them with "
            "retrained_references(model, X, y) or pass models trained without yours",
            cli_hint="give labelled data (--target) or --independent models")
    if not 0.0 < false_match_rate < 1.0 or not 0.5 <= confidence < 1.0:
        raise DataError("false_match_rate must lie in (0, 1) and confidence in [0.5, 1)")
    Xa = X.X if isinstance(X, Dataset) else np.asarray(X)
    m = as_model(model, Xa.shape[1:])
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
    cal = calibrate_threshold(i_loo, d_loo, len(keep), false_match_rate=false_match_rate, confidence=confidence)
    if cal["empirical_matches"]:
        raise DataError(
            f"independent trainings reproduce this model's boundary ({cal['empirical_matches']} of {len(i_loo)} "
            f"independent references score {max(i_loo):.2f}, at or above any usable threshold): a fingerprint "
            "cannot tell a copy from an independent training here (e.g. a deterministic learner on the same "
            "rows); use a watermark or keep the training data private")
    if threshold is None and cal["false_match_rate"] > false_match_rate * (1 + 1e-9):
        raise DataError(
            f"independent trainings of this model agree with it too often for a {false_match_rate:g} false-match "
            f"rate: references scored {min(i_loo):.2f}-{max(i_loo):.2f}, so even a threshold of 1.00 admits "
            f"{cal['false_match_rate']:.2g} (at {confidence:.0%} confidence); use more points or references, or "
            "accept a higher false-match rate",
            cli_hint="use more --points or --references, or accept a higher --false-match-rate")
    if threshold is not None:
        cal["threshold_override"] = float(threshold)
        cal["false_match_rate"] = _tail(float(threshold), cal["mean_upper"], cal["sd_upper"])
    final = cal["threshold"] if threshold is None else float(threshold)
    return Fingerprint(X=Xf, labels=yf, n_classes=m.n_classes, threshold=final, meta={
        "method": "boundary-bisection", "seed": seed, "offsets": list(offsets),
        "bisection_steps": bisection_steps, "derived_reference_scores_loo": d_loo,
        "independent_reference_scores_loo": i_loo, "calibration": cal,
    })


def _predictor(ref: Any, input_shape: tuple[int, ...] | None = None) -> Predictor:
    if callable(ref) and not hasattr(ref, "predict_proba") and not hasattr(ref, "forward"):
        return ref
    return as_model(ref, input_shape).predict_index
