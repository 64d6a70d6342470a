"""The check registry: built-in checks plus third-party ones from the ``modelshield.checks``
entry-point group.

A third-party package registers a check in its ``pyproject.toml``::

    [project.entry-points."modelshield.checks"]
    mycheck = "mypkg.checks:MyCheck"
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points

from modelshield.checks.base import Check
from modelshield.errors import UserError

__all__ = [
    "BUILTIN_CHECKS",
    "BUILTIN_METRICS",
    "BUILTIN_THRESHOLDS",
    "ENTRY_POINT_GROUP",
    "available_checks",
    "check_needs",
    "declarations",
    "declared_metrics",
    "declared_thresholds",
    "get_check",
    "load_errors",
]

ENTRY_POINT_GROUP = "modelshield.checks"

#: name -> "module:Class". One line per built-in check, in report order.
BUILTIN_CHECKS: dict[str, str] = {
    "baseline": "modelshield.checks.baseline:BaselineCheck",
    "artifact": "modelshield.checks.artifact:ArtifactCheck",
    "robustness": "modelshield.checks.robustness:RobustnessCheck",
    "privacy": "modelshield.checks.privacy:PrivacyCheck",
    "fairness": "modelshield.checks.fairness:FairnessCheck",
    "theft": "modelshield.checks.theft:TheftCheck",
    "poisoning": "modelshield.checks.poisoning:PoisoningCheck",
    "private_inference": "modelshield.checks.private_inference:PrivateInferenceCheck",
}

#: What each built-in check puts in ``CheckResult.metrics`` (the names a policy limit may use), for the
#: built-in checks whose class does not declare :attr:`Check.declared_metrics` itself; a class declaration
#: wins. ``{attribute}`` is a sensitive attribute or an intersection of them (the user's column names: any
#: text); names from closed sets (attacks, API output kinds) are spelled out, so a typo in them is caught.
#: ``tests/checks/test_declared_metrics.py`` runs every built-in check and fails when a metric it emits (or a
#: threshold it reads) is not declared here.
_ROBUSTNESS_ATTACKS = ("fgsm", "pgd", "apgd-ce", "apgd-dlr", "apgd-t", "apgd", "square", "hsj")
_MEMBERSHIP_ATTACKS = ("loss", "lira_offline", "lira_online", "rmia")
_API_OUTPUTS = ("probabilities", "top1", "rounded")
BUILTIN_METRICS: dict[str, dict[str, str]] = {
    "private_inference": {
        "feasible": "1 when the model runs under HE at 128-bit security, else 0",
        "depth": "multiplicative depth of the batched circuit",
        "poly_modulus_degree": "CKKS ring degree chosen", "coeff_modulus_bits": "total coefficient-modulus bits",
        "security_bits": "security level of the chosen parameters (HE standard table)",
        "approximation_agreement": "argmax agreement of the polynomial network with the model (plaintext)",
        "estimated_ms_per_sample": "planner's batched latency estimate (fixed cost table)",
        "agreement": "argmax agreement, encrypted vs plaintext (measure)",
        "accuracy": "accuracy of the encrypted predictions (measure)",
        "plaintext_accuracy": "accuracy of the model in plaintext on the same rows (measure)",
        "max_logit_error": "largest logit difference, encrypted vs plaintext (measure)",
        "ms_per_sample": "measured batched latency per sample (measure)",
    },
    "baseline": {
        "accuracy": "held-out accuracy", "balanced_accuracy": "mean per-class recall",
        "f1_macro": "macro-averaged F1", "majority_class_accuracy": "accuracy of always guessing the majority",
        "ece": "expected calibration error", "brier": "Brier score", "roc_auc": "ROC AUC (binary)",
        "n_samples": "held-out rows", "n_classes": "classes", "r2": "R² (regression)",
        "mae": "mean absolute error (regression)", "rmse": "root mean squared error (regression)",
    },
    "artifact": {
        "files": "files scanned", "files_clean": "clean files", "files_suspicious": "suspicious files",
        "files_dangerous": "dangerous files", "files_malformed": "malformed files",
        "files_inconclusive": "files the scan could not decide", "files_blocking": "dangerous + malformed + "
        "inconclusive files", "findings": "findings", "max_severity_rank": "rank of the worst finding (-1: none)",
    },
    "robustness": {
        "threat_model": "the threat model, one line (text)", "clean_accuracy": "accuracy on the attacked rows",
        "robust_accuracy": "accuracy under the strongest attack at the reference eps",
        **{f"robust_accuracy_{a}": f"accuracy under {a} at the reference eps" for a in _ROBUSTNESS_ATTACKS},
        "robust_accuracy_curve_mean": "mean robust accuracy over the eps grid", "reference_eps": "reference eps",
        "attack_success_rate": "share of correct predictions flipped", "median_perturbation": "median "
        "perturbation of a successful attack", "queries_total": "model queries used", "samples": "rows attacked",
        "detector_auc": "adversarial-input detector ROC AUC", "detector_tpr_at_5pct_fpr": "detector TPR at 5% FPR",
    },
    "privacy": {
        "auc": "membership-inference ROC AUC (strongest attack)", "auc_lower": "lower confidence bound",
        "auc_upper": "upper confidence bound", "advantage": "membership advantage (max TPR - FPR)",
        "best_attack": "strongest attack (text)", "n_members": "member rows", "n_nonmembers": "non-member rows",
        "n_shadows": "shadow models", "fpr_resolution": "smallest non-zero FPR the sample resolves",
        "bootstrap_replicates": "bootstrap replicates", "confidence": "confidence level of the intervals",
        **{f"{key}{part}": f"TPR at {label} FPR: {what}"
           for key, label in (("tpr_at_1pct_fpr", "1%"), ("tpr_at_0_1pct_fpr", "0.1%"))
           for part, what in (("", "estimate"), ("_resolvable", "whether the sample resolves it"),
                              ("_lower", "lower confidence bound"), ("_upper", "upper confidence bound"),
                              ("_graded", "whether it was graded"),
                              ("_nonmembers_to_resolve", "non-members needed to resolve it"),
                              ("_nonmembers_to_grade", "non-members needed to grade it"))},
        **{f"{a}_{m}": f"{m} of the {a} attack" for a in _MEMBERSHIP_ATTACKS
           for m in ("auc", "advantage", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr")},
        **{f"pii_{d}_{m}": f"{m} with personal data in the {d}" for d in ("data", "train")
           for m in ("cells", "columns")},
    },
    "fairness": {
        **{f"{view}{m}": f"{what}" for m in (
            "demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
            "equalized_odds_ratio", "equal_opportunity_difference", "equal_opportunity_ratio",
            "predictive_parity_difference", "accuracy_difference", "false_negative_rate_difference",
            "calibration_gap_difference", "mean_prediction_difference", "mean_prediction_ratio",
            "mean_absolute_error_difference", "mean_absolute_error_ratio", "root_mean_squared_error_difference",
            "standardized_mean_prediction_difference")
           for view, what in (("", "worst over the sensitive attributes"), ("{attribute}.", "for one attribute"))},
        "groups_total": "groups compared", "groups_too_small": "groups too small to compare",
        "{attribute}.proxy_max_auc": "best single-feature AUC predicting the attribute",
        "{attribute}.proxy_combined_auc": "AUC of all features together predicting the attribute",
    },
    "theft": {
        "fidelity_at_max_budget": "surrogate agreement at the largest budget",
        "accuracy_at_max_budget": "surrogate accuracy at the largest budget", "victim_accuracy": "model accuracy",
        "fidelity_baseline": "agreement of a constant guess", "max_budget": "largest query budget",
        "queries_used": "queries used", "best_strategy": "best query strategy (text)",
        "exposure": "assumed deployment exposure (text)", "api_outputs": "what the API returns (text)",
        "allowed_budget": "queries the deployment allows", "fidelity_within_allowed_budget": "agreement within it",
        **{f"fidelity_{o}_at_max_budget": f"agreement at the largest budget with {o} outputs"
           for o in _API_OUTPUTS},
        "budget_to_high_fidelity": "queries to reach the high-fidelity threshold",
        "watermark_p_value": "watermark test p-value", "watermark_agreement": "trigger agreement",
        "watermark_owned": "ownership verified", "fingerprint_score": "fingerprint match score",
        "fingerprint_match": "fingerprint says derived",
    },
}

#: The policy thresholds each built-in check reads (keys without the ``<check>.`` prefix), for checks whose
#: class does not declare :attr:`Check.declared_thresholds` itself.
BUILTIN_THRESHOLDS: dict[str, dict[str, str]] = {
    "private_inference": {},
    "baseline": {"ece.low": "calibration error graded low above this"},
    "artifact": {},
    "robustness": {f"robust_accuracy.{lvl}": f"robust accuracy below this is {lvl}"
                   for lvl in ("high", "medium", "low")},
    "privacy": {f"{m}.{lvl}": f"{m} at or above this is {lvl}" for m in ("tpr_at_1pct_fpr", "auc")
                for lvl in ("high", "medium", "low")},
    "fairness": {f"{m}.{lvl}": f"{m} grading: {lvl}" for m in (
        "demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
        "equal_opportunity_difference", "standardized_mean_prediction_difference", "mean_absolute_error_ratio",
        "proxy_auc") for lvl in ("medium", "high")},
    "theft": {f"fidelity.{lvl}": f"extraction fidelity at or above this is {lvl}" for lvl in ("high", "medium")},
}

_load_errors: dict[str, str] = {}


def _import(target: str) -> type[Check]:
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Check)):
        raise TypeError(f"{target} is not a modelshield Check subclass")
    return cls


def available_checks() -> dict[str, type[Check]]:
    """All checks that load, built-ins first. A plug-in that fails to import is recorded in
    :func:`load_errors` (and shown in reports), never fatal."""
    found: dict[str, type[Check]] = {}
    _load_errors.clear()
    for name, target in BUILTIN_CHECKS.items():
        try:
            found[name] = _import(target)
        except Exception as exc:  # a broken plug-in must not take the audit down
            _load_errors[name] = f"{type(exc).__name__}: {exc}"
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Check)):
                raise TypeError(f"{ep.value} is not a modelshield Check subclass")
            found[ep.name] = cls
        except Exception as exc:
            _load_errors[ep.name] = f"{type(exc).__name__}: {exc}"
    return found


def _is_builtin(name: str, cls: type[Check]) -> bool:
    return BUILTIN_CHECKS.get(name) == f"{cls.__module__}:{cls.__qualname__}"


def declared_metrics(name: str, cls: type[Check]) -> Mapping[str, str] | None:
    """The metric names ``cls`` (registered as ``name``) declares, ``{placeholder}`` patterns allowed:
    the class's own :attr:`Check.declared_metrics`, else the built-in table; ``None`` when undeclared."""
    if cls.declared_metrics is not None:
        return cls.declared_metrics
    return BUILTIN_METRICS.get(name) if _is_builtin(name, cls) else None


