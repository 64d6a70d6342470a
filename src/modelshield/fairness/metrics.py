"""A vectorised group-fairness engine: per-group confusion counts in one pass, metrics from counts,
bootstrap intervals by resampling weights.

Names and definitions follow fairlearn (``selection_rate``, ``true_positive_rate``,
``demographic_parity_difference``, ``equalized_odds_difference``, ...) and the tests check the
values against fairlearn to 1e-9. Where fairlearn's ``MetricFrame`` calls a Python metric function
once per group, this engine does one ``np.bincount`` over ``group * 4 + 2 * y_true + y_pred``:
every classification metric below is a function of those ``G x 2 x 2`` counts.

Bootstrap. The non-parametric bootstrap draws ``n`` rows with replacement, i.e. integer weights
``w ~ Multinomial(n, 1/n, ..., 1/n)`` over rows; summing those weights inside each
(group, label, prediction[, score bin]) cell gives cell counts ``~ Multinomial(n, cell_counts / n)``
*exactly*. So ``B`` resamples cost ``B`` multinomial draws over ``4 G`` (or ``4 G K``) cells,
independent of ``n``, and give the same distribution of every count-based metric as resampling
rows. Calibration uses score bins (the score of a row is replaced by its bin's mean inside each
resample, as a reliability diagram does). Regression metrics need per-row values: there the weights
are Poisson(1) per row (the usual large-``n`` approximation), applied in chunks as a matrix product.

Undefined rates (a group without positives has no true-positive rate) are 0, as in fairlearn
(scikit-learn's ``confusion_matrix(normalize="true")``); :func:`group_table` also reports the
denominators so callers can flag them.

References
----------
Bird, S. et al. (2020). Fairlearn: A toolkit for assessing and improving fairness in AI. Microsoft
  Tech. Rep. MSR-TR-2020-32.
Hardt, M., Price, E., Srebro, N. (2016). Equality of Opportunity in Supervised Learning. NeurIPS.
Efron, B., Tibshirani, R. (1993). An Introduction to the Bootstrap. Chapman & Hall.
Hanley, J. A., MacGibbon, B. (2006). Creating non-parametric bootstrap samples using Poisson
  frequencies. Computer Methods and Programs in Biomedicine 83(1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelshield.errors import DataError

__all__ = [
    "CLASSIFICATION_DISPARITIES",
    "GROUP_RATES",
    "REGRESSION_DISPARITIES",
    "REGRESSION_RATES",
    "FairnessResult",
    "GroupCodes",
    "binarize",
    "bootstrap_cell_counts",
    "calibration_cells",
    "confusion_by_group",
    "disparities",
    "encode_groups",
    "fairness_metrics",
    "rates_from_counts",
    "regression_metrics",
]

#: Per-group rates computed from confusion counts (fairlearn names where fairlearn has one).
GROUP_RATES = (
    "count", "selection_rate", "accuracy", "true_positive_rate", "false_positive_rate",
    "false_negative_rate", "true_negative_rate", "precision", "base_rate",
)
#: Between-group comparisons; "difference" = max - min over groups, "ratio" = min / max.
CLASSIFICATION_DISPARITIES = (
    "demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
    "equalized_odds_ratio", "equal_opportunity_difference", "equal_opportunity_ratio",
    "predictive_parity_difference", "accuracy_difference", "false_negative_rate_difference",
)
REGRESSION_RATES = ("count", "mean_prediction", "mean_target", "mean_absolute_error", "root_mean_squared_error")
REGRESSION_DISPARITIES = (
    "mean_prediction_difference", "mean_prediction_ratio", "mean_absolute_error_difference",
    "mean_absolute_error_ratio", "root_mean_squared_error_difference",
)

_BINARY_ONLY = (
    "binary metrics need two classes, but the labels have {k} distinct values ({shown}); "
    "pass pos_label to compare one class against the rest"
)


# -- groups -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupCodes:
    """Rows mapped to groups ``0..G-1``.

    ``names[g]`` is the group's label (values joined by ``" & "`` for intersections), ``values[g]``
    the tuple of attribute values, ``attributes`` the attribute names.
    """

    codes: np.ndarray
    names: list[str]
    values: list[tuple[Any, ...]]
    attributes: tuple[str, ...]

    @property
    def n_groups(self) -> int:
        return len(self.names)

    @property
    def key(self) -> str:
        """``"sex"`` or ``"sex&race"``: the prefix of this view's metric names."""
        return "&".join(self.attributes)


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted uniques and codes (hash-based, fast on strings)."""
    import pandas as pd  # lazy: pandas is slow to import; only this path needs it

    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        return _factorize_categorical(pd.Categorical(values))
    values = np.asarray(values)
    if values.ndim != 1:
        raise DataError(f"a sensitive column must be one-dimensional (got shape {values.shape})")
    if values.dtype.kind == "U" and len(values):
        return _factorize_unicode(values)
    codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
    if (codes < 0).any():
        raise DataError(f"a sensitive column has {int((codes < 0).sum())} missing values; fill or drop them")
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=object)


def _factorize_categorical(cat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sorted uniques and codes of a pandas Categorical from its own integer codes (no object array)."""
    codes = np.asarray(cat.codes, dtype=np.int64)
    if (codes < 0).any():
        raise DataError(f"a sensitive column has {int((codes < 0).sum())} missing values; fill or drop them")
    cats = np.asarray(cat.categories, dtype=object)
    present = np.flatnonzero(np.bincount(codes, minlength=len(cats)) > 0)
    used = cats[present]
    order = np.argsort(np.asarray(used.tolist()), kind="stable")  # the same order pd.factorize(sort=True) gives
    remap = np.full(len(cats), -1, dtype=np.int64)
    remap[present[order]] = np.arange(len(used))
    return remap[codes], used[order]


