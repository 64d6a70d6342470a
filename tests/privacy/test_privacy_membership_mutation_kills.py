"""Membership inference pinned exactly (issue #23: tests that would catch a regression).

Found by mutation testing (``scripts/mutation.sh membership``). Each test checks exact values against
an independent computation written here from the papers' definitions (Mann-Whitney AUC, the ROC
operating point, LiRA's Gaussians, RMIA's pairwise ratio), or an exact message, rather than "an
attack finds some leakage". Shadow models are replaced by a deterministic trainer so the attacks
can be recomputed by hand; the tests are fast (no forest, no network is trained except where the
trainer itself is under test).
"""

from __future__ import annotations

import math
import types
from typing import Any

import numpy as np
import pytest

from modelshield.errors import DataError
from modelshield.models.callable import CallableModel
from modelshield.privacy import membership as mi
from modelshield.privacy.membership import (
    AttackResult,
    Interval,
    MembershipReport,
    allowed_false_positives,
    bootstrap_ci,
    find_overlap,
    fpr_resolvable,
    membership_inference,
    nonmembers_needed,
    nonmembers_to_bound,
    roc_metrics,
)


def _err(fn: Any, exc: type[BaseException] = DataError) -> str:
    with pytest.raises(exc) as info:
        fn()
    return str(info.value)


# --- reference computations (from the definitions, not the code under test) -----------------------


def _auc(s1: np.ndarray, s0: np.ndarray, w1: np.ndarray | None = None, w0: np.ndarray | None = None) -> float:
    """Weighted Mann-Whitney AUC with ties counted half."""
    w1 = np.ones(len(s1)) if w1 is None else w1
    w0 = np.ones(len(s0)) if w0 is None else w0
    tot = 0.0
    for a, wa in zip(s1, w1):
        tot += wa * (np.sum(w0[s0 < a]) + 0.5 * np.sum(w0[s0 == a]))
    return tot / (np.sum(w1) * np.sum(w0))


def _tpr_at(s1: np.ndarray, s0: np.ndarray, level: float) -> float:
    """Best TPR over thresholds "score >= t" whose false positives are at most floor(level * n0)."""
    allowed = math.floor(level * len(s0) + 1e-9)
    best = 0.0
    for t in np.unique(np.r_[s1, s0, np.inf]):
        if np.sum(s0 >= t) <= allowed:
            best = max(best, float(np.mean(s1 >= t)))
    return best


# --- metrics --------------------------------------------------------------------------------------


def test_roc_metrics_match_the_definitions() -> None:
    rng = np.random.default_rng(3)
    for n1, n0 in ((40, 120), (300, 1000), (25, 99)):
        s1 = np.round(rng.normal(1.0, 1.0, n1), 1)  # rounded: ties between and within the groups
        s0 = np.round(rng.normal(0.0, 1.0, n0), 1)
        res = roc_metrics(np.r_[s1, s0], np.r_[np.ones(n1), np.zeros(n0)], name="x")
        assert res.name == "x"
        assert res.auc == pytest.approx(_auc(s1, s0), abs=1e-12)
        assert res.tpr_at_1pct_fpr == pytest.approx(_tpr_at(s1, s0, 0.01), abs=1e-12)
        assert res.tpr_at_0_1pct_fpr == pytest.approx(_tpr_at(s1, s0, 0.001), abs=1e-12)
        assert res.labels.dtype == np.int64 and res.scores.dtype == np.float64
        assert res.n_nonmembers == n0
        assert res.advantage == pytest.approx(float(np.max(res.tpr - res.fpr)))
    assert roc_metrics(np.r_[1.0, 0.0], np.r_[1, 0]).name == "attack"


def test_tpr_at_an_fpr_is_taken_at_that_fpr_exactly() -> None:
    # 100 non-members, one above every member, one tied with the members: 1 % FPR admits one
    s1 = np.full(10, 5.0)
    s0 = np.r_[10.0, np.zeros(99)]
    res = roc_metrics(np.r_[s1, s0], np.r_[np.ones(10), np.zeros(100)])
    assert res.tpr_at_1pct_fpr == 1.0 and res.tpr_at_0_1pct_fpr == 0.0
    s0 = np.r_[10.0, 9.0, np.zeros(98)]  # two above: 2 % FPR, above 1 %
    res = roc_metrics(np.r_[s1, s0], np.r_[np.ones(10), np.zeros(100)])
    assert res.tpr_at_1pct_fpr == 0.0
    # exactly 1 % with 1,000 non-members (10 above) is allowed, 11 is not
    s0 = np.r_[np.full(10, 9.0), np.zeros(990)]
    assert roc_metrics(np.r_[s1, s0], np.r_[np.ones(10), np.zeros(1000)]).tpr_at_1pct_fpr == 1.0
    s0 = np.r_[np.full(11, 9.0), np.zeros(989)]
    assert roc_metrics(np.r_[s1, s0], np.r_[np.ones(10), np.zeros(1000)]).tpr_at_1pct_fpr == 0.0
    # the level with float noise: 0.001 * 3000 = 3 false positives at 0.1 %
    s0 = np.r_[np.full(3, 9.0), np.zeros(2997)]
    assert roc_metrics(np.r_[s1, s0], np.r_[np.ones(10), np.zeros(3000)]).tpr_at_0_1pct_fpr == 1.0


def test_tpr_at_helper_and_tpr_of() -> None:
    assert mi._tpr_at(np.array([0.0, 0.01, 0.02]), np.array([0.1, 0.5, 0.9]), 0.01) == 0.5
    assert mi._tpr_at(np.array([0.0, 0.01 + 1e-16]), np.array([0.1, 0.5]), 0.01) == 0.5  # float slack
    assert mi._tpr_at(np.array([0.0, 0.0101]), np.array([0.1, 0.5]), 0.01) == 0.1
    assert mi._tpr_at(np.array([0.5, 1.0]), np.array([0.3, 1.0]), 0.01) == 0.0  # no point at or below
    res = roc_metrics(np.r_[np.arange(5.0) + 10, np.arange(200.0)], np.r_[np.ones(5), np.zeros(200)])
    fake = AttackResult(name="f", scores=res.scores, labels=res.labels, auc=0.5, tpr_at_0_1pct_fpr=0.25,
                        tpr_at_1pct_fpr=0.75, fpr=res.fpr, tpr=res.tpr)
    assert mi._tpr_of(fake, 0.01) == 0.75 and mi._tpr_of(fake, 0.001) == 0.25


def test_non_finite_scores_are_clamped_not_dropped() -> None:
    scores = np.array([np.inf, 1.0, -np.inf, np.nan, 0.5, 2.0])
    res = roc_metrics(scores, np.array([1, 1, 1, 0, 0, 0]))
    assert res.scores.tolist() == [1e300, 1.0, -1e300, -1e300, 0.5, 2.0]
    assert mi._clean_scores(scores).tolist() == [1e300, 1.0, -1e300, -1e300, 0.5, 2.0]
    assert res.auc == pytest.approx(_auc(np.array([1e300, 1.0, -1e300]), np.array([-1e300, 0.5, 2.0])))


def test_attack_result_metrics_and_resolution() -> None:
    def result(n0: int) -> AttackResult:
        s = np.r_[np.arange(10.0) + 1000, np.arange(float(n0))]
        return roc_metrics(s, np.r_[np.ones(10), np.zeros(n0)])

    small, mid, big = result(99), result(100), result(1000)
    assert small.fpr_resolution == pytest.approx(1 / 99) and big.fpr_resolution == pytest.approx(1e-3)
    assert small.metrics() == {"auc": 1.0, "tpr_at_0_1pct_fpr": None, "tpr_at_1pct_fpr": None, "advantage": 1.0}
    assert mid.metrics() == {"auc": 1.0, "tpr_at_0_1pct_fpr": None, "tpr_at_1pct_fpr": 1.0, "advantage": 1.0}
    assert big.metrics() == {"auc": 1.0, "tpr_at_0_1pct_fpr": 1.0, "tpr_at_1pct_fpr": 1.0, "advantage": 1.0}
    assert not small.resolvable(0.01) and mid.resolvable(0.01) and not mid.resolvable(0.001)
    none = AttackResult(name="n", scores=np.ones(2), labels=np.ones(2, np.int64), auc=0.5, tpr_at_0_1pct_fpr=0,
                        tpr_at_1pct_fpr=0, fpr=np.zeros(1), tpr=np.zeros(1))
    assert none.n_nonmembers == 0 and none.fpr_resolution == 1.0 and not none.resolvable(0.5)
    adv = AttackResult(name="a", scores=np.ones(2), labels=np.ones(2, np.int64), auc=0.5, tpr_at_0_1pct_fpr=0,
                       tpr_at_1pct_fpr=0, fpr=np.array([0.0, 0.2, 1.0]), tpr=np.array([0.1, 0.7, 1.0]))
    assert adv.advantage == pytest.approx(0.5)


# --- sample-size rules -----------------------------------------------------------------------------


def test_sample_size_rules_exactly() -> None:
    assert allowed_false_positives(0.01, 99) == 0 and allowed_false_positives(0.01, 100) == 1
    assert allowed_false_positives(0.29, 100) == 29  # 28.999999999999996 in floating point
    assert allowed_false_positives(0.57, 100) == 57
    assert allowed_false_positives(0.001, 3000) == 3
    assert fpr_resolvable(0.01, 100) and not fpr_resolvable(0.01, 99)
    assert not fpr_resolvable(1.0, 0) and fpr_resolvable(1.0, 1)
    assert not fpr_resolvable(2.0, 0)  # no non-members: never, whatever the level
    assert nonmembers_needed(0.01) == 100 and nonmembers_needed(0.001) == 1000
    assert nonmembers_needed(1 / 49) == 49  # 1 / (1/49) is 49.00000000000001
    assert nonmembers_needed(0.3) == 4 and nonmembers_needed(1.0) == 1
    assert nonmembers_to_bound(0.01) == 368 and nonmembers_to_bound(0.001) == 3688
    assert nonmembers_to_bound(0.01, 0.9) == math.ceil(math.log(0.05) / math.log(0.99))
    assert nonmembers_to_bound(0.5, 0.5) == 2  # log(0.25) / log(0.5) is exactly 2
    assert nonmembers_to_bound(0.5) == 6  # log(0.025) / log(0.5) = 5.32


