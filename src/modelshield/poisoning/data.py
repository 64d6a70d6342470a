"""Training-data checks: label issues (confident learning), duplicates and train/test leakage, outliers.

Every result names training rows by their **index** (0-based position in the training data), never by
their values: a report about poisoned rows must not copy possibly sensitive data.

>>> probs = out_of_fold_probabilities(X, y, seed=0)                 # doctest: +SKIP
>>> issues = find_label_issues(y, probs)                            # doctest: +SKIP
>>> report = audit_training_data(X, y, X_test=X_test, seed=0)       # doctest: +SKIP

References
----------
.. [1] C. Northcutt, L. Jiang, I. Chuang, "Confident Learning: Estimating Uncertainty in Dataset
   Labels", JAIR 70, 2021.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelshield.errors import DataError
from modelshield.poisoning._common import flat_features, label_codes, nearest_distances, robust_z, standardise

__all__ = [
    "DuplicateReport",
    "LABEL_METHODS",
    "LabelIssueReport",
    "OutlierReport",
    "TrainingDataReport",
    "audit_training_data",
    "calibrated_joint",
    "confident_joint",
    "confident_thresholds",
    "find_duplicates",
    "find_label_issues",
    "find_outliers",
    "out_of_fold_probabilities",
]

_FP = 1e-6  # the tolerance confident learning uses for "p >= threshold" and "label is the argmax"


# -- out-of-fold probabilities ----------------------------------------------------------------
def default_estimator(seed: int = 0) -> Any:
    """The estimator used when none is given: standardised, regularised (C=0.1) logistic regression
    (regularised so that flipped labels pull the fit less)."""
    from sklearn.linear_model import LogisticRegression  # lazy: scikit-learn is slow to import; only this path needs it
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=0.1, random_state=seed))


def out_of_fold_probabilities(X: Any, y: Any, *, estimator: Any = None, n_folds: int = 5,
                              seed: int = 0) -> np.ndarray:
    """Predicted class probabilities for every training row from a model that did not see it.

    ``estimator`` is an unfitted scikit-learn classifier (cloned per fold; default
    :func:`default_estimator`). Columns follow the sorted distinct labels of ``y``; a class missing
    from a fold's training part gets probability 0 there. Stratified ``n_folds``-fold split, seeded.
    """
    from sklearn.base import clone  # lazy: scikit-learn is slow to import; only this path needs it
    from sklearn.model_selection import KFold, StratifiedKFold

    Xf = flat_features(X)
    codes, classes = label_codes(y)
    if len(Xf) != len(codes):
        raise DataError(f"{len(Xf)} rows of features but {len(codes)} labels")
    n_folds = int(n_folds)
    if n_folds < 2:
        raise DataError(f"out-of-fold probabilities need at least 2 folds, got {n_folds}")
    counts = np.bincount(codes, minlength=len(classes))
    folds = min(n_folds, len(codes))
    splitter = (StratifiedKFold(folds, shuffle=True, random_state=seed) if counts.min() >= folds
                else KFold(folds, shuffle=True, random_state=seed))
    base = estimator if estimator is not None else default_estimator(seed)
    probs = np.zeros((len(codes), len(classes)))
    for tr, te in splitter.split(Xf, codes):
        est = clone(base)
        est.fit(Xf[tr], codes[tr])
        p = np.asarray(est.predict_proba(Xf[te]), dtype=np.float64)
        cols = np.asarray(getattr(est, "classes_", np.unique(codes[tr]))).astype(np.int64)
        probs[np.ix_(te, cols)] = p
    return probs


# -- confident learning -----------------------------------------------------------------------
def confident_thresholds(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Per-class threshold ``t_k``: the mean predicted probability of class ``k`` over the rows
    labelled ``k`` (2, i.e. never reached, for a class no row carries)."""
    labels = np.asarray(labels, dtype=np.int64)
    K = pred_probs.shape[1]
    counts = np.bincount(labels, minlength=K).astype(np.float64)
    sums = np.bincount(labels, weights=pred_probs[np.arange(len(labels)), labels], minlength=K)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 2.0)


