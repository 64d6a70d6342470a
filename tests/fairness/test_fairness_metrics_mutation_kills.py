"""Tests that kill the mutants of ``fairness/metrics.py`` that survived the older suite (issue 23).

Each family pins one behaviour that a mutant changed without any test noticing:

- float labels without ``pos_label`` ({0.0, 1.0} and {-1.0, 1.0}) take fairlearn's default rule;
- every group at rate 0 gives ratio 1.0 (all groups equal), one group at 0 gives ratio 0;
- every rate and every difference equals fairlearn's ``MetricFrame`` (``false_negative_rate``,
  ``base_rate``, regression ``mean_target`` ...);
- bootstrap intervals (rates and disparities, ratios included, groups of one or two rows
  included) equal an independent reference bootstrap computed row-free from the same random
  draws: same seed, same multinomial (classification) or Poisson (regression) weights.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pytest

from modelshield.errors import DataError
from modelshield.fairness.metrics import (
    CLASSIFICATION_DISPARITIES,
    GROUP_RATES,
    REGRESSION_DISPARITIES,
    REGRESSION_RATES,
    _integer_pos_label,
    binarize,
    bootstrap_cell_counts,
    calibration_cells,
    confusion_by_group,
    disparities,
    encode_groups,
    fairness_metrics,
    regression_metrics,
)

fm = pytest.importorskip("fairlearn.metrics")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore:Supplied .func. had no __name__")


def _table(n: int, seed: int, groups: str = "xyz") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = rng.choice(list(groups), n)
    yt = rng.integers(0, 2, n)
    yp = (rng.random(n) < 0.2 + 0.3 * (g == groups[0]) + 0.3 * yt).astype(np.int64)
    return yt, yp, g


# -- float labels without pos_label --------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("neg", "pos", "dtype"), [
    (0.0, 1.0, np.float64), (0.0, 1.0, np.float32), (-1.0, 1.0, np.float64), (-1.0, 1.0, np.float32),
])
def test_float_labels_take_the_default_pos_label(seed, neg, pos, dtype):
    yt, yp, g = _table(300, seed)
    ft = np.where(yt == 1, pos, neg).astype(dtype)
    fp = np.where(yp == 1, pos, neg).astype(dtype)
    r = fairness_metrics(ft, fp, {"g": g})
    ref = fairness_metrics(yt, yp, {"g": g})
    assert r.pos_label == 1
    for k in GROUP_RATES:
        np.testing.assert_array_equal(r.rates[k], ref.rates[k], err_msg=k)
    for k in CLASSIFICATION_DISPARITIES:
        assert r.disparity[k] == pytest.approx(ref.disparity[k], abs=1e-12, nan_ok=True), k
    assert r.disparity["demographic_parity_difference"] == pytest.approx(
        fm.demographic_parity_difference(ft, fp, sensitive_features=g), abs=1e-12)
    assert r.disparity["equal_opportunity_difference"] == pytest.approx(
        fm.equal_opportunity_difference(ft, fp, sensitive_features=g), abs=1e-12)


@pytest.mark.parametrize(("yt", "yp"), [
    ([0.0, 1.0, 1.0], [1, 0, 0]),  # float labels, integer predictions
    ([1, 0, 0], [0.0, 1.0, 1.0]),  # integer labels, float predictions
    ([-1.0, 1.0, 1.0], [1.0, -1.0, 1.0]),
    ([True, False, True], [1.0, 0.0, 0.0]),
])
def test_mixed_float_and_integer_labels_decide_pos_label_together(yt, yp):
    r = fairness_metrics(yt, yp, {"g": ["a", "a", "b"]})
    assert r.pos_label == 1
    t = (np.asarray(yt, dtype=float) == 1).astype(int)
    p = (np.asarray(yp, dtype=float) == 1).astype(int)
    np.testing.assert_array_equal(r.rates["selection_rate"], [p[:2].mean(), p[2:].mean()])
    np.testing.assert_array_equal(r.rates["base_rate"], [t[:2].mean(), t[2:].mean()])


@pytest.mark.parametrize(("yt", "yp", "message"), [
    ([0.0, 2.0, 2.0], [0.0, 2.0, 0.0], r"labels and predictions: values are \[0\.0, 2\.0\]; pass pos_label"),
    ([0.5, 1.0, 1.0], [1.0, 1.0, 0.5], r"labels and predictions: values are \[0\.5, 1\.0\]; pass pos_label"),
    ([-1.0, 0.0, 1.0], [1.0, 1.0, 0.0], r"labels and predictions: binary metrics need two classes.*3 distinct"),
    ([0.0, 1.0, 1.0], [-1.0, 1.0, 1.0], r"3 distinct values \(-1\.0, 0\.0, 1\.0\)"),
    ([2, 3, 3], [3, 3, 2], r"values are \[2, 3\]; pass pos_label"),
])
def test_float_labels_outside_the_default_rule_need_pos_label(yt, yp, message):
    with pytest.raises(DataError, match=message):
        fairness_metrics(yt, yp, {"g": ["a", "b", "b"]})


def test_binarize_lists_at_most_six_values():
    with pytest.raises(DataError, match=r"y: binary metrics need two classes, but the labels have 8 distinct values "
                                        r"\(0, 1, 2, 3, 4, 5, \.\.\.\)"):
        binarize(np.arange(8), what="y")
    with pytest.raises(DataError, match=r"6 distinct values \(0, 1, 2, 3, 4, 5\);"):
        binarize(np.arange(6))
    for y in (np.array([0.0, 1.0]), np.array([-1.0, 1.0]), np.array([1.0, 1.0]), np.array([0.0, 0.0])):
        b, pos = binarize(y)
        assert pos == 1 and b.tolist() == (y == 1).astype(int).tolist()


# -- ratios when every group (or one group) is at rate 0 ------------------------------------------
@pytest.mark.parametrize("n_groups", [2, 3, 4])
def test_every_group_at_rate_zero_is_parity(n_groups):
    g = np.repeat(np.arange(n_groups), 5)
    yt = np.tile([0, 1, 0, 1, 1], n_groups)
    r = fairness_metrics(yt, np.zeros_like(yt), {"g": g})
    for k in ("demographic_parity_ratio", "equal_opportunity_ratio", "equalized_odds_ratio"):
        assert r.disparity[k] == 1.0, k  # 0 / 0 over equal groups: no disparity (fairlearn: NaN)
    for k in ("demographic_parity_difference", "equal_opportunity_difference", "equalized_odds_difference"):
        assert r.disparity[k] == 0.0, k


@pytest.mark.parametrize("n_groups", [2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_one_group_at_rate_zero_gives_ratio_zero(n_groups, seed):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), 20)
    yt = rng.integers(0, 2, len(g))
    yp = np.where(g == 0, 0, 1)  # group 0 never selected, the others always
    r = fairness_metrics(yt, yp, {"g": g})
    assert r.disparity["demographic_parity_ratio"] == 0.0
    assert r.disparity["demographic_parity_ratio"] == fm.demographic_parity_ratio(yt, yp, sensitive_features=g)
    assert r.disparity["equalized_odds_ratio"] == fm.equalized_odds_ratio(yt, yp, sensitive_features=g)


@pytest.mark.parametrize("shift", [-3.0, -2.0])
def test_ratio_of_signed_means_is_nan_but_a_zero_mean_is_not(shift):
    y = np.array([1.0, 2.0, 3.0, 4.0])
    r = regression_metrics(y, y + shift, {"g": ["a", "a", "b", "b"]})
    assert np.isnan(r.disparity["mean_prediction_ratio"])  # a group has a negative mean prediction
    assert r.disparity["mean_prediction_difference"] == pytest.approx(2.0)
    z = regression_metrics(y, np.array([-1.0, 1.0, 2.0, 2.0]), {"g": ["a", "a", "b", "b"]})
    assert z.disparity["mean_prediction_ratio"] == 0.0  # means 0 and 2: min / max = 0


# -- every rate and difference against fairlearn's MetricFrame -----------------------------------
def _base_rate(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) == 1))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("groups", ["xy", "xyz", "pqrs"])
def test_every_rate_and_difference_equal_metricframe(seed, groups):
    from sklearn.metrics import accuracy_score, precision_score

    yt, yp, g = _table(400, seed, groups)
    funcs = {"selection_rate": fm.selection_rate, "accuracy": accuracy_score,
             "true_positive_rate": fm.true_positive_rate, "false_positive_rate": fm.false_positive_rate,
             "false_negative_rate": fm.false_negative_rate, "true_negative_rate": fm.true_negative_rate,
             "precision": precision_score, "count": fm.count, "base_rate": _base_rate}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = fm.MetricFrame(metrics=funcs, y_true=yt, y_pred=yp, sensitive_features=g)
    r = fairness_metrics(yt, yp, {"g": g})
    assert set(r.rates) == set(GROUP_RATES)
    for k in GROUP_RATES:
        np.testing.assert_allclose(r.rates[k], mf.by_group[k].to_numpy(dtype=float), atol=1e-12, err_msg=k)
    diff = mf.difference()
    expected = {"demographic_parity_difference": diff["selection_rate"],
                "equal_opportunity_difference": diff["true_positive_rate"],
                "equalized_odds_difference": max(diff["true_positive_rate"], diff["false_positive_rate"]),
                "predictive_parity_difference": diff["precision"],
                "accuracy_difference": diff["accuracy"],
                "false_negative_rate_difference": diff["false_negative_rate"]}
    ratio = mf.ratio()
    expected |= {"demographic_parity_ratio": ratio["selection_rate"],
                 "equal_opportunity_ratio": ratio["true_positive_rate"],
                 "equalized_odds_ratio": min(ratio["true_positive_rate"], ratio["false_positive_rate"])}
    assert set(r.disparity) == set(CLASSIFICATION_DISPARITIES)
    for k, v in expected.items():
        assert r.disparity[k] == pytest.approx(v, abs=1e-12), k


def _mean_target(y_true, y_pred):
    return float(np.mean(y_true))


def _mean_prediction(y_true, y_pred):
    return float(np.mean(y_pred))


def _rmse(y_true, y_pred):
    return float(np.sqrt(np.mean((np.asarray(y_pred) - np.asarray(y_true)) ** 2)))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("groups", ["ab", "abc"])
def test_regression_rates_equal_metricframe(seed, groups):
    from sklearn.metrics import mean_absolute_error

    rng = np.random.default_rng(seed)
    n = 500
    g = rng.choice(list(groups), n)
    y = rng.normal(loc=5.0 + (g == "a"), size=n)
    p = y + rng.normal(loc=0.3 * (g == "b"), scale=np.where(g == "a", 0.5, 1.0))
    funcs = {"count": fm.count, "mean_prediction": _mean_prediction, "mean_target": _mean_target,
             "mean_absolute_error": mean_absolute_error, "root_mean_squared_error": _rmse}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = fm.MetricFrame(metrics=funcs, y_true=y, y_pred=p, sensitive_features=g)
    r = regression_metrics(y, p.reshape(-1, 1), {"g": g})  # (n, 1) predictions as a model returns them
    assert set(r.rates) == set(REGRESSION_RATES)
    for k in REGRESSION_RATES:
        np.testing.assert_allclose(r.rates[k], mf.by_group[k].to_numpy(dtype=float), rtol=1e-12, err_msg=k)
    diff, ratio = mf.difference(), mf.ratio()
    expected = {"mean_prediction_difference": diff["mean_prediction"], "mean_prediction_ratio": ratio["mean_prediction"],
                "mean_absolute_error_difference": diff["mean_absolute_error"],
                "mean_absolute_error_ratio": ratio["mean_absolute_error"],
                "root_mean_squared_error_difference": diff["root_mean_squared_error"]}
    assert set(r.disparity) == set(REGRESSION_DISPARITIES)
    for k, v in expected.items():
        assert r.disparity[k] == pytest.approx(v, abs=1e-12), k


# -- bootstrap intervals against a reference bootstrap from the same draws ------------------------
def _ratio(lo: float, hi: float) -> float:
    if lo < 0:
        return float("nan")
    if hi > 0:
        return lo / hi
    return 1.0  # lo == hi == 0


def _reference_disparities(rates: dict[str, list[float]], use: list[int], regression: bool) -> dict[str, float]:
    """Max - min and min / max over the groups in ``use`` (plain Python, one replicate)."""
    def spread(name: str) -> tuple[float, float]:
        if len(use) < 2:
            return float("nan"), float("nan")
        vals = [rates[name][g] for g in use]
        return max(vals) - min(vals), _ratio(min(vals), max(vals))

    if regression:
        out = dict(zip(("mean_prediction_difference", "mean_prediction_ratio"), spread("mean_prediction")))
        out |= dict(zip(("mean_absolute_error_difference", "mean_absolute_error_ratio"), spread("mean_absolute_error")))
        out["root_mean_squared_error_difference"] = spread("root_mean_squared_error")[0]
        return out
    dp_d, dp_r = spread("selection_rate")
    tpr_d, tpr_r = spread("true_positive_rate")
    fpr_d, fpr_r = spread("false_positive_rate")
    return {"demographic_parity_difference": dp_d, "demographic_parity_ratio": dp_r,
            "equalized_odds_difference": float(np.maximum(tpr_d, fpr_d)),
            "equalized_odds_ratio": float(np.minimum(tpr_r, fpr_r)),
            "equal_opportunity_difference": tpr_d, "equal_opportunity_ratio": tpr_r,
            "predictive_parity_difference": spread("precision")[0],
            "accuracy_difference": spread("accuracy")[0],
            "false_negative_rate_difference": spread("false_negative_rate")[0]}


def _q(x: float, d: float) -> float:
    return x / d if d > 0 else 0.0


def _classification_rates(c: np.ndarray) -> dict[str, float]:
    """Rates of one group from its 2 x 2 counts [[tn, fp], [fn, tp]], 0 for an empty denominator."""
    (tn, fp), (fn, tp) = c
    n = tn + fp + fn + tp
    return {"count": n, "selection_rate": _q(tp + fp, n), "accuracy": _q(tp + tn, n),
            "true_positive_rate": _q(tp, tp + fn), "false_positive_rate": _q(fp, fp + tn),
            "false_negative_rate": _q(fn, tp + fn), "true_negative_rate": _q(tn, fp + tn),
            "precision": _q(tp, tp + fp), "base_rate": _q(tp + fn, n)}


def _regression_group_rates(s: np.ndarray) -> dict[str, float]:
    """Rates of one group from its weighted sums [w, w*pred, w*target, w*|err|, w*err^2]."""
    cnt = s[0]
    return {"count": cnt, "mean_prediction": _q(s[1], cnt), "mean_target": _q(s[2], cnt),
            "mean_absolute_error": _q(s[3], cnt), "root_mean_squared_error": float(np.sqrt(_q(s[4], cnt)))}


def _reference_intervals(per_replicate: list[list[dict[str, float]]], compared: np.ndarray, confidence: float,
                         regression: bool) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, tuple]]:
    a = (1.0 - confidence) / 2.0
    names = [k for k in per_replicate[0][0] if k != "count"]
    G = len(per_replicate[0])
    rate_samples = {k: np.full((len(per_replicate), G), np.nan) for k in names}
    disp_samples: dict[str, list[float]] = {}
    for b, groups in enumerate(per_replicate):
        present = [g for g in range(G) if groups[g]["count"] > 0]
        for g in present:
            for k in names:
                rate_samples[k][b, g] = groups[g][k]
        use = [g for g in present if compared[g]]
        by_name = {k: [groups[g][k] for g in range(G)] for k in names}
        for k, v in _reference_disparities(by_name, use, regression).items():
            disp_samples.setdefault(k, []).append(v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rates_ci = {k: tuple(np.nanquantile(v, [a, 1.0 - a], axis=0)) for k, v in rate_samples.items()}
        disp_ci = {k: tuple(float(x) for x in np.nanquantile(np.asarray(v), [a, 1.0 - a]))
                   for k, v in disp_samples.items()}
    return rates_ci, disp_ci


def _assert_intervals_equal(r, rates_ci, disp_ci):
    assert set(r.rates_ci) == set(rates_ci)
    for k, (lo, hi) in rates_ci.items():
        np.testing.assert_allclose(r.rates_ci[k][0], lo, atol=1e-12, err_msg=k)
        np.testing.assert_allclose(r.rates_ci[k][1], hi, atol=1e-12, err_msg=k)
    assert set(r.disparity_ci) == set(disp_ci)
    for k, (lo, hi) in disp_ci.items():
        np.testing.assert_allclose(r.disparity_ci[k], (lo, hi), atol=1e-12, err_msg=k)


def _with_small_groups(seed: int, sizes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A main table plus groups "s0", "s1" ... of the given (tiny) sizes."""
    yt, yp, g = _table(120, seed, "xy")
    rng = np.random.default_rng(seed + 100)
    extra_g = np.array([f"s{i}" for i, k in enumerate(sizes) for _ in range(k)], dtype=object)
    extra_t = rng.integers(0, 2, len(extra_g))
    extra_p = rng.integers(0, 2, len(extra_g))
    return (np.concatenate([yt, extra_t]), np.concatenate([yp, extra_p]),
            np.concatenate([g.astype(object), extra_g]))