# --- the bootstrap ---------------------------------------------------------------------------------


def _two_attacks(n1: int = 60, n0: int = 150, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n1, np.int64), np.zeros(n0, np.int64)]
    return ({"weak": np.r_[rng.normal(0.3, 1, n1), rng.normal(0, 1, n0)],
             "strong": np.round(np.r_[rng.normal(1.5, 1, n1), rng.normal(0, 1, n0)], 1)}, labels)


def test_bootstrap_refusals_are_exact() -> None:
    scores, labels = _two_attacks()
    assert _err(lambda: bootstrap_ci({}, labels)) == "the bootstrap needs at least one attack's scores"
    assert _err(lambda: bootstrap_ci(scores, np.ones(210))) == "the bootstrap needs both members and non-members"
    assert _err(lambda: bootstrap_ci(scores, np.zeros(210))) == "the bootstrap needs both members and non-members"
    assert _err(lambda: bootstrap_ci(scores, labels, n_boot=99)) == "n_boot must be at least 100, got 99"
    assert bootstrap_ci(scores, labels, n_boot=100).n_boot == 100
    assert _err(lambda: bootstrap_ci(scores, labels, method="jackknife")) == \
        "unknown bootstrap method 'jackknife'; expected one of exact, bayesian, multinomial"
    assert _err(lambda: bootstrap_ci(scores, labels, confidence=1.0)) == "confidence must be in [0.5, 1), got 1.0"
    assert _err(lambda: bootstrap_ci(scores, labels, confidence=0.49)) == \
        "confidence must be in [0.5, 1), got 0.49"
    assert bootstrap_ci(scores, labels, confidence=0.5, n_boot=100).confidence == 0.5
    bad = dict(scores, short=np.ones(5))
    assert _err(lambda: bootstrap_ci(bad, labels)) == "attack 'short': 5 scores for 210 labels"


@pytest.mark.parametrize("method", ["exact", "bayesian", "multinomial"])
def test_bootstrap_point_estimates_fields_and_determinism(method: str) -> None:
    scores, labels = _two_attacks()
    ci = bootstrap_ci(scores, labels, n_boot=200, seed=4, method=method)
    s1 = {a: s[:60] for a, s in scores.items()}
    s0 = {a: s[60:] for a, s in scores.items()}
    assert (ci.n_boot, ci.confidence, ci.method, ci.n_members, ci.n_nonmembers) == (200, 0.95, method, 60, 150)
    assert ci.fpr_resolution == pytest.approx(1 / 150)
    assert ci.resolvable == {0.01: True, 0.001: False} and ci.gradable == {0.01: False, 0.001: False}
    assert ci.tpr[0.001] is None
    iv = ci.tpr[0.01]
    assert iv is not None
    want = {a: _tpr_at(s1[a], s0[a], 0.01) for a in scores}
    assert iv.attack == max(want, key=lambda a: (want[a], _auc(s1[a], s0[a])))
    assert iv.estimate == pytest.approx(max(want.values()))
    aucs = {a: _auc(s1[a], s0[a]) for a in scores}
    assert ci.auc.estimate == pytest.approx(max(aucs.values())) and ci.auc.attack == "strong"
    assert ci.best == "strong"
    assert 0 <= iv.lower <= iv.estimate <= iv.upper <= 1
    assert 0 <= ci.auc.lower <= ci.auc.estimate <= ci.auc.upper <= 1
    assert iv.lower_attack in scores and ci.auc.lower_attack in scores
    assert set(ci.selected) == {"weak", "strong"} and sum(ci.selected.values()) == pytest.approx(1.0)
    assert ci.selected["strong"] > 0.5 and ci.seconds >= 0
    again = bootstrap_ci(scores, labels, n_boot=200, seed=4, method=method)
    assert (again.tpr, again.auc, again.selected) == (ci.tpr, ci.auc, ci.selected)


def test_bootstrap_gradable_and_levels() -> None:
    scores, labels = _two_attacks(n1=50, n0=368)
    ci = bootstrap_ci(scores, labels, n_boot=100, levels=[0.01, 0.01, 0.05])
    assert ci.resolvable == {0.05: True, 0.01: True} and ci.gradable == {0.05: True, 0.01: True}
    assert list(ci.tpr) == [0.05, 0.01]
    ci = bootstrap_ci(*_two_attacks(n1=50, n0=367), n_boot=100, levels=[0.01])
    assert ci.gradable == {0.01: False} and ci.tpr[0.01] is not None
    ci = bootstrap_ci(*_two_attacks(n1=50, n0=367), n_boot=100, levels=[0.01], confidence=0.9)
    assert ci.gradable == {0.01: True}  # 299 needed at 90 %


def test_bootstrap_methods_differ_and_seeds_matter() -> None:
    scores, labels = _two_attacks()
    runs = {m: bootstrap_ci(scores, labels, n_boot=200, seed=1, method=m) for m in ("exact", "bayesian",
                                                                                    "multinomial")}
    assert len({(r.auc.lower, r.auc.upper) for r in runs.values()}) == 3
    other = bootstrap_ci(scores, labels, n_boot=200, seed=2)
    assert (other.auc.lower, other.auc.upper) != (runs["exact"].auc.lower, runs["exact"].auc.upper)


def test_bootstrap_chunking_follows_max_cells() -> None:
    """Replicates are drawn chunk by chunk: the chunk size is max_cells // rows, at least 1, at most n_boot.
    A reference run draws the same random numbers in the same chunks."""
    scores, labels = _two_attacks(n1=20, n0=100)
    base = bootstrap_ci(scores, labels, n_boot=100, seed=3)
    assert bootstrap_ci(scores, labels, n_boot=100, seed=3, max_cells=120 * 100).auc == base.auc
    assert bootstrap_ci(scores, labels, n_boot=100, seed=3, max_cells=10**9).auc == base.auc
    chunked = bootstrap_ci(scores, labels, n_boot=100, seed=3, max_cells=120 * 30)
    assert chunked.auc != base.auc
    tiny = bootstrap_ci(scores, labels, n_boot=100, seed=3, max_cells=1)
    assert tiny.auc == bootstrap_ci(scores, labels, n_boot=100, seed=3, max_cells=120).auc
    # reference: AUC replicates drawn by hand in chunks of 30
    rng = np.random.default_rng(3)
    s1, s0 = {a: s[:20] for a, s in scores.items()}, {a: s[20:] for a, s in scores.items()}
    reps = {a: [] for a in scores}
    for start in range(0, 100, 30):
        r = min(30, 100 - start)
        rng.standard_exponential(size=r)
        w1 = rng.standard_exponential(size=(r, 20))
        w0 = rng.standard_exponential(size=(r, 100))
        for a in scores:
            reps[a] += [_auc(s1[a], s0[a], w1[i], w0[i]) for i in range(r)]
    table = np.array([reps["weak"], reps["strong"]])
    point = np.array([_auc(s1["weak"], s0["weak"]), _auc(s1["strong"], s0["strong"])])
    lo, hi, a_lo = mi._simultaneous(point, table, 0.025)
    assert chunked.auc.lower == pytest.approx(lo, abs=1e-9) and chunked.auc.upper == pytest.approx(hi, abs=1e-9)
    assert chunked.auc.lower_attack == ["weak", "strong"][a_lo]


def _stats_reference(ix_s1: np.ndarray, ix_s0: np.ndarray, w1: np.ndarray, w0: np.ndarray, level: float,
                     extra: float | None) -> tuple[float, float, float]:
    """AUC, TPR at ``level`` and the TPR of the next lower threshold for one replicate, by brute force.

    Threshold ``p``: members scoring above the ``p`` lowest non-members are flagged. Without ``extra``
    its FPR is the weight of the other non-members over the total (the lowest ``p`` that keeps it at most
    ``level``, with the same float slack as the code). With ``extra`` (the exact law of the population
    FPR) the threshold ``p`` (1..n0) lets through the ``p``-th lowest non-member and all above it, over
    the total plus ``extra``; ``p = n0 + 1`` means no threshold in the sample (TPR 0)."""
    order = np.argsort(ix_s0, kind="stable")
    s0s, w0s = ix_s0[order], w0[order]
    n0 = len(s0s)
    tot0 = w0.sum()
    lo = np.searchsorted(s0s, ix_s1, side="left")  # non-members strictly below each member

    def tpr_for(p: int) -> float:
        return float(w1[lo >= p].sum() / w1.sum())

    auc = _auc(ix_s1, ix_s0, w1, w0)
    if extra is None:
        p = next(p for p in range(n0 + 1)
                 if w0s[p:].sum() / tot0 <= level * (1 + 1e-9) + 1e-9 * n0 / tot0)
        return auc, tpr_for(p), tpr_for(p)
    p = next((p for p in range(1, n0 + 1) if w0s[p - 1:].sum() / (tot0 + extra) <= level), n0 + 1)
    if p == n0 + 1:
        return auc, 0.0, tpr_for(n0)
    return auc, tpr_for(p), tpr_for(p - 1)


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_attack_index_stats_against_brute_force(exact: bool, ties: bool) -> None:
    rng = np.random.default_rng(7)
    n1, n0, reps = 15, 40, 6
    s1 = rng.normal(1, 1, n1)
    s0 = rng.normal(0, 1, n0)
    if ties:
        s1, s0 = np.round(s1), np.round(s0)
    ix = mi._AttackIndex(s1, s0)
    assert ix.ties == ties
    w1 = rng.standard_exponential((reps, n1))
    w0 = rng.standard_exponential((reps, n0))
    extra = rng.standard_exponential(reps) if exact else None
    levels = [0.1, 0.05, 0.02]
    auc, tprs, above = ix.stats(w1, w0, levels, extra)
    for r in range(reps):
        for j, lv in enumerate(levels):
            a, t, t_up = _stats_reference(s1, s0, w1[r], w0[r], lv, None if extra is None else float(extra[r]))
            assert auc[r] == pytest.approx(a, abs=1e-12)
            assert tprs[j][r] == pytest.approx(t, abs=1e-12), (r, lv)
            assert above[j][r] == pytest.approx(t_up, abs=1e-12), (r, lv)
    # unit weights reproduce roc_metrics
    auc1, tpr1, _ = ix.stats(np.ones((1, n1)), np.ones((1, n0)), [0.05])
    ref = roc_metrics(np.r_[s1, s0], np.r_[np.ones(n1), np.zeros(n0)])
    assert auc1[0] == pytest.approx(ref.auc) and tpr1[0][0] == pytest.approx(_tpr_at(s1, s0, 0.05))


