"""The vectorised engine against fairlearn (to 1e-9) and against values computed by hand."""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pandas as pd
import pytest

from modelshield.errors import DataError
from modelshield.fairness.metrics import (
    binarize,
    bootstrap_cell_counts,
    confusion_by_group,
    encode_groups,
    fairness_metrics,
    regression_metrics,
)

fm = pytest.importorskip("fairlearn.metrics")
pytestmark = pytest.mark.filterwarnings("ignore:Supplied .func. had no __name__")


def _data(n=4000, seed=0, labels=(0, 1)):
    rng = np.random.default_rng(seed)
    a = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])
    b = rng.choice(["u", "v"], n)
    yt = rng.integers(0, 2, n)
    yp = (rng.random(n) < 0.25 + 0.25 * (a == "x") + 0.2 * yt).astype(int)
    lab = np.asarray(labels)
    return lab[yt], lab[yp], {"a": a, "b": b}


@pytest.mark.parametrize("attrs", [["a"], ["b"], ["a", "b"]])
@pytest.mark.parametrize("seed", [0, 1])
def test_disparities_equal_fairlearn(attrs, seed):
    yt, yp, sens = _data(seed=seed)
    sf = pd.DataFrame({k: sens[k] for k in attrs})
    r = fairness_metrics(yt, yp, sens, attributes=attrs)
    expected = {
        "demographic_parity_difference": fm.demographic_parity_difference(yt, yp, sensitive_features=sf),
        "demographic_parity_ratio": fm.demographic_parity_ratio(yt, yp, sensitive_features=sf),
        "equalized_odds_difference": fm.equalized_odds_difference(yt, yp, sensitive_features=sf),
        "equalized_odds_ratio": fm.equalized_odds_ratio(yt, yp, sensitive_features=sf),
        "equal_opportunity_difference": fm.equal_opportunity_difference(yt, yp, sensitive_features=sf),
        "equal_opportunity_ratio": fm.equal_opportunity_ratio(yt, yp, sensitive_features=sf),
    }
    for k, v in expected.items():
        assert r.disparity[k] == pytest.approx(v, abs=1e-9), k


def test_group_rates_equal_metricframe():
    from sklearn.metrics import accuracy_score, precision_score

    yt, yp, sens = _data(seed=3)
    sf = pd.DataFrame(sens)
    mf = fm.MetricFrame(
        metrics={"selection_rate": fm.selection_rate, "accuracy": accuracy_score,
                 "true_positive_rate": fm.true_positive_rate, "false_positive_rate": fm.false_positive_rate,
                 "false_negative_rate": fm.false_negative_rate, "true_negative_rate": fm.true_negative_rate,
                 "precision": precision_score, "count": fm.count},
        y_true=yt, y_pred=yp, sensitive_features=sf)
    r = fairness_metrics(yt, yp, sens)
    by = mf.by_group
    for g, vals in enumerate(r.groups.values):
        for k in by.columns:
            assert r.rates[k][g] == pytest.approx(by.loc[vals, k], abs=1e-9), (vals, k)
    # predictive parity = precision difference between groups
    assert r.disparity["predictive_parity_difference"] == pytest.approx(
        mf.difference()["precision"], abs=1e-9)


def test_string_labels_and_pos_label_match_fairlearn():
    yt, yp, sens = _data(seed=5, labels=("deny", "grant"))
    sf = pd.Series(sens["a"])
    r = fairness_metrics(yt, yp, sens, attributes=["a"], pos_label="grant")
    sel = fm.MetricFrame(metrics=partial(fm.selection_rate, pos_label="grant"), y_true=yt, y_pred=yp,
                         sensitive_features=sf)
    assert r.disparity["demographic_parity_difference"] == pytest.approx(sel.difference(), abs=1e-9)
    tpr = fm.MetricFrame(metrics=partial(fm.true_positive_rate, pos_label="grant"), y_true=yt, y_pred=yp,
                         sensitive_features=sf)
    assert r.disparity["equal_opportunity_difference"] == pytest.approx(tpr.difference(), abs=1e-9)


