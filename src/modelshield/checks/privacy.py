"""The ``privacy`` audit check: membership-inference leakage, plus a PII scan of text columns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from modelshield.checks.base import Applies, AuditContext, Check
from modelshield.data.numeric import non_numeric_columns
from modelshield.errors import DataError, UserError
from modelshield.findings import CheckResult, Figure, Finding, Series, Severity
from modelshield.models.base import Capability
from modelshield.privacy.membership import (
    ATTACKS,
    FPR_LEVELS,
    LEVEL_KEYS,
    LEVEL_LABELS,
    BootstrapCI,
    MembershipReport,
    TrainingRecipe,
    membership_inference,
    nonmembers_needed,
    nonmembers_to_bound,
)

__all__ = ["PrivacyCheck"]

_REFS = (
    "https://arxiv.org/abs/2112.03570",  # LiRA
    "https://arxiv.org/abs/2312.03262",  # RMIA
)


def _has_text(ds: Any) -> bool:
    return ds is not None and getattr(ds, "X", None) is not None and not ds.is_numeric


def _pct(x: float) -> str:
    return f"{x:.2%}" if x < 0.01 else f"{x:.1%}"


def threat_model_text(n_shadows: int) -> str:
    """The attacker these figures describe (stated in every membership finding and in the docs)."""
    return (
        "Threat model: the attacker queries the model's output probabilities for a candidate record and "
        "knows its true label, knows the model's architecture and training recipe, and has data from the "
        f"same distribution to train {n_shadows} shadow (reference) models (here the audit's own pooled "
        "members and non-members, half of them in each shadow); the attack threshold is set on known "
        "non-members; members and non-members are equally likely a priori. TPR at a fixed FPR does not "
        "depend on that prior, but the attacker's precision does: with a share pi of candidates being "
        "members it is TPR*pi / (TPR*pi + FPR*(1-pi)). A weaker attacker (labels only, no shadow data) "
        "does worse; a stronger one (more shadows, adaptive queries, augmentations) may do better, so "
        "these figures are evidence of leakage, not a bound on it."
    )


def statistics_text(ci: BootstrapCI) -> str:
    """The statistical assumptions behind the intervals."""
    return (
        f"Statistics: {ci.confidence:.0%} intervals from {ci.n_boot} Bayesian-bootstrap replicates that "
        "reweight members and non-members separately and recompute every attack, with bounds calibrated "
        "to hold for all attacks at once, so choosing the best attack afterwards does not inflate them "
        "(the attack each replicate would choose is in the table); members and non-members are assumed "
        "to be independent draws from the training set and from unseen data of the same distribution; "
        "the shadow models are held fixed (their training randomness is not in the intervals); a TPR "
        f"at an FPR below 1/n_nonmembers ({_pct(ci.fpr_resolution)}) is not reported, and one with "
        f"fewer than {nonmembers_to_bound(0.01, ci.confidence)} (1%) / "
        f"{nonmembers_to_bound(0.001, ci.confidence):,} (0.1%) non-members is not graded, since with "
        "fewer every non-member may lie below the true threshold."
    )


def _tpr_sentence(level: float, ci: BootstrapCI) -> str:
    lab = LEVEL_LABELS[level]
    iv = ci.tpr[level]
    if iv is None:
        return (f"TPR at {lab} FPR: not resolved ({ci.n_nonmembers} non-members: the smallest measurable FPR "
                f"is {_pct(ci.fpr_resolution)}; {nonmembers_needed(level):,} needed).")
    text = (f"At {lab} FPR the strongest attack ({iv.attack}) identifies {iv.estimate:.1%} of training rows "
            f"({ci.confidence:.0%} CI {iv.lower:.1%}-{iv.upper:.1%}, including the choice among attacks)")
    if not ci.gradable[level]:
        text += (f"; not graded: {ci.n_nonmembers} non-members cannot bound it "
                 f"({nonmembers_to_bound(level, ci.confidence):,} needed)")
    return text + "."


def _short(level: float, ci: BootstrapCI) -> str:
    iv = ci.tpr[level]
    if iv is None:
        return f"unresolved (min FPR {_pct(ci.fpr_resolution)})"
    mark = "" if ci.gradable[level] else " not graded"
    return f"{iv.estimate:.3f} ({iv.lower:.3f}-{iv.upper:.3f}{mark})"


def _evidence(level: float, ci: BootstrapCI) -> dict[str, Any]:
    iv = ci.tpr[level]
    return {"resolvable": ci.resolvable[level], "graded": iv is not None and ci.gradable[level],
            "estimate": None if iv is None else round(iv.estimate, 4),
            "ci": None if iv is None else [round(iv.lower, 4), round(iv.upper, 4)],
            "attack": None if iv is None else iv.attack}


def _resolution_row(level: float, ci: BootstrapCI) -> dict[str, Any]:
    iv = ci.tpr[level]
    nan = float("nan")
    return {"fpr": level, "min_resolvable_fpr": round(ci.fpr_resolution, 6),
            "resolvable": ci.resolvable[level], "graded": iv is not None and ci.gradable[level],
            "nonmembers": ci.n_nonmembers, "nonmembers_to_resolve": nonmembers_needed(level),
            "nonmembers_to_grade": nonmembers_to_bound(level, ci.confidence),
            "tpr": nan if iv is None else round(iv.estimate, 4),
            "tpr_lower": nan if iv is None else round(iv.lower, 4),
            "tpr_upper": nan if iv is None else round(iv.upper, 4)}


@dataclass(kw_only=True)
class PrivacyCheck(Check):
    """Membership-inference leakage (loss threshold, LiRA, RMIA) and PII in the data.

    Members are ``ctx.train`` (the training rows), non-members ``ctx.data`` (held-out rows). Shadow
    models are cloned from the model (``retrainable`` capability); without it only the loss attack
    runs. Severity comes from lower confidence bounds (95 % by default) on the strongest attack's TPR
    at 1 % FPR (default limits 0.10 / 0.03 / 0.015) and on the highest AUC (default limits 0.70 /
    0.60 / 0.55), graded by the policy thresholds ``privacy.tpr_at_1pct_fpr.{high,medium,low}`` and
    ``privacy.auc.{high,medium,low}``. The bounds come from a Bayesian bootstrap over members and
    non-members that recomputes every attack and is calibrated over all attacks at once
    (:func:`~modelshield.privacy.membership.bootstrap_ci`). A TPR at an FPR below
    ``1 / n_nonmembers`` is not reported (``None``, ``*_resolvable: false``); a TPR at 1 % FPR with
    fewer than 368 non-members (0.1 %: 3,688) is shown with its interval but not graded
    (``*_graded: false``, :func:`~modelshield.privacy.membership.nonmembers_to_bound`).

    Options
    -------
    attacks : subset of ``loss, lira_offline, lira_online, rmia`` (default: all four; they share
        the shadow models).
    n_shadows : shadow models (default 16; quick mode 4).
    shadow_budget_s : wall-clock safety limit for shadow training (default 300 s; quick mode 60 s). Results
        depend on how many shadows finish, so the count is fixed and the limit only guards runaway cost.
    max_rows : rows sampled per side (default 20,000; quick mode 2,000).
    top_k : how many most-exposed training rows to list (by index).
    show_rows : also list the feature values of the most exposed rows (off: indices only).
    shadow_epochs, shadow_lr, shadow_batch_size : the PyTorch shadow training recipe.
    n_boot : bootstrap replicates (default 1,000; quick mode 400; at least 100).
    confidence : two-sided confidence of the intervals (default 0.95; the lower bound is one-sided at
        ``1 - (1 - confidence) / 2``).
    pii : scan text columns of the data for personal data.

    References
    ----------
    .. [1] N. Carlini et al., "Membership Inference Attacks From First Principles", S&P 2022.
    .. [2] S. Zarifzadeh et al., "Low-Cost High-Power Membership Inference Attacks", ICML 2024.
    """

    name: ClassVar[str] = "privacy"
    title: ClassVar[str] = "Privacy: membership inference and personal data"
    description: ClassVar[str] = (
        "Measures how well an attacker can tell training rows from unseen rows (LiRA, RMIA, loss "
        "threshold; TPR at low FPR) and scans text columns for personal data."
    )
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.PROBABILITIES})
    needs_labels: ClassVar[bool] = True
    tasks: ClassVar[frozenset[str]] = frozenset({"classification"})

    attacks: list[str] | None = None
    n_shadows: int | None = None
    shadow_budget_s: float | None = None
    max_rows: int | None = None
    top_k: int = 10
    show_rows: bool = False
    shadow_epochs: int | None = None
    shadow_lr: float | None = None
    shadow_batch_size: int | None = None
    n_boot: int | None = None
    confidence: float = 0.95
    pii: bool = True

    def check_options(self) -> None:
        if self.n_shadows is not None and self.n_shadows < 2:  # LiRA and RMIA need shadows in and out
            raise UserError(f"privacy.n_shadows must be at least 2, got {self.n_shadows}", cli_hint="--shadows")
        for name in ("shadow_budget_s", "shadow_lr"):
            v = getattr(self, name)
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise UserError(f"privacy.{name} must be a positive number, got {v}")
        if self.n_boot is not None and self.n_boot < 100:
            raise UserError(f"privacy.n_boot must be at least 100, got {self.n_boot}")
        if not (0.5 <= self.confidence < 1):
            raise UserError(f"privacy.confidence must be at least 0.5 and below 1, got {self.confidence}")
        for name in ("shadow_epochs", "shadow_batch_size", "max_rows", "top_k"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise UserError(f"privacy.{name} must be at least 1, got {v}")

    def applies(self, ctx: AuditContext) -> Applies:
        if self.pii and ctx.train is None and _has_text(ctx.data):
            return Applies()  # a PII scan of the data still makes sense
        base = super().applies(ctx)
        if not base:
            return base
        if ctx.train is None:
            return Applies("needs training data (--train): the members for membership inference")
        return Applies()

    # ------------------------------------------------------------------------------------------
    def _run(self, ctx: AuditContext) -> CheckResult:
        result = self.result()
        summary: list[str] = []
        if self.pii:
            for label, ds in (("data", ctx.data), ("train", ctx.train)):
                if _has_text(ds):
                    self._pii(ds, label, result, summary)
        numeric = ctx.train is not None and ctx.data is not None and ctx.train.is_numeric and ctx.data.is_numeric
        if ctx.model is not None and ctx.train is not None and numeric:
            self._membership(ctx, result, summary)
        elif ctx.train is not None and not numeric:
            bad = sorted({c.column for ds in (ctx.train, ctx.data) if ds is not None
                          for c in non_numeric_columns(ds.X, ds.feature_names)})
            summary.append("membership inference skipped: features are not numeric"
                           + (f" (non-numeric values in {', '.join(bad[:6])})" if bad else ""))
        result.summary = " ".join(summary)
        return result

    # ------------------------------------------------------------------------------------------
    def _membership(self, ctx: AuditContext, result: CheckResult, summary: list[str]) -> None:
        assert ctx.model is not None and ctx.train is not None and ctx.data is not None
        quick = ctx.quick
        attacks = list(self.attacks) if self.attacks else list(ATTACKS)
        bad = [a for a in attacks if a not in ATTACKS]
        if bad:
            raise DataError(f"unknown attack {bad[0]!r} in privacy.attacks; expected some of {', '.join(ATTACKS)}")
        n_shadows = self.n_shadows if self.n_shadows is not None else (4 if quick else 16)
        budget = self.shadow_budget_s if self.shadow_budget_s is not None else (60.0 if quick else 300.0)
        max_rows = self.max_rows if self.max_rows is not None else (2000 if quick else 20000)
        recipe = None
        if any(v is not None for v in (self.shadow_epochs, self.shadow_lr, self.shadow_batch_size)):
            base = ctx.model.extra.get("training_recipe") or TrainingRecipe()
            recipe = TrainingRecipe(
                epochs=self.shadow_epochs if self.shadow_epochs is not None else base.epochs,
                lr=self.shadow_lr if self.shadow_lr is not None else base.lr,
                batch_size=self.shadow_batch_size if self.shadow_batch_size is not None else base.batch_size,
                weight_decay=base.weight_decay, optimizer=base.optimizer,
            )
        if ctx.train is ctx.data:
            raise DataError("the training data and the held-out data are the same; membership inference "
                            "needs held-out rows the model was not trained on")
        rep = membership_inference(
            ctx.model, ctx.train, ctx.data, attacks=attacks, n_shadows=n_shadows, shadow_budget_s=budget,
            recipe=recipe, max_rows=max_rows, seed=ctx.seed, progress=ctx.progress,
        )
        self._report_membership(ctx, rep, result, summary)

    def _report_membership(self, ctx: AuditContext, rep: MembershipReport, result: CheckResult,
                           summary: list[str]) -> None:
        best = rep.best
        n_boot = self.n_boot if self.n_boot is not None else (400 if ctx.quick else 1000)
        ci = rep.bootstrap(n_boot=n_boot, confidence=self.confidence, seed=ctx.seed)
        conf = f"{self.confidence:.0%}"
        result.metrics.update({
            "auc": ci.auc.estimate,
            "auc_lower": ci.auc.lower,
            "auc_upper": ci.auc.upper,
            "advantage": best.advantage,
            "best_attack": best.name,
            "n_members": rep.n_members,
            "n_nonmembers": rep.n_nonmembers,
            "n_shadows": rep.n_shadows,
            "fpr_resolution": ci.fpr_resolution,
            "bootstrap_replicates": ci.n_boot,
            "confidence": ci.confidence,
        })
        for level in FPR_LEVELS:
            key, iv = LEVEL_KEYS[level], ci.tpr[level]
            graded = iv is not None and ci.gradable[level]
            result.metrics.update({
                key: iv.estimate if iv is not None else None,
                f"{key}_resolvable": ci.resolvable[level],
                f"{key}_lower": iv.lower if graded and iv is not None else None,
                f"{key}_upper": iv.upper if iv is not None else None,
                f"{key}_graded": graded,
                f"{key}_nonmembers_to_resolve": nonmembers_needed(level),
                f"{key}_nonmembers_to_grade": nonmembers_to_bound(level, ci.confidence),
            })
        for name, res in rep.attacks.items():
            for k, v in res.metrics().items():
                result.metrics[f"{name}_{k}"] = v
        nan = float("nan")  # unresolved: "—" in HTML, null in JSON (never a number)
        result.tables["membership_attacks"] = [
            {"attack": name, "auc": round(r.auc, 4),
             "tpr_at_0.1%_fpr": round(r.tpr_at_0_1pct_fpr, 4) if r.resolvable(0.001) else nan,
             "tpr_at_1%_fpr": round(r.tpr_at_1pct_fpr, 4) if r.resolvable(0.01) else nan,
             "advantage": round(r.advantage, 4),
             "chosen_in_replicates": round(ci.selected.get(name, 0.0), 3)}
            for name, r in rep.attacks.items()
        ]
        result.tables["membership_resolution"] = [_resolution_row(level, ci) for level in FPR_LEVELS]
        exposed = rep.most_exposed(self.top_k)
        rows = []
        for rank, (idx, score) in enumerate(exposed, 1):
            row: dict[str, Any] = {"rank": rank, "train_row": idx, "score": round(score, 4)}
            if self.show_rows:
                assert ctx.train is not None
                names = ctx.train.feature_names or [f"x{j}" for j in range(ctx.train.n_features)]
                row.update(dict(zip(names, ctx.train.X[idx].reshape(-1).tolist())))
            rows.append(row)
        result.tables["most_exposed_records"] = rows
        series = []
        for name in rep.attacks:
            x, y = rep.roc_points(name)
            series.append(Series(name=name, x=x, y=y))
        result.figures.append(Figure(
            title="Membership inference ROC (log-log)", kind="line", series=series,
            x_label="false-positive rate", y_label="true-positive rate", log_x=True, log_y=True,
            diagonal=True,
        ))

        # grade on lower confidence bounds that include the non-member threshold noise and the choice
        # of the best attack; a TPR at an FPR the sample cannot bound is never graded
        tpr_iv = ci.tpr[0.01] if ci.gradable[0.01] else None
        sev = None
        for level, t_default, a_default in ((Severity.HIGH, 0.10, 0.70), (Severity.MEDIUM, 0.03, 0.60),
                                            (Severity.LOW, 0.015, 0.55)):
            t_lim = ctx.threshold(f"privacy.tpr_at_1pct_fpr.{level.value}", t_default)
            a_lim = ctx.threshold(f"privacy.auc.{level.value}", a_default)
            if (tpr_iv is not None and tpr_iv.lower >= t_lim) or ci.auc.lower >= a_lim:
                sev = level
                break
        threat = threat_model_text(rep.n_shadows)
        stats = statistics_text(ci)
        limits = (" Limits: " + "; ".join(rep.notes) + ".") if rep.notes else ""
        tpr_text = " ".join(_tpr_sentence(level, ci) for level in FPR_LEVELS)
        detail = (f"{tpr_text} Highest ROC AUC {ci.auc.estimate:.3f} ({ci.auc.attack}; {conf} CI "
                  f"{ci.auc.lower:.3f}-{ci.auc.upper:.3f}). Over {rep.n_members} members and "
                  f"{rep.n_nonmembers} non-members (smallest measurable FPR {_pct(ci.fpr_resolution)}) "
                  f"with {rep.n_shadows} shadow models. Graded on the lower bounds"
                  + ("" if ci.gradable[0.01] else " of the AUC only (TPR at 1% FPR cannot be bounded with "
                     f"{rep.n_nonmembers} non-members)")
                  + f". {threat} {stats}{limits}")
        if sev is not None:
            result.add(Finding(
                check=self.name, severity=sev, rule_id="privacy.membership-inference",
                title="Training data membership leaks",
                detail=detail,
                evidence={"best_attack": best.name, "auc": round(ci.auc.estimate, 4),
                          "auc_ci": [round(ci.auc.lower, 4), round(ci.auc.upper, 4)],
                          **{LEVEL_KEYS[lv]: _evidence(lv, ci) for lv in FPR_LEVELS},
                          "fpr_resolution": ci.fpr_resolution,
                          "most_exposed_train_rows": [i for i, _ in exposed],
                          "threat_model": threat, "statistics": stats},
                remediation=("Train with differential privacy (modelshield harden dp), regularise "
                             "(early stopping, weight decay), or deduplicate and remove outliers; "
                             "re-audit to confirm lower TPR at low FPR."),
                references=_REFS,
            ))
        for note_text in rep.notes:
            if "overlap" in note_text or "also appear" in note_text:
                result.add(Finding(
                    check=self.name, severity=Severity.LOW, rule_id="privacy.members-overlap",
                    title="Held-out data overlaps the training data",
                    detail=note_text + ". Overlap makes held-out metrics optimistic as well.",
                    remediation="Deduplicate before splitting train and test.",
                ))
        parts = [f"Membership inference: best {best.name}, AUC {ci.auc.estimate:.3f} "
                 f"({ci.auc.lower:.3f}-{ci.auc.upper:.3f})"]
        for level in FPR_LEVELS:
            parts.append(f"TPR@{LEVEL_LABELS[level]}FPR {_short(level, ci)}")
        summary.append(", ".join(parts) + ".")

    # ------------------------------------------------------------------------------------------
    def _pii(self, ds: Any, label: str, result: CheckResult, summary: list[str]) -> None:
        from modelshield.privacy.pii import (  # lazy: privacy.pii pulls in scikit-learn and phonenumbers
            scan_dataset,  # lazy: pulls in pandas, phonenumbers, rich, scipy, sklearn only when used
        )

        rep = scan_dataset(ds)
        result.metrics[f"pii_{label}_cells"] = rep.total_cells
        result.metrics[f"pii_{label}_columns"] = len(rep.pii_columns)
        result.tables[f"pii_{label}"] = rep.table()
        if rep.quasi_identifiers:
            result.tables[f"quasi_identifiers_{label}"] = [
                {"columns": ", ".join(q.columns), "unique_rows": q.unique_rows, "k_anonymity": q.k}
                for q in rep.quasi_identifiers
            ]
        for col in rep.pii_columns:
            types = ", ".join(f"{t} ({c})" for t, c in col.counts.items())
            result.add(Finding(
                check=self.name, severity=Severity.MEDIUM if col.confidence >= 0.5 else Severity.LOW,
                rule_id="privacy.pii-in-data", location=f"{label}:{col.column}",
                title=f"Personal data in column {col.column!r}",
                detail=(f"{col.cells} of {col.rows} cells in {label} column {col.column!r} hold personal "
                        f"data: {types}; confidence {col.confidence:.2f}. Values are not shown."),
                evidence={"column": col.column, "types": dict(col.counts), "cells": col.cells},
                remediation="Pseudonymise, mask or drop the column (modelshield privacy anonymize).",
            ))
        summary.append(f"PII scan of {label}: {rep.total_cells} cells in {len(rep.pii_columns)} columns.")