def test_attack_index_with_no_threshold_in_the_sample() -> None:
    """With the exact law, a replicate where even the threshold above the highest non-member lets
    through more than the level has no threshold in the sample: TPR 0, and the TPR just above is that
    of the strictest threshold."""
    s1 = np.array([5.0, 6.0, 0.5])
    s0 = np.array([0.0, 1.0])
    ix = mi._AttackIndex(s1, s0)
    w1, w0 = np.ones((1, 3)), np.array([[1.0, 1.0]])
    _, tpr, above = ix.stats(w1, w0, [0.1], np.array([0.0]))
    assert tpr[0][0] == 0.0 and above[0][0] == pytest.approx(2 / 3)
    # FPR 1 / 2.5 = 0.4 at the threshold of the highest non-member: two members above it
    _, tpr, above = ix.stats(w1, w0, [0.4], np.array([0.5]))
    assert tpr[0][0] == pytest.approx(2 / 3) and above[0][0] == pytest.approx(1.0)
    _, tpr, above = ix.stats(w1, w0, [0.39], np.array([0.5]))
    assert tpr[0][0] == 0.0 and above[0][0] == pytest.approx(2 / 3)
    # without the exact law the same level is met by the threshold above both: 0 of 2 non-members
    _, tpr, above = ix.stats(w1, w0, [0.1])
    assert tpr[0][0] == pytest.approx(2 / 3) and above[0][0] == pytest.approx(2 / 3)
    _, tpr, _ = ix.stats(w1, w0, [0.5])  # one of two non-members let through
    assert tpr[0][0] == pytest.approx(1.0)


def test_weights_of_each_method() -> None:
    rng = np.random.default_rng(0)
    m = mi._weights(rng, 50, 7, "multinomial")
    assert m.shape == (50, 7) and m.dtype == np.float64
    assert np.all(m.sum(axis=1) == 7) and np.all(m == np.round(m)) and m.min() >= 0
    assert len(np.unique(m)) > 2  # counts, not a constant
    rng = np.random.default_rng(0)
    want = np.random.default_rng(0).integers(0, 7, size=(50, 7))
    got = mi._weights(rng, 50, 7, "multinomial")
    assert got.tolist() == [np.bincount(row, minlength=7).tolist() for row in want]
    e = mi._weights(np.random.default_rng(1), 4, 3, "bayesian")
    np.testing.assert_array_equal(e, np.random.default_rng(1).standard_exponential(size=(4, 3)))


def test_select_prefers_the_first_key_then_the_next_then_the_first_attack() -> None:
    k1 = np.array([[0.5, 0.2, 0.3, 0.1], [0.5, 0.4, 0.3, 0.1], [0.1, 0.1, 0.3, 0.1]])
    k2 = np.array([[0.1, 0.9, 0.2, 0.5], [0.7, 0.0, 0.2, 0.5], [0.9, 0.9, 0.8, 0.5]])
    assert mi._select([k1, k2]).tolist() == [1, 1, 2, 0]
    assert mi._select([k1]).tolist() == [0, 1, 0, 0]
    # within 1e-12 counts as a tie
    assert mi._select([np.array([[0.5], [0.5 + 1e-13]]), np.array([[0.0], [-1.0]])]).tolist() == [0]
    assert mi._select([np.array([[0.5], [0.5 + 1e-11]]), np.array([[0.0], [-1.0]])]).tolist() == [1]


def _quantile(row: np.ndarray, g: float) -> float:
    srt = np.sort(row)
    n = len(srt)
    return float(srt[min(n - 1, max(0, math.ceil(g * n) - 1))])


def test_simultaneous_bounds_single_attack_are_plain_percentiles() -> None:
    rng = np.random.default_rng(5)
    reps = rng.normal(0.5, 0.1, (1, 400))
    lo, hi, a = mi._simultaneous(np.array([0.5]), reps, 0.025)
    assert lo == _quantile(reps[0], 0.025) and hi == _quantile(reps[0], 0.975) and a == 0
    # the point estimate always lies inside
    lo, hi, _ = mi._simultaneous(np.array([0.9]), reps, 0.025)
    assert hi == 0.9 and lo == _quantile(reps[0], 0.025)
    lo, hi, _ = mi._simultaneous(np.array([0.1]), reps, 0.025)
    assert lo == 0.1 and hi == _quantile(reps[0], 0.975)
    above = reps + 0.2
    lo, hi, _ = mi._simultaneous(np.array([0.5]), reps, 0.025, above)
    assert lo == _quantile(reps[0], 0.025) and hi == _quantile(above[0], 0.975)
    # a degenerate table (every replicate equal)
    lo, hi, _ = mi._simultaneous(np.array([0.3]), np.full((1, 10), 0.3), 0.025)
    assert (lo, hi) == (0.3, 0.3)


def test_simultaneous_bounds_are_calibrated_over_attacks() -> None:
    rng = np.random.default_rng(6)
    z = rng.normal(size=(3, 2000))
    reps = np.array([0.5, 0.52, 0.3])[:, None] + 0.05 * z
    point = np.array([0.5, 0.52, 0.3])
    delta = 0.025
    lo, hi, a_lo = mi._simultaneous(point, reps, delta)
    grid = np.linspace(delta / 3, delta, 40)[::-1]

    def g_for(bad: Any) -> float:
        return next((g for g in grid if bad(g) <= delta), grid[-1])

    q = np.array([[_quantile(r, g) for r in reps] for g in grid])
    g_lo = g_for(lambda g: np.mean((reps < np.array([_quantile(r, g) for r in reps])[:, None] - 1e-12).any(0)))
    g_hi = g_for(lambda g: np.mean((reps > np.array([_quantile(r, 1 - g) for r in reps])[:, None] + 1e-12
                                    ).any(0)))
    assert q.shape == (40, 3)
    want_lo = np.minimum([_quantile(r, g_lo) for r in reps], point)
    want_hi = np.maximum([_quantile(r, 1 - g_hi) for r in reps], point)
    assert lo == want_lo.max() and hi == want_hi.max() and a_lo == int(np.argmax(want_lo))
    assert delta / 3 <= g_lo < delta  # stricter than one attack's percentile, looser than Bonferroni
    # with one replicate only the point itself bounds
    lo, hi, a_lo = mi._simultaneous(np.array([0.2, 0.4]), np.array([[0.1], [0.5]]), 0.025)
    assert (lo, hi, a_lo) == (0.4, 0.5, 1)


# --- the report -------------------------------------------------------------------------------------


def _report(n1: int = 20, n0: int = 150) -> MembershipReport:
    rng = np.random.default_rng(2)
    labels = np.r_[np.ones(n1), np.zeros(n0)]
    a = roc_metrics(np.r_[rng.normal(2, 1, n1), rng.normal(0, 1, n0)], labels, "a")
    b = roc_metrics(np.r_[rng.normal(1, 1, n1), rng.normal(0, 1, n0)], labels, "b")
    return MembershipReport(attacks={"b": b, "a": a}, member_index=np.arange(n1) * 2 + 1,
                            nonmember_index=np.arange(n0), n_shadows=4)


def test_report_counts_and_resolution() -> None:
    rep = _report()
    assert (rep.n_members, rep.n_nonmembers) == (20, 150)
    assert rep.fpr_resolution == pytest.approx(1 / 150)
    assert rep.resolvable(0.01) and not rep.resolvable(0.001)
    empty = MembershipReport(attacks={}, member_index=np.arange(3), nonmember_index=np.arange(0))
    assert empty.fpr_resolution == 1.0 and not empty.resolvable(1.0)
    assert empty.n_shadows == 0 and empty.shadow_time_s == 0.0 and empty.overlap == 0 and empty.notes == []
    assert _err(lambda: empty.bootstrap()) == "no attack ran, so there is nothing to bootstrap"


def _fake(name: str, t1: float, t01: float, auc: float) -> AttackResult:
    return AttackResult(name=name, scores=np.zeros(3), labels=np.array([1, 0, 0]), auc=auc,
                        tpr_at_0_1pct_fpr=t01, tpr_at_1pct_fpr=t1, fpr=np.zeros(1), tpr=np.zeros(1))


def test_best_uses_resolved_levels_in_order_then_auc() -> None:
    def best(n0: int, *atts: AttackResult) -> str:
        return MembershipReport(attacks={a.name: a for a in atts}, member_index=np.arange(5),
                                nonmember_index=np.arange(n0)).best.name

    x, y, z = _fake("x", 0.5, 0.1, 0.6), _fake("y", 0.4, 0.3, 0.9), _fake("z", 0.5, 0.2, 0.55)
    assert best(1000, x, y, z) == "z"  # 1 % first, then 0.1 % breaks the tie
    assert best(100, x, y, z) == "x"  # 0.1 % not resolved: 1 %, then AUC
    assert best(99, x, y, z) == "y"  # neither resolved: AUC only
    assert best(1000, _fake("p", 0.5, 0.2, 0.5), _fake("q", 0.5, 0.2, 0.5)) == "p"  # a full tie: the first


def test_bootstrap_of_a_report_uses_its_scores() -> None:
    rep = _report()
    ci = rep.bootstrap(n_boot=150, confidence=0.9, seed=3, method="bayesian")
    want = bootstrap_ci({n: r.scores for n, r in rep.attacks.items()}, rep.attacks["a"].labels, n_boot=150,
                        confidence=0.9, seed=3, method="bayesian")
    assert (ci.n_boot, ci.confidence, ci.method) == (150, 0.9, "bayesian")
    assert (ci.tpr, ci.auc, ci.best, ci.selected) == (want.tpr, want.auc, want.best, want.selected)
    d = rep.bootstrap()
    assert (d.n_boot, d.confidence, d.method) == (1000, 0.95, "exact")
    assert d.auc == bootstrap_ci({n: r.scores for n, r in rep.attacks.items()}, rep.attacks["a"].labels).auc


