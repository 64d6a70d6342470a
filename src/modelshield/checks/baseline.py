"""The ``baseline`` check: how good the model is on held-out data, and what exactly was audited.

Accuracy, macro F1, balanced accuracy, calibration (expected calibration error, Brier score, a
reliability diagram), majority-class baseline, model and data SHA-256, framework and format.
Every security metric in the report is read against these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from modelshield._io import file_sha256
from modelshield.checks.base import AuditContext, Check
from modelshield.findings import CheckResult, Figure, Finding, Series, Severity

__all__ = ["BaselineCheck", "expected_calibration_error"]


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> tuple[
        float, np.ndarray, np.ndarray, np.ndarray]:
    """ECE with equal-width confidence bins (Guo et al. 2017).

    Returns ``(ece, bin_confidence, bin_accuracy, bin_count)``.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    bins = np.clip((confidence * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    nz = count > 0
    bin_conf = np.divide(conf_sum, count, out=np.zeros(n_bins), where=nz)
    bin_acc = np.divide(acc_sum, count, out=np.zeros(n_bins), where=nz)
    ece = float(np.sum(count[nz] / count.sum() * np.abs(bin_acc[nz] - bin_conf[nz])))
    return ece, bin_conf, bin_acc, count


@dataclass(kw_only=True)
class BaselineCheck(Check):
    """Utility and identity of the audited model.

    Options
    -------
    n_bins : calibration bins for the expected calibration error.
    max_samples : evaluate on at most this many rows (stratified sample); ``None`` for all.
    """

    name: ClassVar[str] = "baseline"
    title: ClassVar[str] = "Model baseline"
    description: ClassVar[str] = "Held-out accuracy, F1 and calibration; model and data hashes."
    needs_labels: ClassVar[bool] = True

    n_bins: int = 10
    max_samples: int | None = 100_000

    def _run(self, ctx: AuditContext) -> CheckResult:
        from sklearn import metrics as skm  # lazy: scikit-learn is slow to import; only this path needs it

        assert ctx.model is not None and ctx.data is not None and ctx.data.y is not None
        data = ctx.data.sample(self.max_samples, seed=ctx.seed) if self.max_samples else ctx.data
        model = ctx.model
        res = self.result()
        info: dict[str, Any] = {"framework": model.framework, "format": model.format,
                                "adapter": type(model).__name__, "rows_evaluated": len(data),
                                "data_sha256": data.sha256() if data is ctx.data else ctx.data.sha256()}
        if ctx.model_path is not None and ctx.model_path.is_file():
            info["model_sha256"] = file_sha256(ctx.model_path)
        res.tables["identity"] = [{"property": k, "value": v} for k, v in info.items()]
        ctx.progress(0.2, "predicting")
        if model.task == "regression":
            pred = np.asarray(model.predict(data.X), dtype=np.float64)
            y = np.asarray(data.y, dtype=np.float64)
            res.metrics.update({"r2": float(skm.r2_score(y, pred)),
                                "mae": float(skm.mean_absolute_error(y, pred)),
                                "rmse": float(np.sqrt(skm.mean_squared_error(y, pred)))})
            res.summary = f"R² {res.metrics['r2']:.3f}, MAE {res.metrics['mae']:.4g} on {len(data)} rows."
            return res
        proba = model.predict_proba(data.X)
        idx = model.label_index(data.y)
        pred_idx = np.argmax(proba, axis=1)
        correct = pred_idx == idx
        acc = float(correct.mean())
        _, counts = np.unique(idx, return_counts=True)
        majority = float(counts.max() / counts.sum())
        conf = proba[np.arange(len(proba)), pred_idx]
        ece, bconf, bacc, bcount = expected_calibration_error(conf, correct, self.n_bins)
        onehot = np.eye(proba.shape[1])[idx]
        brier = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
        res.metrics.update({
            "accuracy": acc,
            "balanced_accuracy": float(skm.balanced_accuracy_score(idx, pred_idx)),
            "f1_macro": float(skm.f1_score(idx, pred_idx, average="macro")),
            "majority_class_accuracy": majority,
            "ece": ece,
            "brier": brier,
            "n_samples": len(data),
            "n_classes": int(proba.shape[1]),
        })
        if proba.shape[1] == 2 and len(counts) == 2:
            res.metrics["roc_auc"] = float(skm.roc_auc_score(idx, proba[:, 1]))
        nz = bcount > 0
        res.figures.append(Figure(
            title="Reliability diagram", kind="line", x_label="confidence", y_label="accuracy",
            y_range=(0.0, 1.0), diagonal=True,
            series=[Series(name="model", x=bconf[nz].round(4).tolist(), y=bacc[nz].round(4).tolist())]))
        if acc <= majority + 0.01:
            res.add(Finding(check=self.name, severity=Severity.MEDIUM, rule_id="baseline.no-better-than-majority",
                            title="Model is no better than predicting the majority class",
                            detail=f"accuracy {acc:.3f} vs majority-class {majority:.3f}",
                            evidence={"accuracy": acc, "majority_class_accuracy": majority},
                            remediation="Check that the data, its label column and its feature columns match what "
                                        "the model was trained on; security metrics of a useless model mean little."))
        ece_hi = ctx.threshold("baseline.ece.low", 0.1)
        if ece > ece_hi:
            res.add(Finding(check=self.name, severity=Severity.LOW, rule_id="baseline.poor-calibration",
                            title="Model confidence is poorly calibrated",
                            detail=f"expected calibration error {ece:.3f} > {ece_hi:g}",
                            evidence={"ece": ece},
                            remediation="Calibrate (e.g. sklearn CalibratedClassifierCV or temperature scaling); "
                                        "over-confident scores also make membership inference easier.",
                            references=("https://arxiv.org/abs/1706.04599",)))
        res.summary = (f"Accuracy {acc:.3f} (majority class {majority:.3f}), macro F1 {res.metrics['f1_macro']:.3f}, "
                       f"ECE {ece:.3f} on {len(data)} held-out rows.")
        return res