def _factorize_unicode(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted uniques and codes of a numpy unicode array without building Python strings per row: the
    fixed-width code points, two per exact 64-bit key, are coded column by column (exact, no hashing)."""
    import pandas as pd  # lazy: pandas is slow to import; only this path needs it

    n, width = len(values), values.dtype.itemsize // 4
    points = values.view(np.uint32).reshape(n, width)
    if width % 2:
        points = np.concatenate([points, np.zeros((n, 1), dtype=np.uint32)], axis=1)
    keys = np.ascontiguousarray(points).view(np.uint64)
    codes = np.zeros(n, dtype=np.int64)
    for j in range(keys.shape[1]):
        cj, uj = pd.factorize(keys[:, j], sort=False)
        codes = cj.astype(np.int64) if j == 0 else pd.factorize(codes * len(uj) + cj, sort=False)[0].astype(np.int64)
    # pd.factorize numbers values in order of first appearance: the running maximum rises exactly there
    first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
    reps = values[first]
    order = np.argsort(reps, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], np.asarray(reps[order].tolist(), dtype=object)


def encode_groups(
    sensitive: Mapping[str, np.ndarray] | np.ndarray, attributes: Sequence[str] | None = None
) -> GroupCodes:
    """Group codes for one attribute or the intersection of several (observed combinations only).

    Parameters
    ----------
    sensitive : ``name -> values`` (or one array, named ``"group"``).
    attributes : which names to intersect (default: all, in mapping order).
    """
    if not isinstance(sensitive, Mapping):
        sensitive = {"group": np.asarray(sensitive)}
    attrs = tuple(attributes) if attributes is not None else tuple(sensitive)
    if not attrs:
        raise DataError("no sensitive attribute given")
    for a in attrs:
        if a not in sensitive:
            raise DataError(f"sensitive column {a!r} is not in the data; available: {', '.join(sensitive) or '(none)'}")
    combined: np.ndarray | None = None
    uniques: list[np.ndarray] = []
    radix = 1
    for a in attrs:
        codes, u = _factorize(sensitive[a])
        uniques.append(u)
        combined = codes if combined is None else combined * len(u) + codes
        radix *= len(u)
    assert combined is not None
    present = np.bincount(combined, minlength=radix) > 0
    remap = np.cumsum(present) - 1
    full = np.flatnonzero(present)
    # decode mixed-radix indices back to per-attribute values
    values: list[tuple[Any, ...]] = []
    sizes = [len(u) for u in uniques]
    digits = np.zeros((len(full), len(attrs)), dtype=np.int64)
    rest = full.copy()
    for j in range(len(attrs) - 1, -1, -1):
        digits[:, j] = rest % sizes[j]
        rest //= sizes[j]
    for row in digits:
        values.append(tuple(_plain(uniques[j][d]) for j, d in enumerate(row)))
    names = [" & ".join(str(v) for v in t) for t in values]
    return GroupCodes(codes=remap[combined].astype(np.int64), names=names, values=values, attributes=attrs)


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def binarize(y: np.ndarray, pos_label: Any = None, *, what: str = "labels") -> tuple[np.ndarray, Any]:
    """``y == pos_label`` as 0/1, with fairlearn's default: ``pos_label`` must be given unless the
    values are a subset of {0, 1} or {-1, 1} (then it is 1). More than two values without
    ``pos_label`` is a :class:`DataError`."""
    y = np.asarray(y)
    if pos_label is None and _integer_pos_label(y) == 1:
        return (y == 1).astype(np.int64), 1
    if pos_label is None:
        u = np.unique(y)
        if len(u) > 2:
            shown = ", ".join(map(str, u[:6].tolist())) + (", ..." if len(u) > 6 else "")
            raise DataError(f"{what}: " + _BINARY_ONLY.format(k=len(u), shown=shown))
        if set(u.tolist()) <= {0, 1} or set(u.tolist()) <= {-1, 1}:
            pos_label = 1
        else:
            raise DataError(f"{what}: values are {u.tolist()}; pass pos_label (the favourable outcome)")
    return (y == pos_label).astype(np.int64), pos_label


def _integer_pos_label(*arrays: np.ndarray) -> int | None:
    """1 when integer/bool arrays hold only {0, 1} or only {-1, 1} values (no sort needed), else None."""
    if not all(a.size and (a.dtype == bool or np.issubdtype(a.dtype, np.integer)) for a in arrays):
        return None
    lo = min(int(a.min()) for a in arrays)
    hi = max(int(a.max()) for a in arrays)
    if lo >= 0 and hi <= 1:
        return 1
    if lo >= -1 and hi <= 1 and not any(bool((a == 0).any()) for a in arrays):
        return 1
    return None


def _default_pos_label(y_true: np.ndarray, y_pred: np.ndarray) -> Any:
    fast = _integer_pos_label(y_true, y_pred)
    if fast is not None:
        return fast
    return binarize(np.concatenate([y_true.ravel(), y_pred.ravel()]), None, what="labels and predictions")[1]


# -- counts -------------------------------------------------------------------------------------
def confusion_by_group(
    y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Counts ``C[g, t, p]`` of rows of group ``g`` with 0/1 label ``t`` and prediction ``p``,
    shape ``(G, 2, 2)``, in one ``np.bincount``."""
    cell = codes * 4 + 2 * np.asarray(y_true, dtype=np.int64) + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(cell, weights=sample_weight, minlength=4 * n_groups).reshape(n_groups, 2, 2).astype(
        np.float64)


def calibration_cells(
    y_true: np.ndarray, y_pred: np.ndarray, y_score: np.ndarray, codes: np.ndarray, n_groups: int,
    n_bins: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Counts and score sums per (group, label, prediction, score bin), shapes ``(G, 2, 2, K)``."""
    s = np.asarray(y_score, dtype=np.float64)
    b = np.clip((s * n_bins).astype(np.int64), 0, n_bins - 1)
    cell = ((codes * 2 + np.asarray(y_true, dtype=np.int64)) * 2 + np.asarray(y_pred, dtype=np.int64)) * n_bins + b
    size = 4 * n_groups * n_bins
    counts = np.bincount(cell, minlength=size).astype(np.float64).reshape(n_groups, 2, 2, n_bins)
    sums = np.bincount(cell, weights=s, minlength=size).reshape(n_groups, 2, 2, n_bins)
    return counts, sums


def bootstrap_cell_counts(counts: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` bootstrap replicates of integer cell counts, shape ``(n_boot, *counts.shape)``.

    Exactly the distribution of the cell counts of a resample of the rows with replacement.
    """
    flat = np.asarray(counts, dtype=np.float64).reshape(-1)
    if np.any(flat != np.round(flat)):
        raise ValueError("bootstrap_cell_counts needs integer (unweighted) counts")
    n = int(flat.sum())
    if n == 0:
        return np.zeros((n_boot, *counts.shape))
    draws = rng.multinomial(n, flat / n, size=n_boot)
    return draws.reshape(n_boot, *counts.shape).astype(np.float64)


def _div(a: np.ndarray, b: np.ndarray, empty: float = 0.0) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), empty)