def test_most_exposed_members() -> None:
    rep = _report()
    assert rep.best.name == "a"
    sa = rep.attacks["b"].scores[:20]  # not the best attack
    order = np.argsort(-sa, kind="stable")
    assert rep.most_exposed(3, "b") == [(int(i) * 2 + 1, float(sa[i])) for i in order[:3]]
    assert len(rep.most_exposed()) == 10
    best = rep.best.name
    sb = rep.attacks[best].scores[:20]
    assert rep.most_exposed(2) == [(int(i) * 2 + 1, float(sb[i])) for i in np.argsort(-sb, kind="stable")[:2]]
    tie = MembershipReport(attacks={"t": _fake("t", 0, 0, 0.5)}, member_index=np.array([7]),
                           nonmember_index=np.arange(2))
    assert tie.most_exposed(5) == [(7, 0.0)]


def test_roc_points_on_a_log_grid() -> None:
    rep = _report()
    res = rep.attacks["a"]
    fpr, tpr = rep.roc_points("a", n_points=10)
    lo = 1 / 150
    grid = np.unique(np.r_[np.geomspace(lo, 1.0, 10), 0.001, 0.01])
    grid = grid[grid >= lo]
    assert fpr == grid.tolist() and fpr[0] == pytest.approx(lo) and fpr[-1] == 1.0 and 0.01 in fpr
    assert 0.001 not in fpr
    want = [max(float(res.tpr[max(0, np.searchsorted(res.fpr, g, side="right") - 1)]), lo) for g in grid]
    assert tpr == pytest.approx(want)
    assert len(rep.roc_points("a")[0]) == 61  # 60 log points and 1 %
    huge = MembershipReport(attacks={"a": res}, member_index=np.arange(20), nonmember_index=np.arange(10**6))
    f2, _ = huge.roc_points("a", n_points=5)
    assert f2[0] == pytest.approx(1e-5) and 0.001 in f2 and 0.01 in f2


# --- inputs -----------------------------------------------------------------------------------------


def _model(fn: Any = None, classes: Any = (0, 1)) -> CallableModel:
    return CallableModel(fn or (lambda X: np.c_[1 - _sig(X[:, 0]), _sig(X[:, 0])]), classes=list(classes),
                         n_features=3)


def _sig(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)


def test_input_refusals_are_exact() -> None:
    m = _model()
    Xi, yi = _data(30, 0)
    Xo, yo = _data(30, 1)
    assert _err(lambda: membership_inference(m, (Xi, yi), (Xo, yo), attacks=["loss", "zeta", "alpha"])) == \
        "unknown attack 'alpha'; expected some of loss, lira_offline, lira_online, rmia"
    assert _err(lambda: membership_inference(m, (Xi, yi), (Xo, yo), attacks=[])) == \
        "unknown attack '(none)'; expected some of loss, lira_offline, lira_online, rmia"
    assert _err(lambda: membership_inference(m, None, (Xo, yo))) == \
        "membership inference needs members (training data)"  # type: ignore[arg-type]
    assert _err(lambda: membership_inference(m, (Xi, yi), None)) == \
        "membership inference needs non-members (held-out data)"  # type: ignore[arg-type]
    with pytest.raises(DataError) as info:
        membership_inference(m, (Xi, None), (Xo, yo))  # type: ignore[arg-type]
    assert str(info.value) == "membership inference needs labels for the members (training data)"
    assert info.value.cli_hint == "pass --target"
    assert _err(lambda: membership_inference(m, (Xi, yi[:-1]), (Xo, yo))) == \
        "members (training data): 30 rows but 29 labels"
    assert _err(lambda: membership_inference(m, (Xi, yi), (Xo.astype(object), yo))) == \
        "non-members (held-out data): features must be numeric for membership inference"
    assert _err(lambda: membership_inference(m, (Xi.astype(str), yi), (Xo, yo))) == \
        "members (training data): features must be numeric for membership inference"
    assert _err(lambda: membership_inference(m, (Xi[:9], yi[:9]), (Xo, yo))) == (
        "too few members (training rows) for membership inference: 9 (need at least 10); a held-out set "
        "separate from the training data is required")
    assert _err(lambda: membership_inference(m, (Xi, yi), (Xo[:9], yo[:9]))) == (
        "too few non-members (held-out rows) for membership inference: 9 (need at least 10); a held-out set "
        "separate from the training data is required")
    rep = membership_inference(m, (Xi[:10], yi[:10]), (Xo[:10], yo[:10]), attacks=["loss"])
    assert (rep.n_members, rep.n_nonmembers) == (10, 10)
    # boolean features are numeric
    rng = np.random.default_rng(0)
    Bi, Bo = rng.random((30, 20)) > 0.5, rng.random((30, 20)) > 0.5
    bm = CallableModel(lambda X: np.c_[1 - X[:, 0] * 0.8, X[:, 0] * 0.8 + 0.1], classes=[0, 1], n_features=20)
    rep = membership_inference(bm, (Bi, yi), (Bo, yo), attacks=["loss"])
    assert rep.n_members == 30 and rep.overlap == 0


def test_a_dataset_is_taken_apart() -> None:
    from modelshield.data.dataset import Dataset

    Xi, yi = _data(30, 0)
    Xo, yo = _data(30, 1)
    ds_in = Dataset(X=Xi, y=yi)
    ds_out = Dataset(X=Xo, y=yo)
    a = membership_inference(_model(), ds_in, ds_out, attacks=["loss"])
    b = membership_inference(_model(), (Xi, yi), (Xo, yo), attacks=["loss"])
    np.testing.assert_array_equal(a.attacks["loss"].scores, b.attacks["loss"].scores)
    assert _err(lambda: membership_inference(_model(), Dataset(X=Xi, y=None), ds_out)) == \
        "membership inference needs labels for the members (training data)"


def test_overlap_is_dropped_or_refused_at_exactly_half() -> None:
    Xi, yi = _data(40, 0)
    Xo, yo = _data(40, 1)
    m = _model()
    Xmix, ymix = np.r_[Xo[:20], Xi[:20]], np.r_[yo[:20], yi[:20]]  # 20 of 40: exactly half, allowed
    rep = membership_inference(m, (Xi, yi), (Xmix, ymix), attacks=["loss"])
    assert rep.overlap == 20 and rep.n_nonmembers == 20
    assert rep.nonmember_index.tolist() == list(range(20))
    assert rep.notes == ["20 held-out rows also appear in the training data and were dropped from the non-members"]
    Xmix, ymix = np.r_[Xo[:19], Xi[:21]], np.r_[yo[:19], yi[:21]]
    assert _err(lambda: membership_inference(m, (Xi, yi), (Xmix, ymix), attacks=["loss"])) == (
        "members and non-members overlap: 21 of 40 held-out rows also appear in the training data; the "
        "held-out set must be data the model was not trained on")
    rep = membership_inference(m, (Xi, yi), (Xo, yo), attacks=["loss"])
    assert rep.overlap == 0 and rep.notes == []


def test_find_overlap_matches_features_and_label() -> None:
    X = np.arange(12.0).reshape(4, 3)
    y = np.array([0, 1, 0, 1])
    Xo = np.array([[0.0, 1, 2], [3.0, 4, 5], [9.0, 10, 11], [6.0, 7, 9]])
    yo = np.array([0, 0, 1, 0])
    assert find_overlap(X, y, Xo, yo).tolist() == [True, False, True, False]
    assert find_overlap(X.astype(np.float32), y, Xo, yo.astype(np.int8)).tolist() == [True, False, True, False]
    assert find_overlap(X.reshape(4, 3, 1), y, Xo.reshape(4, 3, 1), yo).tolist() == [True, False, True, False]
    assert find_overlap(X, y.astype(str), Xo, yo.astype(str)).tolist() == [True, False, True, False]
    assert find_overlap(X, y, Xo, yo.astype(str)).tolist() == [True, False, True, False]
    keys = mi._row_keys(X, y)
    assert len(keys) == 4 and len(set(keys.tolist())) == 4


def test_max_rows_samples_each_side_reproducibly() -> None:
    Xi, yi = _data(50, 0)
    Xo, yo = _data(40, 1)
    m = _model()
    rep = membership_inference(m, (Xi, yi), (Xo, yo), attacks=["loss"], max_rows=30, seed=9)
    rng = np.random.default_rng(9)
    want_in = np.sort(rng.choice(np.arange(50), size=30, replace=False))
    want_out = np.sort(rng.choice(np.arange(40), size=30, replace=False))
    assert rep.member_index.tolist() == want_in.tolist() and rep.nonmember_index.tolist() == want_out.tolist()
    assert rep.notes == ["members sampled to 30 rows", "non-members sampled to 30 rows"]
    rep = membership_inference(m, (Xi, yi), (Xo, yo), attacks=["loss"], max_rows=40, seed=9)
    assert rep.notes == ["members sampled to 40 rows"] and rep.n_nonmembers == 40
    assert rep.nonmember_index.tolist() == list(range(40))
    rep = membership_inference(m, (Xi, yi), (Xo, yo), attacks=["loss"], max_rows=50)
    assert rep.notes == [] and rep.n_members == 50


def test_the_loss_attack_scores_the_label_log_probability() -> None:
    Xi, yi = _data(30, 0)
    Xo, yo = _data(30, 1)
    rep = membership_inference(_model(), (Xi, yi), (Xo, yo), attacks=["loss"])
    X = np.r_[Xi, Xo]
    y = np.r_[yi, yo]
    p1 = _sig(X[:, 0])
    p = np.where(y == 1, p1, 1 - p1)
    want = np.log(np.clip(p, 1e-4, 1.0))
    np.testing.assert_allclose(rep.attacks["loss"].scores, want, rtol=1e-12)
    assert rep.attacks["loss"].labels.tolist() == [1] * 30 + [0] * 30
    assert set(rep.attacks) == {"loss"} and rep.attacks["loss"].name == "loss"
    assert rep.n_shadows == 0 and rep.shadow_time_s == 0.0