def confident_joint(labels: np.ndarray, pred_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (uncalibrated) confident joint ``C[given, true]`` and, per row, its confident true-label guess
    (``-1`` for a row confident in no class). Vectorised."""
    labels = np.asarray(labels, dtype=np.int64)
    K = pred_probs.shape[1]
    above = pred_probs >= confident_thresholds(labels, pred_probs) - _FP
    n_above = above.sum(axis=1)
    guess = np.where(n_above > 1, pred_probs.argmax(axis=1), above.argmax(axis=1))
    guess = np.where(n_above > 0, guess, -1)
    ok = guess >= 0
    C = np.bincount(labels[ok] * K + guess[ok], minlength=K * K).reshape(K, K)
    np.fill_diagonal(C, np.maximum(C.diagonal(), 1))
    return C, guess


@dataclass(frozen=True, kw_only=True)
class LabelIssueReport:
    """Rows whose given label disagrees with a confident out-of-fold prediction.

    ``rows``: training-row indices, most suspicious first (lowest probability of the given label);
    ``self_confidence``: that probability per flagged row; ``joint``: the confident joint (counts,
    given label x confident true label), ``classes``: the label values it is indexed by.
    """

    rows: np.ndarray
    self_confidence: np.ndarray
    joint: np.ndarray
    classes: np.ndarray
    n_rows: int

    @property
    def rate(self) -> float:
        return len(self.rows) / self.n_rows if self.n_rows else 0.0


#: Label-issue filters, from most rows (recall) to fewest (precision): ``predicted_neq_given`` (default:
#: the out-of-fold prediction is not the given label; a missed poisoned row costs more than reviewing a
#: clean one), ``prune_by_noise_rate`` (per given class and other class, as many rows as the calibrated
#: confident joint estimates, largest margin first) and ``confident_learning`` (the rows counted off the
#: diagonal of the confident joint).
LABEL_METHODS = ("predicted_neq_given", "prune_by_noise_rate", "confident_learning")


def _round_preserving_sum(row: np.ndarray) -> np.ndarray:
    """Round to integers keeping the (rounded) total: the largest remainders are moved first."""
    ints = row.round()
    target = row.sum().round()
    while abs(ints.sum().round() - target) > _FP:
        diff = np.round(target - ints.sum().round())
        inc = -1 if diff < 0 else 1
        changes = min(int(abs(diff)), len(row))
        for i in np.argsort(row - ints)[::-inc][:changes]:
            ints[i] += inc
    return ints


def calibrated_joint(joint: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The confident joint rescaled so that row ``k`` sums to the count of label ``k`` (integers)."""
    K = len(joint)
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=K).astype(np.float64)
    cj = (joint.T / np.clip(joint.sum(axis=1), 1e-100, None) * counts).T
    cj = cj / np.clip(cj.sum(), 1e-100, None) * counts.sum()
    return np.vstack([_round_preserving_sum(r) for r in cj]).astype(np.int64)


