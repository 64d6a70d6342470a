"""Statistical honesty of membership-inference grading (issue 15 D.5, issue 22 E).

* a TPR at an FPR below ``1 / n_nonmembers`` is never reported as a number nor graded;
* a TPR at 1 % FPR with too few non-members for any lower bound is shown but not graded;
* the bootstrap interval (members, non-members and the choice among attacks) covers the true TPR at
  its stated level on simulated Gaussian scores with a known ROC, where the old members-only
  Clopper-Pearson bound does not;
* grades are stable across seeds on a generated family of models.

Coverage tolerance: with 100 independent simulations and a true coverage of 95 %, the number of
covering intervals is Binomial(100, 0.95) (sd 2.2): at least 88 is required (P(X <= 87) ~ 0.1 %); the
lower bound is one-sided at 97.5 %, so at most 7 of 100 may lie above the truth (P(X >= 8 | 2.5 %) ~
0.4 %). A mean width at most 1.75 times the asymptotic (delta-method) width keeps the check from being
passed by an interval that is merely wide ([0, 1] would score about 3.6 here; the intervals are wider
than the delta method's on purpose at 400 non-members, just above the 368 that any bound at 1 % FPR
needs, since they include the chance that the threshold is set too low). Seeds are fixed, so the tests
are deterministic.
"""

from __future__ import annotations

import math
import time
from statistics import NormalDist

import numpy as np
import pytest

from modelshield.checks.base import AuditContext
from modelshield.checks.privacy import PrivacyCheck
from modelshield.data.dataset import Dataset
from modelshield.errors import DataError
from modelshield.findings import Severity
from modelshield.privacy.membership import (
    FPR_LEVELS,
    MembershipReport,
    bootstrap_ci,
    fpr_resolvable,
    nonmembers_needed,
    nonmembers_to_bound,
    roc_metrics,
)

_N = NormalDist()