def test_label_log_probs_from_probabilities_and_log_probabilities() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    yi = np.array([0, 1, 2])
    lpy, lpn = mi._label_log_probs(lambda X: probs, np.zeros((3, 1)), yi)
    clipped = np.clip(probs, 1e-4, 1.0)
    np.testing.assert_allclose(lpy, np.log([0.7, 1.0, 1e-4]))
    np.testing.assert_allclose(lpn, np.maximum(np.log([clipped[0, 1] + clipped[0, 2], 2e-4, 0.5 + 0.5]),
                                               np.log(1e-4)))

    def logp(X: np.ndarray) -> np.ndarray:
        return np.log(np.array([[0.7, 0.2, 0.1], [1e-30, 1 - 2e-30, 1e-30]]))

    logp.log_probs = True  # type: ignore[attr-defined]
    lpy, lpn = mi._label_log_probs(logp, np.zeros((2, 1)), np.array([0, 1]))
    np.testing.assert_allclose(lpy, np.log([0.7, 1 - 2e-30]))
    np.testing.assert_allclose(lpn, np.log([0.3, 2e-30]))  # not floored: log-probabilities are exact
    one = mi._label_log_probs(lambda X: np.ones((2, 1)), np.zeros((2, 1)), np.array([0, 0]))
    assert one[0].tolist() == [0.0, 0.0] and np.all(one[1] == np.log(1e-4))
    lp1 = np.zeros((2, 1))

    def single(X: np.ndarray) -> np.ndarray:
        return lp1

    single.log_probs = True  # type: ignore[attr-defined]
    assert mi._label_log_probs(single, np.zeros((2, 1)), np.array([0, 0]))[1].tolist() == [-np.inf, -np.inf]
    # every other class at probability 0 from log-probabilities: log(1 - p) is -inf, not NaN
    def hard(X: np.ndarray) -> np.ndarray:
        return np.array([[0.0, -np.inf]])

    hard.log_probs = True  # type: ignore[attr-defined]
    lpy, lpn = mi._label_log_probs(hard, np.zeros((1, 1)), np.array([0]))
    assert lpy.tolist() == [0.0] and lpn.tolist() == [-np.inf]


def test_logit_conf_norm_logpdf_and_masked_stats() -> None:
    assert mi._logit_conf(np.array([-0.1, 0.0, 5e4]), np.array([-2.0, -1e5, 0.0])).tolist() == [1.9, 1e4, 1e4]
    assert mi._logit_conf(np.array([-1e5]), np.array([0.0])).tolist() == [-1e4]
    x, mu, sd = np.array([0.3, -1.0]), np.array([0.0, 1.0]), np.array([2.0, 0.5])
    want = [math.log(1 / (s * math.sqrt(2 * math.pi))) - 0.5 * ((a - m) / s) ** 2 for a, m, s in zip(x, mu, sd)]
    np.testing.assert_allclose(mi._norm_logpdf(x, mu, sd), want, rtol=1e-12)
    np.testing.assert_allclose(mi._norm_logpdf(x, mu, 2.0), [want[0], math.log(1 / (2 * math.sqrt(2 * math.pi)))
                                                             - 0.5 * (2.0 / 2) ** 2], rtol=1e-12)

    values = np.array([[1.0, 2.0, 3.0, 7.0], [3.0, 6.0, 4.0, 7.0], [8.0, 1.0, 5.0, 7.0]])
    mask = np.array([[True, True, True, False], [True, False, True, False], [False, False, True, False]])
    mean, std, pooled = mi._masked_mean_std(values, mask)
    overall = float(np.mean(values[mask]))
    assert mean.tolist() == pytest.approx([2.0, 2.0, 4.0, overall])
    s0 = float(np.std([1.0, 3.0], ddof=1))
    s2 = float(np.std([3.0, 4.0, 5.0], ddof=1))
    assert pooled == pytest.approx(float(np.median([s0, s2])))
    assert std.tolist() == pytest.approx([s0, pooled, s2, pooled])  # one or no value: the pooled std
    # no row with two values: the std of every masked value; constant values: the floor
    m2 = np.array([[True, False], [False, True]])
    _, std2, pooled2 = mi._masked_mean_std(np.array([[1.0, 0.0], [0.0, 4.0]]), m2)
    assert pooled2 == pytest.approx(1.5) and std2.tolist() == pytest.approx([1.5, 1.5])
    mean3, std3, pooled3 = mi._masked_mean_std(np.ones((3, 2)), np.ones((3, 2), bool))
    assert mean3.tolist() == [1.0, 1.0] and pooled3 == 1e-3 and std3.tolist() == [1e-3, 1e-3]
    mean4, std4, pooled4 = mi._masked_mean_std(np.ones((2, 2)), np.zeros((2, 2), bool))
    assert mean4.tolist() == [0.0, 0.0] and pooled4 == 1.0 and std4.tolist() == [1.0, 1.0]
    # two-value rows with a tiny spread keep it when the pooled std is larger; the floor is 1e-3
    v5 = np.array([[0.0, 0.0, 0.0], [1e-5, 2.0, 4.0]])
    _, std5, pooled5 = mi._masked_mean_std(v5, np.ones((2, 3), bool))
    assert pooled5 == pytest.approx(float(np.std([0.0, 2.0], ddof=1)))
    assert std5.tolist() == pytest.approx([1e-3, float(np.std([0.0, 2.0], ddof=1)),
                                           float(np.std([0.0, 4.0], ddof=1))])


# --- the shadow attacks, recomputed --------------------------------------------------------------