def rates_from_counts(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group rates from counts of shape ``(..., G, 2, 2)`` (leading axes: bootstrap replicates).

    Zero denominators give 0 (fairlearn's convention), except ``precision`` (0, as scikit-learn's
    ``zero_division="warn"``) and ``count``.
    """
    tn, fp = counts[..., 0, 0], counts[..., 0, 1]
    fn, tp = counts[..., 1, 0], counts[..., 1, 1]
    n = tn + fp + fn + tp
    pos, neg = tp + fn, tn + fp
    return {
        "count": n,
        "selection_rate": _div(tp + fp, n),
        "accuracy": _div(tp + tn, n),
        "true_positive_rate": _div(tp, pos),
        "false_positive_rate": _div(fp, neg),
        "false_negative_rate": _div(fn, pos),
        "true_negative_rate": _div(tn, neg),
        "precision": _div(tp, tp + fp),
        "base_rate": _div(pos, n),
    }


def _calibration_rates(counts: np.ndarray, sums: np.ndarray) -> dict[str, np.ndarray]:
    """Mean score, calibration gap (mean score - base rate) and expected calibration error per group,
    from ``(..., G, 2, 2, K)`` cells."""
    n_gk = counts.sum(axis=(-3, -2))  # (..., G, K)
    pos_gk = counts[..., 1, :, :].sum(axis=-2)
    s_gk = sums.sum(axis=(-3, -2))
    n_g = n_gk.sum(axis=-1)
    mean_score = _div(s_gk.sum(axis=-1), n_g)
    base = _div(pos_gk.sum(axis=-1), n_g)
    ece = _div(np.abs(s_gk - pos_gk).sum(axis=-1), n_g)  # sum_k n_k/n |mean_k - rate_k|
    return {"mean_score": mean_score, "calibration_gap": mean_score - base, "expected_calibration_error": ece}


def _spread(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max - min, min / max) over the groups in ``mask`` (last axis); NaN with fewer than 2 groups."""
    if mask.sum() < 2:
        shape = values.shape[:-1]
        return np.full(shape, np.nan), np.full(shape, np.nan)
    v = values[..., mask]
    hi, lo = v.max(axis=-1), v.min(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(hi > 0, lo / np.where(hi > 0, hi, 1.0), np.where(lo == hi, 1.0, np.nan))
        ratio = np.where(lo < 0, np.nan, ratio)  # a ratio of signed means says nothing
    return hi - lo, ratio


def disparities(rates: Mapping[str, np.ndarray], mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Between-group comparisons (fairlearn's ``method="between_groups"``, ``agg="worst_case"``).

    ``mask`` selects the groups compared (e.g. to leave out groups that are too small). Regression
    rates (``mean_prediction`` ...) give the regression analogues.
    """
    any_rate = next(iter(rates.values()))
    m = np.ones(any_rate.shape[-1], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    out: dict[str, np.ndarray] = {}
    if "selection_rate" in rates:
        out["demographic_parity_difference"], out["demographic_parity_ratio"] = _spread(rates["selection_rate"], m)
        tpr_d, tpr_r = _spread(rates["true_positive_rate"], m)
        fpr_d, fpr_r = _spread(rates["false_positive_rate"], m)
        out["equalized_odds_difference"] = np.maximum(tpr_d, fpr_d)
        out["equalized_odds_ratio"] = np.minimum(tpr_r, fpr_r)
        out["equal_opportunity_difference"], out["equal_opportunity_ratio"] = tpr_d, tpr_r
        out["predictive_parity_difference"] = _spread(rates["precision"], m)[0]
        out["accuracy_difference"] = _spread(rates["accuracy"], m)[0]
        out["false_negative_rate_difference"] = _spread(rates["false_negative_rate"], m)[0]
        if "calibration_gap" in rates:
            out["calibration_gap_difference"] = _spread(rates["calibration_gap"], m)[0]
    if "mean_prediction" in rates:
        out["mean_prediction_difference"], out["mean_prediction_ratio"] = _spread(rates["mean_prediction"], m)
        out["mean_absolute_error_difference"], out["mean_absolute_error_ratio"] = _spread(
            rates["mean_absolute_error"], m)
        out["root_mean_squared_error_difference"] = _spread(rates["root_mean_squared_error"], m)[0]
    return out


# -- results ------------------------------------------------------------------------------------
@dataclass
class FairnessResult:
    """Per-group rates and between-group disparities for one view (an attribute or intersection).

    ``rates[name][g]`` / ``disparity[name]`` are point values; ``rates_ci[name]`` is ``(lo, hi)``
    arrays per group and ``disparity_ci[name]`` a ``(lo, hi)`` pair (empty without bootstrap).
    ``compared`` marks the groups that entered the disparities (size >= ``min_group_size``).
    """

    groups: GroupCodes
    task: str
    rates: dict[str, np.ndarray]
    disparity: dict[str, float]
    compared: np.ndarray
    rates_ci: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    disparity_ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    n_boot: int = 0
    confidence: float = 0.95
    pos_label: Any = None

    @property
    def small_groups(self) -> list[tuple[str, int]]:
        counts = self.rates["count"]
        return [(self.groups.names[g], int(counts[g])) for g in np.flatnonzero(~self.compared)]

    def group_table(self) -> list[dict[str, Any]]:
        """One row per group: every rate, its interval, and whether it was compared."""
        rows = []
        for g, name in enumerate(self.groups.names):
            row: dict[str, Any] = {"attribute": self.groups.key, "group": name,
                                   "compared": bool(self.compared[g])}
            for k, v in self.rates.items():
                row[k] = int(v[g]) if k == "count" else float(v[g])
                if k in self.rates_ci:
                    row[f"{k}_lo"] = float(self.rates_ci[k][0][g])
                    row[f"{k}_hi"] = float(self.rates_ci[k][1][g])
            rows.append(row)
        return rows

    def disparity_table(self) -> list[dict[str, Any]]:
        rows = []
        for k, v in self.disparity.items():
            lo, hi = self.disparity_ci.get(k, (None, None))
            rows.append({"attribute": self.groups.key, "metric": k, "value": v, "lo": lo, "hi": hi,
                         "groups_compared": int(self.compared.sum()), "confidence": self.confidence,
                         "resamples": self.n_boot})
        return rows


def _interval(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    a = (1.0 - confidence) / 2.0
    with np.errstate(all="ignore"):
        import warnings  # local: mutation-tested file, a move would renumber its mutants

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanquantile(samples, [a, 1.0 - a], axis=0)
    return lo, hi


def fairness_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sensitive: Mapping[str, np.ndarray] | np.ndarray | GroupCodes,
    *,
    attributes: Sequence[str] | None = None,
    pos_label: Any = None,
    y_score: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    n_boot: int = 0,
    confidence: float = 0.95,
    min_group_size: int = 0,
    seed: int | np.random.Generator = 0,
    n_bins: int = 10,
) -> FairnessResult:
    """Group fairness of binary predictions, with bootstrap intervals.

    Parameters
    ----------
    y_true, y_pred : labels and predictions (any values; ``pos_label`` is the favourable one).
    sensitive : ``name -> values``, one array, or precomputed :class:`GroupCodes`.
    attributes : names to intersect (default: all columns of ``sensitive``).
    pos_label : favourable outcome (fairlearn's default rule when ``None``).
    y_score : optional probability of ``pos_label``; adds calibration per group.
    sample_weight : optional row weights (point values only; no bootstrap with weights).
    n_boot : bootstrap replicates (0: no intervals).
    confidence : interval level (percentile bootstrap).
    min_group_size : groups with fewer rows are reported but left out of the disparities.
    seed : seed or generator for the bootstrap.

    Returns
    -------
    FairnessResult

    Examples
    --------
    >>> r = fairness_metrics([1, 0, 1, 1], [1, 0, 0, 1], {"sex": ["f", "f", "m", "m"]})
    >>> round(r.disparity["demographic_parity_difference"], 3)
    0.0
    """
    groups = sensitive if isinstance(sensitive, GroupCodes) else encode_groups(sensitive, attributes)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = len(groups.codes)
    if len(y_true) != n or len(y_pred) != n:
        raise DataError(f"{n} sensitive values but {len(y_true)} labels and {len(y_pred)} predictions")
    if n == 0:
        raise DataError("no rows to evaluate")
    if pos_label is None:  # decided from both arrays together, as fairlearn does
        pos_label = _default_pos_label(y_true, y_pred)
    t, _ = binarize(y_true, pos_label)
    p, _ = binarize(y_pred, pos_label)
    G = groups.n_groups
    counts = confusion_by_group(t, p, groups.codes, G, sample_weight)
    rates = rates_from_counts(counts)
    cal = None
    if y_score is not None:
        cal = calibration_cells(t, p, y_score, groups.codes, G, n_bins)
        rates.update(_calibration_rates(*cal))
    compared = rates["count"] >= max(int(min_group_size), 1)
    disp = {k: float(v) for k, v in disparities(rates, compared).items()}
    result = FairnessResult(groups=groups, task="classification", rates=rates, disparity=disp,
                            compared=compared, confidence=confidence, pos_label=pos_label)
    if n_boot > 0:
        if sample_weight is not None:
            raise DataError("bootstrap intervals are not available with sample weights; set n_boot=0")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        if cal is None:
            boot_counts = bootstrap_cell_counts(counts, n_boot, rng)
            b_rates = rates_from_counts(boot_counts)
        else:
            cnt, sums = cal
            boot = bootstrap_cell_counts(cnt, n_boot, rng)
            b_sums = boot * _div(sums, cnt)  # a resampled row keeps its cell's mean score
            b_rates = rates_from_counts(boot.sum(axis=-1))
            b_rates.update(_calibration_rates(boot, b_sums))
        _attach_intervals(result, b_rates, n_boot, confidence)
    return result


def _attach_intervals(result: FairnessResult, b_rates: dict[str, np.ndarray], n_boot: int,
                      confidence: float) -> None:
    """Percentile intervals of every rate and disparity from replicate rates ``(B, G)``."""
    present = b_rates["count"] > 0  # a group absent from a replicate has no rate there
    for k, v in b_rates.items():
        if k != "count":
            result.rates_ci[k] = _interval(np.where(present, v, np.nan), confidence)
    for k, v in _replicate_disparities(b_rates, result.compared, present).items():
        lo, hi = _interval(v, confidence)
        result.disparity_ci[k] = (float(lo), float(hi))
    result.n_boot = n_boot


def _replicate_disparities(b_rates: dict[str, np.ndarray], compared: np.ndarray, present: np.ndarray
                           ) -> dict[str, np.ndarray]:
    """Disparities per replicate over the compared groups that occur in that replicate."""
    # An absent group must not count as rate 0: give it the replicate's mean over the present
    # compared groups, a value that neither raises the max nor lowers the min.
    mask = compared[None, :] & present
    den = mask.sum(axis=1, keepdims=True)
    filled: dict[str, np.ndarray] = {}
    for k, v in b_rates.items():
        mean = _div(np.where(mask, v, 0.0).sum(axis=1, keepdims=True), den)
        filled[k] = np.where(mask, v, mean)
    few = den[:, 0] < 2
    return {k: np.where(few, np.nan, v) for k, v in disparities(filled, compared).items()}


def regression_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sensitive: Mapping[str, np.ndarray] | np.ndarray | GroupCodes,
    *,
    attributes: Sequence[str] | None = None,
    n_boot: int = 0,
    confidence: float = 0.95,
    min_group_size: int = 0,
    seed: int | np.random.Generator = 0,
    chunk: int = 200_000,
) -> FairnessResult:
    """The regression analogues: per-group mean prediction (parity), mean target, MAE and RMSE;
    between-group differences and ratios. Bootstrap by Poisson(1) row weights."""
    groups = sensitive if isinstance(sensitive, GroupCodes) else encode_groups(sensitive, attributes)
    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    if yp.ndim > 1:  # (n, 1) outputs
        yp = yp.reshape(len(yp), -1)[:, 0]
    n, G = len(groups.codes), groups.n_groups
    if len(yt) != n or len(yp) != n:
        raise DataError(f"{n} sensitive values but {len(yt)} targets and {len(yp)} predictions")
    if n == 0:
        raise DataError("no rows to evaluate")
    vals = np.column_stack([np.ones(n), yp, yt, np.abs(yp - yt), (yp - yt) ** 2])  # (n, 5)
    sums = np.stack([np.bincount(groups.codes, weights=vals[:, j], minlength=G) for j in range(5)], axis=-1)
    rates = _regression_rates(sums)
    compared = rates["count"] >= max(int(min_group_size), 1)
    disp = {k: float(v) for k, v in disparities(rates, compared).items()}
    result = FairnessResult(groups=groups, task="regression", rates=rates, disparity=disp, compared=compared,
                            confidence=confidence)
    if n_boot > 0:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        from scipy import sparse  # lazy: scipy is slow to import; only this computation needs it

        b_sums = np.zeros((n_boot, G * 5))
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            m = stop - start
            w = rng.poisson(1.0, size=(n_boot, m)).astype(np.float64)  # (B, m) row weights
            # A[i, 5 g_i + j] = vals[i, j]: one sparse product gives every weighted group sum
            cols = (groups.codes[start:stop, None] * 5 + np.arange(5)[None, :]).ravel()
            rows = np.repeat(np.arange(m), 5)
            a = sparse.csr_matrix((vals[start:stop].ravel(), (rows, cols)), shape=(m, G * 5))
            b_sums += np.asarray((a.T @ w.T).T)
        b_sums = b_sums.reshape(n_boot, G, 5)
        _attach_intervals(result, _regression_rates(b_sums), n_boot, confidence)
    return result


def _regression_rates(sums: np.ndarray) -> dict[str, np.ndarray]:
    cnt = sums[..., 0]
    return {
        "count": cnt,
        "mean_prediction": _div(sums[..., 1], cnt),
        "mean_target": _div(sums[..., 2], cnt),
        "mean_absolute_error": _div(sums[..., 3], cnt),
        "root_mean_squared_error": np.sqrt(_div(sums[..., 4], cnt)),
    }