CASES = [  # (seed, tiny group sizes, min_group_size, confidence)
    (0, (1,), 0, 0.95), (1, (2,), 0, 0.9), (2, (1, 2), 0, 0.95), (3, (1, 1, 2), 0, 0.8),
    (4, (1, 2), 3, 0.95), (5, (), 0, 0.95), (6, (2, 2), 1, 0.5),
]


@pytest.mark.parametrize(("seed", "sizes", "min_size", "confidence"), CASES)
def test_classification_intervals_equal_reference_bootstrap(seed, sizes, min_size, confidence):
    yt, yp, g = _with_small_groups(seed, sizes)
    n_boot = 200
    r = fairness_metrics(yt, yp, {"g": g}, n_boot=n_boot, seed=seed, min_group_size=min_size, confidence=confidence)
    names = sorted(set(g))
    assert r.groups.names == names
    counts = np.array([[[np.sum((g == name) & (yt == t) & (yp == p)) for p in (0, 1)] for t in (0, 1)]
                       for name in names], dtype=float)
    n = len(yt)
    draws = np.random.default_rng(seed).multinomial(n, counts.ravel() / n, size=n_boot).reshape(n_boot, *counts.shape)
    compared = counts.sum(axis=(1, 2)) >= max(min_size, 1)
    np.testing.assert_array_equal(r.compared, compared)
    per_replicate = [[_classification_rates(draws[b, gi]) for gi in range(len(names))] for b in range(n_boot)]
    rates_ci, disp_ci = _reference_intervals(per_replicate, compared, confidence, regression=False)
    _assert_intervals_equal(r, rates_ci, disp_ci)
    assert r.n_boot == n_boot
    for row in r.disparity_table():
        assert (row["lo"], row["hi"]) == r.disparity_ci[row["metric"]] and row["resamples"] == n_boot
        assert row["confidence"] == confidence and row["groups_compared"] == int(compared.sum())