def _noise_rate_mask(labels: np.ndarray, P: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """Per given class ``k`` and other class ``j``: the ``cal[k, j]`` rows labelled ``k`` with the largest
    margin ``p_j - p_k`` (at least one row kept per class, as in confident learning)."""
    cal = calibrated_joint(joint, labels).T.astype(np.float64)  # [true, given]
    diag = np.diagonal(cal).copy()
    new_diag = np.maximum(diag, 1)
    per_col = np.maximum(np.count_nonzero(cal, axis=0) - 1.0, 1.0)
    cal = cal - (new_diag - diag) / per_col
    cal[cal < 0] = 0
    np.fill_diagonal(cal, new_diag)
    prune = np.vstack([_round_preserving_sum(r) for r in cal]).astype(np.int64)
    mask = np.zeros(len(labels), dtype=bool)
    for k in range(P.shape[1]):
        idx = np.flatnonzero(labels == k)
        if len(idx) <= 1:
            continue
        Pk = P[idx]
        for j in np.flatnonzero(prune[:, k] > 0):
            if j == k:
                continue
            order = np.argsort(-(Pk[:, j] - Pk[:, k]))
            mask[idx[order[: prune[j, k]]]] = True
    return mask


def find_label_issues(labels: Any, pred_probs: Any, *, classes: Any = None,
                      method: str = "predicted_neq_given") -> LabelIssueReport:
    """Label issues by confident learning (Northcutt et al. 2021).

    ``labels`` are class indices matching the columns of ``pred_probs`` (out-of-fold probabilities,
    :func:`out_of_fold_probabilities`). ``method`` is one of :data:`LABEL_METHODS`. With either, a row
    whose given label is the arg-max of its probabilities (within 1e-6) is never an issue. Gives the
    same rows as ``cleanlab.filter.find_label_issues(labels, pred_probs, filter_by=method)``
    (``tests/poisoning/test_data.py`` checks both methods when cleanlab is installed).
    """
    if method not in LABEL_METHODS:
        raise DataError(f"unknown label-issue method {method!r}; choose from {', '.join(LABEL_METHODS)}")
    P = np.asarray(pred_probs, dtype=np.float64)
    labels = np.asarray(labels)
    if P.ndim != 2 or len(P) != len(labels):
        raise DataError(f"pred_probs must have shape (n_rows, n_classes); got {P.shape} for {len(labels)} labels")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= P.shape[1]:
        raise DataError(f"labels must be class indices 0..{P.shape[1] - 1}")
    C, guess = confident_joint(labels, P)
    if method == "confident_learning":
        issue = (guess >= 0) & (guess != labels)
    elif method == "predicted_neq_given":
        issue = np.ones(len(labels), dtype=bool)
    else:
        issue = _noise_rate_mask(labels, P, C)
    bumped = P.copy()
    bumped[np.arange(len(labels)), labels] += _FP
    issue &= bumped.argmax(axis=1) != labels
    rows = np.flatnonzero(issue)
    conf = P[rows, labels[rows]]
    order = np.argsort(conf, kind="stable")
    return LabelIssueReport(rows=rows[order], self_confidence=conf[order], joint=C,
                            classes=np.arange(P.shape[1]) if classes is None else np.asarray(classes),
                            n_rows=len(labels))


# -- duplicates and leakage -------------------------------------------------------------------
def _row_keys(flat: np.ndarray) -> np.ndarray:
    """One hashable key per row (its float64 bytes; -0.0 and 0.0 made equal)."""
    a = np.ascontiguousarray(flat + 0.0)
    return a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel()


@dataclass(frozen=True, kw_only=True)
class DuplicateReport:
    """Exact and near duplicates inside the training data and between test and training data.

    Groups and pairs hold row indices only. ``near_threshold``: the standardised Euclidean distance at
    or below which two rows count as near duplicates.
    """

    exact_groups: list[list[int]]
    conflicting_groups: list[list[int]]
    near_pairs: list[tuple[int, int]]
    leaked_exact: list[tuple[int, int]]
    leaked_near: list[tuple[int, int]]
    near_threshold: float
    n_train: int
    n_test: int

    @property
    def duplicate_rows(self) -> int:
        return sum(len(g) - 1 for g in self.exact_groups)

    @property
    def leak_rate(self) -> float:
        leaked = {t for t, _ in self.leaked_exact} | {t for t, _ in self.leaked_near}
        return len(leaked) / self.n_test if self.n_test else 0.0


def find_duplicates(X: Any, y: Any = None, *, X_test: Any = None, near: float = 0.05,
                    max_pairs: int = 1000) -> DuplicateReport:
    """Exact duplicates (row hashes), duplicates with conflicting labels, near duplicates, and test rows
    that repeat (exactly or nearly) a training row.

    Near duplicates: rows whose standardised distance is at most ``near`` times the median
    nearest-neighbour distance in the training data (scale free). Nearest neighbours come from chunked
    matrix products. At most ``max_pairs`` near pairs are listed (closest first).
    """
    A = flat_features(X)
    T = None if X_test is None else flat_features(X_test, "test data")
    if T is not None and T.shape[1] != A.shape[1]:
        raise DataError(f"the test data has {T.shape[1]} features but the training data {A.shape[1]}")
    keys = _row_keys(A)
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(counts)[:-1]
    groups = [g.tolist() for g in np.split(order, bounds) if len(g) > 1]
    conflicting: list[list[int]] = []
    if y is not None:
        yy = np.asarray(y)
        conflicting = [g for g in groups if len(set(yy[g].tolist())) > 1]
    S, *rest = standardise(A, *( [T] if T is not None else []))
    d, i = nearest_distances(S, k=1)
    d, i = d[:, 0], i[:, 0]
    positive = d[d > 0]
    scale = float(np.median(positive)) if len(positive) else 1.0
    thr = near * scale
    mask = (d > 0) & (d <= thr)
    near_idx = np.flatnonzero(mask)
    pairs = sorted({(min(a, b), max(a, b)) for a, b in zip(near_idx.tolist(), i[near_idx].tolist())},
                   key=lambda p: float(np.linalg.norm(S[p[0]] - S[p[1]])))[:max_pairs]
    leaked_exact: list[tuple[int, int]] = []
    leaked_near: list[tuple[int, int]] = []
    n_test = 0
    if T is not None:
        n_test = len(T)
        lookup = dict(zip(keys[first].tolist(), first.tolist()))
        tkeys = _row_keys(T)
        leaked_exact = [(t, lookup[k]) for t, k in enumerate(tkeys.tolist()) if k in lookup]
        td, ti = nearest_distances(rest[0], S, k=1)
        exact_t = {t for t, _ in leaked_exact}
        cand = np.flatnonzero(td[:, 0] <= thr)
        leaked_near = [(int(t), int(ti[t, 0])) for t in cand if int(t) not in exact_t][:max_pairs]
    return DuplicateReport(exact_groups=groups, conflicting_groups=conflicting, near_pairs=pairs,
                           leaked_exact=leaked_exact, leaked_near=leaked_near, near_threshold=thr,
                           n_train=len(A), n_test=n_test)


# -- outliers ---------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class OutlierReport:
    """Per-row outlier scores: the robust z-score of the distance to the ``k``-th nearest row with the
    same label (standardised features). ``rows``: indices with a score at or above ``z_threshold``,
    highest first."""

    scores: np.ndarray
    rows: np.ndarray
    z_threshold: float
    k: int


def find_outliers(X: Any, y: Any = None, *, k: int = 5, z_threshold: float = 4.0) -> OutlierReport:
    """Rows far from the other rows of their class (a rare trigger value, an injected point).

    Vectorised k-nearest-neighbour distances within each class (the whole data when ``y`` is None),
    scored by a robust z-score (median / MAD) per class.
    """
    S = standardise(flat_features(X))[0]
    codes = np.zeros(len(S), dtype=np.int64) if y is None else label_codes(y)[0]
    scores = np.zeros(len(S))
    for c in np.unique(codes):
        idx = np.flatnonzero(codes == c)
        if len(idx) < 3:
            continue
        d, _ = nearest_distances(S[idx], k=min(k, len(idx) - 1))
        scores[idx] = robust_z(d[:, -1])
    rows = np.flatnonzero(scores >= z_threshold)
    rows = rows[np.argsort(-scores[rows], kind="stable")]
    return OutlierReport(scores=scores, rows=rows, z_threshold=z_threshold, k=k)


# -- all together -----------------------------------------------------------------------------
@dataclass(kw_only=True)
class TrainingDataReport:
    """The three training-data checks. ``flagged_rows``: label issues and rows in duplicate groups with
    conflicting labels (the rows a removal step drops); outliers are reported, not dropped."""

    labels: LabelIssueReport
    duplicates: DuplicateReport
    outliers: OutlierReport
    notes: list[str] = field(default_factory=list)

    @property
    def flagged_rows(self) -> np.ndarray:
        conflict = [i for g in self.duplicates.conflicting_groups for i in g]
        return np.unique(np.concatenate([self.labels.rows, np.asarray(conflict, dtype=np.int64)])).astype(np.int64)


def audit_training_data(X: Any, y: Any, *, X_test: Any = None, pred_probs: Any = None, estimator: Any = None,
                        n_folds: int = 5, method: str = "predicted_neq_given", near: float = 0.05,
                        outlier_z: float = 4.0, seed: int = 0) -> TrainingDataReport:
    """Run the label, duplicate/leakage and outlier checks on training rows ``X, y``.

    ``pred_probs``: out-of-fold probabilities if you have them; otherwise they are computed with
    ``estimator`` (default :func:`default_estimator`) in ``n_folds`` folds.
    """
    codes, classes = label_codes(y)
    if pred_probs is None:
        pred_probs = out_of_fold_probabilities(X, codes, estimator=estimator, n_folds=n_folds, seed=seed)
    labels = find_label_issues(codes, pred_probs, classes=classes, method=method)
    dups = find_duplicates(X, codes, X_test=X_test, near=near)
    outl = find_outliers(X, codes, z_threshold=outlier_z)
    return TrainingDataReport(labels=labels, duplicates=dups, outliers=outl)