def test_sample_weight_matches_fairlearn():
    yt, yp, sens = _data(seed=7)
    w = np.random.default_rng(0).random(len(yt))
    r = fairness_metrics(yt, yp, sens, attributes=["a"], sample_weight=w)
    ref = fm.demographic_parity_difference(yt, yp, sensitive_features=sens["a"], sample_weight=w)
    assert r.disparity["demographic_parity_difference"] == pytest.approx(ref, abs=1e-9)


def test_hand_computed_small_table():
    # group f: y=[1,1,0,0], p=[1,0,1,0] -> sel 0.5, TPR 0.5, FPR 0.5, acc 0.5, precision 0.5
    # group m: y=[1,1,1,0], p=[1,1,1,1] -> sel 1.0, TPR 1.0, FPR 1.0, acc 0.75, precision 0.75
    y = [1, 1, 0, 0, 1, 1, 1, 0]
    p = [1, 0, 1, 0, 1, 1, 1, 1]
    s = ["f"] * 4 + ["m"] * 4
    r = fairness_metrics(y, p, {"sex": s})
    assert r.groups.names == ["f", "m"]
    np.testing.assert_allclose(r.rates["selection_rate"], [0.5, 1.0])
    np.testing.assert_allclose(r.rates["true_positive_rate"], [0.5, 1.0])
    np.testing.assert_allclose(r.rates["false_positive_rate"], [0.5, 1.0])
    np.testing.assert_allclose(r.rates["accuracy"], [0.5, 0.75])
    np.testing.assert_allclose(r.rates["precision"], [0.5, 0.75])
    assert r.disparity["demographic_parity_difference"] == pytest.approx(0.5)
    assert r.disparity["demographic_parity_ratio"] == pytest.approx(0.5)
    assert r.disparity["equalized_odds_difference"] == pytest.approx(0.5)
    assert r.disparity["predictive_parity_difference"] == pytest.approx(0.25)


def test_confusion_counts_in_one_pass():
    codes = np.array([0, 0, 1, 1, 1])
    c = confusion_by_group(np.array([1, 0, 1, 1, 0]), np.array([1, 1, 0, 1, 0]), codes, 2)
    assert c.shape == (2, 2, 2)
    assert c[0].tolist() == [[0, 1], [0, 1]]  # group 0: one FP, one TP
    assert c[1].tolist() == [[1, 0], [1, 1]]  # group 1: TN, FN, TP


def test_intersection_codes_only_observed_combinations():
    g = encode_groups({"a": np.array(["x", "x", "y"]), "b": np.array([1, 2, 1])})
    assert g.names == ["x & 1", "x & 2", "y & 1"]
    assert g.values == [("x", 1), ("x", 2), ("y", 1)]
    assert g.codes.tolist() == [0, 1, 2]
    assert g.key == "a&b"


def test_bootstrap_cell_counts_match_row_resampling_in_distribution():
    rng = np.random.default_rng(0)
    n = 500
    codes = rng.integers(0, 3, n)
    y = rng.integers(0, 2, n)
    p = rng.integers(0, 2, n)
    counts = confusion_by_group(y, p, codes, 3)
    fast = bootstrap_cell_counts(counts, 4000, np.random.default_rng(1))
    assert np.all(fast.sum(axis=(1, 2, 3)) == n)
    slow = np.stack([confusion_by_group(y[i], p[i], codes[i], 3)
                     for i in np.random.default_rng(2).integers(0, n, size=(4000, n))])
    # same means and standard deviations per cell (up to Monte Carlo error)
    np.testing.assert_allclose(fast.mean(0), slow.mean(0), atol=0.6)
    np.testing.assert_allclose(fast.std(0), slow.std(0), rtol=0.1, atol=0.2)


