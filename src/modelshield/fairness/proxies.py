"""Proxy detection: which features carry information about a sensitive attribute.

Removing a protected attribute from the inputs does not stop a model from using it when other
features encode it (``relationship = Husband`` encodes sex in UCI Adult). For every (attribute,
feature) pair we measure

* **mutual information** ``I(feature; attribute)`` in nats, on the feature discretised into at most
  ``n_bins`` quantile bins (categorical features keep their codes), and its normalised form
  ``I / H(attribute)`` in ``[0, 1]`` (1: the feature determines the attribute);
* **single-feature AUC**: how well the feature alone separates the attribute's groups
  (two-fold cross-fitted per-bin rates; multi-group attributes: largest group vs the rest);

and, per attribute, the cross-validated AUC of a small classifier (logistic regression on the
one-hot binned features) that predicts the attribute from *all* features except direct copies of it.

References
----------
Feldman, M. et al. (2015). Certifying and Removing Disparate Impact. KDD.
Datta, A. et al. (2017). Use Privacy in Data-Driven Systems: Theory and Experiments with Machine
  Learnt Programs (proxy use). CCS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from modelshield.fairness.metrics import _factorize

__all__ = ["ProxyReport", "ProxyScore", "find_proxies", "mutual_information"]


@dataclass(frozen=True, kw_only=True)
class ProxyScore:
    """How much one feature reveals about one sensitive attribute."""

    attribute: str
    feature: str
    mutual_information: float
    normalized_mi: float
    auc: float
    direct: bool  # the feature *is* the attribute (same name, or a one-to-one recoding)

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ProxyReport:
    """All scores (strongest first per attribute) and each attribute's all-features AUC."""

    scores: list[ProxyScore]
    combined_auc: dict[str, float]
    rows_used: int

    def strongest(self, attribute: str, k: int = 3) -> list[ProxyScore]:
        return [s for s in self.scores if s.attribute == attribute and not s.direct][:k]


def _discretize(col: np.ndarray, categorical: bool, n_bins: int) -> np.ndarray:
    """Integer codes: categories as they are, numbers in quantile bins."""
    finite = np.isfinite(col)
    u = np.unique(col[finite])
    if categorical or len(u) <= n_bins:
        codes = np.searchsorted(u, col)
    else:
        edges = np.unique(np.quantile(col[finite], np.linspace(0, 1, n_bins + 1)[1:-1]))
        codes = np.searchsorted(edges, col, side="right")
    codes = np.where(finite, codes, codes.max(initial=0) + 1)  # NaN: its own bin
    return codes.astype(np.int64)


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in mutual information (nats) of two integer-coded arrays, from one bincount."""
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    joint = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(np.float64)
    joint /= joint.sum()
    pa, pb = joint.sum(axis=1, keepdims=True), joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])))


def _entropy(codes: np.ndarray) -> float:
    p = np.bincount(codes) / len(codes)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _binned_auc(feature_codes: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> float:
    """Two-fold cross-fitted AUC of the per-bin target rate (smoothed) as a score."""
    from sklearn.metrics import roc_auc_score  # lazy: scikit-learn is slow to import; only this path needs it

    n = len(target)
    fold = rng.permutation(n) % 2
    k = int(feature_codes.max()) + 1
    prior = target.mean()
    score = np.empty(n)
    for f in (0, 1):
        fit = fold != f
        pos = np.bincount(feature_codes[fit], weights=target[fit], minlength=k)
        cnt = np.bincount(feature_codes[fit], minlength=k)
        rate = (pos + prior) / (cnt + 1.0)  # one pseudo-row at the prior
        score[fold == f] = rate[feature_codes[fold == f]]
    if target.min() == target.max():
        return float("nan")
    return float(roc_auc_score(target, score))


def find_proxies(
    X: np.ndarray,
    sensitive: Mapping[str, np.ndarray],
    *,
    feature_names: Sequence[str] | None = None,
    feature_types: Sequence[str] | None = None,
    max_rows: int = 5000,
    n_bins: int = 16,
    combined: bool = True,
    seed: int = 0,
) -> ProxyReport:
    """Score every feature as a proxy of every sensitive attribute (see the module docstring).

    Parameters
    ----------
    X : numeric features ``(n, d)``.
    sensitive : ``name -> values`` (``n`` each).
    feature_names, feature_types : as in :class:`~modelshield.data.dataset.Dataset`.
    max_rows : a random subsample of at most this many rows is used.
    n_bins : quantile bins for continuous features.
    combined : also fit the all-features classifier (the slowest part).
    seed : random seed (subsample, folds, classifier).
    """
    X = np.asarray(X, dtype=np.float64)
    X = X.reshape(len(X), -1)
    n, d = X.shape
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(d)]
    types = list(feature_types) if feature_types is not None else ["continuous"] * d
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, size=max_rows, replace=False)) if n > max_rows else np.arange(n)
    Xs = X[idx]
    codes = [_discretize(Xs[:, j], types[j] in ("categorical", "binary"), n_bins) for j in range(d)]
    scores: list[ProxyScore] = []
    combined_auc: dict[str, float] = {}
    for attr, values in sensitive.items():
        a_codes, _ = _factorize(np.asarray(values)[idx])
        h = _entropy(a_codes)
        counts = np.bincount(a_codes)
        target = (a_codes == (1 if len(counts) == 2 else int(np.argmax(counts)))).astype(np.float64)
        per_attr: list[ProxyScore] = []
        for j in range(d):
            mi = mutual_information(codes[j], a_codes)
            nmi = mi / h if h > 0 else 0.0
            auc = _binned_auc(codes[j], target, rng)
            direct = names[j] == attr or nmi >= 0.999
            per_attr.append(ProxyScore(attribute=attr, feature=names[j], mutual_information=mi,
                                       normalized_mi=float(min(nmi, 1.0)), auc=auc, direct=direct))
        per_attr.sort(key=lambda s: (-s.normalized_mi, s.feature))
        scores.extend(per_attr)
        if combined and h > 0:
            keep = [j for j, s in enumerate(names) if not any(p.direct and p.feature == s for p in per_attr)]
            if keep:
                combined_auc[attr] = _combined_auc([codes[j] for j in keep], target, seed)
    return ProxyReport(scores=scores, combined_auc=combined_auc, rows_used=len(idx))


def _combined_auc(codes: list[np.ndarray], target: np.ndarray, seed: int) -> float:
    """Two-fold cross-validated AUC of a logistic regression on the one-hot binned features.

    Additive in the bins, so non-linear per feature; single-threaded and fast (milliseconds on a
    few thousand rows), unlike tree ensembles under a busy OpenMP runtime.
    """
    from scipy import sparse  # lazy: scipy is slow to import; only this computation needs it
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    if min(int(target.sum()), int(len(target) - target.sum())) < 4:
        return float("nan")
    n = len(target)
    offsets = np.cumsum([0] + [int(c.max()) + 1 for c in codes])
    cols = np.concatenate([c + offsets[j] for j, c in enumerate(codes)])
    rows = np.tile(np.arange(n), len(codes))
    onehot = sparse.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(n, int(offsets[-1])))
    clf = LogisticRegression(C=1.0, max_iter=300)
    cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    proba = cross_val_predict(clf, onehot, target.astype(int), cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(target, proba))