@pytest.mark.parametrize(("seed", "sizes", "min_size", "confidence"), CASES[:5])
@pytest.mark.parametrize("chunk", [200_000, 50])
def test_regression_intervals_equal_reference_bootstrap(seed, sizes, min_size, confidence, chunk):
    rng = np.random.default_rng(seed)
    base = rng.choice(["x", "y"], 150).astype(object)
    g = np.concatenate([base, np.array([f"s{i}" for i, k in enumerate(sizes) for _ in range(k)], dtype=object)])
    y = rng.normal(loc=3.0, size=len(g))
    p = y + rng.normal(scale=0.5, size=len(g))
    n_boot = 100
    r = regression_metrics(y, p, {"g": g}, n_boot=n_boot, seed=seed, min_group_size=min_size, confidence=confidence,
                           chunk=chunk)
    names = sorted(set(g))
    codes = np.array([names.index(v) for v in g])
    vals = np.column_stack([np.ones(len(g)), p, y, np.abs(p - y), (p - y) ** 2])
    draw_rng = np.random.default_rng(seed)
    sums = np.zeros((n_boot, len(names), 5))
    for start in range(0, len(g), chunk):
        stop = min(len(g), start + chunk)
        w = draw_rng.poisson(1.0, size=(n_boot, stop - start)).astype(float)
        for i in range(start, stop):
            sums[:, codes[i], :] += w[:, i - start, None] * vals[i][None, :]
    compared = np.bincount(codes, minlength=len(names)) >= max(min_size, 1)
    per_replicate = [[_regression_group_rates(sums[b, gi]) for gi in range(len(names))] for b in range(n_boot)]
    rates_ci, disp_ci = _reference_intervals(per_replicate, compared, confidence, regression=True)
    _assert_intervals_equal(r, rates_ci, disp_ci)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(("label", "pred"), [(1, 1), (0, 1), (1, 0), (0, 0)])