def test_bootstrap_intervals_cover_and_are_deterministic():
    yt, yp, sens = _data(n=3000, seed=11)
    r1 = fairness_metrics(yt, yp, sens, n_boot=300, seed=4)
    r2 = fairness_metrics(yt, yp, sens, n_boot=300, seed=4)
    for k, (lo, hi) in r1.disparity_ci.items():
        v = r1.disparity[k]
        assert lo <= hi
        assert lo - 1e-12 <= v <= hi + 1e-12, k  # ratios included (exact values: test_fairness_metrics_mutation_kills)
        if k.endswith("ratio"):
            assert 0.0 <= lo <= hi <= 1.0, k
        assert r2.disparity_ci[k] == (lo, hi)
    assert set(r1.disparity_ci) == set(r1.disparity)
    for k, (lo, hi) in r1.rates_ci.items():
        assert np.all(lo <= r1.rates[k] + 1e-12) and np.all(r1.rates[k] <= hi + 1e-12), k
    # the interval width shrinks roughly like 1/sqrt(n)
    yt4, yp4, sens4 = _data(n=12000, seed=11)
    r4 = fairness_metrics(yt4, yp4, sens4, n_boot=300, seed=4)
    w1 = np.diff(r1.disparity_ci["demographic_parity_difference"])[0]
    w4 = np.diff(r4.disparity_ci["demographic_parity_difference"])[0]
    assert 0.3 < w4 / w1 < 0.75


def test_bootstrap_coverage_on_known_truth():
    # selection rates 0.3 vs 0.5 -> true DP difference 0.2; 95% intervals should cover it ~95% of the time
    rng = np.random.default_rng(0)
    hits = 0
    trials = 60
    for t in range(trials):
        s = rng.integers(0, 2, 1000)
        p = (rng.random(1000) < np.where(s == 1, 0.5, 0.3)).astype(int)
        r = fairness_metrics(p, p, {"s": s}, n_boot=200, seed=t)
        lo, hi = r.disparity_ci["demographic_parity_difference"]
        hits += lo <= 0.2 <= hi
    assert hits >= 50


def test_small_groups_are_reported_but_not_compared():
    yt, yp, sens = _data(n=2000, seed=2)
    sens = {"a": sens["a"].astype(object)}
    sens["a"][:1] = "lonely"
    yp = yp.copy()
    yp[0] = 1 - yt[0]
    kept = fairness_metrics(yt, yp, sens, min_group_size=30, n_boot=50)
    assert "lonely" in kept.groups.names
    assert kept.small_groups == [("lonely", 1)]
    assert list(kept.compared) == [False, True, True, True]
    without = fairness_metrics(yt[1:], yp[1:], {"a": sens["a"][1:]})
    assert kept.disparity["demographic_parity_difference"] == pytest.approx(
        without.disparity["demographic_parity_difference"], abs=1e-12)


def test_non_binary_labels_need_pos_label():
    y = np.array([0, 1, 2, 1])
    with pytest.raises(DataError, match="pass pos_label"):
        fairness_metrics(y, y, {"s": ["a", "a", "b", "b"]})
    r = fairness_metrics(y, y, {"s": ["a", "a", "b", "b"]}, pos_label=2)
    np.testing.assert_allclose(r.rates["selection_rate"], [0.0, 0.5])
    with pytest.raises(DataError, match="pos_label"):
        binarize(np.array(["yes", "no"]))
    with pytest.raises(DataError, match="3 distinct values"):  # {0, 1} labels with {-1, 1} predictions
        fairness_metrics([0, 1, 1], [-1, 1, 1], {"s": ["a", "b", "b"]})
    assert binarize(np.array([-1, 1, 1]))[1] == 1


