"""Membership-inference attacks: loss threshold, LiRA (online / offline) and RMIA.

Given a model, its training rows (*members*) and held-out rows (*non-members*), each attack scores
every row; a high score means "was in the training set". Leakage is measured the way the research
community does: ROC AUC and, above all, the true-positive rate at a low false-positive rate
(0.1 % and 1 %), because an attack that confidently identifies a few people is a privacy failure even
when its average accuracy is near chance.

Attacks
-------
``loss``
    Yeom et al. 2018: the lower the model's loss on a row, the more likely it is a member. No
    shadow models.
``lira_offline`` / ``lira_online``
    Carlini et al. 2022, the likelihood-ratio attack. Shadow models are trained on random halves of
    the pooled rows (a paired design: each row is IN exactly half of the shadows). For each row the
    logit-scaled confidence ``log(p/(1-p))`` of its label is modelled as a Gaussian over the shadows
    that did not (offline) or did and did not (online) train on it; the score is the likelihood ratio.
    With fewer than 64 shadows the variance is shared across rows (as the paper recommends).
``rmia``
    Zarifzadeh et al. 2024, the relative membership-inference attack. The likelihood ratio
    ``p(x|θ) / p(x)`` of the target model against the reference (shadow) models, compared pairwise
    with population rows ``z``: ``score(x) = Pr_z[LR(x)/LR(z) >= gamma]``. Offline (only reference
    models that did not train on ``x``) uses the paper's linear correction with ``a``.

Shadow models come from ``model.clone_unfitted()`` (``sklearn.base.clone`` for scikit-learn; a
re-initialised copy trained with a :class:`TrainingRecipe` for PyTorch), or from a user-supplied
``trainer(X, y, seed) -> predict_proba``. They train in parallel (threads) within a time budget.

References
----------
.. [1] S. Yeom, I. Giacomelli, M. Fredrikson, S. Jha, "Privacy Risk in Machine Learning: Analyzing
   the Connection to Overfitting", CSF 2018.
.. [2] N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis, F. Tramèr, "Membership Inference Attacks
   From First Principles", IEEE S&P 2022. https://arxiv.org/abs/2112.03570
.. [3] S. Zarifzadeh, P. Liu, P. W. Koh, R. Shokri, "Low-Cost High-Power Membership Inference
   Attacks", ICML 2024. https://arxiv.org/abs/2312.03262

Examples
--------
>>> report = membership_inference(model, (X_train, y_train), (X_test, y_test), n_shadows=8)  # doctest: +SKIP
>>> report.best.tpr_at_1pct_fpr                                                               # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from modelshield.data.dataset import Dataset
from modelshield.errors import DataError
from modelshield.models.base import BaseModel, Capability

__all__ = [
    "ATTACKS",
    "FPR_LEVELS",
    "AttackResult",
    "BootstrapCI",
    "Interval",
    "bootstrap_ci",
    "fpr_resolvable",
    "nonmembers_needed",
    "nonmembers_to_bound",
    "rebuild_torchscript_mlp",
    "MembershipReport",
    "TrainingRecipe",
    "membership_inference",
    "roc_metrics",
]

ATTACKS = ("loss", "lira_offline", "lira_online", "rmia")
SHADOW_ATTACKS = frozenset({"lira_offline", "lira_online", "rmia"})

#: Fewest rows per side for any attack, and fewest pooled rows to train shadow models on.
MIN_ROWS = 10
MIN_SHADOW_POOL = 40

_EPS = 1e-12
_NORMAL = NormalDist()
_INIT_LOCK = threading.Lock()  # torch's global RNG seeds shadow initialisation
#: Probability floor for models that only give probabilities (trees saturate at exactly 0 / 1):
#: keeps ``log(p / (1 - p))`` within about +-9 so a few saturated rows do not dominate the Gaussians.
_PROB_EPS = 1e-4

#: ``trainer(X, y, seed) -> predict_proba`` where ``predict_proba(X) -> (n, n_classes)`` in the
#: target model's class order.
ShadowTrainer = Callable[[np.ndarray, np.ndarray, int], Callable[[np.ndarray], np.ndarray]]
ProgressFn = Callable[[float, str], None]


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class AttackResult:
    """Scores and ROC metrics of one attack. ``scores`` holds members first, then non-members."""

    name: str
    scores: np.ndarray
    labels: np.ndarray
    auc: float
    tpr_at_0_1pct_fpr: float
    tpr_at_1pct_fpr: float
    fpr: np.ndarray
    tpr: np.ndarray

    @property
    def advantage(self) -> float:
        """Max over thresholds of TPR - FPR (the membership advantage of Yeom et al.)."""
        return float(np.max(self.tpr - self.fpr))

    @property
    def n_nonmembers(self) -> int:
        return int(np.sum(self.labels == 0))

    @property
    def fpr_resolution(self) -> float:
        """The smallest non-zero FPR the non-members can measure: ``1 / n_nonmembers``."""
        return 1.0 / max(self.n_nonmembers, 1)

    def resolvable(self, level: float) -> bool:
        """Whether the TPR at FPR ``level`` is resolved (at least ``1 / level`` non-members); below
        that, ``tpr_at_...`` holds the TPR at zero false positives, not a TPR at ``level``."""
        return fpr_resolvable(level, self.n_nonmembers)

    def metrics(self) -> dict[str, float | None]:
        """AUC, advantage and TPR at each FPR level; ``None`` for an FPR the sample does not resolve."""
        return {"auc": self.auc,
                "tpr_at_0_1pct_fpr": self.tpr_at_0_1pct_fpr if self.resolvable(0.001) else None,
                "tpr_at_1pct_fpr": self.tpr_at_1pct_fpr if self.resolvable(0.01) else None,
                "advantage": self.advantage}


def _tpr_of(res: AttackResult, level: float) -> float:
    return res.tpr_at_1pct_fpr if level == 0.01 else res.tpr_at_0_1pct_fpr


def _tpr_at(fpr: np.ndarray, tpr: np.ndarray, level: float) -> float:
    ok = fpr <= level + 1e-15
    return float(tpr[ok].max()) if ok.any() else 0.0


def roc_metrics(scores: np.ndarray, labels: np.ndarray, name: str = "attack") -> AttackResult:
    """ROC AUC and TPR at 0.1 % / 1 % FPR of ``scores`` (higher = member) against ``labels`` (1 =
    member). TPR at an FPR below ``1 / n_non_members`` is the TPR at zero false positives."""
    # lazy: scikit-learn is slow to import; only this path needs it
    from sklearn.metrics import roc_auc_score, roc_curve

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    scores = np.where(np.isfinite(scores), scores, np.where(scores > 0, 1e300, -1e300))
    fpr, tpr, _ = roc_curve(labels, scores)
    return AttackResult(
        name=name, scores=scores, labels=labels, auc=float(roc_auc_score(labels, scores)),
        tpr_at_0_1pct_fpr=_tpr_at(fpr, tpr, 0.001), tpr_at_1pct_fpr=_tpr_at(fpr, tpr, 0.01),
        fpr=fpr, tpr=tpr,
    )


# --------------------------------------------------------------------------------------------
# statistical power: FPR resolution and the bootstrap over members, non-members and attack choice
# --------------------------------------------------------------------------------------------
#: The FPR targets reported (and graded where the sample resolves them), with their metric names.
FPR_LEVELS: tuple[float, ...] = (0.01, 0.001)
BOOTSTRAP_METHODS = ("exact", "bayesian", "multinomial")
LEVEL_KEYS: dict[float, str] = {0.01: "tpr_at_1pct_fpr", 0.001: "tpr_at_0_1pct_fpr"}
LEVEL_LABELS: dict[float, str] = {0.01: "1%", 0.001: "0.1%"}


def allowed_false_positives(level: float, n_nonmembers: int) -> int:
    """How many non-members may score above the threshold at FPR ``level``: ``floor(level * n)``."""
    return math.floor(level * n_nonmembers + 1e-9)


def fpr_resolvable(level: float, n_nonmembers: int) -> bool:
    """Whether ``n_nonmembers`` resolve an FPR of ``level``: the smallest non-zero FPR the sample can
    measure is ``1 / n_nonmembers``, so a TPR at a lower FPR is only the TPR at zero false positives."""
    return n_nonmembers > 0 and allowed_false_positives(level, n_nonmembers) >= 1


def nonmembers_needed(level: float) -> int:
    """The fewest non-members that resolve an FPR of ``level``."""
    return math.ceil(1.0 / level - 1e-9)


def nonmembers_to_bound(level: float, confidence: float = 0.95) -> int:
    """The fewest non-members for which a lower confidence bound on the TPR at FPR ``level`` can exist.

    With ``n`` non-members, all of them score below the true ``1 - level`` quantile of the
    non-member scores with probability ``(1 - level) ** n``; then even the strictest threshold the
    sample offers lets through more than ``level`` of the population, and no bound drawn from the
    sample can hold. A one-sided bound at ``1 - delta`` (``delta = (1 - confidence) / 2``) needs
    ``(1 - level) ** n <= delta``: 368 non-members at 1 % FPR and 3,688 at 0.1 % for 95 % intervals."""
    delta = (1.0 - confidence) / 2
    return math.ceil(math.log(delta) / math.log1p(-level) - 1e-9)


@dataclass(frozen=True, kw_only=True)
class Interval:
    """A point estimate with a two-sided confidence interval; ``attack`` gave the estimate and
    ``lower_attack`` the lower bound (they differ when another attack's bound is higher)."""

    estimate: float
    lower: float
    upper: float
    attack: str = ""
    lower_attack: str = ""


@dataclass(frozen=True, kw_only=True)
class BootstrapCI:
    """Confidence intervals of the strongest attack's metrics that include the choice among attacks.

    ``tpr[level]`` is ``None`` for an FPR the non-members do not resolve (``resolvable[level]`` is
    ``False``: fewer than ``1 / level`` non-members). ``gradable[level]`` is ``False`` when there
    are too few non-members for any lower bound at that FPR (:func:`nonmembers_to_bound`); such a
    TPR is shown with its interval but never graded. ``selected`` is the share of replicates in
    which each attack was the strongest."""

    n_boot: int
    confidence: float
    method: str
    n_members: int
    n_nonmembers: int
    fpr_resolution: float
    resolvable: dict[float, bool]
    gradable: dict[float, bool]
    tpr: dict[float, Interval | None]
    auc: Interval
    best: str
    selected: dict[str, float]
    seconds: float


def _clean_scores(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    return np.where(np.isfinite(scores), scores, np.where(scores > 0, 1e300, -1e300))


class _AttackIndex:
    """One attack's scores, sorted once: each replicate then needs only row weights (no re-sorting)."""

    def __init__(self, s1: np.ndarray, s0: np.ndarray) -> None:
        self.order0 = np.argsort(s0, kind="stable")
        sorted0 = s0[self.order0]
        # per member: how many non-members score strictly below / at most its score
        self.lo = np.searchsorted(sorted0, s1, side="left")
        self.hi = np.searchsorted(sorted0, s1, side="right")
        self.ties = bool(np.any(self.hi != self.lo))
        self.order1 = np.argsort(self.lo, kind="stable")
        self.lo_sorted = self.lo[self.order1]

    def stats(self, w1: np.ndarray, w0: np.ndarray, levels: Sequence[float], extra: np.ndarray | None = None
              ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """AUC and TPR at each FPR level for each replicate. ``w1`` / ``w0`` hold the replicates'
        weights of each member / non-member (rows: replicates).

        TPR at FPR ``level``: the weighted share of members scoring strictly above the lowest
        threshold whose share of non-members above it is at most ``level``. Without ``extra`` that
        share is the weighted share of non-members scoring above it (with unit weights: at most
        ``floor(level * n0)`` false positives, as :func:`roc_metrics`). With ``extra`` (one more
        exponential weight per replicate, and ``w0`` exponential) it is the population FPR of the
        threshold drawn from its exact law: the FPR of "above the j-th highest non-member" is the
        sum of the weights of the j highest non-members over the sum of all and ``extra``, which is
        Beta(j, n0 - j + 1), the law of that order statistic's FPR, for each attack, while rows
        keep their weight across attacks. A replicate where even the highest non-member lets
        through more than ``level`` has no threshold in the sample and counts TPR 0.

        Returns ``(auc, tpr, tpr_above)``: ``tpr_above`` is the TPR at the next lower threshold (FPR
        just above ``level``), the upper side for the upper bound; with ``extra`` only (else equal)."""
        reps, n0 = w0.shape
        n1 = w1.shape[1]
        cum0 = np.zeros((reps, n0 + 1))
        np.cumsum(np.take(w0, self.order0, axis=1), axis=1, out=cum0[:, 1:])
        tot0 = cum0[:, n0]
        # Mann-Whitney with ties counted half: AUC = sum_i w1_i (below_i + tied_i / 2) / (W1 W0)
        twice = np.take(cum0, self.lo, axis=1)  # 2 * below + tied
        if self.ties:
            twice += np.take(cum0, self.hi, axis=1)
        else:
            twice *= 2.0
        cum1 = np.zeros((reps, n1 + 1))
        np.cumsum(np.take(w1, self.order1, axis=1), axis=1, out=cum1[:, 1:])
        tot1 = cum1[:, n1]
        auc = np.einsum("ij,ij->i", w1, twice) / (2.0 * tot1 * tot0)
        rows = np.arange(reps)
        # every row of cum0 is sorted and lies in [0, tot0]: offset the rows to search them at once
        stride = float(np.max(tot0)) + 1.0
        flat = (cum0 + (rows * stride)[:, None]).ravel()
        tprs, tprs_above = [], []
        for level in levels:
            # p: how many non-members (from the bottom) score at or below the threshold; a member is
            # flagged when it scores above all p of them (lo >= p)
            if extra is None:
                need = tot0 * (1.0 - level * (1 + 1e-9)) - 1e-9 * n0
                p = np.searchsorted(flat, rows * stride + need, side="left") - rows * (n0 + 1)
            else:  # FPR(above the p-th lowest) = (tot0 - cum0[p - 1]) / (tot0 + extra) <= level
                need = tot0 - level * (tot0 + extra)
                p = np.searchsorted(flat, rows * stride + need, side="left") - rows * (n0 + 1) + 1
            pos = np.searchsorted(self.lo_sorted, np.minimum(p, n0), side="left")  # members with lo < p
            tpr = (tot1 - cum1[rows, pos]) / tot1
            tprs.append(np.where(p > n0, 0.0, tpr))
            if extra is None:
                tprs_above.append(tprs[-1])
            else:
                pos = np.searchsorted(self.lo_sorted, p - 1, side="left")
                tprs_above.append((tot1 - cum1[rows, pos]) / tot1)
        return auc, tprs, tprs_above


def _weights(rng: np.random.Generator, reps: int, n: int, method: str) -> np.ndarray:
    """``reps`` rows of resampling weights of ``n`` rows: multinomial
    counts (the ordinary bootstrap) or Dirichlet(1, ..., 1) weights (the Bayesian bootstrap, Rubin
    1981)."""
    if method == "multinomial":
        idx = rng.integers(0, n, size=(reps, n)) + (np.arange(reps) * n)[:, None]
        return np.bincount(idx.ravel(), minlength=reps * n).reshape(reps, n).astype(np.float64)
    return rng.standard_exponential(size=(reps, n))  # normalised by the callers (ratios only)


def _select(keys: Sequence[np.ndarray]) -> np.ndarray:
    """Index of the strongest attack per column: highest first key, then the next... ties go to the
    first attack (as :attr:`MembershipReport.best`). Arrays are (attacks, replicates)."""
    cand = np.ones(keys[0].shape, dtype=bool)
    for key in keys:
        v = np.where(cand, key, -np.inf)
        cand &= v >= v.max(axis=0, keepdims=True) - 1e-12
    return np.argmax(cand, axis=0)


def _simultaneous(point: np.ndarray, reps: np.ndarray, delta: float, reps_above: np.ndarray | None = None
                  ) -> tuple[float, float, int]:
    """Lower and upper bounds for ``max_a theta_a`` from per-attack replicates ``reps`` (attacks x
    replicates): percentile bounds ``L_a``, ``U_a`` at one level ``g`` chosen so that at most a share
    ``delta`` of replicates fall below some ``L_a`` (above some ``U_a``): the bounds hold for all
    attacks at once (min-P calibration over the same replicates, between Bonferroni ``delta / A``
    and ``delta``), so the best attack's bound is not inflated by choosing it after the fact.
    ``reps_above`` (default ``reps``) gives the upper bounds. Returns ``(lower, upper, index of the
    attack giving the lower bound)``."""
    n_att, n_rep = reps.shape
    srt = np.sort(reps, axis=1)
    up = reps if reps_above is None else reps_above
    srt_up = srt if reps_above is None else np.sort(up, axis=1)

    def q(g: float, table: np.ndarray = srt) -> np.ndarray:  # inverted-cdf quantile of every attack
        return table[:, min(n_rep - 1, max(0, math.ceil(g * n_rep) - 1))]

    grid = np.linspace(delta / n_att, delta, 40)[::-1] if n_att > 1 else np.array([delta])
    g_lo = grid[-1]
    for g in grid:
        if np.mean((reps < q(g)[:, None] - 1e-12).any(axis=0)) <= delta:
            g_lo = g
            break
    g_hi = grid[-1]
    for g in grid:
        if np.mean((up > q(1 - g, srt_up)[:, None] + 1e-12).any(axis=0)) <= delta:
            g_hi = g
            break
    lo_a = np.minimum(q(g_lo), point)
    hi_a = np.maximum(q(1 - g_hi, srt_up), point)
    return float(lo_a.max()), float(hi_a.max()), int(np.argmax(lo_a))


def bootstrap_ci(
    scores: dict[str, np.ndarray],
    labels: np.ndarray,
    *,
    levels: Sequence[float] = FPR_LEVELS,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "exact",
    max_cells: int = 500_000,
) -> BootstrapCI:
    """Bootstrap confidence intervals for the strongest attack's TPR at each FPR level and its AUC.

    Each replicate reweights the members and the non-members (separately; the same weights for every
    attack, since all attacks score the same rows) and recomputes every attack's TPR at each
    resolvable FPR and its AUC, so the intervals include the noise in the members, the noise in the
    non-member threshold, and the choice of the best of several attacks: the bounds are calibrated
    to hold for every attack at once (see :func:`_simultaneous`), and the attack each replicate would
    pick is recorded in ``selected``.

    ``method``: ``"exact"`` (default): Dirichlet (Bayesian-bootstrap) weights for the members and for
    the AUC, and for the non-member threshold the exact, distribution-free law of the population FPR
    of each order statistic (uniform spacings), so that a threshold between two non-members and the
    chance that every non-member lies below the true threshold are both accounted for;
    ``"bayesian"``: Dirichlet weights throughout; ``"multinomial"``: the ordinary bootstrap. The two
    others under-cover at low FPR (the ordinary bootstrap cannot place a threshold between two
    non-members); they are kept for comparison.

    Scores are sorted once; replicates are processed in chunks of at most ``max_cells`` (replicates
    x rows) cells: 1,000 replicates of a few thousand rows and four attacks take well under a second.

    Assumptions: members and non-members are independent draws from their populations; the scores
    (shadow models included) are held fixed, so the randomness of shadow training is not included.
    """
    t0 = time.perf_counter()
    if not scores:
        raise DataError("the bootstrap needs at least one attack's scores")
    labels = np.asarray(labels).astype(np.int64)
    is_in = labels == 1
    n1, n0 = int(is_in.sum()), int((~is_in).sum())
    if n1 == 0 or n0 == 0:
        raise DataError("the bootstrap needs both members and non-members")
    if n_boot < 100:
        raise DataError(f"n_boot must be at least 100, got {n_boot}")
    if method not in BOOTSTRAP_METHODS:
        raise DataError(f"unknown bootstrap method {method!r}; expected one of {', '.join(BOOTSTRAP_METHODS)}")
    if not 0.5 <= confidence < 1:
        raise DataError(f"confidence must be in [0.5, 1), got {confidence}")
    names = list(scores)
    index = []
    for a in names:
        s = _clean_scores(scores[a])
        if len(s) != len(labels):
            raise DataError(f"attack {a!r}: {len(s)} scores for {len(labels)} labels")
        index.append(_AttackIndex(s[is_in], s[~is_in]))
    levels = sorted(set(levels), reverse=True)
    delta = (1.0 - confidence) / 2
    resolvable = {lv: fpr_resolvable(lv, n0) for lv in levels}
    gradable = {lv: n0 >= nonmembers_to_bound(lv, confidence) for lv in levels}
    used = [lv for lv in levels if resolvable[lv]]

    def run(w1: np.ndarray, w0: np.ndarray, extra: np.ndarray | None = None
            ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        per = [ix.stats(w1, w0, used, extra) for ix in index]
        return (np.stack([p[0] for p in per]), [np.stack([p[1][i] for p in per]) for i in range(len(used))],
                [np.stack([p[2][i] for p in per]) for i in range(len(used))])

    p_auc, p_tprs, _ = run(np.ones((1, n1)), np.ones((1, n0)))
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, max_cells // (n1 + n0)))
    b_auc: list[np.ndarray] = []
    b_tprs: list[list[np.ndarray]] = [[] for _ in used]
    b_above: list[list[np.ndarray]] = [[] for _ in used]
    kind = "multinomial" if method == "multinomial" else "bayesian"
    for start in range(0, n_boot, chunk):
        reps = min(chunk, n_boot - start)
        extra = rng.standard_exponential(size=reps) if method == "exact" else None
        a, t, t_above = run(_weights(rng, reps, n1, kind), _weights(rng, reps, n0, kind), extra)
        b_auc.append(a)
        for i in range(len(used)):
            b_tprs[i].append(t[i])
            b_above[i].append(t_above[i])
    auc_reps = np.concatenate(b_auc, axis=1)
    tpr_reps = [np.concatenate(b, axis=1) for b in b_tprs]
    above_reps = [np.concatenate(b, axis=1) for b in b_above]

    def interval(point: np.ndarray, reps: np.ndarray, reps_above: np.ndarray | None = None) -> Interval:
        lo, hi, a_lo = _simultaneous(point, reps, delta, reps_above)
        best = int(np.argmax(point))
        return Interval(estimate=float(point[best]), lower=lo, upper=hi, attack=names[best],
                        lower_attack=names[a_lo])

    tpr: dict[float, Interval | None] = {lv: None for lv in levels}
    for i, lv in enumerate(used):
        tpr[lv] = interval(p_tprs[i][:, 0], tpr_reps[i], above_reps[i])
    chosen = _select([*tpr_reps, auc_reps])
    best = int(_select([*(t[:, :1] for t in p_tprs), p_auc[:, :1]])[0])
    return BootstrapCI(
        n_boot=n_boot, confidence=confidence, method=method, n_members=n1, n_nonmembers=n0,
        fpr_resolution=1.0 / n0, resolvable=resolvable, gradable=gradable, tpr=tpr,
        auc=interval(p_auc[:, 0], auc_reps), best=names[best],
        selected={a: float(np.mean(chosen == i)) for i, a in enumerate(names)},
        seconds=time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class MembershipReport:
    """All attacks' results plus what limited them (``notes``).

    ``member_index`` / ``nonmember_index`` map score positions back to rows of the inputs (rows may
    have been sampled or dropped for overlap).
    """

    attacks: dict[str, AttackResult]
    member_index: np.ndarray
    nonmember_index: np.ndarray
    n_shadows: int = 0
    shadow_time_s: float = 0.0
    overlap: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def n_members(self) -> int:
        return len(self.member_index)

    @property
    def n_nonmembers(self) -> int:
        return len(self.nonmember_index)

    @property
    def fpr_resolution(self) -> float:
        """The smallest non-zero FPR the non-members can measure: ``1 / n_nonmembers``."""
        return 1.0 / max(self.n_nonmembers, 1)

    def resolvable(self, level: float) -> bool:
        """Whether ``n_nonmembers`` resolve an FPR of ``level`` (see :func:`fpr_resolvable`)."""
        return fpr_resolvable(level, self.n_nonmembers)

    @property
    def best(self) -> AttackResult:
        """The strongest attack: highest TPR at 1 % FPR, then at 0.1 %, then AUC; a TPR at an FPR the
        non-members do not resolve is left out of the comparison."""
        use = [lv for lv in FPR_LEVELS if self.resolvable(lv)]

        def key(a: AttackResult) -> tuple[float, ...]:
            return (*(_tpr_of(a, lv) for lv in use), a.auc)

        return max(self.attacks.values(), key=key)

    def bootstrap(self, *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
                  method: str = "exact") -> BootstrapCI:
        """Confidence intervals for the strongest attack's TPR at each FPR and AUC, including the choice
        of attack (:func:`bootstrap_ci` over this report's scores)."""
        if not self.attacks:
            raise DataError("no attack ran, so there is nothing to bootstrap")
        first = next(iter(self.attacks.values()))
        return bootstrap_ci({n: r.scores for n, r in self.attacks.items()}, first.labels, n_boot=n_boot,
                            confidence=confidence, seed=seed, method=method)

    def most_exposed(self, k: int = 10, attack: str | None = None) -> list[tuple[int, float]]:
        """The ``k`` members the attack is most sure about: ``(row index in members, score)``."""
        res = self.attacks[attack] if attack else self.best
        member_scores = res.scores[: self.n_members]
        order = np.argsort(-member_scores, kind="stable")[:k]
        return [(int(self.member_index[i]), float(member_scores[i])) for i in order]

    def roc_points(self, attack: str, n_points: int = 60) -> tuple[list[float], list[float]]:
        """A log-spaced ROC curve for plotting on log-log axes (FPR from 1/n_nonmembers to 1)."""
        res = self.attacks[attack]
        lo = max(1.0 / max(self.n_nonmembers, 1), 1e-5)
        grid = np.unique(np.concatenate([np.geomspace(lo, 1.0, n_points), [0.001, 0.01]]))
        grid = grid[grid >= lo]
        idx = np.searchsorted(res.fpr, grid, side="right") - 1
        tpr = res.tpr[np.clip(idx, 0, len(res.tpr) - 1)]
        tpr = np.maximum(tpr, lo)  # keep the curve on log axes
        return grid.tolist(), tpr.tolist()


# --------------------------------------------------------------------------------------------
# shadow training
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TrainingRecipe:
    """How to train a PyTorch shadow model: a re-initialised copy of the target trained with
    cross-entropy. Match the target's own recipe for the strongest (most honest) audit.

    Initialisation and batch order are seeded per shadow; layers that draw random numbers while
    training (dropout) use torch's global generator and are not reproducible across threads."""

    epochs: int = 150
    batch_size: int | None = None  # None: full batch
    lr: float = 1e-2
    weight_decay: float = 0.0
    optimizer: str = "adam"  # "adam" | "sgd"

    def fit(self, module: Any, X: np.ndarray, y: np.ndarray, seed: int = 0) -> Any:
        import torch  # lazy: torch is heavy; imported only where it runs

        gen = torch.Generator().manual_seed(int(seed))
        with _INIT_LOCK, torch.random.fork_rng(devices=[]):  # shadows train in threads: one init at a time
            torch.manual_seed(int(seed))
            for m in module.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
        module.train()
        params = [p for p in module.parameters() if p.requires_grad]
        if self.optimizer == "sgd":
            opt: Any = torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        elif self.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        else:
            raise DataError(f"unknown optimizer {self.optimizer!r}; expected 'adam' or 'sgd'")
        Xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
        yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
        n = len(Xt)
        bs = n if not self.batch_size else min(int(self.batch_size), n)
        for _ in range(int(self.epochs)):
            perm = torch.randperm(n, generator=gen) if bs < n else None
            for start in range(0, n, bs):
                idx = perm[start : start + bs] if perm is not None else slice(None)
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(module(Xt[idx]), yt[idx])
                loss.backward()
                opt.step()
        return module.eval()


def _torch_logit_fn(module: Any) -> Callable[[np.ndarray], np.ndarray]:
    import torch  # lazy: torch is heavy; imported only where it runs

    def predict(X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = module(torch.as_tensor(np.asarray(X, dtype=np.float32)))
        return torch.log_softmax(out.double(), dim=-1).numpy()

    predict.log_probs = True  # type: ignore[attr-defined]
    return predict


_PARAM_FREE = ("ReLU", "Tanh", "Sigmoid", "GELU", "SiLU", "Identity", "Softplus", "ELU", "Mish")


def rebuild_torchscript_mlp(module: Any) -> Any | None:
    """An eager ``nn.Sequential`` equivalent to a TorchScript ``Sequential`` of ``Linear`` layers and
    parameter-free activations, or ``None`` when the structure is anything else. The rebuilt copy
    is checked to reproduce the scripted module's outputs before it is trusted."""
    import torch  # lazy: torch is heavy; imported only where it runs

    if not isinstance(module, torch.jit.ScriptModule) or getattr(module, "original_name", "") != "Sequential":
        return None
    layers: list[Any] = []
    for _name, child in module.named_children():
        kind = getattr(child, "original_name", "")
        if kind == "Linear":
            w = child.weight
            layers.append(torch.nn.Linear(w.shape[1], w.shape[0], bias=getattr(child, "bias", None) is not None))
        elif kind in _PARAM_FREE:
            layers.append(getattr(torch.nn, kind)())
        else:
            return None
    if not layers or not isinstance(layers[0], torch.nn.Linear):
        return None
    eager = torch.nn.Sequential(*layers)
    try:
        eager.load_state_dict(module.state_dict())
        x = torch.randn(8, layers[0].in_features, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            same = torch.allclose(eager(x), module(x), rtol=1e-4, atol=1e-5)
    except (RuntimeError, TypeError):
        return None
    return eager.eval() if same else None


def default_trainer(model: BaseModel, recipe: TrainingRecipe | None = None) -> ShadowTrainer:
    """A shadow trainer cloned from ``model`` (needs the ``retrainable`` capability).

    scikit-learn: ``sklearn.base.clone`` (with a fresh ``random_state`` where the estimator has one);
    PyTorch: a re-initialised copy trained with ``recipe`` (or ``model.extra["training_recipe"]``).
    A TorchScript MLP (``Sequential`` of ``Linear`` and activations) is rebuilt as an eager module.
    """
    classes = model.classes
    template = None
    if model.framework == "pytorch" and Capability.RETRAINABLE not in model.capabilities:
        template = rebuild_torchscript_mlp(getattr(model, "module", None))
    if template is None and (Capability.RETRAINABLE not in model.capabilities
                             or not hasattr(model, "clone_unfitted")):
        raise DataError(
            f"{type(model).__name__} ({model.format}) cannot be retrained, so shadow models are not "
            "available; pass a trainer or use the 'loss' attack only"
        )
    if model.framework == "pytorch":
        rec = recipe or model.extra.get("training_recipe") or TrainingRecipe()
        template = template if template is not None else model.clone_unfitted()

        def train_torch(X: np.ndarray, yi: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
            module = rec.fit(copy.deepcopy(template), X, yi, seed)
            return _torch_logit_fn(module)

        return train_torch

    to_input = getattr(model, "_to_input", lambda X: X)

    def train_sklearn(X: np.ndarray, yi: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
        est = model.clone_unfitted()
        params = est.get_params() if hasattr(est, "get_params") else {}
        seeds = {k: seed for k in params if k == "random_state" or k.endswith("__random_state")}
        if seeds:
            est.set_params(**seeds)
        est.fit(to_input(X), classes[yi])
        fitted = np.asarray(est.classes_)
        cols = np.searchsorted(classes, fitted) if np.all(classes[:-1] < classes[1:]) else np.array(
            [int(np.flatnonzero(classes == c)[0]) for c in fitted])

        def predict(Xq: np.ndarray) -> np.ndarray:
            p = np.asarray(est.predict_proba(to_input(Xq)), dtype=np.float64)
            out = np.zeros((len(Xq), len(classes)))
            out[:, cols] = p
            return out

        return predict

    return train_sklearn


def _label_log_probs(pred: Callable[[np.ndarray], np.ndarray], X: np.ndarray, yi: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(log p_y, log (1 - p_y))`` per row, computed stably from log-probabilities when available."""
    out = np.asarray(pred(X), dtype=np.float64)
    rows = np.arange(len(yi))
    if getattr(pred, "log_probs", False):
        logp = out
    else:
        logp = np.log(np.clip(out, _PROB_EPS, 1.0))
    lpy = logp[rows, yi]
    others = logp.copy()
    others[rows, yi] = -np.inf
    m = others.max(axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    lp_not = (np.log(np.exp(others - m).sum(axis=1)) + m[:, 0]) if logp.shape[1] > 1 else np.full(len(yi), -np.inf)
    if not getattr(pred, "log_probs", False):
        lp_not = np.maximum(lp_not, np.log(_PROB_EPS))
    return lpy, lp_not


def _target_predictor(model: BaseModel) -> Callable[[np.ndarray], np.ndarray]:
    if model.differentiable and getattr(model, "outputs", "logits") == "logits":
        try:
            fn = _torch_logit_fn(model.as_torch())
            prep = model._prepare

            def predict(X: np.ndarray) -> np.ndarray:
                return fn(prep(X))

            predict.log_probs = True  # type: ignore[attr-defined]
            return predict
        except TypeError:  # adapter claims gradients but has no torch module
            pass
    return model.predict_proba


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------
def _as_xy(data: Dataset | tuple[np.ndarray, np.ndarray] | None, what: str) -> tuple[np.ndarray, np.ndarray]:
    if data is None:
        raise DataError(f"membership inference needs {what}")
    if isinstance(data, Dataset):
        X, y = data.X, data.y
    else:
        X, y = data
    if y is None:
        raise DataError(f"membership inference needs labels for the {what}", cli_hint="pass --target")
    X = np.asarray(X)
    y = np.asarray(y)
    if len(X) != len(y):
        raise DataError(f"{what}: {len(X)} rows but {len(y)} labels")
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise DataError(f"{what}: features must be numeric for membership inference")
    return X, y


def _row_keys(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(np.column_stack([X.reshape(len(X), -1).astype(np.float64),
                                                 np.asarray(y, dtype=np.float64).reshape(-1, 1)]
                                                if np.issubdtype(y.dtype, np.number)
                                                else X.reshape(len(X), -1).astype(np.float64)))
    return flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1]))).ravel()


def find_overlap(X_in: np.ndarray, y_in: np.ndarray, X_out: np.ndarray, y_out: np.ndarray) -> np.ndarray:
    """Boolean mask over the non-members: rows that also appear (same features) among the members."""
    y_in, y_out = np.asarray(y_in), np.asarray(y_out)
    if not (np.issubdtype(y_in.dtype, np.number) and np.issubdtype(y_out.dtype, np.number)):
        # text labels (or text on one side only): one code per distinct label, shared by both sides, so the
        # keys of both sides have the same layout
        _, codes = np.unique(np.concatenate([y_in.astype(str), y_out.astype(str)]), return_inverse=True)
        y_in, y_out = codes[: len(y_in)], codes[len(y_in):]
    a = _row_keys(np.asarray(X_in), y_in)
    b = _row_keys(np.asarray(X_out), y_out)
    return np.isin(b, a)


# --------------------------------------------------------------------------------------------
# the attacks
# --------------------------------------------------------------------------------------------
def _logit_conf(lpy: np.ndarray, lp_not: np.ndarray) -> np.ndarray:
    """``log p_y - log(1 - p_y)``: the statistic LiRA models as Gaussian."""
    return np.clip(lpy - lp_not, -1e4, 1e4)


def _masked_mean_std(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-row mean and std of ``values`` (shadows x rows) where ``mask``; plus the pooled std."""
    cnt = mask.sum(axis=0)
    tot = np.where(mask, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = tot / cnt
    overall = float(values[mask].mean()) if mask.any() else 0.0
    mean = np.where(cnt > 0, mean, overall)
    resid = np.where(mask, values - mean[None, :], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt((resid**2).sum(axis=0) / np.maximum(cnt - 1, 1))
    # the shared ("fixed") variance: the median of per-row stds, as in Carlini et al.'s code
    ok = cnt > 1
    pooled = float(np.median(std[ok])) if ok.any() else float(np.std(values[mask])) if mask.any() else 1.0
    pooled = max(pooled, 1e-3)
    std = np.where(cnt > 1, std, pooled)
    return mean, np.maximum(std, 1e-3), pooled


def _norm_logpdf(x: np.ndarray, mu: np.ndarray, sd: np.ndarray | float) -> np.ndarray:
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi)


def _train_shadows(
    trainer: ShadowTrainer,
    X: np.ndarray,
    yi: np.ndarray,
    keep: np.ndarray,
    *,
    seed: int,
    n_jobs: int,
    budget_s: float | None,
    progress: ProgressFn,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Train shadows in parallel batches until done or over budget.

    Returns ``(log p_y, log(1-p_y), keep)`` restricted to the trained shadows, shapes (k, n)."""
    from joblib import Parallel, delayed  # lazy: joblib and threadpoolctl only when shadow models train

    def one(i: int) -> tuple[np.ndarray, np.ndarray]:
        pred = trainer(X[keep[i]], yi[keep[i]], seed * 1009 + i)
        return _label_log_probs(pred, X, yi)

    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    n_shadows = len(keep)
    t0 = time.perf_counter()
    lpy: list[np.ndarray] = []
    lpn: list[np.ndarray] = []
    # one BLAS/OpenMP thread per shadow when shadows already run in parallel (no oversubscription)
    limit = threadpool_limits(limits=1) if n_jobs > 1 else nullcontext()
    with limit, Parallel(n_jobs=n_jobs, prefer="threads") as par:
        for start in range(0, n_shadows, n_jobs):
            batch = range(start, min(start + n_jobs, n_shadows))
            for a, b in par(delayed(one)(i) for i in batch):
                lpy.append(a)
                lpn.append(b)
            progress(0.1 + 0.8 * len(lpy) / n_shadows, f"trained {len(lpy)}/{n_shadows} shadow models")
            if budget_s is not None and len(lpy) >= 2:
                elapsed = time.perf_counter() - t0
                per_batch = elapsed / (start // n_jobs + 1)
                if elapsed + per_batch > budget_s:  # the next batch would overrun the budget
                    break
    k = len(lpy)
    return np.stack(lpy), np.stack(lpn), keep[:k], k


def membership_inference(
    model: BaseModel,
    members: Dataset | tuple[np.ndarray, np.ndarray],
    nonmembers: Dataset | tuple[np.ndarray, np.ndarray],
    *,
    attacks: Sequence[str] = ATTACKS,
    n_shadows: int = 16,
    shadow_budget_s: float | None = None,
    trainer: ShadowTrainer | None = None,
    recipe: TrainingRecipe | None = None,
    max_rows: int | None = None,
    rmia_a: float = 0.3,
    rmia_gamma: float = 1.0,
    n_jobs: int | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> MembershipReport:
    """Run membership-inference attacks on ``model`` with known members and non-members.

    Parameters
    ----------
    model : the target (any adapter with probabilities).
    members, nonmembers : ``Dataset`` or ``(X, y)``; rows of the training set and rows the model
        never saw. Non-member rows identical to a member row are dropped (and counted in ``overlap``).
    attacks : any of ``loss``, ``lira_offline``, ``lira_online``, ``rmia``.
    n_shadows : shadow / reference models to train (even numbers keep the IN/OUT design balanced).
    shadow_budget_s : stop training shadows after this many seconds (at least two are trained).
    trainer : ``trainer(X, y_index, seed) -> predict_proba``; default clones ``model``.
    recipe : training recipe for PyTorch shadows.
    max_rows : sample at most this many rows per side (stratified, reproducible).
    rmia_a, rmia_gamma : RMIA's offline correction ``a`` and pairwise threshold ``gamma``.
    n_jobs : parallel shadow trainings (default: the CPU count, at most ``n_shadows``).

    Raises
    ------
    DataError
        Missing labels, too few rows, or members and non-members that (almost) entirely overlap.
    """
    progress = progress or (lambda _f, _m: None)
    unknown = sorted(set(attacks) - set(ATTACKS))
    if unknown or not attacks:
        raise DataError(f"unknown attack {unknown[0] if unknown else '(none)'!r}; "
                        f"expected some of {', '.join(ATTACKS)}")
    X_in, y_in = _as_xy(members, "members (training data)")
    X_out, y_out = _as_xy(nonmembers, "non-members (held-out data)")
    in_idx = np.arange(len(X_in))
    out_idx = np.arange(len(X_out))
    notes: list[str] = []

    overlap_mask = find_overlap(X_in, y_in, X_out, y_out) if len(X_in) and len(X_out) else np.zeros(0, bool)
    overlap = int(overlap_mask.sum())
    if overlap:
        if overlap > 0.5 * len(X_out):
            raise DataError(
                f"members and non-members overlap: {overlap} of {len(X_out)} held-out rows also appear "
                "in the training data; the held-out set must be data the model was not trained on"
            )
        notes.append(f"{overlap} held-out rows also appear in the training data and were dropped "
                     "from the non-members")
        out_idx = out_idx[~overlap_mask]
    for what, idx in (("members (training rows)", in_idx), ("non-members (held-out rows)", out_idx)):
        if len(idx) < MIN_ROWS:
            raise DataError(f"too few {what} for membership inference: {len(idx)} (need at least "
                            f"{MIN_ROWS}); a held-out set separate from the training data is required")
    rng = np.random.default_rng(seed)
    if max_rows is not None:
        if len(in_idx) > max_rows:
            in_idx = np.sort(rng.choice(in_idx, size=max_rows, replace=False))
            notes.append(f"members sampled to {max_rows} rows")
        if len(out_idx) > max_rows:
            out_idx = np.sort(rng.choice(out_idx, size=max_rows, replace=False))
            notes.append(f"non-members sampled to {max_rows} rows")

    X = np.concatenate([X_in[in_idx], X_out[out_idx]])
    y = np.concatenate([y_in[in_idx], y_out[out_idx]])
    yi = model.label_index(y)
    labels = np.concatenate([np.ones(len(in_idx), np.int64), np.zeros(len(out_idx), np.int64)])
    n = len(X)

    progress(0.02, "scoring the target model")
    t_lpy, t_lpn = _label_log_probs(_target_predictor(model), X, yi)
    results: dict[str, AttackResult] = {}
    if "loss" in attacks:
        results["loss"] = roc_metrics(t_lpy, labels, "loss")

    wanted = [a for a in attacks if a in SHADOW_ATTACKS]
    k = 0
    shadow_time = 0.0
    if wanted:
        reason = None
        if n < MIN_SHADOW_POOL:
            reason = f"only {n} rows in all, shadow models need at least {MIN_SHADOW_POOL}"
        elif n_shadows < 2:
            reason = "shadow attacks need n_shadows >= 2"
        elif trainer is None:
            try:
                trainer = default_trainer(model, recipe)
            except DataError as exc:
                reason = str(exc)
        if reason is not None:
            notes.append(f"skipped {', '.join(wanted)}: {reason}")
        else:
            assert trainer is not None
            # paired design: every row is IN exactly half of the shadows
            keep = np.argsort(rng.random((n_shadows, n)), axis=0) < n_shadows // 2
            jobs = max(1, min(n_jobs or (os.cpu_count() or 1), n_shadows))
            t0 = time.perf_counter()
            s_lpy, s_lpn, keep, k = _train_shadows(trainer, X, yi, keep, seed=seed, n_jobs=jobs,
                                                   budget_s=shadow_budget_s, progress=progress)
            shadow_time = time.perf_counter() - t0
            if k < n_shadows:
                notes.append(f"shadow budget of {shadow_budget_s:g}s reached after {k} of {n_shadows} "
                             "shadow models")
            results.update(_shadow_attacks(wanted, t_lpy, t_lpn, s_lpy, s_lpn, keep, labels,
                                           rmia_a=rmia_a, gamma=rmia_gamma, rng=rng))
    progress(1.0, "membership inference done")
    return MembershipReport(attacks=results, member_index=in_idx, nonmember_index=out_idx, n_shadows=k,
                            shadow_time_s=shadow_time, overlap=overlap, notes=notes)


def _shadow_attacks(
    wanted: Sequence[str],
    t_lpy: np.ndarray,
    t_lpn: np.ndarray,
    s_lpy: np.ndarray,
    s_lpn: np.ndarray,
    keep: np.ndarray,
    labels: np.ndarray,
    *,
    rmia_a: float,
    gamma: float,
    rng: np.random.Generator,
) -> dict[str, AttackResult]:
    out: dict[str, AttackResult] = {}
    k = len(keep)
    fixed_var = k < 64  # Carlini et al.: share the variance across rows with few shadows
    phi_t = _logit_conf(t_lpy, t_lpn)
    phi_s = _logit_conf(s_lpy, s_lpn)
    mu_out, sd_out, pooled_out = _masked_mean_std(phi_s, ~keep)
    if "lira_offline" in wanted:
        sd = pooled_out if fixed_var else sd_out
        # one-sided test: how far above the OUT distribution the target's confidence lies
        out["lira_offline"] = roc_metrics((phi_t - mu_out) / sd, labels, "lira_offline")
    if "lira_online" in wanted:
        mu_in, sd_in, pooled_in = _masked_mean_std(phi_s, keep)
        s_in = pooled_in if fixed_var else sd_in
        s_out = pooled_out if fixed_var else sd_out
        score = _norm_logpdf(phi_t, mu_in, s_in) - _norm_logpdf(phi_t, mu_out, s_out)
        out["lira_online"] = roc_metrics(score, labels, "lira_online")
    if "rmia" in wanted:
        p_t = np.exp(t_lpy)
        p_s = np.exp(s_lpy)
        # online when shadows include IN models for each row (always, in the paired design, with k >= 2)
        has_in = keep.any(axis=0)
        p_all = p_s.mean(axis=0)
        cnt_out = (~keep).sum(axis=0)
        p_out = np.where(cnt_out > 0, np.where(~keep, p_s, 0.0).sum(axis=0) / np.maximum(cnt_out, 1), p_all)
        offline = 0.5 * ((1 + rmia_a) * p_out + (1 - rmia_a))
        p_x = np.where(has_in, p_all, offline)
        ratio = p_t / np.maximum(p_x, _EPS)
        # population rows z: a sample of the rows (the paper draws z from the population)
        nz = min(len(ratio), 5000)
        z = np.sort(ratio[rng.choice(len(ratio), size=nz, replace=False)])
        score = np.searchsorted(z, ratio / gamma, side="right") / nz
        # break ties among rows that beat every z by the ratio itself (keeps low-FPR resolution)
        score = score + 1e-9 * np.tanh(np.log(np.maximum(ratio, _EPS)))
        out["rmia"] = roc_metrics(score, labels, "rmia")
    return out