def test_a_group_of_one_row_has_a_point_interval(seed, label, pred):
    """A one-row group's rates are the same in every replicate that contains it: its interval is a
    point. A replicate without it must not count as rate 0 (it is absent, not zero)."""
    yt, yp, g = _with_small_groups(seed, ())
    yt, yp = np.append(yt, label), np.append(yp, pred)
    g = np.append(g, "lonely")
    r = fairness_metrics(yt, yp, {"g": g}, n_boot=200, seed=seed)
    k = r.groups.names.index("lonely")
    for name, (lo, hi) in r.rates_ci.items():
        assert lo[k] == hi[k] == r.rates[name][k], name
    assert r.rates["selection_rate"][k] == pred


def test_calibration_rates_by_hand():
    score = np.array([0.05, 0.15, 0.95, 0.85, 0.5, 0.65, 0.25, 0.99])
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1])
    g = np.array(["a"] * 4 + ["b"] * 4)
    r = fairness_metrics(y, (score > 0.5).astype(int), {"g": g}, y_score=score)
    np.testing.assert_allclose(r.rates["mean_score"], [0.5, 0.5975])
    np.testing.assert_allclose(r.rates["calibration_gap"], [0.5 - 0.25, 0.5975 - 0.75])
    # ECE with 10 bins: every row in its own bin here, so ECE = mean |score - label|
    np.testing.assert_allclose(r.rates["expected_calibration_error"],
                               [np.mean(np.abs(score[:4] - y[:4])), np.mean(np.abs(score[4:] - y[4:]))])
    assert r.disparity["calibration_gap_difference"] == pytest.approx(0.25 + 0.1525)
    # two rows sharing a bin: the bin's mean score against its positive rate
    r2 = fairness_metrics([1, 0, 1, 0], [1, 0, 1, 0], {"g": ["a", "a", "b", "b"]}, y_score=[0.42, 0.48, 0.9, 0.1],
                          n_bins=2)
    np.testing.assert_allclose(r2.rates["expected_calibration_error"], [0.05, 0.1])  # |0.9 - 1| / 2 (per row it would be 0.53)


# -- result tables ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("seed", "n_boot", "min_size"), [(0, 0, 0), (1, 30, 0), (2, 30, 3)])
def test_group_and_disparity_tables(seed, n_boot, min_size):
    yt, yp, g = _with_small_groups(seed, (1, 2))
    r = fairness_metrics(yt, yp, {"grp": g}, n_boot=n_boot, seed=seed, min_group_size=min_size)
    rows = r.group_table()
    assert [row["group"] for row in rows] == r.groups.names == ["s0", "s1", "x", "y"]
    for gi, row in enumerate(rows):
        assert row["attribute"] == "grp"
        assert row["compared"] is bool(r.compared[gi]) and row["compared"] == (row["count"] >= max(min_size, 1))
        assert isinstance(row["count"], int) and row["count"] == int(np.sum(g == row["group"]))
        expected_keys = {"attribute", "group", "compared", *GROUP_RATES}
        if n_boot:
            expected_keys |= {f"{k}_{s}" for k in GROUP_RATES if k != "count" for s in ("lo", "hi")}
        assert set(row) == expected_keys
        for k in GROUP_RATES:
            assert row[k] == r.rates[k][gi], k
            if n_boot and k != "count":
                assert (row[f"{k}_lo"], row[f"{k}_hi"]) == (r.rates_ci[k][0][gi], r.rates_ci[k][1][gi]), k
    assert r.small_groups == [(name, int(np.sum(g == name))) for name in r.groups.names
                              if np.sum(g == name) < max(min_size, 1)]
    table = r.disparity_table()
    assert [row["metric"] for row in table] == list(r.disparity)
    for row in table:
        assert row["attribute"] == "grp" and row["value"] == r.disparity[row["metric"]]
        assert row["groups_compared"] == int(r.compared.sum()) and row["resamples"] == n_boot
        if n_boot:
            assert (row["lo"], row["hi"]) == r.disparity_ci[row["metric"]]
        else:
            assert row["lo"] is None and row["hi"] is None


