"""Model backdoor checks: activation clustering, spectral signatures (white box) and STRIP (any model).

Activation clustering and spectral signatures read the penultimate-layer activations of the *training*
rows, grouped by their given label: a class that holds a poisoned sub-population (rows of other classes
carrying a trigger, relabelled to this class) splits into two clusters in that space. STRIP needs only
predictions: an input carrying a trigger keeps its (target) prediction when superimposed with clean
inputs, so its prediction entropy under superimposition is abnormally low.

References
----------
.. [1] B. Chen et al., "Detecting Backdoor Attacks on Deep Neural Networks by Activation Clustering",
   AAAI SafeAI workshop, 2019 (arXiv:1811.03728).
.. [2] B. Tran, J. Li, A. Madry, "Spectral Signatures in Backdoor Attacks", NeurIPS 2018.
.. [3] Y. Gao et al., "STRIP: A Defence Against Trojan Attacks on Deep Neural Networks", ACSAC 2019.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelshield.errors import DataError
from modelshield.poisoning._common import check_fraction, flat_features, label_codes, one_blas_thread_if_small

__all__ = [
    "ClassClusters",
    "ClusteringReport",
    "SpectralReport",
    "StripReport",
    "activation_clustering",
    "prediction_entropy",
    "spectral_signatures",
    "strip_entropy",
    "strip_mix",
    "strip_mode",
    "strip_test",
]


# -- helpers ----------------------------------------------------------------------------------
def _reduce(A: np.ndarray, dims: int, whiten: bool = False, also: np.ndarray | None = None,
            ) -> tuple[np.ndarray, np.ndarray | None]:
    """Centre and project onto the top ``dims`` principal components (thin SVD); with ``whiten``, scale
    each component to unit variance, so that 2-means splits along the most bimodal direction rather than
    the widest one. ``also`` (other rows) goes through the same map (second value)."""
    mu = A.mean(axis=0)
    C = A - mu
    dims = max(1, min(dims, C.shape[0] - 1, C.shape[1]))
    _, s, vt = np.linalg.svd(C, full_matrices=False)
    proj = vt[:dims].T
    scale = np.ones(dims)
    if whiten:
        scale = s[:dims] / np.sqrt(len(C))
        keep = scale > 1e-9 * max(float(scale[0]), 1e-300)
        proj, scale = proj[:, keep], scale[keep]
    other = None if also is None or len(also) == 0 else ((also - mu) @ proj) / scale
    return (C @ proj) / scale, other


def _two_means(Z: np.ndarray, seed: int, n_init: int = 4, iters: int = 50) -> np.ndarray:
    """Labels 0/1 of a 2-means clustering (Lloyd, k-means++ starts, best inertia of ``n_init``).

    The ``n_init`` runs advance together (one matrix product per Lloyd step for all of them; a run stops
    moving once its labels repeat), which gives the partitions of running them one after another."""
    rng = np.random.default_rng(seed)
    n, dim = Z.shape
    sq = np.einsum("ij,ij->i", Z, Z)
    C = np.empty((n_init, 2, dim))
    for r in range(n_init):  # k-means++ starts, drawn in the order of one run after another
        c0 = Z[rng.integers(n)]
        d0 = np.maximum(sq - 2 * Z @ c0 + c0 @ c0, 0)
        tot = d0.sum()
        C[r, 0], C[r, 1] = c0, Z[rng.choice(n, p=d0 / tot if tot > 0 else None)]
    lab = np.zeros((n_init, n), dtype=bool)
    dmin = np.zeros((n_init, n))
    live = np.arange(n_init)
    total = Z.sum(axis=0)
    for it in range(iters):
        Cl = C[live]
        cross = (Z @ Cl.reshape(-1, dim).T).reshape(n, len(live), 2).transpose(1, 0, 2)
        d = sq[None, :, None] - 2 * cross + np.einsum("rkd,rkd->rk", Cl, Cl)[:, None, :]
        new = d[:, :, 1] < d[:, :, 0]
        dmin[live] = np.minimum(d[:, :, 0], d[:, :, 1])
        moved = np.any(new != lab[live], axis=1) | (it == 0)
        lab[live] = new
        live = live[moved]
        if not len(live):
            break
        L = lab[live].astype(Z.dtype)
        n1 = L.sum(axis=1)[:, None]
        s1 = L @ Z
        C[live, 1] = np.where(n1 > 0, s1 / np.maximum(n1, 1), C[live, 1])  # an empty cluster keeps its centre
        C[live, 0] = np.where(n - n1 > 0, (total - s1) / np.maximum(n - n1, 1), C[live, 0])
    inertia = dmin.sum(axis=1)
    best, best_inertia = np.zeros(n, dtype=np.int64), np.inf
    for r in range(n_init):
        if inertia[r] < best_inertia and 0 < lab[r].sum() < n:
            best, best_inertia = lab[r].astype(np.int64), float(inertia[r])
    return best


def _silhouette(Z: np.ndarray, lab: np.ndarray, rng: np.random.Generator, max_rows: int = 1500) -> float:
    """Mean silhouette of a two-cluster labelling (on at most ``max_rows`` sampled rows, vectorised)."""
    if lab.min() == lab.max():
        return 0.0
    if len(Z) > max_rows:
        idx = rng.choice(len(Z), max_rows, replace=False)
        Z, lab = Z[idx], lab[idx]
    sq = np.einsum("ij,ij->i", Z, Z)
    D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * Z @ Z.T, 0))
    n1 = lab.sum()
    n0 = len(lab) - n1
    s1 = D[:, lab == 1].sum(axis=1)
    s0 = D[:, lab == 0].sum(axis=1)
    own_n = np.where(lab == 1, n1, n0)
    a = np.where(lab == 1, s1, s0) / np.maximum(own_n - 1, 1)
    b = np.where(lab == 1, s0 / max(n0, 1), s1 / max(n1, 1))
    s = np.where(own_n > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(np.mean(s))


# -- activation clustering --------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ClassClusters:
    """One class's 2-means split.

    ``smaller_share`` / ``silhouette``: the smaller cluster's share of the class and the split's
    silhouette (principal components, the paper's criteria); ``excess_share``: the share of the class's
    training rows beyond what the held-out class prior predicts (``1 - q / p``), with its two-proportion
    p-value ``excess_p``; ``suspect_rows``: training-row indices of the suspect cluster (the smaller
    one, or for the prior test the whitened split's cluster whose share matches the excess);
    ``reason``: why the class is poisoned (empty when clean). ``projection``: two reduced coordinates
    per row of the class (for plots)."""

    label: Any
    n_rows: int
    smaller_share: float
    silhouette: float
    excess_share: float
    excess_p: float
    poisoned: bool
    reason: str
    suspect_rows: np.ndarray
    projection: np.ndarray


@dataclass(kw_only=True)
class ClusteringReport:
    """Activation clustering over all classes; ``flagged_rows``: the suspect clusters of poisoned classes."""

    classes: list[ClassClusters]
    silhouette_threshold: float
    max_share: float
    dims: int

    @property
    def poisoned(self) -> bool:
        return any(c.poisoned for c in self.classes)

    @property
    def score(self) -> float:
        """The highest silhouette among classes whose smaller cluster is small enough to be a poison."""
        vals = [c.silhouette for c in self.classes if c.smaller_share <= self.max_share]
        return max(vals, default=0.0)

    @property
    def flagged_rows(self) -> np.ndarray:
        parts = [c.suspect_rows for c in self.classes if c.poisoned]
        return np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.empty(0, dtype=np.int64)


def _excess(n_k: int, n: int, m_k: int, m: int) -> tuple[float, float]:
    """Share of class rows beyond the held-out prior (``1 - q/p``) and the one-sided two-proportion
    z-test p-value that the training share ``p = n_k/n`` exceeds the held-out share ``q = m_k/m``."""
    p, q = n_k / n, m_k / m
    if p <= 0:
        return 0.0, 1.0
    pooled = (n_k + m_k) / (n + m)
    se = np.sqrt(max(pooled * (1 - pooled) * (1 / n + 1 / m), 1e-300))
    return float(1 - q / p), 0.5 * math.erfc((p - q) / se / math.sqrt(2))  # the normal tail


def activation_clustering(activations: Any, labels: Any, *, dims: int = 10, max_share: float = 0.35,
                          silhouette_threshold: float = 0.65, heldout_labels: Any = None,
                          heldout_activations: Any = None, prior_alpha: float = 0.01, min_excess: float = 0.05,
                          min_rows: int = 20, seed: int = 0) -> ClusteringReport:
    """Activation clustering (Chen et al.): split each class's penultimate activations in two with 2-means
    and call the class poisoned when the split isolates a sub-population.

    Two criteria, either suffices:

    * **split quality** (the paper's): on ``dims`` principal components, the smaller cluster holds at most
      ``max_share`` of the class and the silhouette is at least ``silhouette_threshold``;
    * **size calibrated on held-out priors** (with ``heldout_labels``): the class holds significantly more
      training rows than the held-out class prior predicts (one-sided two-proportion test, p below
      ``prior_alpha``, excess share at least ``min_excess``) and a 2-means split on the two whitened top
      principal components has a cluster whose share matches that excess (within ``max(0.1, 0.35 x
      excess)``). A dirty-label poison adds rows to its target class; a clean class keeps its prior. This
      assumes the held-out rows come from the distribution the clean training rows came from. With
      ``heldout_activations`` (the held-out rows' activations), the suspect cluster is the one whose
      centre lies farther from the held-out rows of the class (they are clean); else the one whose share
      is closer to the excess.

    Classes with fewer than ``min_rows`` rows are not judged.
    """
    A = flat_features(activations, "activations")
    codes, classes = label_codes(labels, "activations' labels")
    if len(codes) != len(A):
        raise DataError(f"{len(A)} activation rows but {len(codes)} labels")
    held = None if heldout_labels is None else np.asarray(heldout_labels)
    HA = None if heldout_activations is None or held is None else flat_features(heldout_activations,
                                                                                "held-out activations")
    if HA is not None and (len(HA) != len(held) or HA.shape[1] != A.shape[1]):
        raise DataError("held-out activations must have one row per held-out label and the training width")
    rng = np.random.default_rng(seed)
    out = []
    with one_blas_thread_if_small(A.size):  # small per-class matrices: one BLAS thread
        for k, lab_value in enumerate(classes):
            idx = np.flatnonzero(codes == k)
            excess, p_ex = (0.0, 1.0)
            if held is not None and len(held):
                excess, p_ex = _excess(len(idx), len(codes), int(np.sum(held == lab_value)), len(held))
            if len(idx) < min_rows:
                out.append(ClassClusters(label=lab_value, n_rows=len(idx), smaller_share=0.0, silhouette=0.0,
                                         excess_share=excess, excess_p=p_ex, poisoned=False, reason="",
                                         suspect_rows=np.empty(0, dtype=np.int64), projection=np.zeros((len(idx), 2))))
                continue
            Z = _reduce(A[idx], dims)[0]
            lab = _two_means(Z, seed=seed + k)
            small = 1 if lab.sum() <= len(lab) / 2 else 0
            share = float(np.mean(lab == small))
            sil = _silhouette(Z, lab, rng)
            proj = Z[:, :2] if Z.shape[1] >= 2 else np.hstack([Z, np.zeros((len(Z), 1))])
            reason, suspect = "", idx[lab == small]
            if share <= max_share and sil >= silhouette_threshold:
                reason = f"clean split: silhouette {sil:.2f}, smaller cluster {share:.0%}"
            elif p_ex < prior_alpha and excess >= min_excess:
                W, HW = _reduce(A[idx], 2, whiten=True, also=None if HA is None else HA[held == lab_value])
                wl = _two_means(W, seed=seed + k).astype(bool)
                if HW is not None and wl.any() and (~wl).any():
                    ref = HW.mean(axis=0)
                    far1 = np.linalg.norm(W[wl].mean(axis=0) - ref) >= np.linalg.norm(W[~wl].mean(axis=0) - ref)
                    c = wl if far1 else ~wl
                else:
                    c = wl if abs(wl.mean() - excess) <= abs((~wl).mean() - excess) else ~wl
                if abs(c.mean() - excess) <= max(0.1, 0.35 * excess):
                    reason = (f"{excess:.0%} more rows than the held-out prior (p={p_ex:.1g}) and a cluster of "
                              f"{c.mean():.0%}")
                    suspect = idx[c]
                    proj = W
            out.append(ClassClusters(label=lab_value, n_rows=len(idx), smaller_share=share, silhouette=sil,
                                     excess_share=excess, excess_p=p_ex, poisoned=bool(reason), reason=reason,
                                     suspect_rows=suspect, projection=proj))
    return ClusteringReport(classes=out, silhouette_threshold=silhouette_threshold, max_share=max_share, dims=dims)


# -- spectral signatures ----------------------------------------------------------------------
@dataclass(kw_only=True)
class SpectralReport:
    """Spectral signatures per class. ``scores``: every training row's outlier score (its squared
    projection on its class's top singular vector, over the class median; with held-out rows, measured
    from the held-out centre); ``class_stat``: per class, the verdict statistic (uncalibrated: mean score
    of the top ``fraction`` rows over the rest; calibrated: the share of training rows beyond the largest
    held-out scores); ``class_p``: the calibrated test's p-value per class; ``flagged_rows``: the rows
    flagged in poisoned classes."""

    scores: np.ndarray
    class_stat: dict[Any, float]
    poisoned_classes: list[Any]
    flagged_rows: np.ndarray
    fraction: float
    ratio_threshold: float
    calibrated: bool = False
    class_p: dict[Any, float] = field(default_factory=dict)

    @property
    def poisoned(self) -> bool:
        return bool(self.poisoned_classes)

    @property
    def score(self) -> float:
        return max(self.class_stat.values(), default=0.0)


def spectral_signatures(activations: Any, labels: Any, *, fraction: float = 0.1, ratio_threshold: float = 40.0,
                        heldout_activations: Any = None, heldout_labels: Any = None, fpr: float = 0.01,
                        min_excess: float = 0.02, alpha_level: float = 1e-3, min_rows: int = 20) -> SpectralReport:
    """Spectral signatures (Tran et al.): per class, the top right singular vector of the centred training
    activations; a row's score is its squared projection on it.

    Uncalibrated (no held-out rows): the top ``1.5 * fraction`` rows of classes whose top ``fraction``
    rows stand out (mean score ratio at least ``ratio_threshold``) are flagged; ``fraction`` (the poisoned
    share looked for) must be in (0, 0.5). This follows the paper and is blind when the poison is a large
    share of its class (then the signature spreads over both halves).

    Calibrated (``heldout_activations`` and ``heldout_labels``, clean rows): projections are measured from
    the held-out rows' centre, the threshold is the ``j``-th largest held-out score (``j = max(1,
    floor(fpr * m))``), and a class is poisoned when its training rows beyond it exceed the expected
    ``j / (m + 1)`` by ``min_excess`` with a beta-binomial p-value below ``alpha_level``; the rows beyond
    it are flagged.
    """
    fraction = check_fraction(fraction)
    A = flat_features(activations, "activations")
    codes, classes = label_codes(labels, "activations' labels")
    if len(codes) != len(A):
        raise DataError(f"{len(A)} activation rows but {len(codes)} labels")
    calibrated = heldout_activations is not None and heldout_labels is not None
    if calibrated:
        HA = flat_features(heldout_activations, "held-out activations")
        hy = np.asarray(heldout_labels)
        if len(HA) != len(hy) or HA.shape[1] != A.shape[1]:
            raise DataError("held-out activations must have one row per held-out label and the training width")
    scores = np.zeros(len(A))
    stat: dict[Any, float] = {}
    pvals: dict[Any, float] = {}
    poisoned: list[Any] = []
    flagged: list[np.ndarray] = []
    with one_blas_thread_if_small(A.size):  # small per-class matrices: one BLAS thread
        for k, lab_value in enumerate(classes):
            idx = np.flatnonzero(codes == k)
            if len(idx) < min_rows:
                continue
            key = lab_value.item() if isinstance(lab_value, np.generic) else lab_value
            C = A[idx] - A[idx].mean(axis=0)
            v = np.linalg.svd(C, full_matrices=False)[2][0]
            H = HA[hy == lab_value] if calibrated else None
            if H is not None and len(H) >= min_rows:
                from scipy.stats import betabinom  # lazy: scipy is slow to import; only this path needs it

                centre = H.mean(axis=0)
                s = ((A[idx] - centre) @ v) ** 2
                h = np.sort(((H - centre) @ v) ** 2)[::-1]
                m = len(h)
                j = max(1, int(np.floor(fpr * m)))
                above = s > h[j - 1]
                n_above = int(above.sum())
                p = float(betabinom.sf(n_above - 1, len(s), j, m - j + 1)) if n_above else 1.0
                share = n_above / len(s)
                med = float(np.median(h)) or 1.0
                scores[idx] = s / med
                stat[key], pvals[key] = share, p
                if p < alpha_level and share >= j / (m + 1) + min_excess:
                    poisoned.append(key)
                    flagged.append(idx[above])
                continue
            s = (C @ v) ** 2
            med = float(np.median(s))
            s = s / (med if med > 1e-12 else (float(np.mean(s)) or 1.0))
            scores[idx] = s
            order = np.argsort(-s, kind="stable")
            top = max(1, int(np.ceil(fraction * len(idx))))
            rest = s[order[top:]]
            ratio = float(np.mean(s[order[:top]]) / max(float(np.mean(rest)) if len(rest) else 1.0, 1e-12))
            stat[key] = ratio
            if ratio >= ratio_threshold:
                poisoned.append(key)
                flagged.append(idx[order[: int(np.ceil(1.5 * fraction * len(idx)))]])
    rows = np.sort(np.concatenate(flagged)).astype(np.int64) if flagged else np.empty(0, dtype=np.int64)
    return SpectralReport(scores=scores, class_stat=stat, poisoned_classes=poisoned, flagged_rows=rows,
                          fraction=fraction, ratio_threshold=ratio_threshold, calibrated=bool(pvals), class_p=pvals)


# -- STRIP ------------------------------------------------------------------------------------
ProbaFn = Callable[[np.ndarray], np.ndarray]


def strip_mode(X: np.ndarray, mode: str, *, wide: str = "blend") -> str:
    """``mode`` resolved: ``"auto"`` is ``wide`` for images and wide rows (64 features or more), else
    ``"swap"``; a :class:`DataError` for an unknown mode."""
    if mode not in ("auto", "add", "blend", "swap"):
        raise DataError(f"unknown STRIP mode {mode!r}; choose auto, add, blend or swap")
    if mode == "auto":
        return wide if X.ndim > 2 or X.reshape(len(X), -1).shape[1] >= 64 else "swap"
    return mode


def strip_mix(X: np.ndarray, pool: np.ndarray, *, n_overlays: int, mode: str, alpha: float,
              rng: np.random.Generator, bounds: tuple[float, float] | None = None) -> np.ndarray:
    """All ``n_overlays`` superimpositions of every row of ``X`` with random rows of ``pool`` at once:
    shape ``(n_overlays * len(X), *X.shape[1:])``, overlay round first (vectorised, no Python loop per
    row or round). ``mode`` must be resolved (``"add"``, ``"blend"`` or ``"swap"``, see
    :func:`strip_mode`); ``"add"`` (``x + o`` clipped to ``bounds``, default the pool's min and max) is
    the superimposition of Gao et al.'s code (two images added with weight 1, saturating)."""
    o = pool[rng.integers(0, len(pool), (int(n_overlays), len(X)))]  # (R, n, ...)
    if mode == "add":
        lo, hi = (float(pool.min()), float(pool.max())) if bounds is None else bounds
        mixed = np.clip(X[None] + o, lo, hi)
    elif mode == "blend":
        mixed = alpha * X[None] + (1 - alpha) * o
    else:
        mixed = np.where(rng.random(o.shape) < alpha, X[None], o)
    return mixed.reshape(-1, *X.shape[1:])


def prediction_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of probabilities (clipped at 1e-12)."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1.0)
    return -np.sum(q * np.log(q), axis=1)


def strip_entropy(predict_proba: ProbaFn, X: Any, overlay: Any, *, n_overlays: int = 16, mode: str = "auto",
                  alpha: float = 0.5, seed: int = 0) -> np.ndarray:
    """Mean prediction entropy (nats) of each row of ``X`` superimposed with ``n_overlays`` random rows of
    ``overlay`` (clean, held-out inputs).

    ``mode``: ``"blend"`` (``alpha * x + (1 - alpha) * o``), ``"add"`` (``x + o`` clipped to the
    overlay rows' range: the superimposition of Gao et al.'s code),
    ``"swap"`` (each feature taken from the overlay row with probability ``1 - alpha``: tabular data,
    where blending makes rows no real input looks like), or ``"auto"`` (blend for images, swap for
    rows of a table). One batched call of ``predict_proba`` per overlay round.
    """
    Xa = np.asarray(X, dtype=np.float64)
    pool = np.asarray(overlay, dtype=np.float64)
    if len(pool) == 0 or len(Xa) == 0:
        raise DataError("STRIP needs rows to test and held-out rows to superimpose")
    if pool.shape[1:] != Xa.shape[1:]:
        raise DataError(f"STRIP overlay rows have shape {pool.shape[1:]}, the tested rows {Xa.shape[1:]}")
    mode = strip_mode(Xa, mode)
    rng = np.random.default_rng(seed)
    total = np.zeros(len(Xa))
    for _ in range(int(n_overlays)):
        o = pool[rng.integers(0, len(pool), len(Xa))]
        if mode == "add":
            mixed = np.clip(Xa + o, float(pool.min()), float(pool.max()))
        elif mode == "blend":
            mixed = alpha * Xa + (1 - alpha) * o
        else:
            keep = rng.random(Xa.shape) < alpha
            mixed = np.where(keep, Xa, o)
        total += prediction_entropy(predict_proba(mixed))
    return total / int(n_overlays)


@dataclass(kw_only=True)
class StripReport:
    """STRIP: the entropy threshold set on held-out rows, the tested rows below it (``flagged_rows``,
    indices into the tested rows), their share against the share ``fpr`` expected of clean rows, and a
    one-sided beta-binomial p-value for the excess."""

    threshold: float
    fpr: float
    heldout_entropy: np.ndarray
    tested_entropy: np.ndarray
    flagged_rows: np.ndarray
    p_value: float
    min_excess: float
    alpha_level: float
    notes: list[str] = field(default_factory=list)

    @property
    def flagged_share(self) -> float:
        return len(self.flagged_rows) / len(self.tested_entropy) if len(self.tested_entropy) else 0.0

    @property
    def poisoned(self) -> bool:
        return bool(self.p_value < self.alpha_level and self.flagged_share >= self.fpr + self.min_excess)


def strip_test(predict_proba: ProbaFn, X_test: Any, X_heldout: Any, *, fpr: float = 0.01, n_overlays: int = 16,
               mode: str = "auto", alpha: float = 0.5, min_excess: float = 0.02, alpha_level: float = 1e-3,
               seed: int = 0) -> StripReport:
    """STRIP on ``X_test`` (for the audit: the training rows, which carry any trigger that was planted)
    calibrated on clean held-out rows ``X_heldout``.

    Half of the held-out rows set the entropy threshold (the ``j``-th smallest of their ``m`` entropies,
    ``j = max(1, floor(fpr * m))``), the other half are the superimposition pool, so the threshold is not
    measured on the rows it overlays. The model is called poisoned when the share of tested rows below
    the threshold exceeds the expected ``j / (m + 1)`` by at least ``min_excess`` with a beta-binomial
    p-value (which includes the threshold's own sampling noise) below ``alpha_level``.
    """
    if not (0 < fpr < 0.5):
        raise DataError(f"STRIP fpr must be above 0 and below 0.5, got {fpr}")
    H = np.asarray(X_heldout, dtype=np.float64)
    if len(H) < 20:
        raise DataError(f"STRIP needs at least 20 held-out rows to set its threshold, got {len(H)}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(H))
    calib, pool = H[perm[: len(H) // 2]], H[perm[len(H) // 2 :]]
    h_ent = strip_entropy(predict_proba, calib, pool, n_overlays=n_overlays, mode=mode, alpha=alpha, seed=seed)
    m = len(h_ent)
    j = max(1, int(np.floor(fpr * m)))
    thr = float(np.sort(h_ent)[j - 1])
    t_ent = strip_entropy(predict_proba, X_test, pool, n_overlays=n_overlays, mode=mode, alpha=alpha, seed=seed + 1)
    flagged = np.flatnonzero(t_ent < thr)
    # under "the tested rows are clean", the chance of a row falling below the j-th smallest of m held-out
    # entropies is Beta(j, m - j + 1): the count is beta-binomial (the threshold's own noise included)
    from scipy.stats import betabinom

    p = float(betabinom.sf(len(flagged) - 1, len(t_ent), j, m - j + 1)) if len(flagged) else 1.0
    notes = []
    if j / m > 1.5 * fpr:
        notes.append(f"{m} held-out rows cannot resolve a {fpr:.1%} threshold: it sits at {j / m:.1%}")
    return StripReport(threshold=thr, fpr=j / (m + 1), heldout_entropy=h_ent, tested_entropy=t_ent,
                       flagged_rows=flagged,
                       p_value=p, min_excess=min_excess, alpha_level=alpha_level, notes=notes)