def _gaussian_scores(rng: np.random.Generator, n1: int, n0: int, mus: list[float], rho: float
                     ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Members ~ N(mu_a, 1), non-members ~ N(0, 1) per attack ``a``; attacks share a component
    (correlation ``rho``), as attacks scoring the same rows do."""
    def draw(n: int, shifts: list[float]) -> list[np.ndarray]:
        z = rng.normal(size=n)
        return [math.sqrt(rho) * z + math.sqrt(1 - rho) * rng.normal(size=n) + s for s in shifts]

    mem, non = draw(n1, mus), draw(n0, [0.0] * len(mus))
    scores = {f"attack{i}": np.r_[m, o] for i, (m, o) in enumerate(zip(mem, non))}
    return scores, np.r_[np.ones(n1, np.int64), np.zeros(n0, np.int64)]


def _true_tpr(mu: float, fpr: float) -> float:
    return _N.cdf(mu - _N.inv_cdf(1 - fpr))


def _asymptotic_sd(mu: float, fpr: float, n1: int, n0: int) -> float:
    """Delta-method sd of the empirical TPR at a fixed FPR for the binormal ROC."""
    c = _N.inv_cdf(1 - fpr)
    t = _true_tpr(mu, fpr)
    slope = _N.pdf(c - mu) / _N.pdf(c)
    return math.sqrt(t * (1 - t) / n1 + slope**2 * fpr * (1 - fpr) / n0)


def _old_lower_bound(tpr: float, n1: int) -> float:
    """The bound the check used before: Clopper-Pearson over the members only (2.5 % quantile)."""
    from scipy.stats import beta

    k = round(tpr * n1)
    return 0.0 if k == 0 else float(beta.ppf(0.025, k, n1 - k + 1))


def _coverage(mus: list[float], rho: float, *, n1: int, n0: int, n_sim: int = 100, n_boot: int = 200,
              fpr: float = 0.01) -> dict[str, float]:
    truth = max(_true_tpr(mu, fpr) for mu in mus)
    cover = above = below = 0
    widths = []
    old_above = 0
    for i in range(n_sim):
        scores, labels = _gaussian_scores(np.random.default_rng(10_000 + i), n1, n0, mus, rho)
        ci = bootstrap_ci(scores, labels, n_boot=n_boot, seed=i)
        iv = ci.tpr[fpr]
        assert iv is not None and ci.gradable[fpr]
        cover += iv.lower <= truth <= iv.upper
        above += iv.lower > truth
        below += iv.upper < truth
        widths.append(iv.upper - iv.lower)
        old_above += _old_lower_bound(iv.estimate, n1) > truth
    sd = max(_asymptotic_sd(mu, fpr, n1, n0) for mu in mus)
    return {"coverage": cover / n_sim, "lower_above_truth": above / n_sim, "upper_below_truth": below / n_sim,
            "width_ratio": float(np.mean(widths)) / (2 * 1.96 * sd), "old_lower_above_truth": old_above / n_sim}


# -- the bootstrap's point estimates are the ordinary ones ---------------------------------------
@pytest.mark.parametrize("case", range(12))
def test_bootstrap_estimates_equal_roc_metrics_and_unresolved_levels_are_none(case):
    rng = np.random.default_rng(case)
    n1 = int(rng.integers(20, 1500))
    n0 = int(rng.choice([40, 99, 100, 171, 285, 999, 1000, 1500]))
    decimals = int(rng.integers(0, 3))  # coarse rounding makes ties, as saturated models do
    scores = {name: np.round(rng.normal(size=n1 + n0) + np.r_[np.full(n1, rng.uniform(0, 2)), np.zeros(n0)],
                             decimals) for name in ("a", "b", "c")}
    labels = np.r_[np.ones(n1), np.zeros(n0)]
    ci = bootstrap_ci(scores, labels, n_boot=100, seed=case)
    results = {name: roc_metrics(s, labels, name) for name, s in scores.items()}
    assert ci.fpr_resolution == pytest.approx(1 / n0)
    assert ci.auc.estimate == pytest.approx(max(r.auc for r in results.values()))
    for level in FPR_LEVELS:
        assert ci.resolvable[level] == (n0 >= nonmembers_needed(level)) == fpr_resolvable(level, n0)
        iv = ci.tpr[level]
        if not ci.resolvable[level]:
            assert iv is None
            continue
        assert iv is not None
        field = "tpr_at_1pct_fpr" if level == 0.01 else "tpr_at_0_1pct_fpr"
        assert iv.estimate == pytest.approx(max(getattr(r, field) for r in results.values()))
        assert iv.lower <= iv.estimate <= iv.upper
        assert ci.gradable[level] == (n0 >= nonmembers_to_bound(level))
    assert sum(ci.selected.values()) == pytest.approx(1.0)


def test_sample_size_rules():
    assert nonmembers_needed(0.01) == 100 and nonmembers_needed(0.001) == 1000
    # (1 - level) ** n <= 2.5 %: the chance that every non-member lies below the true threshold
    assert nonmembers_to_bound(0.01) == 368 and nonmembers_to_bound(0.001) == 3688
    assert 0.99**368 <= 0.025 < 0.99**367
    for n0, ok in ((99, False), (100, True), (171, True), (285, True)):
        assert fpr_resolvable(0.01, n0) is ok
        assert fpr_resolvable(0.001, n0) is False  # the 171 / 285 non-members


def test_bootstrap_bad_input_is_a_clear_error():
    labels = np.r_[np.ones(50), np.zeros(50)]
    s = {"a": np.arange(100.0)}
    with pytest.raises(DataError, match="members and non-members"):
        bootstrap_ci(s, np.ones(100))
    with pytest.raises(DataError, match="n_boot"):
        bootstrap_ci(s, labels, n_boot=5)
    with pytest.raises(DataError, match="method"):
        bootstrap_ci(s, labels, method="jackknife")
    with pytest.raises(DataError, match="scores for"):
        bootstrap_ci({"a": np.arange(99.0)}, labels)
    with pytest.raises(DataError, match="at least one"):
        bootstrap_ci({}, labels)


def test_bootstrap_is_vectorised_and_fast():
    """1,000 replicates of four attacks over 2 x 1,000 rows: scores are sorted once and replicates
    are weights, so this takes a fraction of a second (the limit allows for a loaded CI machine)."""
    scores, labels = _gaussian_scores(np.random.default_rng(0), 1000, 1000, [2.0, 1.8, 1.5, 1.0], 0.5)
    bootstrap_ci(scores, labels, n_boot=100)  # warm up
    t0 = time.perf_counter()
    ci = bootstrap_ci(scores, labels, n_boot=1000, seed=1)
    assert time.perf_counter() - t0 < 3.0
    assert ci.n_boot == 1000 and ci.tpr[0.01] is not None


# -- coverage on simulated scores with a known ROC -----------------------------------------------
@pytest.mark.parametrize("mus,rho", [
    ([2.0], 0.0),                       # one attack
    ([2.0, 2.0, 2.0, 2.0], 0.7),        # four equally strong, correlated attacks: choosing is noise
    ([2.0, 1.6, 1.2, 0.8], 0.5),        # one clearly best attack among weaker ones
])
def test_bootstrap_interval_covers_the_true_tpr(mus, rho):
    res = _coverage(mus, rho, n1=400, n0=400)
    assert res["coverage"] >= 0.88, res
    assert res["lower_above_truth"] <= 0.07, res
    assert res["width_ratio"] <= 1.75, res


def test_selection_bias_breaks_the_old_bound_but_not_the_new_one():
    """Four independent, equally strong attacks: the best of them looks better than any is. The old
    members-only Clopper-Pearson bound then lies above the true TPR far more often than 2.5 %; the
    bootstrap, calibrated over all attacks, does not."""
    res = _coverage([2.0, 2.0, 2.0, 2.0], 0.0, n1=400, n0=400)
    assert res["old_lower_above_truth"] > 0.07, res  # the harness can fail: the old bound does
    assert res["lower_above_truth"] <= 0.07, res
    assert res["coverage"] >= 0.88, res


def test_auc_interval_covers_the_true_auc():
    mus, truth = [1.0, 0.8], _N.cdf(1.0 / math.sqrt(2))
    hits = above = 0
    for i in range(100):
        scores, labels = _gaussian_scores(np.random.default_rng(20_000 + i), 300, 300, mus, 0.5)
        ci = bootstrap_ci(scores, labels, n_boot=200, seed=i, levels=())
        hits += ci.auc.lower <= truth <= ci.auc.upper
        above += ci.auc.lower > truth
    assert hits >= 88 and above <= 7


# -- the check never grades what the sample cannot resolve ---------------------------------------
def _report(scores: dict[str, np.ndarray], n1: int, n0: int) -> MembershipReport:
    labels = np.r_[np.ones(n1, np.int64), np.zeros(n0, np.int64)]
    return MembershipReport(attacks={k: roc_metrics(v, labels, k) for k, v in scores.items()},
                            member_index=np.arange(n1), nonmember_index=np.arange(n0), n_shadows=4)


def _grade(rep: MembershipReport, seed: int = 0):
    ctx = AuditContext(model=None, data=Dataset(X=np.zeros((rep.n_nonmembers, 1)), y=None), seed=seed)
    check = PrivacyCheck()
    result = check.result()
    check._report_membership(ctx, rep, result, [])
    leak = [f for f in result.findings if f.rule_id == "privacy.membership-inference"]
    return result, (leak[0] if leak else None)


def _few_confident_members(rng: np.random.Generator, n1: int, n0: int, share: float) -> dict[str, np.ndarray]:
    """Scores where a share of members is far above every non-member and the rest look like
    non-members: a high TPR at zero false positives, an AUC close to 0.5."""
    mem = rng.normal(size=n1)
    mem[: int(share * n1)] += 50.0
    return {"loss": np.r_[mem, rng.normal(size=n0)], "rmia": np.r_[rng.normal(size=n1), rng.normal(size=n0)]}


@pytest.mark.parametrize("n0", [40, 60, 99, 171, 228, 285, 367])
@pytest.mark.parametrize("seed", [0, 1])
def test_tpr_below_resolution_or_bound_is_never_graded(n0, seed):
    """TPR at zero false positives is 0.3 (a HIGH grade if it were read as TPR at 1 % FPR); the AUC
    carries little signal. Below 368 non-members no TPR is graded, so the finding (if any) comes
    from the AUC alone and is not HIGH; 0.1 % is never resolved here and never a number."""
    rng = np.random.default_rng(seed)
    n1 = 400
    res, leak = _grade(_report(_few_confident_members(rng, n1, n0, 0.3), n1, n0), seed)
    m = res.metrics
    assert m["fpr_resolution"] == pytest.approx(1 / n0)
    assert m["tpr_at_0_1pct_fpr"] is None and m["tpr_at_0_1pct_fpr_resolvable"] is False
    assert m["tpr_at_0_1pct_fpr_lower"] is None and m["tpr_at_0_1pct_fpr_graded"] is False
    assert m["loss_tpr_at_0_1pct_fpr"] is None and m["rmia_tpr_at_0_1pct_fpr"] is None
    assert m["tpr_at_1pct_fpr_graded"] is False and m["tpr_at_1pct_fpr_lower"] is None
    assert m["tpr_at_1pct_fpr_resolvable"] is (n0 >= 100)
    if n0 < 100:
        assert m["tpr_at_1pct_fpr"] is None
    for row in res.tables["membership_attacks"]:
        assert math.isnan(row["tpr_at_0.1%_fpr"])  # rendered as a dash, null in JSON
        assert math.isnan(row["tpr_at_1%_fpr"]) is (n0 < 100)
    js = res.to_dict()
    assert js["metrics"]["tpr_at_0_1pct_fpr"] is None
    assert all(r["tpr_at_0.1%_fpr"] is None for r in js["tables"]["membership_attacks"])
    resolution = {r["fpr"]: r for r in res.tables["membership_resolution"]}
    assert resolution[0.001]["min_resolvable_fpr"] == pytest.approx(1 / n0, rel=1e-4)
    assert resolution[0.001]["resolvable"] is False and resolution[0.01]["graded"] is False
    assert leak is None or leak.severity < Severity.HIGH
    if leak is not None:
        assert "not resolved" in leak.detail and "Threat model" in leak.detail and "Statistics" in leak.detail
        assert leak.evidence["tpr_at_0_1pct_fpr"]["graded"] is False


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_with_enough_nonmembers_the_same_leak_is_graded_high(seed):
    """The converse: 600 non-members bound TPR at 1 % FPR, and 30 % of members at zero false
    positives is graded HIGH on its lower bound."""
    rng = np.random.default_rng(seed)
    res, leak = _grade(_report(_few_confident_members(rng, 400, 600, 0.3), 400, 600), seed)
    assert res.metrics["tpr_at_1pct_fpr_graded"] is True
    assert res.metrics["tpr_at_1pct_fpr_lower"] >= 0.10
    assert leak is not None and leak.severity is Severity.HIGH
    assert leak.evidence["tpr_at_1pct_fpr"]["graded"] is True


def test_finding_states_threat_model_and_statistics():
    rng = np.random.default_rng(3)
    _res, leak = _grade(_report(_few_confident_members(rng, 400, 600, 0.3), 400, 600))
    assert leak is not None
    for phrase in ("Threat model", "shadow", "a priori", "precision", "Bayesian-bootstrap",
                   "independent", "held fixed", "not graded"):
        assert phrase in leak.detail + leak.evidence["statistics"], phrase
    assert leak.evidence["threat_model"] in leak.detail


def test_check_options_for_the_bootstrap_are_validated():
    from modelshield.errors import UserError

    for bad in ({"n_boot": 10}, {"confidence": 1.0}, {"confidence": float("nan")}, {"confidence": 0.2}):
        with pytest.raises(UserError):
            PrivacyCheck(**bad).check_options()
