"""The ``fairness`` check: group metrics with bootstrap intervals, intersections, small-group
flags and proxy features.

For each sensitive attribute, and the intersection of all of them, the check compares the model's
predictions across groups (:mod:`modelshield.fairness.metrics`), grades the disparities
against the policy's thresholds, flags groups too small to compare, and lists features that act as
proxies for an attribute (:mod:`modelshield.fairness.proxies`).

Metric names follow fairlearn. In :attr:`CheckResult.metrics`, ``<view>.<metric>`` holds one
view's value (``sex.demographic_parity_difference``, ``sex&race.equalized_odds_difference``) and
the bare ``<metric>`` the worst over views (largest difference, smallest ratio), so a policy can
say ``fairness.demographic_parity_difference <= 0.1``. Intervals are in the ``fairness.disparities``
table; per-group rates with intervals in ``fairness.groups``.

Grading (policy ``thresholds``; a difference at or above, a ratio at or below):

=================================================  =======  =====
metric                                             medium   high
=================================================  =======  =====
``fairness.demographic_parity_difference``         0.1      0.2
``fairness.equalized_odds_difference``             0.1      0.2
``fairness.equal_opportunity_difference``          0.1      0.2
``fairness.demographic_parity_ratio`` (4/5 rule)   0.8      0.5
``fairness.standardized_mean_prediction_difference``  0.2   0.5   (regression)
``fairness.mean_absolute_error_ratio``             0.8      0.5   (regression)
``fairness.proxy_auc`` (single feature)            0.8      0.95
=================================================  =======  =====

When a bootstrap interval reaches back into the acceptable range (below the medium threshold for
a difference), the finding is graded one step lower: the data cannot rule out a fair model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from threadpoolctl import threadpool_limits

from modelshield.checks.base import AuditContext, Check
from modelshield.errors import DataError, UserError
from modelshield.fairness.metrics import (
    FairnessResult,
    GroupCodes,
    encode_groups,
    fairness_metrics,
    regression_metrics,
)
from modelshield.fairness.proxies import find_proxies
from modelshield.findings import CheckResult, Figure, Finding, Series, Severity
from modelshield.models.base import Capability

__all__ = ["FairnessCheck"]

_REFS = (
    "Hardt, Price, Srebro (2016). Equality of Opportunity in Supervised Learning. NeurIPS.",
    "Feldman et al. (2015). Certifying and Removing Disparate Impact. KDD (four-fifths rule).",
    "Bird et al. (2020). Fairlearn: A toolkit for assessing and improving fairness in AI. MSR-TR-2020-32.",
    "Buolamwini, Gebru (2018). Gender Shades: Intersectional Accuracy Disparities. FAT*.",
)

#: metric -> (kind, default medium, default high, what it compares). "diff": worse when larger;
#: "ratio": worse when smaller.
_GRADED: dict[str, tuple[str, float, float, str]] = {
    "demographic_parity_difference": ("diff", 0.1, 0.2, "selection_rate"),
    "demographic_parity_ratio": ("ratio", 0.8, 0.5, "selection_rate"),
    "equalized_odds_difference": ("diff", 0.1, 0.2, "true_positive_rate"),
    "equal_opportunity_difference": ("diff", 0.1, 0.2, "true_positive_rate"),
}
_GRADED_REGRESSION: dict[str, tuple[str, float, float, str]] = {
    "standardized_mean_prediction_difference": ("diff", 0.2, 0.5, "mean_prediction"),
    "mean_absolute_error_ratio": ("ratio", 0.8, 0.5, "mean_absolute_error"),
}
_LOWER = {Severity.HIGH: Severity.MEDIUM, Severity.MEDIUM: Severity.LOW}


@dataclass(kw_only=True)
class FairnessCheck(Check):
    """Group fairness of a model's predictions across sensitive attributes and their intersection.

    Options
    -------
    sensitive : names of the data's sensitive columns to audit (default: all of them).
    intersections : also audit the intersection of all chosen attributes (``sex & race``).
    bootstrap : bootstrap resamples for the intervals (0: none); ``quick`` mode caps it at 100.
    confidence : interval level.
    min_group_size : groups with fewer rows are flagged and left out of the comparisons.
    pos_label : the favourable outcome (default: the model's second class, as scikit-learn).
    threshold : decide ``pos_label`` when its probability is at least this (default: ``predict``).
    proxies : look for proxy features.
    proxy_rows : rows used for proxy detection (``quick``: at most 2,000).

    References
    ----------
    Hardt et al. (2016); Feldman et al. (2015); Bird et al. (2020); Buolamwini & Gebru (2018).

    Examples
    --------
    >>> from modelshield import audit                                   # doctest: +SKIP
    >>> report = audit(model, data, checks=["fairness"], quick=True)    # doctest: +SKIP
    """

    name: ClassVar[str] = "fairness"
    title: ClassVar[str] = "Fairness across sensitive groups"
    description: ClassVar[str] = (
        "Selection rate, error rates and calibration per group and intersection, with bootstrap "
        "intervals; demographic parity, equalized odds, equal opportunity; proxy features."
    )
    needs_labels: ClassVar[bool] = True
    needs_sensitive: ClassVar[bool] = True

    sensitive: list[str] | None = None
    intersections: bool = True
    bootstrap: int = 200
    confidence: float = 0.95
    min_group_size: int = 30
    pos_label: Any = None
    threshold: float | None = None
    proxies: bool = True
    proxy_rows: int = 10000

    # -- validation -----------------------------------------------------------------------------
    def check_options(self) -> None:
        if not 0.0 < float(self.confidence) < 1.0:
            raise UserError(f"fairness.confidence must be in (0, 1) (got {self.confidence})")
        if int(self.bootstrap) < 0 or int(self.min_group_size) < 0:
            raise UserError("fairness.bootstrap and fairness.min_group_size must be >= 0")

    def _validate(self, ctx: AuditContext) -> list[str]:
        self.check_options()
        assert ctx.data is not None
        available = list(ctx.data.sensitive)
        wanted = self.sensitive
        if isinstance(wanted, str):  # one text option "sex,race" (CLI: --option fairness.sensitive=sex,race)
            wanted = [w.strip() for w in wanted.split(",") if w.strip()]
        chosen = list(wanted) if wanted else available
        missing = [s for s in chosen if s not in available]
        if missing:
            raise DataError(f"fairness: sensitive column {missing[0]!r} is not in the data; "
                            f"available: {', '.join(available) or '(none: no sensitive column was named)'}",
                            cli_hint="name sensitive columns with --sensitive")
        return chosen

    # -- run ------------------------------------------------------------------------------------
    def _run(self, ctx: AuditContext) -> CheckResult:
        assert ctx.data is not None
        # Small batches gain nothing from OpenMP/BLAS threads, and on a busy machine those threads
        # make a 20 ms prediction take seconds: run single-threaded in quick mode and on small data.
        if ctx.quick or len(ctx.data) <= 50_000:
            with threadpool_limits(limits=1):
                return self._evaluate(ctx)
        return self._evaluate(ctx)

    def _evaluate(self, ctx: AuditContext) -> CheckResult:
        assert ctx.model is not None and ctx.data is not None and ctx.data.y is not None
        attrs = self._validate(ctx)
        data, model = ctx.data, ctx.model
        n_boot = min(int(self.bootstrap), 100) if ctx.quick else int(self.bootstrap)
        ctx.progress(0.05, "predicting")
        views: list[GroupCodes] = [encode_groups(data.sensitive, [a]) for a in attrs]
        if self.intersections and len(attrs) > 1:
            views.append(encode_groups(data.sensitive, attrs))
        results: list[FairnessResult] = []
        pos_used: Any = None
        if model.task == "regression":
            y_pred = np.asarray(model.predict(data.X), dtype=np.float64)
            y_true = np.asarray(data.y, dtype=np.float64)
            sd = float(np.std(y_true)) or 1.0
            for i, g in enumerate(views):
                ctx.progress(0.1 + 0.6 * i / len(views), f"groups: {g.key}")
                r = regression_metrics(y_true, y_pred, g, n_boot=n_boot, confidence=self.confidence,
                                       min_group_size=self.min_group_size, seed=ctx.rng(f"fairness/{g.key}"))
                _standardize(r, sd)
                results.append(r)
            graded = _GRADED_REGRESSION
        else:
            y_true, y_pred, y_score, pos_used = self._predictions(ctx)
            for i, g in enumerate(views):
                ctx.progress(0.1 + 0.6 * i / len(views), f"groups: {g.key}")
                results.append(fairness_metrics(
                    y_true, y_pred, g, pos_label=1, y_score=y_score, n_boot=n_boot, confidence=self.confidence,
                    min_group_size=self.min_group_size, seed=ctx.rng(f"fairness/{g.key}")))
            graded = _GRADED
        out = self.result()
        self._report(ctx, out, results, graded)
        if self.proxies:
            ctx.progress(0.75, "proxy features")
            self._proxies(ctx, out, attrs)
        ctx.progress(1.0, "done")
        headline = next(iter(graded))
        worst = out.metrics.get(headline)
        parts = [f"{len(views)} view(s) of {', '.join(attrs)}"]
        if isinstance(worst, float) and np.isfinite(worst):
            where = next((r.groups.key for r in results if r.disparity.get(headline) == worst), "")
            parts.append(f"worst {headline} {worst:.3f} ({where})")
        if out.metrics["groups_too_small"]:
            parts.append(f"{out.metrics['groups_too_small']} group(s) too small to compare")
        out.summary = "; ".join(parts)
        out.params["bootstrap_used"] = n_boot
        if pos_used is not None:
            out.params["pos_label_used"] = _plain(pos_used)
        return out

    def _predictions(self, ctx: AuditContext) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Any]:

        assert ctx.model is not None and ctx.data is not None and ctx.data.y is not None
        model, data = ctx.model, ctx.data
        classes = list(np.asarray(model.classes).tolist())
        pos = self.pos_label
        if pos is None:
            if len(classes) != 2:
                raise DataError(
                    f"fairness: the model has {len(classes)} classes; the binary fairness metrics need the "
                    "favourable one: set the check's pos_label option",
                    cli_hint="--option fairness.pos_label=<class>")
            pos = classes[1]
        if pos not in classes:
            # CLI options arrive as YAML scalars: accept "1" for 1 and 1 for "1"
            match = [c for c in classes if str(c) == str(pos)]
            if not match:
                raise DataError(f"fairness: pos_label {pos!r} is not one of the model's classes {classes}")
            pos = match[0]
        y_true = np.asarray(data.y)
        if not np.isin(y_true, np.asarray(classes)).all():
            as_str = np.asarray([str(c) for c in classes])
            if np.isin(y_true.astype(str), as_str).all():  # labels read as text
                order = np.argsort(as_str)
                pos_in_sorted = np.searchsorted(as_str, y_true.astype(str), sorter=order)
                y_true = np.asarray(classes, dtype=object)[order[pos_in_sorted]]
            else:
                bad = y_true[~np.isin(y_true, np.asarray(classes))][0]
                raise DataError(f"fairness: label {bad!r} is not one of the model's classes {classes}")
        y_score = None
        if Capability.PROBABILITIES in model.capabilities:
            proba = model.predict_proba(data.X)
            y_score = proba[:, classes.index(pos)]
            if self.threshold is not None:
                y_pred = np.where(y_score >= float(self.threshold), pos, _other(classes, pos))
            else:  # the model's own decisions (a randomised fair classifier is not argmax of its scores)
                y_pred = np.asarray(model.predict(data.X))
        else:
            if self.threshold is not None:
                raise DataError("fairness: threshold needs a model with probabilities")
            y_pred = np.asarray(model.predict(data.X))
        # compare as "is pos_label": other classes of a multi-class model become "the rest"
        return (y_true == pos).astype(np.int64), (y_pred == pos).astype(np.int64), y_score, pos

    # -- reporting ------------------------------------------------------------------------------
    def _report(self, ctx: AuditContext, out: CheckResult, results: list[FairnessResult],
                graded: dict[str, tuple[str, float, float, str]]) -> None:
        groups_rows: list[dict[str, Any]] = []
        disp_rows: list[dict[str, Any]] = []
        for r in results:
            key = r.groups.key
            groups_rows.extend(r.group_table())
            disp_rows.extend(r.disparity_table())
            for m, v in r.disparity.items():
                out.metrics[f"{key}.{m}"] = v
                cur = out.metrics.get(m)
                if cur is None or (np.isfinite(v) and not np.isfinite(cur)):
                    out.metrics[m] = v
                elif np.isfinite(v) and ((v < cur) if m.endswith("_ratio") else (v > cur)):
                    out.metrics[m] = v
            out.figures.append(_figure(r))
            self._small_group_finding(out, r)
            self._disparity_finding(ctx, out, r, graded)
        out.metrics["groups_total"] = int(sum(r.groups.n_groups for r in results))
        out.metrics["groups_too_small"] = int(sum(len(r.small_groups) for r in results))
        out.tables["fairness.groups"] = [_compact(row, results[0].task) for row in groups_rows]
        out.tables["fairness.disparities"] = disp_rows
        out.tables["fairness.groups_detail"] = groups_rows

    def _small_group_finding(self, out: CheckResult, r: FairnessResult) -> None:
        small = r.small_groups
        if not small:
            return
        shown = ", ".join(f"{n} ({c} rows)" for n, c in small[:8]) + (" ..." if len(small) > 8 else "")
        singles = [n for n, c in small if c <= 1]
        out.add(Finding(
            check=self.name, severity=Severity.LOW, rule_id=f"fairness.small-groups.{r.groups.key}",
            title=f"{len(small)} group(s) of {r.groups.key} too small to compare",
            detail=(f"Groups with fewer than {self.min_group_size} rows are left out of the disparity metrics: "
                    f"{shown}." + (f" {len(singles)} group(s) have a single member." if singles else "")
                    + f" {int(r.compared.sum())} group(s) were compared."),
            evidence={"attribute": r.groups.key, "min_group_size": self.min_group_size,
                      "groups": {n: c for n, c in small}},
            remediation="Collect more data for these groups, merge rare categories, or lower min_group_size "
                        "knowing that their rates are very uncertain (see the intervals).",
        ))

    def _disparity_finding(self, ctx: AuditContext, out: CheckResult, r: FairnessResult,
                           graded: dict[str, tuple[str, float, float, str]]) -> None:
        key = r.groups.key
        if r.compared.sum() < 2:
            out.add(Finding(
                check=self.name, severity=Severity.INFO, rule_id=f"fairness.not-comparable.{key}",
                title=f"Not enough groups of {key} to compare",
                detail=f"Fewer than two groups of {key} have at least {self.min_group_size} rows.",
                evidence={"attribute": key, "groups": dict(zip(r.groups.names, r.rates['count'].astype(int)))},
            ))
            return
        lines: list[str] = []
        worst: Severity | None = None
        evidence: dict[str, Any] = {"attribute": key}
        for m, (kind, d_med, d_high, rate) in graded.items():
            v = r.disparity.get(m, float("nan"))
            if not np.isfinite(v):
                continue
            med = ctx.threshold(f"fairness.{m}.medium", d_med)
            high = ctx.threshold(f"fairness.{m}.high", d_high)
            bad = (lambda x, t: x >= t) if kind == "diff" else (lambda x, t: x <= t)
            sev = Severity.HIGH if bad(v, high) else Severity.MEDIUM if bad(v, med) else None
            if sev is None:
                continue
            lo, hi = r.disparity_ci.get(m, (float("nan"), float("nan")))
            favourable = lo if kind == "diff" else hi
            note = ""
            if np.isfinite(favourable) and not bad(favourable, med):
                sev = _LOWER[sev]
                note = " (interval reaches the acceptable range: graded one step lower)"
            ci = f" [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else ""
            if m.startswith("equalized_odds") and "false_positive_rate" in r.rates:
                # name the error rate that drives the gap (TPR or FPR)
                spread = {k: np.ptp(r.rates[k][r.compared]) for k in ("true_positive_rate", "false_positive_rate")}
                rate = max(spread, key=spread.__getitem__)
            lines.append(f"{m} = {v:.3f}{ci}{note}; {_extremes(r, rate)}")
            evidence[m] = {"value": v, "lo": lo, "hi": hi, "medium": med, "high": high}
            worst = sev if worst is None or sev > worst else worst
        if worst is None:
            return
        out.add(Finding(
            check=self.name, severity=worst, rule_id=f"fairness.disparity.{key}",
            title=f"Unequal treatment across {key}",
            detail="; ".join(lines) + f". {int(r.compared.sum())} groups compared, {r.confidence:.0%} bootstrap "
                                      f"intervals over {r.n_boot} resamples.",
            evidence=evidence,
            remediation="Check whether the gap is justified by the task; if not, try "
                        "`modelshield harden fairness MODEL --data TRAIN --sensitive "
                        f"{r.groups.attributes[0]} --constraint demographic_parity` and compare the before/after "
                        "table; look at the proxy features.",
            references=_REFS,
        ))

    def _proxies(self, ctx: AuditContext, out: CheckResult, attrs: list[str]) -> None:

        data = ctx.data
        assert data is not None
        if not data.is_numeric or data.X.ndim != 2:
            return
        rows = min(int(self.proxy_rows), 2000) if ctx.quick else int(self.proxy_rows)
        with threadpool_limits(limits=1):  # our own small classifier: threads only add overhead
            rep = find_proxies(data.X, {a: data.sensitive[a] for a in attrs}, feature_names=data.feature_names,
                               feature_types=data.feature_types, max_rows=rows, seed=ctx.seed)
        out.tables["fairness.proxies"] = [s.to_row() for s in rep.scores]
        med = ctx.threshold("fairness.proxy_auc.medium", 0.8)
        high = ctx.threshold("fairness.proxy_auc.high", 0.95)
        for a in attrs:
            if a in rep.combined_auc:
                out.metrics[f"{a}.proxy_combined_auc"] = rep.combined_auc[a]
            direct = [s.feature for s in rep.scores if s.attribute == a and s.direct]
            if direct:
                out.add(Finding(
                    check=self.name, severity=Severity.INFO, rule_id=f"fairness.direct-use.{a}",
                    title=f"The sensitive attribute {a} is itself a model input",
                    detail=f"Feature(s) {', '.join(direct)} encode {a} one-to-one.",
                    evidence={"attribute": a, "features": direct},
                    remediation="Make sure using it is lawful for this decision; dropping it alone rarely helps "
                                "when proxies remain.",
                ))
            strong = [s for s in rep.scores if s.attribute == a and not s.direct and np.isfinite(s.auc)
                      and s.auc >= med]
            best = max((s.auc for s in rep.scores if s.attribute == a and not s.direct and np.isfinite(s.auc)),
                       default=float("nan"))
            out.metrics[f"{a}.proxy_max_auc"] = best
            if not strong:
                continue
            sev = Severity.MEDIUM if max(s.auc for s in strong) >= high else Severity.LOW
            listed = ", ".join(f"{s.feature} (AUC {s.auc:.2f}, NMI {s.normalized_mi:.2f})" for s in strong[:6])
            comb = rep.combined_auc.get(a)
            out.add(Finding(
                check=self.name, severity=sev, rule_id=f"fairness.proxy.{a}",
                title=f"{len(strong)} feature(s) act as proxies for {a}",
                detail=f"{listed}." + (f" All non-direct features together predict {a} with AUC {comb:.2f}."
                                       if comb is not None and np.isfinite(comb) else "")
                + f" Measured on {rep.rows_used} rows.",
                evidence={"attribute": a, "proxies": [s.to_row() for s in strong], "combined_auc": comb},
                remediation="Removing the attribute does not remove its information; audit outcomes per group "
                            "(above) and mitigate on outcomes rather than by dropping columns.",
                references=("Feldman et al. (2015). Certifying and Removing Disparate Impact. KDD.",),
            ))


_COMPACT = {
    "classification": ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy", "precision",
                       "calibration_gap"),
    "regression": ("mean_prediction", "mean_target", "mean_absolute_error", "root_mean_squared_error"),
}


def _compact(row: dict[str, Any], task: str) -> dict[str, Any]:
    """The report's per-group table: the main rates, each with its interval, and the flags."""
    out = {k: row[k] for k in ("attribute", "group", "count", "compared")}
    for k in _COMPACT[task]:
        if k in row:
            out[k] = row[k]
            if f"{k}_lo" in row:
                out[f"{k}_ci"] = [row[f"{k}_lo"], row[f"{k}_hi"]]
    return out


def _standardize(r: FairnessResult, sd: float) -> None:
    """Regression: the mean-prediction gap in units of the target's standard deviation."""
    r.disparity["standardized_mean_prediction_difference"] = r.disparity["mean_prediction_difference"] / sd
    if "mean_prediction_difference" in r.disparity_ci:
        lo, hi = r.disparity_ci["mean_prediction_difference"]
        r.disparity_ci["standardized_mean_prediction_difference"] = (lo / sd, hi / sd)


def _extremes(r: FairnessResult, rate: str) -> str:
    v = np.where(r.compared, r.rates[rate], np.nan)
    hi, lo = int(np.nanargmax(v)), int(np.nanargmin(v))
    return (f"{rate} {v[hi]:.3f} for {r.groups.names[hi]} vs {v[lo]:.3f} for {r.groups.names[lo]}")


def _figure(r: FairnessResult) -> Figure:
    names = r.rates.keys()
    wanted = (("selection_rate", "true_positive_rate", "false_positive_rate") if r.task == "classification"
              else ("mean_prediction", "mean_target", "mean_absolute_error"))
    series = []
    for k in wanted:
        if k not in names:
            continue
        lo_hi = r.rates_ci.get(k)
        series.append(Series(
            name=k, x=list(r.groups.names), y=[float(x) for x in r.rates[k]],
            lo=None if lo_hi is None else [float(x) for x in lo_hi[0]],
            hi=None if lo_hi is None else [float(x) for x in lo_hi[1]],
        ))
    return Figure(title=f"Per-group rates by {r.groups.key}" + (f" ({r.confidence:.0%} intervals)" if r.n_boot else ""),
                  kind="bar", series=series, x_label=r.groups.key, y_label="rate",
                  y_range=(0.0, 1.0) if r.task == "classification" else None)


def _other(classes: list[Any], pos: Any) -> Any:
    return next(c for c in classes if c != pos) if len(classes) > 1 else pos


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v