def test_bad_input_errors():
    with pytest.raises(DataError, match="not in the data"):
        fairness_metrics([1, 0], [1, 0], {"sex": ["a", "b"]}, attributes=["race"])
    with pytest.raises(DataError, match="labels"):
        fairness_metrics([1, 0, 1], [1, 0], {"sex": ["a", "b"]})
    with pytest.raises(DataError, match="missing"):
        encode_groups({"sex": np.array(["a", None, "b"], dtype=object)})


def test_one_group_gives_nan_disparities():
    r = fairness_metrics([1, 0, 1], [1, 1, 0], {"s": ["a", "a", "a"]}, n_boot=20)
    assert np.isnan(r.disparity["demographic_parity_difference"])


def test_calibration_per_group():
    rng = np.random.default_rng(0)
    n = 20000
    s = rng.integers(0, 2, n)
    score = rng.random(n)
    y = (rng.random(n) < np.where(s == 1, score, np.clip(score + 0.2, 0, 1))).astype(int)  # group 0 under-scored
    r = fairness_metrics(y, (score > 0.5).astype(int), {"s": s}, y_score=score, n_boot=100)
    gap = r.rates["calibration_gap"]
    assert gap[1] == pytest.approx(0.0, abs=0.02)
    assert gap[0] < -0.1
    assert r.disparity["calibration_gap_difference"] > 0.1
    lo, hi = r.disparity_ci["calibration_gap_difference"]
    assert lo <= r.disparity["calibration_gap_difference"] <= hi


def test_regression_metrics_hand_and_bootstrap():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.0, 3.0, 3.0, 6.0])
    r = regression_metrics(y, p, {"g": ["a", "a", "b", "b"]}, n_boot=100)
    np.testing.assert_allclose(r.rates["mean_prediction"], [2.0, 4.5])
    np.testing.assert_allclose(r.rates["mean_absolute_error"], [0.5, 1.0])
    np.testing.assert_allclose(r.rates["root_mean_squared_error"], [np.sqrt(0.5), np.sqrt(2.0)])
    assert r.disparity["mean_prediction_difference"] == pytest.approx(2.5)
    assert r.disparity["mean_absolute_error_ratio"] == pytest.approx(0.5)
    assert "mean_prediction_difference" in r.disparity_ci


def test_regression_matches_fairlearn_metricframe():
    from sklearn.metrics import mean_absolute_error

    rng = np.random.default_rng(0)
    n = 3000
    g = rng.choice(["a", "b", "c"], n)
    y = rng.normal(size=n)
    p = y + rng.normal(scale=np.where(g == "a", 0.5, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = fm.MetricFrame(metrics={"mae": mean_absolute_error, "mean_prediction": fm.mean_prediction},
                            y_true=y, y_pred=p, sensitive_features=g)
    r = regression_metrics(y, p, {"g": g})
    assert r.disparity["mean_absolute_error_difference"] == pytest.approx(mf.difference()["mae"], abs=1e-9)
    assert r.disparity["mean_prediction_difference"] == pytest.approx(mf.difference()["mean_prediction"], abs=1e-9)


def test_random_tables_equal_fairlearn_property():
    hyp = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    @hyp.settings(max_examples=25, deadline=None, derandomize=True)
    @hyp.given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.sampled_from("pqrs")),
                        min_size=2, max_size=60))
    def check(rows):
        yt = np.array([r[0] for r in rows])
        yp = np.array([r[1] for r in rows])
        g = np.array([r[2] for r in rows], dtype=object)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_dp = fm.demographic_parity_difference(yt, yp, sensitive_features=g)
            ref_eo = fm.equalized_odds_difference(yt, yp, sensitive_features=g)
        r = fairness_metrics(yt, yp, {"g": g}, pos_label=1)
        if len(set(g)) < 2:
            assert np.isnan(r.disparity["demographic_parity_difference"]) and ref_dp == 0
            return
        assert r.disparity["demographic_parity_difference"] == pytest.approx(ref_dp, abs=1e-9)
        assert r.disparity["equalized_odds_difference"] == pytest.approx(ref_eo, abs=1e-9)

    check()