# -- calibration cells -----------------------------------------------------------------------------
def _reference_ece(score: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    bins = np.minimum((score * n_bins).astype(int), n_bins - 1)
    return sum(abs(score[bins == k].sum() - y[bins == k].sum()) for k in range(n_bins)) / len(score)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_bins", [None, 2, 5])
def test_calibration_equals_reference_binning(seed, n_bins):
    """Groups of different sizes and label mixes; scores include 0.0 and 1.0 (the last bin)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(["a", "b", "c"], [7, 12, 5])
    score = np.round(rng.random(len(g)), 3)
    score[[0, 7, 19]] = [0.0, 1.0, 1.0]  # 1.0 falls in the last bin, not past it
    score[[1, 2]] = [0.905, 0.95]  # one bin with 10 bins, two bins with 11
    y = (rng.random(len(g)) < score).astype(int)
    y[[1, 2]] = [1, 0]
    kwargs = {} if n_bins is None else {"n_bins": n_bins}
    r = fairness_metrics(y, (score > 0.5).astype(int), {"g": g}, y_score=score.tolist(), **kwargs)
    for gi, name in enumerate(["a", "b", "c"]):
        m = g == name
        assert r.rates["mean_score"][gi] == pytest.approx(score[m].mean(), abs=1e-12)
        assert r.rates["calibration_gap"][gi] == pytest.approx(score[m].mean() - y[m].mean(), abs=1e-12)
        assert r.rates["expected_calibration_error"][gi] == pytest.approx(
            _reference_ece(score[m], y[m], n_bins or 10), abs=1e-12), name
    gaps = [score[g == name].mean() - y[g == name].mean() for name in "abc"]
    assert r.disparity["calibration_gap_difference"] == pytest.approx(max(gaps) - min(gaps), abs=1e-12)


@pytest.mark.parametrize(("seed", "sizes"), [(0, ()), (1, (1,)), (2, (1, 2))])
def test_calibration_intervals_equal_reference_bootstrap(seed, sizes):
    yt, yp, g = _with_small_groups(seed, sizes)
    rng = np.random.default_rng(seed + 7)
    score = np.clip(0.3 + 0.4 * yt + rng.normal(scale=0.2, size=len(yt)), 0.0, 1.0)
    n_bins, n_boot = 4, 150
    r = fairness_metrics(yt, yp, {"g": g}, y_score=score, n_boot=n_boot, seed=seed, n_bins=n_bins)
    names = sorted(set(g))
    bins = np.minimum((score * n_bins).astype(int), n_bins - 1)
    cells = np.zeros((len(names), 2, 2, n_bins))
    sums = np.zeros_like(cells)
    for i in range(len(yt)):
        cells[names.index(g[i]), yt[i], yp[i], bins[i]] += 1
        sums[names.index(g[i]), yt[i], yp[i], bins[i]] += score[i]
    cell_mean = np.divide(sums, cells, out=np.zeros_like(sums), where=cells > 0)
    n = len(yt)
    draws = np.random.default_rng(seed).multinomial(n, cells.ravel() / n, size=n_boot).reshape(n_boot, *cells.shape)
    per_replicate = []
    for b in range(n_boot):
        groups = []
        for gi in range(len(names)):
            c = draws[b, gi]
            rates = _classification_rates(c.sum(axis=-1))
            s_k = (c * cell_mean[gi]).sum(axis=(0, 1))
            pos_k = c[1].sum(axis=0)
            n_g = c.sum()
            rates["mean_score"] = _q(s_k.sum(), n_g)
            rates["calibration_gap"] = rates["mean_score"] - _q(pos_k.sum(), n_g)
            rates["expected_calibration_error"] = _q(np.abs(s_k - pos_k).sum(), n_g)
            groups.append(rates)
        per_replicate.append(groups)
    compared = np.ones(len(names), dtype=bool)
    rates_ci, disp_ci = _reference_intervals(per_replicate, compared, 0.95, regression=False)
    gaps = np.array([[grp["calibration_gap"] if grp["count"] > 0 else np.nan for grp in reps]
                     for reps in per_replicate])
    present = ~np.isnan(gaps)
    spread = [np.nanmax(row) - np.nanmin(row) if k >= 2 else np.nan for row, k in zip(gaps, present.sum(axis=1))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        disp_ci["calibration_gap_difference"] = tuple(float(x) for x in np.nanquantile(spread, [0.025, 0.975]))
    _assert_intervals_equal(r, rates_ci, disp_ci)


# -- public helpers called directly, defaults, precomputed groups ----------------------------------
def test_calibration_cells_default_bins_and_empty_trailing_cells():
    codes = np.array([0, 0, 1, 1])
    t = np.array([0, 1, 0, 1])
    p = np.array([0, 1, 1, 0])
    s = np.array([0.05, 0.12, 0.31, 0.2])  # every upper bin and the last cell (group 1, t=1, p=1) empty
    counts, sums = calibration_cells(t, p, s, codes, 2)
    assert counts.shape == sums.shape == (2, 2, 2, 10)
    assert counts.sum() == 4 and counts[0, 0, 0, 0] == counts[0, 1, 1, 1] == counts[1, 0, 1, 3] == counts[1, 1, 0, 2] == 1
    assert sums[1, 0, 1, 3] == 0.31 and sums.sum() == pytest.approx(s.sum())
    # scores a little outside [0, 1] land in the first and last bins
    counts, _ = calibration_cells(np.array([1, 0]), np.array([1, 0]), np.array([1.3, -0.25]), np.array([0, 0]), 1, 4)
    assert counts[0, 1, 1, 3] == 1 and counts[0, 0, 0, 0] == 1


@pytest.mark.parametrize("shape", [(1, 2, 2), (3, 2, 2), (2, 2, 2, 4)])
def test_bootstrap_cell_counts_edge_cases(shape):
    zero = np.zeros(shape)
    out = bootstrap_cell_counts(zero, 7, np.random.default_rng(0))
    assert out.shape == (7, *shape) and not out.any()
    one = zero.copy()
    one.reshape(-1)[1] = 1  # a single row: every replicate is that row
    out = bootstrap_cell_counts(one, 5, np.random.default_rng(0))
    assert out.shape == (5, *shape)
    np.testing.assert_array_equal(out, np.broadcast_to(one, out.shape))
    weighted = zero.copy()
    weighted.reshape(-1)[0] = 1.5
    with pytest.raises(ValueError, match=r"^bootstrap_cell_counts needs integer \(unweighted\) counts$"):
        bootstrap_cell_counts(weighted, 3, np.random.default_rng(0))


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_defaults_and_precomputed_groups(seed):
    rng = np.random.default_rng(seed)
    a = rng.choice(["x", "y"], 80)
    b = rng.choice(["u", "v"], 80)
    y = rng.normal(size=80)
    p = y + rng.normal(size=80)
    plain = regression_metrics(y, p, {"a": a, "b": b})
    assert plain.rates_ci == {} and plain.disparity_ci == {} and plain.n_boot == 0
    assert plain.groups.key == "a&b" and len(plain.groups.names) == 4
    only_a = regression_metrics(y, p, {"a": a, "b": b}, attributes=["a"])
    assert only_a.groups.names == ["x", "y"]
    codes = encode_groups({"a": a, "b": b}, ["b"])
    pre = regression_metrics(y, p, codes, n_boot=40)
    assert pre.groups is codes
    ref = regression_metrics(y, p, {"b": b}, n_boot=40, seed=0)  # the default seed is 0
    for k in ref.disparity_ci:
        assert pre.disparity_ci[k] == ref.disparity_ci[k], k
    pre_c = fairness_metrics((y > 0).astype(int), (p > 0).astype(int), codes)
    assert pre_c.groups is codes


@pytest.mark.parametrize(("sizes", "seed"), [((1, 2), 0), ((1, 1), 1), ((2, 3), 2), ((1, 2, 2), 3)])
def test_intervals_over_tiny_groups_only(sizes, seed):
    """Only tiny groups: many replicates hold fewer than two of them and give no disparity (NaN),
    not 0; the interval comes from the other replicates."""
    rng = np.random.default_rng(seed)
    g = np.array([f"s{i}" for i, k in enumerate(sizes) for _ in range(k)], dtype=object)
    yt = rng.integers(0, 2, len(g))
    yp = rng.integers(0, 2, len(g))
    n_boot = 300
    r = fairness_metrics(yt, yp, {"g": g}, n_boot=n_boot, seed=seed)
    names = sorted(set(g))
    counts = np.array([[[np.sum((g == name) & (yt == t) & (yp == p)) for p in (0, 1)] for t in (0, 1)]
                       for name in names], dtype=float)
    n = len(g)
    draws = np.random.default_rng(seed).multinomial(n, counts.ravel() / n, size=n_boot).reshape(n_boot, *counts.shape)
    per_replicate = [[_classification_rates(draws[b, gi]) for gi in range(len(names))] for b in range(n_boot)]
    rates_ci, disp_ci = _reference_intervals(per_replicate, np.ones(len(names), dtype=bool), 0.95, regression=False)
    _assert_intervals_equal(r, rates_ci, disp_ci)


def test_intervals_silence_all_nan_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = fairness_metrics([1, 0, 1], [1, 1, 0], {"s": ["a", "a", "a"]}, n_boot=20)
    assert all(np.isnan(lo) and np.isnan(hi) for lo, hi in r.disparity_ci.values())


# -- the integer fast path for the default pos_label ----------------------------------------------
FAST_YES = [  # integer/bool arrays holding only {0, 1} or only {-1, 1}: pos_label 1 without a sort
    ([0, 1], [1, 0]), ([0, 0], [0, 0]), ([1, 1], [1]), ([0, 1], [1, 1]), ([-1, 1], [1, -1]), ([-1, -1], [-1]),
    ([True, False], [True]), ([True, True], [0, 1]),
]
FAST_NO = [  # floats, empty arrays, other values, or {0, 1} mixed with {-1, 1}: decided by the slow path
    ([0.0, 1.0], [1, 0]), ([0, 1], [1.0, 0.0]), ([], [1]), ([0, 1], []), ([0, 2], [0]), ([-1, 0], [0]),
    ([-1, 0, 1], [1]), ([0, 1], [-1, 1]), ([-2, 1], [1]), ([-1, 2], [2]), ([2, 2], [2]), ([-1, -1], [0]),
]


@pytest.mark.parametrize(("yt", "yp", "dtype"), [
    (yt, yp, dt) for yt, yp in FAST_YES for dt in (np.int64, np.int8, np.uint8, bool) if min(yt + yp) >= 0 or dt in
    (np.int64, np.int8)])
def test_integer_fast_path_takes_pos_label_one(yt, yp, dtype):
    t, p = np.asarray(yt).astype(dtype), np.asarray(yp).astype(dtype)
    assert _integer_pos_label(t, p) == 1
    assert _integer_pos_label(t) == 1 and _integer_pos_label(p) == 1


@pytest.mark.parametrize(("yt", "yp"), FAST_NO)
def test_integer_fast_path_declines_everything_else(yt, yp):
    assert _integer_pos_label(np.asarray(yt), np.asarray(yp)) is None


@pytest.mark.parametrize(("neg", "pos"), [(0, 1), (-1, 1)])
@pytest.mark.parametrize("seed", [0, 1])
def test_integer_labels_without_pos_label_equal_fairlearn(neg, pos, seed):
    yt, yp, g = _table(200, seed)
    it, ip = np.where(yt == 1, pos, neg), np.where(yp == 1, pos, neg)
    r = fairness_metrics(it, ip, {"g": g})
    assert r.pos_label == 1
    np.testing.assert_array_equal(r.rates["selection_rate"], fairness_metrics(yt, yp, {"g": g}).rates["selection_rate"])
    assert r.disparity["demographic_parity_difference"] == pytest.approx(
        fm.demographic_parity_difference(it, ip, sensitive_features=g), abs=1e-12)


@pytest.mark.parametrize(("yt", "yp", "message"), [
    ([-1, 2, 2], [2, -1, 2], r"values are \[-1, 2\]; pass pos_label"),
    ([-2, 1, 1], [1, 1, -2], r"values are \[-2, 1\]; pass pos_label"),
    ([-1, 0, 0], [0, -1, 0], r"values are \[-1, 0\]; pass pos_label"),
    ([0, 2, 2], [2, 0, 0], r"values are \[0, 2\]; pass pos_label"),
])
def test_integer_labels_outside_the_default_rule_need_pos_label(yt, yp, message):
    with pytest.raises(DataError, match=message):
        fairness_metrics(np.asarray(yt), np.asarray(yp), {"g": ["a", "b", "b"]})


# -- input checks, result fields, defaults ---------------------------------------------------------
@pytest.mark.parametrize("engine", ["classification", "regression"])
@pytest.mark.parametrize(("n_true", "n_pred", "n_groups"), [(3, 2, 3), (2, 3, 3), (3, 3, 2), (4, 2, 4)])
def test_length_mismatch_is_a_data_error(engine, n_true, n_pred, n_groups):
    y, p, g = np.ones(n_true, dtype=int), np.ones(n_pred, dtype=int), ["a", "b", "c", "d"][:n_groups]
    what = "labels" if engine == "classification" else "targets"
    f = fairness_metrics if engine == "classification" else regression_metrics
    with pytest.raises(DataError, match=rf"^{n_groups} sensitive values but {n_true} {what} and {n_pred} predictions$"):
        f(y, p, {"g": g})


@pytest.mark.parametrize("f", [fairness_metrics, regression_metrics])
def test_no_rows_and_one_row(f):
    with pytest.raises(DataError, match=r"^no rows to evaluate$"):
        f(np.array([], dtype=int), np.array([], dtype=int), {"g": np.array([], dtype=object)})
    one = f(np.array([1]), np.array([1]), {"g": ["a"]}, n_boot=5)  # one row is a valid (if useless) table
    assert one.rates["count"].tolist() == [1]
    assert all(np.isnan(v) for v in one.disparity.values())


@pytest.mark.parametrize(("n_boot", "confidence", "seed"), [(1, 0.8, 3), (2, 0.5, 4), (25, 0.9, 5)])
def test_result_fields(n_boot, confidence, seed):
    yt, yp, g = _table(150, seed)
    y = yt + np.random.default_rng(seed).normal(size=len(yt))
    for f, task, args in ((fairness_metrics, "classification", (yt, yp)), (regression_metrics, "regression", (y, yp))):
        r = f(*args, {"g": g}, n_boot=n_boot, confidence=confidence, seed=seed)
        assert r.task == task and r.confidence == confidence and r.n_boot == n_boot
        assert r.rates_ci and r.disparity_ci  # even one resample gives (degenerate) intervals
        plain = f(*args, {"g": g})
        assert plain.task == task and plain.confidence == 0.95 and plain.n_boot == 0 and not plain.disparity_ci
        default_seed = f(*args, {"g": g}, n_boot=n_boot, confidence=confidence)
        seed0 = f(*args, {"g": g}, n_boot=n_boot, confidence=confidence, seed=0)
        assert default_seed.disparity_ci == seed0.disparity_ci  # the default seed is 0
        gen = f(*args, {"g": g}, n_boot=n_boot, confidence=confidence, seed=np.random.default_rng(seed))
        assert gen.disparity_ci == r.disparity_ci  # a Generator is used as given


@pytest.mark.parametrize("min_size", [3, 10])
def test_regression_small_groups_are_not_compared(min_size):
    rng = np.random.default_rng(min_size)
    g = np.array(["big1"] * 40 + ["big2"] * 40 + ["tiny"] * 2, dtype=object)
    y = rng.normal(loc=5.0, size=len(g))
    p = y + np.where(g == "tiny", 50.0, rng.normal(size=len(g)))  # the tiny group would dominate every spread
    kept = regression_metrics(y, p, {"g": g}, min_group_size=min_size)
    assert kept.compared.tolist() == [True, True, False]
    without = regression_metrics(y[:80], p[:80], {"g": g[:80]})
    for k, v in without.disparity.items():
        assert kept.disparity[k] == pytest.approx(v, abs=1e-12), k


@pytest.mark.parametrize("which", ["target", "prediction", "both"])
@pytest.mark.parametrize("seed", [0, 1])
def test_regression_accepts_object_and_integer_columns(which, seed):
    """Targets/predictions from an object-dtype column (pandas) or integers give the float result."""
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b"], 60)
    y = rng.integers(0, 10, 60).astype(float)
    p = y + rng.integers(-2, 3, 60)
    ref = regression_metrics(y, p, {"g": g}, n_boot=10)
    for cast in (lambda a: a.astype(object), lambda a: a.astype(np.int64)):
        yy = cast(y) if which in ("target", "both") else y
        pp = cast(p) if which in ("prediction", "both") else p
        r = regression_metrics(yy, pp, {"g": g}, n_boot=10)
        for k in REGRESSION_RATES:
            np.testing.assert_allclose(r.rates[k], ref.rates[k], rtol=1e-12, err_msg=k)
        assert r.disparity_ci == ref.disparity_ci


@pytest.mark.parametrize("y", [np.array(["yes", "no"]), np.array([2, 3]), np.array([0.5, 1.0])])
def test_binarize_names_the_labels_by_default(y):
    with pytest.raises(DataError, match=r"^labels: values are \[.*\]; pass pos_label \(the favourable outcome\)$"):
        binarize(y)


@pytest.mark.parametrize("n_boot", [1, 50])
def test_bootstrap_with_sample_weights_is_refused(n_boot):
    yt, yp, g = _table(50, n_boot)
    with pytest.raises(DataError, match=r"^bootstrap intervals are not available with sample weights; set n_boot=0$"):
        fairness_metrics(yt, yp, {"g": g}, sample_weight=np.ones(len(yt)), n_boot=n_boot)
    assert fairness_metrics(yt, yp, {"g": g}, sample_weight=np.ones(len(yt))).disparity_ci == {}


@pytest.mark.parametrize(("y", "pos_label"), [
    (np.array([0, 1, 1, 0]), 0), (np.array([0, 1, 1, 0]), 1), (np.array([-1, 1, 1]), -1), (np.array([True, False]), False),
    (np.array(["a", "b", "a"]), "b"), (np.array([0.0, 1.0, 1.0]), 0.0), (np.array([3, 7, 7, 9]), 7),
])
def test_binarize_with_pos_label(y, pos_label):
    b, pos = binarize(y, pos_label)
    assert pos == pos_label and b.dtype == np.int64
    assert b.tolist() == [int(v == pos_label) for v in y.tolist()]


@pytest.mark.parametrize("pos_label", [0, 1])
def test_pos_label_zero_flips_every_rate(pos_label):
    yt, yp, g = _table(200, 3)
    r = fairness_metrics(yt, yp, {"g": g}, pos_label=pos_label)
    flipped = fairness_metrics(1 - yt if pos_label == 0 else yt, 1 - yp if pos_label == 0 else yp, {"g": g})
    assert r.pos_label == pos_label
    for k in GROUP_RATES:
        np.testing.assert_array_equal(r.rates[k], flipped.rates[k], err_msg=k)
    sel = fm.MetricFrame(metrics=partial(fm.selection_rate, pos_label=pos_label), y_true=yt, y_pred=yp,
                         sensitive_features=g)
    assert r.disparity["demographic_parity_difference"] == pytest.approx(sel.difference(), abs=1e-12)


@pytest.mark.parametrize("k", [7, 8, 20])
def test_more_than_six_values_are_elided(k):
    with pytest.raises(DataError, match=rf"{k} distinct values \(0, 1, 2, 3, 4, 5, \.\.\.\)"):
        binarize(np.arange(k))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, bool, np.int8])
def test_confusion_by_group_accepts_0_1_labels_of_any_dtype(dtype):
    codes = np.array([0, 0, 1, 1, 1])
    c = confusion_by_group(np.array([1, 0, 1, 1, 0]).astype(dtype), np.array([1, 1, 0, 1, 0]).astype(dtype), codes, 2)
    assert c.dtype == np.float64
    assert c.tolist() == [[[0, 1], [0, 1]], [[1, 0], [1, 1]]]


@pytest.mark.parametrize("y", [np.array([0, 1, 1, 0]), np.array([1, 1]), np.array([0, 0]), np.array([-1, 1, -1]),
                               np.array([True, False, True]), np.array([1, 0], dtype=np.int8)])
def test_binarize_integer_labels_without_pos_label(y):
    b, pos = binarize(y)
    assert pos == 1 and b.dtype == np.int64
    assert b.tolist() == [int(v == 1) for v in y.tolist()]


@pytest.mark.parametrize("scale", [1e-4, 0.01, 0.3])
def test_fractional_sample_weights_below_one_match_fairlearn(scale):
    """Weighted denominators below 1 (rates of a weighted group are ratios of weight sums)."""
    from sklearn.metrics import accuracy_score

    yt, yp, g = _table(60, 9)
    w = np.random.default_rng(1).random(len(yt)) * scale
    r = fairness_metrics(yt, yp, {"g": g}, sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = fm.MetricFrame(metrics={"selection_rate": fm.selection_rate, "true_positive_rate": fm.true_positive_rate,
                                     "accuracy": accuracy_score}, y_true=yt, y_pred=yp, sensitive_features=g,
                            sample_params={k: {"sample_weight": w} for k in ("selection_rate", "true_positive_rate",
                                                                           "accuracy")})
    for k in ("selection_rate", "true_positive_rate", "accuracy"):
        np.testing.assert_allclose(r.rates[k], mf.by_group[k].to_numpy(dtype=float), rtol=1e-9, err_msg=k)


@pytest.mark.parametrize("seed", [0, 1])
def test_disparities_without_a_mask_compare_every_group(seed):
    yt, yp, g = _table(120, seed)
    r = fairness_metrics(yt, yp, {"g": g})
    plain = disparities(r.rates)
    assert set(plain) == set(r.disparity)
    for k, v in plain.items():
        assert float(v) == pytest.approx(r.disparity[k], abs=1e-12, nan_ok=True), k
    one = disparities(r.rates, np.array([True, False, False]))
    assert all(np.isnan(v) for v in one.values())


# -- group encoding --------------------------------------------------------------------------------
@pytest.mark.parametrize(("values", "names"), [
    (["b", "a", "b"], ["a", "b"]), ([3, 1, 3, 2], ["1", "2", "3"]), (np.array([True, False]), ["False", "True"]),
])
def test_a_plain_array_is_one_attribute_named_group(values, names):
    g = encode_groups(values)
    assert g.attributes == ("group",) and g.key == "group" and g.names == names
    assert [g.values[c][0] for c in g.codes] == list(values)
    assert all(type(v[0]) in (str, int, bool) for v in g.values)  # plain Python values, not numpy scalars


@pytest.mark.parametrize(("sensitive", "attributes", "message"), [
    ({"sex": ["a", "b"]}, [], r"^no sensitive attribute given$"),
    ({}, None, r"^no sensitive attribute given$"),
    ({"sex": ["a", "b"]}, ["race"], r"^sensitive column 'race' is not in the data; available: sex$"),
    ({"sex": ["a"], "age": [1]}, ["sex", "race"], r"^sensitive column 'race' is not in the data; available: sex, age$"),
    ({"sex": np.array([["a", "b"]])}, None, r"^a sensitive column must be one-dimensional \(got shape \(1, 2\)\)$"),
    ({"sex": np.array(["a", None, "b", None], dtype=object)}, None,
     r"^a sensitive column has 2 missing values; fill or drop them$"),
    ({"sex": np.array([None, "a"], dtype=object)}, None, r"^a sensitive column has 1 missing values; fill or drop them$"),
])
def test_encode_groups_errors(sensitive, attributes, message):
    with pytest.raises(DataError, match=message):
        encode_groups(sensitive, attributes)


def test_missing_attribute_in_an_empty_mapping_lists_none():
    with pytest.raises(DataError, match=r"available: \(none\)$"):
        encode_groups({}, ["sex"])


@pytest.mark.parametrize("mask", [[1, 0, 1], [0, 1, 1], (True, False, True)])
def test_disparities_mask_of_ints_or_a_tuple_selects_groups(mask):
    yt, yp, g = _table(150, 4)
    r = fairness_metrics(yt, yp, {"g": g})
    keep = np.asarray(mask, dtype=bool)
    sel = r.rates["selection_rate"][keep]
    out = disparities(r.rates, mask)
    assert float(out["demographic_parity_difference"]) == pytest.approx(sel.max() - sel.min(), abs=1e-12)
    assert float(out["demographic_parity_ratio"]) == pytest.approx(sel.min() / sel.max(), abs=1e-12)
