"""The ``poisoning`` audit check: poisoned training rows and backdoored models (thin over
:mod:`modelshield.poisoning`)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from modelshield.checks.base import Applies, AuditContext, Check
from modelshield.errors import OptionError, UserError
from modelshield.findings import CheckResult, Figure, Finding, Series, Severity
from modelshield.models.base import Capability
from modelshield.poisoning._common import check_fraction
from modelshield.poisoning.activations import NoActivations, penultimate_activations
from modelshield.poisoning.data import LABEL_METHODS, audit_training_data
from modelshield.poisoning.model import activation_clustering, spectral_signatures, strip_test
from modelshield.poisoning.neural_cleanse import NoGradients, neural_cleanse

__all__ = ["PoisoningCheck"]

_REFS_DATA = ("https://arxiv.org/abs/1911.00068",)  # confident learning
_REFS_MODEL = (
    "https://arxiv.org/abs/1811.03728",  # activation clustering
    "https://arxiv.org/abs/1811.00636",  # spectral signatures
    "https://arxiv.org/abs/1902.06531",  # STRIP
    "https://doi.org/10.1109/SP.2019.00031",  # Neural Cleanse
)
_STRIP_MODES = ("auto", "blend", "swap")


def _rows(a: Any, k: int) -> list[int]:
    return [int(i) for i in np.asarray(a)[:k]]


def _key(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


@dataclass(kw_only=True)
class PoisoningCheck(Check):
    """Poisoned training data and backdoored models.

    **Training data** (``--train`` with labels): label issues by confident learning over out-of-fold
    probabilities (the model is cloned when it is a scikit-learn estimator, else a standardised
    logistic regression is used), exact and near duplicates (and duplicates with conflicting labels),
    train/test leakage, and in-class outliers. **Model**: activation clustering and spectral
    signatures over the training rows' penultimate-layer activations (PyTorch and TorchScript
    ``Sequential`` models; other models fall back to STRIP, and the result says why), Neural Cleanse
    trigger reverse-engineering on the held-out rows (differentiable models, 3 or more classes), and STRIP on the
    training rows, calibrated on the held-out ``--data``. Findings name training rows by index only.

    Options
    -------
    poisoned_fraction : the share of poisoned rows to look for (spectral signatures flag
        ``1.5 x`` it per poisoned class); in (0, 0.5).
    label_method : ``predicted_neq_given`` (default, most recall), ``prune_by_noise_rate`` or
        ``confident_learning`` (most precision).
    n_folds : folds for the out-of-fold probabilities.
    near : near-duplicate distance, as a share of the median nearest-neighbour distance.
    outlier_z : robust z-score at which a row is an outlier.
    layer : the layer whose input is used as activations (default: the last Linear layer).
    ac_silhouette, ac_max_share : activation clustering verdict: silhouette at least this and the smaller
        cluster at most this share of its class.
    ss_ratio : spectral signatures verdict without held-out labels: top-rows / other-rows score ratio at
        least this (with held-out labels the verdict is a calibrated test, see
        :func:`~modelshield.poisoning.model.spectral_signatures`).
    strip_fpr : the share of clean held-out rows STRIP may flag (sets its threshold).
    strip_overlays : superimpositions per row; strip_mode : ``auto``, ``blend`` or ``swap``.
    nc_steps : Adam steps of Neural Cleanse (quick mode at most 100); nc_threshold : anomaly index above
        which a class (whose reversed trigger is smaller than the median) is the backdoor target.
    max_rows : training rows used (a seeded sample above it; quick mode at most 4,000, and 3 folds).
    top_k : how many flagged row indices each finding lists.

    References
    ----------
    .. [1] C. Northcutt et al., "Confident Learning", JAIR 2021.
    .. [2] B. Chen et al., "Detecting Backdoor Attacks ... by Activation Clustering", 2019.
    .. [3] B. Tran et al., "Spectral Signatures in Backdoor Attacks", NeurIPS 2018.
    .. [4] Y. Gao et al., "STRIP", ACSAC 2019.
    """

    name: ClassVar[str] = "poisoning"
    title: ClassVar[str] = "Poisoning: poisoned training rows and backdoors"
    description: ClassVar[str] = (
        "Finds mislabelled, duplicated, leaked and outlying training rows and tests the model for backdoors "
        "(activation clustering, spectral signatures, Neural Cleanse, STRIP)."
    )
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.PROBABILITIES})
    needs_train: ClassVar[bool] = True
    tasks: ClassVar[frozenset[str]] = frozenset({"classification"})
    declared_metrics: ClassVar[dict[str, str]] = {
        "train_rows": "training rows checked", "label_issues": "training rows with label issues",
        "label_issue_rate": "share of training rows with label issues",
        "duplicate_rows": "exact duplicate training rows (beyond the first of each group)",
        "conflicting_duplicate_groups": "duplicate groups with different labels",
        "near_duplicate_pairs": "near-duplicate training pairs", "leaked_test_rows": "held-out rows that repeat "
        "a training row (exactly or nearly)", "leak_rate": "share of held-out rows leaked",
        "outliers": "in-class outlier training rows", "flagged_rows": "training rows flagged (label issues and "
        "conflicting duplicates)",
        "activation_clustering_score": "highest per-class silhouette of a small cluster",
        "activation_clustering_poisoned": "activation clustering verdict",
        "spectral_score": "highest per-class spectral-signature statistic (share beyond held-out, or ratio)",
        "spectral_poisoned": "spectral signatures verdict",
        "strip_flagged_share": "share of training rows STRIP flags", "strip_p_value": "binomial p-value of "
        "the STRIP excess", "strip_poisoned": "STRIP verdict", "backdoor_suspected": "any model check says poisoned",
        "white_box": "activations were available (else STRIP only)",
        "neural_cleanse_anomaly_index": "largest Neural Cleanse anomaly index on the small-mask side",
        "neural_cleanse_poisoned": "Neural Cleanse verdict (a class's reversed trigger is anomalously small)",
        "neural_cleanse_target": "the class Neural Cleanse names as the backdoor target (null: none)",
    }
    declared_thresholds: ClassVar[dict[str, str]] = {}

    poisoned_fraction: float = 0.1
    label_method: str = "predicted_neq_given"
    n_folds: int = 5
    near: float = 0.05
    outlier_z: float = 4.0
    layer: str | None = None
    ac_silhouette: float = 0.65
    ac_max_share: float = 0.35
    ss_ratio: float = 40.0
    strip_fpr: float = 0.01
    strip_overlays: int = 16
    strip_mode: str = "auto"
    max_rows: int = 20000
    top_k: int = 20
    nc_steps: int = 300
    nc_threshold: float = 2.0

    def check_options(self) -> None:
        check_fraction(self.poisoned_fraction, "poisoning.poisoned_fraction")
        if self.label_method not in LABEL_METHODS:
            raise UserError(f"poisoning.label_method must be one of {', '.join(LABEL_METHODS)}, "
                            f"got {self.label_method!r}")
        if self.strip_mode not in _STRIP_MODES:
            raise UserError(f"poisoning.strip_mode must be one of {', '.join(_STRIP_MODES)}, got {self.strip_mode!r}")
        if not (0 < self.strip_fpr < 0.5):
            raise UserError(f"poisoning.strip_fpr must be above 0 and below 0.5, got {self.strip_fpr}")
        for name in ("n_folds",):
            if getattr(self, name) < 2:
                raise UserError(f"poisoning.{name} must be at least 2, got {getattr(self, name)}")
        for name in ("strip_overlays", "max_rows", "top_k", "nc_steps"):
            if getattr(self, name) < 1:
                raise UserError(f"poisoning.{name} must be at least 1, got {getattr(self, name)}")
        if not self.nc_threshold > 0:
            raise UserError(f"poisoning.nc_threshold must be above 0, got {self.nc_threshold}")
        if not (0 < self.ac_max_share <= 0.5):
            raise UserError(f"poisoning.ac_max_share must be above 0 and at most 0.5, got {self.ac_max_share}")

    def applies(self, ctx: AuditContext) -> Applies:
        base = super().applies(ctx)
        if not base:
            return base
        if ctx.train is not None and not ctx.train.is_numeric:
            return Applies("needs numeric training features")
        return Applies()

    # ------------------------------------------------------------------------------------------
    def _run(self, ctx: AuditContext) -> CheckResult:
        assert ctx.model is not None and ctx.train is not None and ctx.data is not None
        self.check_options()
        train = ctx.train
        if train.y is None:
            raise OptionError("the poisoning check needs labelled training data",
                              cli_hint="give the label column with --target (it must be in --train too)")
        max_rows = min(self.max_rows, 4000) if ctx.quick else self.max_rows  # quick: small budgets
        idx = np.arange(len(train))
        if len(train) > max_rows:
            idx = np.sort(ctx.rng("poisoning.sample").choice(len(train), max_rows, replace=False))
        X, y = train.X[idx], np.asarray(train.y)[idx]
        result = self.result()
        summary: list[str] = []
        if len(idx) < len(train):
            summary.append(f"A seeded sample of {len(idx)} of {len(train)} training rows was checked; row indices "
                           "refer to the full training data.")
        self._data_part(ctx, X, y, idx, result, summary)
        self._model_part(ctx, X, y, idx, result, summary)
        result.summary = " ".join(summary)
        return result

    def _folds(self, ctx: AuditContext) -> int:
        return min(self.n_folds, 3) if ctx.quick else self.n_folds

    # ------------------------------------------------------------------------------------------
    def _data_part(self, ctx: AuditContext, X: np.ndarray, y: np.ndarray, idx: np.ndarray,
                   result: CheckResult, summary: list[str]) -> None:
        assert ctx.model is not None and ctx.data is not None
        estimator = None
        if getattr(ctx.model, "framework", "") == "sklearn" and Capability.RETRAINABLE in ctx.capabilities:
            estimator = ctx.model.clone_unfitted()  # type: ignore[attr-defined]
        ctx.progress(0.05, "out-of-fold probabilities")
        try:
            rep = audit_training_data(X, y, X_test=ctx.data.X, estimator=estimator, n_folds=self._folds(ctx),
                                      method=self.label_method, near=self.near, outlier_z=self.outlier_z,
                                      seed=ctx.seed)
        except (ValueError, TypeError) as exc:  # the cloned estimator cannot fit these folds: use the default
            if estimator is None:
                raise
            summary.append(f"The model could not be refitted per fold ({type(exc).__name__}); a logistic "
                           "regression gave the out-of-fold probabilities.")
            rep = audit_training_data(X, y, X_test=ctx.data.X, n_folds=self._folds(ctx), method=self.label_method,
                                      near=self.near, outlier_z=self.outlier_z, seed=ctx.seed)
        lab, dup, out = rep.labels, rep.duplicates, rep.outliers
        flagged = idx[rep.flagged_rows]
        leaked = {t for t, _ in dup.leaked_exact} | {t for t, _ in dup.leaked_near}
        result.metrics.update({
            "train_rows": len(idx), "label_issues": len(lab.rows), "label_issue_rate": lab.rate,
            "duplicate_rows": dup.duplicate_rows, "conflicting_duplicate_groups": len(dup.conflicting_groups),
            "near_duplicate_pairs": len(dup.near_pairs), "leaked_test_rows": len(leaked), "leak_rate": dup.leak_rate,
            "outliers": len(out.rows), "flagged_rows": len(flagged),
        })
        result.tables["flagged_training_rows"] = (
            [{"train_row": int(idx[r]), "reason": "label issue", "score": round(float(c), 4),
              "score_name": "probability of the given label"} for r, c in zip(lab.rows, lab.self_confidence)]
            + [{"train_row": int(idx[r]), "reason": "duplicate with a conflicting label", "score": None,
                "score_name": ""} for g in dup.conflicting_groups for r in g]
        )
        result.tables["training_data_detectors"] = [
            {"detector": "label issues (confident learning)", "score": round(lab.rate, 4), "rows": len(lab.rows),
             "verdict": "flagged" if len(lab.rows) else "clean"},
            {"detector": "duplicates with conflicting labels", "score": len(dup.conflicting_groups),
             "rows": sum(len(g) for g in dup.conflicting_groups),
             "verdict": "flagged" if dup.conflicting_groups else "clean"},
            {"detector": "train/test leakage", "score": round(dup.leak_rate, 4), "rows": len(leaked),
             "verdict": "flagged" if leaked else "clean"},
            {"detector": "in-class outliers", "score": round(float(out.scores.max()) if len(out.scores) else 0.0, 3),
             "rows": len(out.rows), "verdict": "flagged" if len(out.rows) else "clean"},
        ]
        if len(lab.rows):
            rate = lab.rate
            # ordinary label noise and hard rows look the same as flips (the default filter flags every
            # out-of-fold error), so the finding is low on its own; gate on poisoning.label_issue_rate
            sev = Severity.LOW
            result.add(Finding(
                check=self.name, severity=sev, rule_id="poisoning.label-issues",
                title="Training rows whose labels contradict the data",
                detail=(f"{len(lab.rows)} of {len(idx)} training rows ({rate:.1%}) carry a label that a model "
                        f"trained without them contradicts (confident learning, {self.label_method}, "
                        f"{self._folds(ctx)}-fold out-of-fold probabilities). Label flipping is a poisoning attack; "
                        "noisy annotation looks the same. Rows are named by index; values are not shown."),
                evidence={"train_rows": [int(i) for i in idx[lab.rows[: self.top_k]]], "count": len(lab.rows),
                          "rate": round(rate, 4), "method": self.label_method},
                remediation="Review the listed rows; drop or relabel them and retrain "
                            "(modelshield harden backdoor --train drops them and retrains).",
                references=_REFS_DATA,
            ))
        if dup.conflicting_groups:
            result.add(Finding(
                check=self.name, severity=Severity.MEDIUM, rule_id="poisoning.conflicting-duplicates",
                title="Identical training rows with different labels",
                detail=f"{len(dup.conflicting_groups)} groups of identical training rows disagree on the label.",
                evidence={"groups": [[int(idx[i]) for i in g] for g in dup.conflicting_groups[: self.top_k]]},
                remediation="Keep one row per group with the correct label.",
            ))
        if leaked:
            result.add(Finding(
                check=self.name, severity=Severity.MEDIUM if dup.leak_rate >= 0.01 else Severity.LOW,
                rule_id="poisoning.train-test-leakage", title="Held-out rows repeat training rows",
                detail=(f"{len(leaked)} of {dup.n_test} held-out rows ({dup.leak_rate:.1%}) equal or nearly equal a "
                        f"training row ({len(dup.leaked_exact)} exact; near: standardised distance <= "
                        f"{dup.near_threshold:.3g}). Held-out metrics are optimistic and a planted row can reach "
                        "the evaluation set."),
                evidence={"heldout_rows": sorted(int(t) for t in leaked)[: self.top_k],
                          "pairs": [[int(t), int(idx[r])]
                                    for t, r in (dup.leaked_exact + dup.leaked_near)[: self.top_k]]},
                remediation="Deduplicate before splitting train and test.",
            ))
        if dup.duplicate_rows:
            result.add(Finding(
                check=self.name, severity=Severity.INFO, rule_id="poisoning.duplicates",
                title="Duplicate training rows",
                detail=f"{dup.duplicate_rows} training rows repeat an earlier row exactly "
                       f"({len(dup.exact_groups)} groups); {len(dup.near_pairs)} near-duplicate pairs.",
                evidence={"groups": [[int(idx[i]) for i in g] for g in dup.exact_groups[: self.top_k]]},
                remediation="Repeated rows weigh more in training; deduplicate unless intended.",
            ))
        if len(out.rows):
            result.add(Finding(
                check=self.name, severity=Severity.INFO, rule_id="poisoning.outliers",
                title="Training rows far from the rest of their class",
                detail=(f"{len(out.rows)} training rows have an in-class {out.k}-nearest-neighbour distance with a "
                        f"robust z-score of at least {out.z_threshold:g}."),
                evidence={"train_rows": [int(i) for i in idx[out.rows[: self.top_k]]]},
                remediation="Inspect them: an injected point or a rare trigger value looks like this.",
            ))
        summary.append(f"Training data: {len(lab.rows)} label issues, {len(dup.conflicting_groups)} conflicting "
                       f"duplicate groups, {len(leaked)} leaked held-out rows, {len(out.rows)} outliers.")

    # ------------------------------------------------------------------------------------------
    def _model_part(self, ctx: AuditContext, X: np.ndarray, y: np.ndarray, idx: np.ndarray,
                    result: CheckResult, summary: list[str]) -> None:
        assert ctx.model is not None and ctx.data is not None
        model = ctx.model
        detectors: list[dict[str, Any]] = []
        verdicts: list[bool] = []
        ctx.progress(0.5, "activations")
        try:
            A = penultimate_activations(model, X, layer=self.layer)
            why = ""
        except NoActivations as exc:
            A, why = None, str(exc)
        result.metrics["white_box"] = A is not None
        if A is None:
            summary.append(f"White-box checks (activation clustering, spectral signatures) skipped: {why}; "
                           "falling back to STRIP.")
            detectors += [{"detector": d, "score": None, "verdict": "not run", "rows": 0, "note": why}
                          for d in ("activation clustering", "spectral signatures")]
        else:
            held = ctx.data.y if ctx.data.y is not None and len(np.intersect1d(ctx.data.y, y)) else None
            HA = penultimate_activations(model, ctx.data.X, layer=self.layer) if held is not None else None
            ac = activation_clustering(A, y, max_share=self.ac_max_share, silhouette_threshold=self.ac_silhouette,
                                       heldout_labels=held, heldout_activations=HA, seed=ctx.seed)
            ss = spectral_signatures(A, y, fraction=self.poisoned_fraction, ratio_threshold=self.ss_ratio,
                                     heldout_activations=HA, heldout_labels=held)
            result.metrics.update({"activation_clustering_score": ac.score,
                                   "activation_clustering_poisoned": ac.poisoned,
                                   "spectral_score": ss.score, "spectral_poisoned": ss.poisoned})
            verdicts += [ac.poisoned, ss.poisoned]
            detectors += [
                {"detector": "activation clustering", "score": round(ac.score, 4),
                 "verdict": "poisoned" if ac.poisoned else "clean", "rows": len(ac.flagged_rows),
                 "note": "; ".join(f"class {_key(c.label)}: {c.reason}" for c in ac.classes if c.poisoned)
                 or (f"silhouette >= {ac.silhouette_threshold:g} with smaller cluster <= {ac.max_share:.0%}, or a "
                     "class larger than its held-out prior with a matching cluster")},
                {"detector": "spectral signatures", "score": round(ss.score, 3),
                 "verdict": "poisoned" if ss.poisoned else "clean", "rows": len(ss.flagged_rows),
                 "note": ("share of training rows beyond the held-out scores, beta-binomial test" if ss.calibrated
                          else f"top/rest score ratio >= {ss.ratio_threshold:g}")},
            ]
            result.tables["activation_clusters"] = [
                {"class": _key(c.label), "rows": c.n_rows, "smaller_cluster_share": round(c.smaller_share, 4),
                 "silhouette": round(c.silhouette, 4), "excess_share": round(c.excess_share, 4),
                 "excess_p": c.excess_p,
                 "spectral_statistic": round(ss.class_stat.get(_key(c.label), 0.0), 4),
                 "verdict": "poisoned" if c.poisoned else "clean", "reason": c.reason} for c in ac.classes
            ]
            labels = [str(_key(c.label)) for c in ac.classes]
            result.figures.append(Figure(
                title="Activation clustering per class (2-means on the top principal components)", kind="bar",
                series=(Series(name="silhouette", x=labels, y=[c.silhouette for c in ac.classes]),
                        Series(name="smaller cluster share", x=labels, y=[c.smaller_share for c in ac.classes])),
                x_label="class", y_label="value", y_range=(0.0, 1.0),
            ))
            worst = max(ac.classes, key=lambda c: (c.poisoned, c.silhouette))
            if worst.n_rows and len(worst.projection):
                small = np.isin(np.flatnonzero(y == worst.label), worst.suspect_rows)
                series = []
                for name, mask in (("other rows", ~small), ("suspect cluster", small)):
                    vals = np.sort(worst.projection[mask, 0])
                    series.append(Series(name=name, x=list(range(len(vals))), y=vals.tolist()))
                result.figures.append(Figure(
                    title=f"Activation clusters of class {_key(worst.label)}: first principal component, sorted",
                    kind="line", series=series, x_label="row (sorted)", y_label="PC1 coordinate",
                ))
            result.figures.append(Figure(
                title=("Spectral signatures: share of training rows beyond the held-out scores per class"
                       if ss.calibrated else "Spectral signatures: top/rest outlier-score ratio per class"),
                kind="bar", series=(Series(name="statistic", x=list(map(str, ss.class_stat)),
                                           y=list(ss.class_stat.values())),),
                x_label="class", y_label="share" if ss.calibrated else "ratio",
            ))
            ac_classes = ", ".join(str(_key(c.label)) for c in ac.classes if c.poisoned)
            ss_classes = ", ".join(map(str, ss.poisoned_classes))
            for det, rep, rows, which in (("activation clustering", ac, ac.flagged_rows, ac_classes),
                                          ("spectral signatures", ss, ss.flagged_rows, ss_classes)):
                if rep.poisoned:
                    result.add(Finding(
                        check=self.name, severity=Severity.HIGH, rule_id=f"poisoning.{det.replace(' ', '-')}",
                        title=f"Backdoor suspected: {det}",
                        detail=(f"{det.capitalize()} finds a separate sub-population in the training rows' "
                                f"penultimate activations of class(es) "
                                f"{which}"
                                f"; {len(rows)} rows flagged."),
                        evidence={"train_rows": [int(i) for i in idx[rows][: self.top_k]], "count": len(rows),
                                  "score": round(rep.score, 4)},
                        remediation="Inspect the flagged rows for a shared pattern (a trigger); drop them and "
                                    "retrain, or fine-prune (modelshield harden backdoor).",
                        references=_REFS_MODEL,
                    ))
        ctx.progress(0.65, "Neural Cleanse")
        verdicts.append(self._neural_cleanse(ctx, detectors, result, summary))
        ctx.progress(0.75, "STRIP")
        st = strip_test(model.predict_proba, X, ctx.data.X, fpr=self.strip_fpr, n_overlays=self.strip_overlays,
                        mode=self.strip_mode, seed=ctx.seed)
        verdicts.append(st.poisoned)
        result.metrics.update({"strip_flagged_share": st.flagged_share, "strip_p_value": st.p_value,
                               "strip_poisoned": st.poisoned, "backdoor_suspected": any(verdicts)})
        detectors.append({"detector": "STRIP", "score": round(st.flagged_share, 4),
                          "verdict": "poisoned" if st.poisoned else "clean", "rows": len(st.flagged_rows),
                          "note": f"p={st.p_value:.2g}; threshold at {st.fpr:.1%} FPR on held-out rows"})
        result.tables["backdoor_detectors"] = detectors
        edges = np.linspace(0, max(float(st.heldout_entropy.max(initial=0)), float(st.tested_entropy.max(initial=0)),
                                   1e-6), 21)
        mids = [f"{(a + b) / 2:.2f}" for a, b in itertools.pairwise(edges)]

        def hist(v: np.ndarray) -> list[float]:
            return (np.histogram(v, edges)[0] / max(1, len(v))).tolist()

        result.figures.append(Figure(
            title="STRIP: entropy under superimposition (share of rows per bin)", kind="bar",
            series=(Series(name="held-out rows", x=mids, y=hist(st.heldout_entropy)),
                    Series(name="training rows", x=mids, y=hist(st.tested_entropy))),
            x_label="entropy (nats)", y_label="share of rows",
        ))
        if st.poisoned:
            result.add(Finding(
                check=self.name, severity=Severity.HIGH, rule_id="poisoning.strip",
                title="Backdoor suspected: STRIP",
                detail=(f"{st.flagged_share:.1%} of training rows keep a confident prediction when superimposed "
                        f"with clean held-out rows (threshold set so that {st.fpr:.1%} of held-out rows fall below "
                        f"it; beta-binomial p = {st.p_value:.2g}). Inputs that carry a trigger behave like this."),
                evidence={"train_rows": [int(i) for i in idx[st.flagged_rows][: self.top_k]],
                          "count": len(st.flagged_rows), "p_value": st.p_value},
                remediation="Inspect the flagged rows for a shared pattern; drop them and retrain, or fine-prune.",
                references=_REFS_MODEL,
            ))
        summary.append("Backdoor checks: " + ", ".join(f"{d['detector']} {d['verdict']}" for d in detectors) + ".")

    def _neural_cleanse(self, ctx: AuditContext, detectors: list[dict[str, Any]], result: CheckResult,
                        summary: list[str]) -> bool:
        """Neural Cleanse on the held-out rows (differentiable models with 3 or more classes); its
        detector row, metrics, anomaly-index figure and finding. Returns its verdict."""
        assert ctx.model is not None and ctx.data is not None
        n_classes = len(ctx.model.classes)
        why = ""
        if Capability.GRADIENTS not in ctx.capabilities:
            why = "the model gives no input gradients (only PyTorch and TorchScript models do)"
        elif n_classes < 3:
            why = f"its anomaly index needs at least 3 classes, the model has {n_classes}"
        rep = None
        if not why:
            steps = min(self.nc_steps, 100) if ctx.quick else self.nc_steps
            try:
                rep = neural_cleanse(ctx.model, ctx.data.X, steps=steps, threshold=self.nc_threshold, seed=ctx.seed)
            except NoGradients as exc:
                why = str(exc)
        if rep is None:
            summary.append(f"Neural Cleanse not run: {why}.")
            detectors.append({"detector": "neural cleanse", "score": None, "verdict": "not run", "rows": 0,
                              "note": why})
            return False
        labels = [str(c) for c in rep.classes]
        result.metrics.update({"neural_cleanse_anomaly_index": rep.score, "neural_cleanse_poisoned": rep.poisoned,
                               "neural_cleanse_target": rep.target})
        detectors.append({
            "detector": "neural cleanse", "score": round(rep.score, 4),
            "verdict": "poisoned" if rep.poisoned else "clean", "rows": 0,
            "note": (f"target class {rep.target}: reversed-trigger mask norm {rep.trigger.mask_norm:.3g} against a "
                     f"median of {float(np.median(rep.mask_norms)):.3g}" if rep.trigger is not None else
                     f"anomaly index > {rep.threshold:g} on the small-mask side ({rep.steps} Adam steps)"),
        })
        result.tables["neural_cleanse"] = [
            {"class": c, "mask_norm": round(float(n), 4), "anomaly_index": round(float(a), 4),
             "attack_success": round(float(s), 4), "reached_success": bool(r),
             "verdict": "target" if c in rep.flagged else "clean"}
            for c, n, a, s, r in zip(rep.classes, rep.mask_norms, rep.anomaly_index, rep.attack_success, rep.reached,
                                     strict=True)
        ]
        result.figures.append(Figure(
            title=f"Neural Cleanse: anomaly index of each class's reversed-trigger mask norm (flag > "
                  f"{rep.threshold:g}, small side)", kind="bar",
            series=(Series(name="anomaly index", x=labels, y=rep.anomaly_index.tolist()),),
            x_label="class", y_label="anomaly index (MAD units)",
        ))
        summary.extend(rep.notes)
        trig = rep.trigger
        if trig is not None:
            others = [c for c in rep.flagged if c != rep.target]
            # medium, not high: the MAD bar of 2 over ~10 classes flags about 1 clean model in 10 (docs/poisoning.md)
            result.add(Finding(
                check=self.name, severity=Severity.MEDIUM, rule_id="poisoning.neural-cleanse",
                title=f"Backdoor suspected: Neural Cleanse names class {rep.target} as the target",
                detail=(f"A trigger covering a mask of L1 norm {trig.mask_norm:.3g} sends "
                        f"{trig.attack_success:.0%} of clean held-out rows to class {rep.target}; the other classes "
                        f"need a median of {float(np.median(rep.mask_norms)):.3g} (anomaly index {rep.score:.2f} "
                        f"> {rep.threshold:g}). A planted backdoor is such a shortcut."
                        + (f" Also below the bar: class(es) {', '.join(map(str, others))}." if others else "")),
                evidence={"target_class": rep.target, "anomaly_index": round(rep.score, 4),
                          "mask_norm": round(trig.mask_norm, 4), "attack_success": round(trig.attack_success, 4),
                          "trigger_features": [int(i) for i in np.argsort(-trig.mask.reshape(-1))[: self.top_k]]},
                remediation="Stamp the reversed trigger on clean rows to confirm; look for training rows carrying "
                            "it; retrain without them or fine-prune (modelshield harden backdoor).",
                references=_REFS_MODEL,
            ))
        return rep.poisoned
