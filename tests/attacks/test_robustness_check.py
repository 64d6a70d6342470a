"""The ``robustness`` audit check, run through the audit runner as the demo does."""

from __future__ import annotations

import time

import numpy as np
import pytest

from modelshield.checks.registry import get_check
from modelshield.checks.robustness import RobustnessCheck
from modelshield.errors import UserError
from modelshield.findings import CheckStatus, Severity
from modelshield.policy import Policy
from modelshield.runner import audit


def _run(model, data, **kw):
    rep = audit(model, data, checks=["robustness"], **kw)
    return rep, rep.runs[0].results[0]


def test_registered_under_its_name():
    assert get_check("robustness") is RobustnessCheck


def test_white_box_quick_run_on_the_mlp(mlp, cancer_test):
    ds, _, _ = cancer_test
    t0 = time.perf_counter()
    _, r = _run(mlp, ds, quick=True, seed=0)
    assert time.perf_counter() - t0 < 8
    assert r.status in (CheckStatus.FINDINGS, CheckStatus.PASSED), r.summary
    m = r.metrics
    for key in ("clean_accuracy", "robust_accuracy", "attack_success_rate", "median_perturbation",
                "queries_total", "reference_eps", "robust_accuracy_fgsm", "robust_accuracy_pgd",
                "robust_accuracy_apgd", "detector_auc"):
        assert key in m, key
    assert m["robust_accuracy"] <= min(m["robust_accuracy_fgsm"], m["robust_accuracy_pgd"], m["robust_accuracy_apgd"])
    assert m["robust_accuracy"] < m["clean_accuracy"]
    fig = r.figures[0]
    assert fig.kind == "line" and {s.name for s in fig.series} == {"fgsm", "pgd", "apgd", "worst case"}
    worst = next(s for s in fig.series if s.name == "worst case")
    assert list(worst.y) == sorted(worst.y, reverse=True)  # robust accuracy falls with eps
    assert list(worst.x) == sorted(worst.x)
    assert len(r.tables["attacks"]) == 3 * len(worst.x)
    assert 0.5 < m["detector_auc"] <= 1.0
    r.to_dict()  # JSON-able


def test_black_box_quick_run_on_adult_hgb(adult, adult_hgb):
    _, te = adult
    t0 = time.perf_counter()
    _, r = _run(adult_hgb, te, quick=True, seed=0)
    assert time.perf_counter() - t0 < 8
    assert r.status in (CheckStatus.FINDINGS, CheckStatus.PASSED), r.summary
    assert {s.name for s in r.figures[0].series} == {"square", "hsj", "worst case"}
    assert r.metrics["queries_total"] > 0
    assert r.metrics["robust_accuracy"] <= r.metrics["clean_accuracy"]


def test_options_override_grid_and_attacks(mlp, cancer_test):
    ds, _, _ = cancer_test
    _, r = _run(mlp, ds, quick=True, options={"robustness": {"eps": [0.1, 0.5], "attacks": ["pgd"],
                                                            "max_samples": 40, "detector": False}})
    assert r.params["eps_grid"] == [0.1, 0.5]
    assert r.metrics["samples"] == 40 and "detector_auc" not in r.metrics
    assert [s.name for s in r.figures[0].series] == ["pgd"]
    assert r.metrics["reference_eps"] == 0.5


def test_policy_thresholds_grade_the_finding(mlp, cancer_test):
    ds, _, _ = cancer_test
    opts = {"robustness": {"eps": [1.0], "attacks": ["pgd"], "max_samples": 60, "detector": False}}
    strict = Policy.from_mapping({"thresholds": {"robustness.robust_accuracy.high": 0.99},
                                  "limits": ["robustness.robust_accuracy >= 0.9"]})
    rep, r = _run(mlp, ds, quick=True, options=opts, policy=strict)
    assert r.findings and r.findings[0].severity is Severity.HIGH
    assert not rep.passed
    lax = Policy.from_mapping({"thresholds": {"robustness.robust_accuracy.high": 0.0,
                                              "robustness.robust_accuracy.medium": 0.0,
                                              "robustness.robust_accuracy.low": 0.0}})
    _, r2 = _run(mlp, ds, quick=True, options=opts, policy=lax)
    # no graded finding; the only one left says the bounds were inferred from the evaluation data
    assert [(f.rule_id, f.severity) for f in r2.findings] == [("robustness.threat-model-inferred", Severity.INFO)]
    assert r2.metrics["robust_accuracy"] == r.metrics["robust_accuracy"]  # deterministic under the seed


def test_white_box_attack_requested_on_black_box_model_is_reported(forest, cancer_test):
    ds, _, _ = cancer_test
    _, r = _run(forest, ds, quick=True, options={"robustness": {"attacks": ["pgd"]}})
    assert r.findings[0].rule_id == "robustness.not-run"
    assert "white-box" in r.summary


def test_bad_options_are_clear_errors(mlp, cancer_test):
    ds, _, _ = cancer_test
    with pytest.raises(UserError, match="unknown option"):
        audit(mlp, ds, checks=["robustness"], options={"robustness": {"epsilon": [0.1]}})
    with pytest.raises(UserError, match="unknown attack"):  # a bad value fails when the check is built
        audit(mlp, ds, checks=["robustness"], options={"robustness": {"attacks": ["nope"]}})


def test_skips_without_labels(mlp, cancer_test):
    from modelshield.data.dataset import Dataset

    _, X, _ = cancer_test
    _, r = _run(mlp, Dataset(X=X))
    assert r.status is CheckStatus.SKIPPED and "labels" in r.skip_reason


def test_image_model_uses_pixel_units(digits_cnn):
    from modelshield.data.dataset import Dataset

    model, X, y = digits_cnn
    _, r = _run(model, Dataset(X=X, y=y), quick=True,
                options={"robustness": {"attacks": ["pgd"], "max_samples": 50, "detector": False}})
    assert r.params["threat"]["kind"] == "image"
    assert r.params["eps_grid"] == [0.01, 0.02, 0.05, 0.1, 0.2]
    assert np.isfinite(r.metrics["robust_accuracy"])