def declared_thresholds(name: str, cls: type[Check]) -> Mapping[str, str] | None:
    """The threshold keys (without ``<check>.``) ``cls`` declares; as :func:`declared_metrics`."""
    if cls.declared_thresholds is not None:
        return cls.declared_thresholds
    return BUILTIN_THRESHOLDS.get(name) if _is_builtin(name, cls) else None


def declarations(checks: Mapping[str, type[Check]] | None = None) -> tuple[
        dict[str, Mapping[str, str] | None], dict[str, Mapping[str, str] | None]]:
    """``(metrics, thresholds)``: check name -> declared names (``None``: undeclared) for ``checks``
    (default: :func:`available_checks`); what :meth:`modelshield.policy.Policy.check_declared` takes."""
    found = available_checks() if checks is None else checks
    return ({n: declared_metrics(n, c) for n, c in found.items()},
            {n: declared_thresholds(n, c) for n, c in found.items()})


def check_needs(cls: type[Check]) -> list[str]:
    """What a check needs to run, for a listing: the model's capabilities (sorted), then ``data``,
    ``labels``, ``train`` and ``sensitive`` as the class declares them."""
    needs = [c.value for c in sorted(cls.requires, key=lambda c: c.value)]
    return needs + [what for what, flag in (("data", cls.needs_data), ("labels", cls.needs_labels),
                                            ("train", cls.needs_train), ("sensitive", cls.needs_sensitive)) if flag]


def load_errors() -> dict[str, str]:
    """Checks that failed to load in the last :func:`available_checks` call, with the reason."""
    return dict(_load_errors)


def get_check(name: str) -> type[Check]:
    checks = available_checks()
    if name not in checks:
        raise UserError(f"unknown check {name!r}; available: {', '.join(checks)}")
    return checks[name]
