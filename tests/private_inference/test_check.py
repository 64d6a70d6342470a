"""The audit section: feasible or not, parameters, and (measure) encrypted accuracy vs plaintext."""

from __future__ import annotations

import numpy as np
import pytest

import modelshield as ms
from modelshield.checks.base import AuditContext
from modelshield.checks.private_inference import PrivateInferenceCheck
from modelshield.errors import OptionError
from modelshield.findings import CheckStatus


def _ctx(model, X, y):
    return AuditContext(model=ms.load_model(model), data=ms.Dataset(X=X, y=y), seed=0, quick=True)


def test_plan_only_for_lr(sk_logreg, breast_cancer):
    _, Xte, _, yte = breast_cancer
    r = PrivateInferenceCheck().run(_ctx(sk_logreg, Xte, yte))
    assert r.status == CheckStatus.PASSED
    assert r.metrics["feasible"] == 1 and r.metrics["security_bits"] == 128
    assert r.metrics["coeff_modulus_bits"] <= {4096: 109, 8192: 218}[r.metrics["poly_modulus_degree"]]
    assert "agreement" not in r.metrics  # nothing encrypted unless asked


def test_unsupported_model_is_a_finding(breast_cancer):
    from sklearn.ensemble import RandomForestClassifier

    Xtr, Xte, ytr, yte = breast_cancer
    rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(Xtr, ytr)
    r = PrivateInferenceCheck().run(_ctx(rf, Xte, yte))
    assert r.metrics["feasible"] == 0
    assert r.findings and r.findings[0].rule_id == "private_inference.infeasible"
    assert "RandomForestClassifier" in r.findings[0].detail


def test_measure_equals_plaintext(sk_logreg, breast_cancer):
    pytest.importorskip("tenseal")
    _, Xte, _, yte = breast_cancer
    r = PrivateInferenceCheck(measure=True, max_samples=40).run(_ctx(sk_logreg, Xte, yte))
    assert r.metrics["agreement"] == 1.0
    assert r.metrics["accuracy"] == r.metrics["plaintext_accuracy"]
    assert r.metrics["ms_per_sample"] > 0


@pytest.mark.parametrize("opts", [{"max_samples": 0}, {"degree": 7}, {"degree": 0}])
def test_bad_options(opts):
    with pytest.raises(OptionError):
        PrivateInferenceCheck.from_options(opts)


def test_relu_mlp_reports_approximation(torch_mlp, breast_cancer):
    _, Xte, _, yte = breast_cancer
    r = PrivateInferenceCheck(degree=1).run(_ctx(torch_mlp, Xte, yte))
    assert r.metrics["feasible"] == 1
    # a degree-1 stand-in for ReLU is linear: it cannot keep every prediction of a ReLU network
    assert r.metrics["approximation_agreement"] < 1.0
    assert any(f.rule_id == "private_inference.approximation" for f in r.findings)
    assert np.isfinite(r.metrics["estimated_ms_per_sample"])