def _reference_shadow_attacks(t_lpy: np.ndarray, t_lpn: np.ndarray, s_lpy: np.ndarray, s_lpn: np.ndarray,
                              keep: np.ndarray, a: float, gamma: float, rng: np.random.Generator
                              ) -> dict[str, np.ndarray]:
    k, n = keep.shape
    fixed = k < 64
    phi_t = np.clip(t_lpy - t_lpn, -1e4, 1e4)
    phi_s = np.clip(s_lpy - s_lpn, -1e4, 1e4)

    def gauss(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std, pooled = mi._masked_mean_std(phi_s, mask)  # checked on its own above
        return mean, (np.full(n, pooled) if fixed else std)

    mu_out, sd_out = gauss(~keep)
    mu_in, sd_in = gauss(keep)

    def logpdf(x: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
        return np.array([_normal_logpdf(m[i], s[i], x[i]) for i in range(n)])

    out = {"lira_offline": (phi_t - mu_out) / sd_out,
           "lira_online": logpdf(phi_t, mu_in, sd_in) - logpdf(phi_t, mu_out, sd_out)}
    p_t, p_s = np.exp(t_lpy), np.exp(s_lpy)
    px = np.empty(n)
    for j in range(n):
        if keep[:, j].any():
            px[j] = p_s[:, j].mean()
        else:
            outs = p_s[~keep[:, j], j]
            p_out = outs.mean() if len(outs) else p_s[:, j].mean()
            px[j] = 0.5 * ((1 + a) * p_out + (1 - a))
    ratio = p_t / np.maximum(px, 1e-12)
    nz = min(n, 5000)
    z = ratio[rng.choice(n, size=nz, replace=False)]
    score = np.array([np.sum(z <= r / gamma) / nz for r in ratio])
    out["rmia"] = score + 1e-9 * np.tanh(np.log(np.maximum(ratio, 1e-12)))
    return out


def _normal_logpdf(mu: float, sd: float, x: float) -> float:
    return -0.5 * ((x - mu) / sd) ** 2 - math.log(sd * math.sqrt(2 * math.pi))


@pytest.mark.parametrize("k", [4, 63, 64, 70])
def test_shadow_attacks_match_the_papers_formulas(k: int) -> None:
    rng = np.random.default_rng(k)
    n = 30
    t_lpy = np.log(rng.uniform(0.05, 0.99, n))
    t_lpn = np.log1p(-np.exp(t_lpy))
    s_lpy = np.log(rng.uniform(0.05, 0.99, (k, n)))
    s_lpn = np.log1p(-np.exp(s_lpy))
    keep = np.argsort(rng.random((k, n)), axis=0) < k // 2
    labels = np.r_[np.ones(15, np.int64), np.zeros(15, np.int64)]
    got = mi._shadow_attacks(["lira_offline", "lira_online", "rmia"], t_lpy, t_lpn, s_lpy, s_lpn, keep, labels,
                             rmia_a=0.3, gamma=1.0, rng=np.random.default_rng(11))
    want = _reference_shadow_attacks(t_lpy, t_lpn, s_lpy, s_lpn, keep, 0.3, 1.0, np.random.default_rng(11))
    assert list(got) == ["lira_offline", "lira_online", "rmia"]
    for name in got:
        np.testing.assert_allclose(got[name].scores, want[name], rtol=1e-10, atol=1e-12, err_msg=name)
        assert got[name].name == name and got[name].labels.tolist() == labels.tolist()


def test_rmia_offline_correction_gamma_and_attack_selection() -> None:
    rng = np.random.default_rng(1)
    k, n = 4, 20
    t_lpy = np.log(rng.uniform(0.05, 0.99, n))
    t_lpn = np.log1p(-np.exp(t_lpy))
    s_lpy = np.log(rng.uniform(0.05, 0.99, (k, n)))
    s_lpn = np.log1p(-np.exp(s_lpy))
    keep = np.zeros((k, n), bool)
    keep[:2, :10] = True  # rows 10..19 have no IN shadow: the offline correction with a
    keep[:, 5] = True  # row 5: IN everywhere, no OUT shadow
    labels = np.r_[np.ones(10, np.int64), np.zeros(10, np.int64)]
    got = mi._shadow_attacks(["rmia"], t_lpy, t_lpn, s_lpy, s_lpn, keep, labels, rmia_a=0.6, gamma=1.7,
                             rng=np.random.default_rng(2))
    want = _reference_shadow_attacks(t_lpy, t_lpn, s_lpy, s_lpn, keep, 0.6, 1.7, np.random.default_rng(2))
    assert list(got) == ["rmia"]
    np.testing.assert_allclose(got["rmia"].scores, want["rmia"], rtol=1e-10, atol=1e-12)
    only = mi._shadow_attacks(["lira_online"], t_lpy, t_lpn, s_lpy, s_lpn, keep, labels, rmia_a=0.3, gamma=1.0,
                              rng=np.random.default_rng(2))
    assert list(only) == ["lira_online"]
    np.testing.assert_allclose(only["lira_online"].scores, want["lira_online"], rtol=1e-10, atol=1e-12)
    assert mi._shadow_attacks([], t_lpy, t_lpn, s_lpy, s_lpn, keep, labels, rmia_a=0.3, gamma=1.0,
                              rng=np.random.default_rng(2)) == {}


def test_rmia_samples_at_most_5000_population_rows() -> None:
    n = 5003
    rng = np.random.default_rng(0)
    t_lpy = np.log(rng.uniform(0.05, 0.99, n))
    s_lpy = np.log(rng.uniform(0.05, 0.99, (2, n)))
    keep = np.array([np.arange(n) % 2 == 0, np.arange(n) % 2 == 1])
    labels = (np.arange(n) < 2500).astype(np.int64)
    got = mi._shadow_attacks(["rmia"], t_lpy, np.log1p(-np.exp(t_lpy)), s_lpy, np.log1p(-np.exp(s_lpy)), keep,
                             labels, rmia_a=0.3, gamma=1.0, rng=np.random.default_rng(5))
    p_x = np.exp(s_lpy).mean(axis=0)
    ratio = np.exp(t_lpy) / p_x
    z = np.sort(ratio[np.random.default_rng(5).choice(n, size=5000, replace=False)])
    want = np.searchsorted(z, ratio, side="right") / 5000 + 1e-9 * np.tanh(np.log(ratio))
    np.testing.assert_allclose(got["rmia"].scores, want, rtol=1e-12)


# --- membership_inference with a deterministic shadow trainer --------------------------------------


class _Trainer:
    """Shadow "models" that memorise: label probability 0.95 on a training row, else that of a fixed
    noisy function of the row and the seed. Records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, np.ndarray, int]] = []

    def __call__(self, X: np.ndarray, y: np.ndarray, seed: int) -> Any:
        self.calls.append((X.copy(), y.copy(), seed))
        seen = {tuple(r) for r in X.tolist()}

        def predict(Xq: np.ndarray) -> np.ndarray:
            base = 0.5 + 0.4 * np.tanh(Xq[:, 0] + 0.01 * seed)
            member = np.array([tuple(r) in seen for r in Xq.tolist()])
            p1 = np.where(member, 0.95, base)
            return np.c_[1 - p1, p1]

        return predict


def test_shadow_attacks_end_to_end_with_a_known_trainer() -> None:
    Xi, yi = _data(30, 0)
    Xo, yo = _data(30, 1)
    trainer = _Trainer()
    progress: list[tuple[float, str]] = []
    rep = membership_inference(_model(), (Xi, yi), (Xo, yo), n_shadows=4, trainer=trainer, n_jobs=1, seed=5,
                               rmia_a=0.4, rmia_gamma=1.3, progress=lambda f, m: progress.append((f, m)))
    assert list(rep.attacks) == ["loss", "lira_offline", "lira_online", "rmia"]
    assert rep.n_shadows == 4 and rep.notes == [] and rep.shadow_time_s > 0
    X, y = np.r_[Xi, Xo], np.r_[yi, yo]
    # the paired design: every row IN exactly two of the four shadows, drawn from the seeded generator
    rng = np.random.default_rng(5)
    keep = np.argsort(rng.random((4, 60)), axis=0) < 2
    assert [c[2] for c in trainer.calls] == [5 * 1009 + i for i in range(4)]
    for i, (Xs, ys, _) in enumerate(trainer.calls):
        np.testing.assert_array_equal(Xs, X[keep[i]])
        np.testing.assert_array_equal(ys, y[keep[i]])
    assert keep.sum(axis=0).tolist() == [2] * 60
    p1 = _sig(X[:, 0])
    t_lpy = np.log(np.clip(np.where(y == 1, p1, 1 - p1), 1e-4, 1))
    t_lpn = np.log(np.clip(np.where(y == 1, 1 - p1, p1), 1e-4, 1))
    s_lpy, s_lpn = [], []
    for i in range(4):
        ps = trainer.calls[i]
        pred = _Trainer()(ps[0], ps[1], ps[2])
        a, b = mi._label_log_probs(pred, X, y)
        s_lpy.append(a)
        s_lpn.append(b)
    want = _reference_shadow_attacks(t_lpy, t_lpn, np.array(s_lpy), np.array(s_lpn), keep, 0.4, 1.3, rng)
    for name in ("lira_offline", "lira_online"):
        np.testing.assert_allclose(rep.attacks[name].scores, want[name], rtol=1e-9, atol=1e-12, err_msg=name)
    # RMIA's population sample comes from the same generator, after the design
    np.testing.assert_allclose(rep.attacks["rmia"].scores, want["rmia"], rtol=1e-9, atol=1e-12)
    assert progress[0] == (0.02, "scoring the target model")
    assert progress[1:5] == [(pytest.approx(0.1 + 0.8 * i / 4), f"trained {i}/4 shadow models") for i in range(1, 5)]
    assert progress[-1] == (1.0, "membership inference done") and len(progress) == 6


def test_shadow_skips_are_noted_with_their_reason() -> None:
    Xi, yi = _data(20, 0)
    Xo, yo = _data(19, 1)
    rep = membership_inference(_model(), (Xi, yi), (Xo, yo), trainer=_Trainer(), n_jobs=1)
    assert rep.notes == ["skipped lira_offline, lira_online, rmia: only 39 rows in all, shadow models need at "
                         "least 40"]
    assert list(rep.attacks) == ["loss"] and rep.n_shadows == 0
    Xo, yo = _data(20, 1)
    t = _Trainer()
    rep = membership_inference(_model(), (Xi, yi), (Xo, yo), attacks=["rmia"], trainer=t, n_shadows=2, n_jobs=1)
    assert list(rep.attacks) == ["rmia"] and rep.n_shadows == 2 and len(t.calls) == 2  # exactly 40 is enough
    rep = membership_inference(_model(), (Xi, yi), (Xo, yo), attacks=["rmia", "loss"], trainer=_Trainer(),
                               n_shadows=1)
    assert rep.notes == ["skipped rmia: shadow attacks need n_shadows >= 2"] and list(rep.attacks) == ["loss"]
    rep = membership_inference(_model(), (Xi, yi), (Xo, yo), attacks=["lira_online"], n_shadows=2)
    assert rep.notes == ["skipped lira_online: CallableModel (object) cannot be retrained, so shadow models "
                         "are not available; pass a trainer or use the 'loss' attack only"]
    assert rep.attacks == {}


def test_shadow_budget_note_and_parallel_batches() -> None:
    Xi, yi = _data(25, 0)
    Xo, yo = _data(25, 1)
    t = _Trainer()
    rep = membership_inference(_model(), (Xi, yi), (Xo, yo), attacks=["lira_offline"], trainer=t, n_shadows=6,
                               shadow_budget_s=0.0, n_jobs=1)
    assert rep.n_shadows == 2 and len(t.calls) == 2
    assert rep.notes == ["shadow budget of 0s reached after 2 of 6 shadow models"]
    t = _Trainer()
    rep = membership_inference(_model(), (Xi, yi), (Xo, yo), attacks=["lira_offline"], trainer=t, n_shadows=6,
                               shadow_budget_s=0.0, n_jobs=4)
    assert rep.n_shadows == 4 and len(t.calls) == 4  # one batch of four: at least two trained
    t = _Trainer()
    rep = membership_inference(_model(), (Xi, yi), (Xo, yo), attacks=["lira_offline"], trainer=t, n_shadows=5,
                               shadow_budget_s=1e6, n_jobs=2)
    assert rep.n_shadows == 5 and rep.notes == [] and sorted(c[2] for c in t.calls) == list(range(5))
    t2 = _Trainer()
    serial = membership_inference(_model(), (Xi, yi), (Xo, yo), attacks=["lira_offline"], trainer=t2, n_shadows=5,
                                  n_jobs=1)
    np.testing.assert_array_equal(rep.attacks["lira_offline"].scores, serial.attacks["lira_offline"].scores)
    rep = membership_inference(_model(), (Xi, yi), (Xo, yo), attacks=["lira_offline"], trainer=_Trainer(),
                               n_shadows=3, shadow_budget_s=600.0, n_jobs=None)
    assert rep.n_shadows == 3


def test_train_shadows_stops_before_a_batch_that_would_overrun(monkeypatch: pytest.MonkeyPatch) -> None:
    X = np.arange(24.0).reshape(12, 2)
    yi = np.zeros(12, np.int64)
    keep = np.tile(np.arange(12) < 6, (6, 1))

    def run(budget: float | None, n_jobs: int = 1) -> tuple[int, list[str]]:
        ticks = iter(float(i) for i in range(100))  # t0 = 0, then one second per batch
        monkeypatch.setattr(mi, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
        msgs: list[str] = []
        lpy, lpn, kept, k = mi._train_shadows(lambda Xs, ys, s: (lambda Xq: np.full((len(Xq), 2), 0.5)), X, yi,
                                              keep, seed=0, n_jobs=n_jobs, budget_s=budget,
                                              progress=lambda f, m: msgs.append(m))
        assert lpy.shape == (k, 12) and lpn.shape == (k, 12) and kept.shape == (k, 12)
        return k, msgs

    # after 2 batches: 1 s elapsed, 0.5 s a batch: 1.5 is not over a 1.5 s budget; after 3: 2 + 2/3 is
    k, msgs = run(1.5)
    assert k == 3 and msgs == [f"trained {i}/6 shadow models" for i in range(1, 4)]
    assert run(2.7)[0] == 4  # after 4: 3 + 3/4 > 2.7
    assert run(None)[0] == 6
    assert run(0.0)[0] == 2  # never fewer than two
    assert run(0.0, n_jobs=3)[0] == 3  # a batch is never cut
    # two per batch: after batch 1 (2 shadows) 1 s, 1 s a batch; after batch 2 (4) 2 s, 1 s a batch
    assert run(2.0, n_jobs=2)[0] == 4 and run(1.9, n_jobs=2)[0] == 2


def test_target_predictor_prefers_torch_log_probabilities() -> None:
    import torch

    from modelshield.models.wrap import wrap_object

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    m = wrap_object(net)
    pred = mi._target_predictor(m)
    assert getattr(pred, "log_probs", False) is True
    X = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    with torch.no_grad():
        want = torch.log_softmax(net(torch.as_tensor(X)).double(), dim=-1).numpy()
    np.testing.assert_allclose(pred(X), want, rtol=1e-6)
    cm = _model()
    assert mi._target_predictor(cm) == cm.predict_proba


def test_training_recipe_refuses_an_unknown_optimizer_and_trains_with_sgd() -> None:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    X, y = _data(40, 0)
    assert _err(lambda: mi.TrainingRecipe(optimizer="lbfgs", epochs=1).fit(net, X, y)) == \
        "unknown optimizer 'lbfgs'; expected 'adam' or 'sgd'"
    a = mi.TrainingRecipe(optimizer="sgd", epochs=30, lr=0.1, batch_size=8).fit(net, X, y, seed=1)
    acc = float((a(torch.as_tensor(X, dtype=torch.float32)).argmax(1).numpy() == y).mean())
    assert acc > 0.75 and not a.training
    b = mi.TrainingRecipe(optimizer="sgd", epochs=30, lr=0.1, batch_size=8).fit(
        torch.nn.Sequential(torch.nn.Linear(3, 2)), X, y, seed=1)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)  # same seed: same initialisation and batch order
    c = mi.TrainingRecipe(optimizer="sgd", epochs=30, lr=0.1, batch_size=8).fit(
        torch.nn.Sequential(torch.nn.Linear(3, 2)), X, y, seed=2)
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))
    assert (mi.TrainingRecipe().epochs, mi.TrainingRecipe().batch_size, mi.TrainingRecipe().lr,
            mi.TrainingRecipe().weight_decay, mi.TrainingRecipe().optimizer) == (150, None, 1e-2, 0.0, "adam")


def test_rebuild_refuses_what_it_cannot_reproduce() -> None:
    import torch

    assert mi.rebuild_torchscript_mlp(None) is None
    only_act = torch.jit.script(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(3, 2)))
    assert mi.rebuild_torchscript_mlp(only_act) is None  # must start with a Linear layer
    lin = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.GELU(), torch.nn.Linear(4, 2))
    rebuilt = mi.rebuild_torchscript_mlp(torch.jit.script(lin))
    assert rebuilt is not None and rebuilt[0].bias is None and isinstance(rebuilt[1], torch.nn.GELU)
    assert not rebuilt.training
    x = torch.randn(3, 3)
    torch.testing.assert_close(rebuilt(x), lin(x))
    assert mi.rebuild_torchscript_mlp(torch.jit.script(torch.nn.Linear(3, 2))) is None  # not a Sequential


def test_default_trainer_refusal_and_sklearn_shadows() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from modelshield.models.wrap import wrap_object

    cm = _model()
    assert _err(lambda: mi.default_trainer(cm)) == (
        "CallableModel (object) cannot be retrained, so shadow models are not available; pass a trainer or "
        "use the 'loss' attack only")
    X, y = _data(60, 3)
    labels = np.array(["b", "a"])[y]  # text classes, sorted a < b
    model = wrap_object(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, labels))
    train = mi.default_trainer(model)
    yi = model.label_index(labels)
    pred = train(X[:40], yi[:40], 7)
    want = DecisionTreeClassifier(max_depth=3, random_state=7).fit(X[:40], labels[:40]).predict_proba(X)
    np.testing.assert_allclose(pred(X), want)
    # a shadow that saw one class only still answers in the target's class order
    only_b = yi == 1
    pred = train(X[only_b][:10], yi[only_b][:10], 1)
    assert pred(X[:3]).tolist() == [[0.0, 1.0]] * 3
    lr = wrap_object(LogisticRegression().fit(X, y))
    p = mi.default_trainer(lr)(X[:30], y[:30], 0)(X[:5])
    np.testing.assert_allclose(p, LogisticRegression().fit(X[:30], y[:30]).predict_proba(X[:5]))


def test_interval_defaults() -> None:
    iv = Interval(estimate=0.5, lower=0.4, upper=0.6)
    assert (iv.attack, iv.lower_attack) == ("", "")


def test_module_constants() -> None:
    assert mi.ATTACKS == ("loss", "lira_offline", "lira_online", "rmia")
    assert mi.SHADOW_ATTACKS == {"lira_offline", "lira_online", "rmia"}
    assert (mi.MIN_ROWS, mi.MIN_SHADOW_POOL) == (10, 40)
    assert mi.FPR_LEVELS == (0.01, 0.001)
    assert mi.LEVEL_KEYS == {0.01: "tpr_at_1pct_fpr", 0.001: "tpr_at_0_1pct_fpr"}
    assert mi.LEVEL_LABELS == {0.01: "1%", 0.001: "0.1%"}
    assert mi.BOOTSTRAP_METHODS == ("exact", "bayesian", "multinomial")
    assert (mi._PROB_EPS, mi._EPS) == (1e-4, 1e-12)


# --- PyTorch shadows: the recipe, the logit function, the TorchScript rebuild ----------------------


def _reference_fit(module: Any, X: np.ndarray, y: np.ndarray, seed: int, *, epochs: int, batch_size: int | None,
                   lr: float, weight_decay: float, optimizer: str) -> Any:
    """The documented recipe written out: seeded re-initialisation, seeded batch order, cross-entropy."""
    import torch

    torch.manual_seed(seed)
    for m in module.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    gen = torch.Generator().manual_seed(seed)
    params = list(module.parameters())
    opt = (torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay) if optimizer == "sgd"
           else torch.optim.Adam(params, lr=lr, weight_decay=weight_decay))
    Xt = torch.tensor(X, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.int64)
    n = len(Xt)
    bs = min(batch_size, n) if batch_size else n
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen) if bs < n else torch.arange(n)
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(Xt[idx]), yt[idx]).backward()
            opt.step()
    return module.eval()


@pytest.mark.parametrize(("optimizer", "batch_size", "lr", "wd"), [("sgd", 8, 0.05, 0.01), ("adam", None, 0.02, 0.0),
                                                                   ("adam", 16, 0.003, 0.1), ("sgd", 100, 0.2, 0.0)])
def test_training_recipe_follows_the_documented_recipe(optimizer: str, batch_size: int | None, lr: float,
                                                       wd: float) -> None:
    import torch

    X, y = _data(40, 4)
    torch.manual_seed(123)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    recipe = mi.TrainingRecipe(epochs=7, batch_size=batch_size, lr=lr, weight_decay=wd, optimizer=optimizer)
    import copy

    got = recipe.fit(copy.deepcopy(net), X, y.astype(np.int32), seed=3)  # any integer label type
    want = _reference_fit(copy.deepcopy(net), X, y, 3, epochs=7, batch_size=batch_size, lr=lr, weight_decay=wd,
                          optimizer=optimizer)
    for p, q in zip(got.parameters(), want.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    assert not got.training


def test_training_recipe_defaults_and_global_rng() -> None:
    import copy

    import torch

    X, y = _data(30, 2)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    rec = mi.TrainingRecipe(epochs=3)
    torch.manual_seed(9)
    before = torch.rand(3)
    torch.manual_seed(9)
    a = rec.fit(copy.deepcopy(net), X, y)  # seed 0 by default
    after = torch.rand(3)
    torch.testing.assert_close(before, after)  # the global generator is left as it was
    b = rec.fit(copy.deepcopy(net), X, y, seed=0)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


def test_torch_logit_fn_takes_any_float_input() -> None:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4))
    fn = mi._torch_logit_fn(net)
    X = np.random.default_rng(1).normal(size=(6, 3))  # float64 input, float32 model
    out = fn(X)
    with torch.no_grad():
        want = torch.log_softmax(net(torch.as_tensor(X, dtype=torch.float32)).double(), dim=1).numpy()
    assert out.dtype == np.float64 and out.shape == (6, 4)
    np.testing.assert_allclose(out, want, rtol=1e-12)
    assert fn.log_probs is True  # type: ignore[attr-defined]


def _scripted_with_fake_relu(scale: float, shift: float, *, zero: bool = False) -> Any:
    import torch

    class ReLU(torch.nn.Module):  # named like torch's ReLU, but not the same function
        def __init__(self) -> None:
            super().__init__()
            self.scale = scale
            self.shift = shift

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x) * self.scale + self.shift

    lin = torch.nn.Linear(4, 4)
    with torch.no_grad():
        if zero:
            lin.weight.zero_()
            lin.bias.zero_()
        else:
            lin.weight.copy_(3 * torch.eye(4))
            lin.bias.zero_()
    return torch.jit.script(torch.nn.Sequential(lin, ReLU()))


def test_rebuild_checks_the_copy_against_the_scripted_module() -> None:
    """A rebuilt copy is used only when it reproduces the scripted outputs within rtol 1e-4, atol 1e-5."""
    assert mi.rebuild_torchscript_mlp(_scripted_with_fake_relu(1.0, 0.0)) is not None  # really a ReLU
    assert mi.rebuild_torchscript_mlp(_scripted_with_fake_relu(1.5, 0.0)) is None  # 50 % off
    assert mi.rebuild_torchscript_mlp(_scripted_with_fake_relu(1 + 5e-5, 0.0)) is not None  # within rtol 1e-4
    assert mi.rebuild_torchscript_mlp(_scripted_with_fake_relu(1 + 5e-4, 0.0)) is None
    assert mi.rebuild_torchscript_mlp(_scripted_with_fake_relu(1.0, 5e-6, zero=True)) is not None  # within atol
    assert mi.rebuild_torchscript_mlp(_scripted_with_fake_relu(1.0, 0.5, zero=True)) is None


def test_rebuild_leaves_the_global_rng_alone_and_needs_a_scripted_sequential() -> None:
    import types

    import torch

    class Chain(torch.nn.Module):  # children are Linear layers applied in order, but not a Sequential
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(3, 4)
            self.b = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x))

    assert mi.rebuild_torchscript_mlp(torch.jit.script(Chain())) is None
    assert mi.rebuild_torchscript_mlp(types.SimpleNamespace(original_name="Sequential")) is None
    scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)))
    # the check's input comes from its own generator: the global one only initialises the new layers
    torch.manual_seed(5)
    _ = (torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    want = torch.rand(4)
    torch.manual_seed(5)
    assert mi.rebuild_torchscript_mlp(scripted) is not None
    torch.testing.assert_close(torch.rand(4), want)


def test_roc_points_below_the_first_roc_point_and_with_one_nonmember() -> None:
    coarse = AttackResult(name="c", scores=np.zeros(3), labels=np.array([1, 0, 0]), auc=0.5, tpr_at_0_1pct_fpr=0.0,
                          tpr_at_1pct_fpr=0.0, fpr=np.array([0.1, 0.5, 1.0]), tpr=np.array([0.2, 0.8, 1.0]))
    rep = MembershipReport(attacks={"c": coarse}, member_index=np.arange(5), nonmember_index=np.arange(100))
    fpr, tpr = rep.roc_points("c", n_points=4)
    # FPRs below the curve's first point take its first TPR; then the last point at or below each FPR
    want = [0.2 if g < 0.5 else 0.8 if g < 1.0 else 1.0 for g in fpr]
    assert fpr[0] == pytest.approx(0.01) and tpr == pytest.approx(want)
    starts_at_zero = AttackResult(name="z", scores=np.zeros(3), labels=np.array([1, 0, 0]), auc=0.5,
                                  tpr_at_0_1pct_fpr=0.0, tpr_at_1pct_fpr=0.0, fpr=np.array([0.0, 0.5, 1.0]),
                                  tpr=np.array([0.3, 0.8, 1.0]))
    rep = MembershipReport(attacks={"z": starts_at_zero}, member_index=np.arange(5), nonmember_index=np.arange(100))
    fpr, tpr = rep.roc_points("z", n_points=4)
    assert tpr == pytest.approx([0.3 if g < 0.5 else 0.8 if g < 1.0 else 1.0 for g in fpr])
    one = MembershipReport(attacks={"z": starts_at_zero}, member_index=np.arange(5), nonmember_index=np.arange(1))
    assert one.roc_points("z") == ([1.0], [1.0])
    none = MembershipReport(attacks={"z": starts_at_zero}, member_index=np.arange(5), nonmember_index=np.arange(0))
    assert none.roc_points("z") == ([1.0], [1.0])


def test_most_exposed_keeps_the_member_order_among_ties() -> None:
    rng = np.random.default_rng(4)
    member = rng.integers(0, 3, 200).astype(np.float64)  # many ties
    res = roc_metrics(np.r_[member, np.zeros(50)], np.r_[np.ones(200), np.zeros(50)], "t")
    rep = MembershipReport(attacks={"t": res}, member_index=np.arange(200) + 1000, nonmember_index=np.arange(50))
    want = sorted(range(200), key=lambda i: (-member[i], i))[:60]
    assert rep.most_exposed(60, "t") == [(1000 + i, float(member[i])) for i in want]


def _torch_setup() -> tuple[Any, np.ndarray, np.ndarray]:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    X, y = _data(40, 6)
    return net, X.astype(np.float32), y


def _same_predictions(a: Any, b: Any, X: np.ndarray) -> None:
    np.testing.assert_allclose(a(X), b(X), rtol=1e-6, atol=1e-7)


def test_default_trainer_for_an_eager_pytorch_model_and_its_recipe() -> None:
    import copy

    import torch

    from modelshield.models.wrap import wrap_object

    net, X, y = _torch_setup()
    m = wrap_object(copy.deepcopy(net))
    rec = mi.TrainingRecipe(epochs=3, lr=0.05)
    pred = mi.default_trainer(m, rec)(X, y, 5)
    assert pred.log_probs is True  # type: ignore[attr-defined]
    _same_predictions(pred, mi._torch_logit_fn(rec.fit(m.clone_unfitted(), X, y, 5)), X)
    other = mi._torch_logit_fn(rec.fit(m.clone_unfitted(), X, y, 0))
    assert not np.allclose(pred(X), other(X))  # the seed reaches the recipe
    # the model's own recipe when none is given; the one given wins over it
    m.extra["training_recipe"] = mi.TrainingRecipe(epochs=2, lr=0.5, optimizer="sgd")
    _same_predictions(mi.default_trainer(m)(X, y, 1), mi._torch_logit_fn(
        m.extra["training_recipe"].fit(m.clone_unfitted(), X, y, 1)), X)
    _same_predictions(mi.default_trainer(m, rec)(X, y, 1), mi._torch_logit_fn(rec.fit(m.clone_unfitted(), X, y, 1)),
                      X)
    del m.extra["training_recipe"]
    _same_predictions(mi.default_trainer(m)(X, y, 2), mi._torch_logit_fn(
        mi.TrainingRecipe().fit(m.clone_unfitted(), X, y, 2)), X)
    for p, q in zip(m.module.parameters(), net.parameters()):
        assert torch.equal(p, q)  # the target itself is never retrained


def test_default_trainer_rebuilds_a_torchscript_mlp() -> None:
    import copy

    import torch

    from modelshield.models.wrap import wrap_object

    net, X, y = _torch_setup()
    scripted = wrap_object(torch.jit.script(copy.deepcopy(net)))
    rec = mi.TrainingRecipe(epochs=3, lr=0.05)
    pred = mi.default_trainer(scripted, rec)(X, y, 4)
    rebuilt = mi.rebuild_torchscript_mlp(scripted.module)
    _same_predictions(pred, mi._torch_logit_fn(rec.fit(copy.deepcopy(rebuilt), X, y, 4)), X)
    odd = wrap_object(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4),
                                                           torch.nn.Linear(4, 2))))
    assert _err(lambda: mi.default_trainer(odd)) == (
        "TorchModel (object) cannot be retrained, so shadow models are not available; pass a trainer or use the "
        "'loss' attack only")
    # only a PyTorch model is rebuilt: another adapter holding a TorchScript module is not retrainable
    other = _model()
    other.module = torch.jit.script(copy.deepcopy(net))  # type: ignore[attr-defined]
    assert _err(lambda: mi.default_trainer(other)).startswith("CallableModel (object) cannot be retrained")


def test_parallel_shadows_run_together_with_one_blas_thread_each() -> None:
    import threading

    from threadpoolctl import threadpool_info, threadpool_limits

    X = np.arange(40.0).reshape(20, 2)
    yi = np.zeros(20, np.int64)
    keep = np.tile(np.arange(20) < 10, (4, 1))

    pytest.importorskip("sklearn.ensemble")  # loads OpenBLAS / OpenMP, whose thread pools are limited

    def run(n_jobs: int) -> list[list[int]]:
        seen: list[list[int]] = []
        gate = threading.Barrier(n_jobs, timeout=20)  # 4 shadows: batches of n_jobs in {1, 2, 4}

        def trainer(Xs: np.ndarray, ys: np.ndarray, seed: int) -> Any:
            seen.append([int(i["num_threads"]) for i in threadpool_info()])
            gate.wait()  # the shadows of one batch train at the same time
            return lambda Xq: np.full((len(Xq), 2), 0.5)

        with threadpool_limits(limits=2):
            k = mi._train_shadows(trainer, X, yi, keep, seed=0, n_jobs=n_jobs, budget_s=None,
                                  progress=lambda f, m: None)[3]
        assert k == 4 and len(seen) == 4
        return seen

    if not threadpool_info():
        pytest.skip("no BLAS/OpenMP thread pool loaded")
    assert all(set(s) == {2} for s in run(1))  # one at a time: the caller's limit is left alone
    assert all(set(s) == {1} for s in run(2))  # side by side: one BLAS thread each
    assert all(set(s) == {1} for s in run(4))


def test_sklearn_shadows_are_seeded_and_take_the_models_input_form() -> None:
    import pandas as pd
    from sklearn.base import clone
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from modelshield.models.wrap import wrap_object

    rng = np.random.default_rng(8)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=80) > 0).astype(np.int64) + 2 * (X[:, 1] > 0.8)  # 4 classes
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    train = mi.default_trainer(wrap_object(forest))
    got = train(X[:50], y[:50], 7)(X)
    want = RandomForestClassifier(n_estimators=3, random_state=7).fit(X[:50], y[:50]).predict_proba(X)
    np.testing.assert_allclose(got, want)  # the shadow's seed replaces random_state
    assert not np.allclose(got, train(X[:50], y[:50], 8)(X))
    # a pipeline that selects columns by name: shadows train and predict on the model's own input form
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    pipe = Pipeline([("ct", ColumnTransformer([("s", StandardScaler(), ["a", "b", "c"])])),
                     ("clf", RandomForestClassifier(n_estimators=3, random_state=0))]).fit(df, y)
    got = mi.default_trainer(wrap_object(pipe))(X[:50], y[:50], 5)(X)
    ref = clone(pipe).set_params(clf__random_state=5).fit(df.iloc[:50], y[:50])
    np.testing.assert_allclose(got, ref.predict_proba(df))


@pytest.mark.parametrize("batch_size", [None, 40, 100])
def test_a_full_batch_is_taken_in_row_order_bit_for_bit(batch_size: int | None) -> None:
    """Full-batch training takes the rows in their order (no shuffle): the parameters equal the written-out
    recipe's bit for bit, not just within float rounding."""
    import copy

    import torch

    X, y = _data(40, 5)
    torch.manual_seed(7)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))
    got = mi.TrainingRecipe(epochs=5, batch_size=batch_size, lr=0.05).fit(copy.deepcopy(net), X, y, seed=2)
    want = _reference_fit(copy.deepcopy(net), X, y, 2, epochs=5, batch_size=batch_size, lr=0.05, weight_decay=0.0,
                          optimizer="adam")
    for p, q in zip(got.parameters(), want.parameters()):
        assert torch.equal(p, q)
