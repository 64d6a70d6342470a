"""The ``privacy`` audit check: membership-inference leakage, plus a PII scan of text columns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from modelshield.checks.base import Applies, AuditContext, Check
from modelshield.checks.privacy.membership import (
    ATTACKS,
    MembershipReport,
    TrainingRecipe,
    membership_inference,
)
from modelshield.errors import DataError, UserError
from modelshield.findings import CheckResult, Figure, Finding, Series, Severity
from modelshield.models.base import Capability

__all__ = ["PrivacyCheck"]

_REFS = (
    "https://arxiv.org/abs/2112.03570",  # LiRA
    "https://arxiv.org/abs/2312.03262",  # RMIA
)


def _has_text(ds: Any) -> bool:
    return ds is not None and getattr(ds, "X", None) is not None and not ds.is_numeric


def _tpr_lower_bound(tpr: float, n: int, alpha: float = 0.05) -> float:
    """Clopper-Pearson lower bound of a proportion ``tpr`` measured on ``n`` members."""
    from scipy.stats import beta

    k = round(tpr * n)
    return 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))


def _auc_null_sd(n1: int, n0: int) -> float:
    """Standard deviation of the ROC AUC of a useless score (Mann-Whitney under the null)."""
    return float(((n1 + n0 + 1) / (12.0 * n1 * n0)) ** 0.5)


@dataclass(kw_only=True)
class PrivacyCheck(Check):
    """Membership-inference leakage (loss threshold, LiRA, RMIA) and PII in the data.

    Members are ``ctx.train`` (the training rows), non-members ``ctx.data`` (held-out rows). Shadow
    models are cloned from the model (``retrainable`` capability); without it only the loss attack
    runs. Severity comes from the strongest attack's TPR at 1 % FPR (its 95 % Clopper-Pearson lower
    bound, default limits 0.10 / 0.03 / 0.015) and its AUC (less two null standard deviations, default
    limits 0.70 / 0.60 / 0.55), graded by the policy thresholds
    ``privacy.tpr_at_1pct_fpr.{high,medium,low}`` and ``privacy.auc.{high,medium,low}``.

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
    pii: bool = True

    def check_options(self) -> None:
        if self.n_shadows is not None and self.n_shadows < 2:  # LiRA and RMIA need shadows in and out
            raise UserError(f"privacy.n_shadows (--shadows) must be at least 2, got {self.n_shadows}")
        for name in ("shadow_budget_s", "shadow_lr"):
            v = getattr(self, name)
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise UserError(f"privacy.{name} must be a positive number, got {v}")
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
    def run(self, ctx: AuditContext) -> CheckResult:
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
            from modelshield.data.numeric import non_numeric_columns

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
        resolution = 1.0 / rep.n_nonmembers
        result.metrics.update({
            "auc": best.auc,
            "tpr_at_0_1pct_fpr": best.tpr_at_0_1pct_fpr,
            "tpr_at_1pct_fpr": best.tpr_at_1pct_fpr,
            "advantage": best.advantage,
            "best_attack": best.name,
            "n_members": rep.n_members,
            "n_nonmembers": rep.n_nonmembers,
            "n_shadows": rep.n_shadows,
            "fpr_resolution": resolution,
        })
        for name, res in rep.attacks.items():
            for k, v in res.metrics().items():
                result.metrics[f"{name}_{k}"] = v
        result.tables["membership_attacks"] = [
            {"attack": name, "auc": round(r.auc, 4), "tpr_at_0.1%_fpr": round(r.tpr_at_0_1pct_fpr, 4),
             "tpr_at_1%_fpr": round(r.tpr_at_1pct_fpr, 4), "advantage": round(r.advantage, 4)}
            for name, r in rep.attacks.items()
        ]
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

        tpr, auc = best.tpr_at_1pct_fpr, best.auc
        # grade on what the sample sizes support: a 95 % lower confidence bound on the TPR and the AUC
        # less two null standard deviations, so small test sets do not raise findings by chance
        tpr_lo, auc_lo = _tpr_lower_bound(tpr, rep.n_members), auc - 2 * _auc_null_sd(rep.n_members,
                                                                                       rep.n_nonmembers)
        result.metrics["tpr_at_1pct_fpr_lower"] = tpr_lo
        result.metrics["auc_lower"] = auc_lo
        sev = None
        for level, t_default, a_default in ((Severity.HIGH, 0.10, 0.70), (Severity.MEDIUM, 0.03, 0.60),
                                            (Severity.LOW, 0.015, 0.55)):
            t_lim = ctx.threshold(f"privacy.tpr_at_1pct_fpr.{level.value}", t_default)
            a_lim = ctx.threshold(f"privacy.auc.{level.value}", a_default)
            if tpr_lo >= t_lim or auc_lo >= a_lim:
                sev = level
                break
        note = ""
        if resolution > 0.01:
            note = (f" With {rep.n_nonmembers} non-members the smallest measurable FPR is {resolution:.2%}, "
                    "so 'TPR at 1% FPR' is the TPR at zero false positives; more held-out rows sharpen it.")
        limits = (" Limits: " + "; ".join(rep.notes) + ".") if rep.notes else ""
        detail = (f"The strongest attack ({best.name}) identifies {tpr:.1%} of training rows at 1% false "
                  f"positives ({best.tpr_at_0_1pct_fpr:.1%} at 0.1%), ROC AUC {auc:.3f}, over "
                  f"{rep.n_members} members and {rep.n_nonmembers} non-members with {rep.n_shadows} "
                  f"shadow models.{note}{limits}")
        if sev is not None:
            result.add(Finding(
                check=self.name, severity=sev, rule_id="privacy.membership-inference",
                title="Training data membership leaks",
                detail=detail,
                evidence={"best_attack": best.name, "auc": round(auc, 4), "tpr_at_1pct_fpr": round(tpr, 4),
                          "tpr_at_0_1pct_fpr": round(best.tpr_at_0_1pct_fpr, 4),
                          "most_exposed_train_rows": [i for i, _ in exposed]},
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
        summary.append(f"Membership inference: best {best.name}, AUC {auc:.3f}, TPR@1%FPR {tpr:.3f}, "
                       f"TPR@0.1%FPR {best.tpr_at_0_1pct_fpr:.3f}.")

    # ------------------------------------------------------------------------------------------
    def _pii(self, ds: Any, label: str, result: CheckResult, summary: list[str]) -> None:
        from modelshield.checks.privacy.pii import scan_dataset

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
