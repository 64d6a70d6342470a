"""Issue 15 D.5: the extraction finding is graded against what the deployment exposes, and says so.

Families: several victims x several declared exposures (and budgets); the grade must follow the
declared threat model, the default must never make a model FAIL the gate, and the finding text
must state the threat model.
"""

from __future__ import annotations

import pytest

from modelshield.checks.theft import EXPOSURES, TheftCheck
from modelshield.errors import UserError
from modelshield.findings import Severity
from modelshield.policy import Policy
from modelshield.runner import audit

FAST = {"budgets": [60, 300], "strategies": ["knockoff"], "outputs": ["probabilities", "top1"]}


def _finding(model, heldout, *, policy=None, **opts):
    report = audit(model, heldout, checks=["theft"], options={"theft": {**FAST, **opts}}, quick=True,
                   seed=0, policy=policy)
    (r,) = [r for r in report.runs[0].results if r.check == "theft"]
    (f,) = [f for f in r.findings if f.rule_id == "theft.extraction.fidelity"]
    return report, r, f


@pytest.fixture(params=["cancer_mlp", "adult_hgb"])
def victim(request):
    model, heldout, *_ = request.getfixturevalue(request.param)
    return model, heldout


def test_default_states_its_threat_model_and_never_fails_the_gate(victim):
    model, heldout = victim
    # a policy that calls any copy high-fidelity: under the old grading every model got HIGH
    eager = Policy.from_mapping({"thresholds": {"theft.fidelity.high": 0.5, "theft.fidelity.medium": 0.5}})
    report, r, f = _finding(model, heldout, policy=eager)
    assert r.metrics["exposure"] == "unspecified"
    assert f.severity <= Severity.MEDIUM
    assert "exposure not declared" in f.detail and "unlimited black-box" in f.detail
    assert "theft.exposure" in f.detail
    assert f.evidence["threat_model"] and "unlimited" in f.title
    assert not [g for g in report.runs[0].results[0].findings if g.severity >= Severity.HIGH]


@pytest.mark.parametrize("exposure", ["public-unlimited", "internal"])
def test_declared_exposure_drives_the_grade(victim, exposure):
    model, heldout = victim
    eager = Policy.from_mapping({"thresholds": {"theft.fidelity.high": 0.5, "theft.fidelity.medium": 0.5}})
    _, r, f = _finding(model, heldout, policy=eager, exposure=exposure)
    assert exposure in f.evidence["threat_model"] and exposure in f.detail
    fid = r.metrics["fidelity_within_allowed_budget"]
    baseline = r.metrics["fidelity_baseline"]
    if exposure == "public-unlimited":
        assert (f.severity is Severity.HIGH) == (fid >= 0.5 and fid > baseline + 0.01)
    else:
        assert f.severity <= Severity.LOW


@pytest.mark.parametrize("query_budget", [5, 20, 300])
def test_rate_limited_grades_at_the_allowed_budget(cancer_mlp, query_budget):
    model, heldout = cancer_mlp
    # thresholds placed so that the grade depends on the budget: high = fidelity reached at 300 queries
    _, r0, _ = _finding(model, heldout, exposure="public-unlimited")
    top = r0.metrics["fidelity_at_max_budget"]
    policy = Policy.from_mapping({"thresholds": {"theft.fidelity.high": top, "theft.fidelity.medium": top}})
    _, r, f = _finding(model, heldout, policy=policy, exposure="rate-limited", query_budget=query_budget)
    assert r.metrics["allowed_budget"] == query_budget  # simulated at exactly the declared budget
    assert any(row["queries"] == query_budget for row in r.tables["extraction"])
    fid = r.metrics["fidelity_within_allowed_budget"]
    assert f"{query_budget:,} queries" in f.evidence["threat_model"]
    assert (f.severity is Severity.HIGH) == (fid >= top)
    if query_budget == 5:
        assert f.severity < Severity.HIGH  # five rows cannot teach the surrogate the model


def test_api_outputs_selects_the_served_curve(cancer_mlp):
    model, heldout = cancer_mlp
    _, r, f = _finding(model, heldout, exposure="public-unlimited", api_outputs="top1")
    assert r.metrics["api_outputs"] == "top1" and "top-1 label only" in f.detail
    top1 = max(row["fidelity"] for row in r.tables["extraction"]
               if row["output"] == "top1" and row["queries"] == 300)
    assert r.metrics["fidelity_within_allowed_budget"] == pytest.approx(top1, abs=1e-3)


@pytest.mark.parametrize("opts,match", [
    ({"exposure": "public"}, "not one of"),
    ({"exposure": "rate-limited"}, "needs theft.query_budget"),
    ({"exposure": "public-unlimited", "query_budget": 100}, "rate-limited only"),
    ({"exposure": "rate-limited", "query_budget": 0}, "positive"),
    ({"api_outputs": "logits"}, "not one of"),
])
def test_bad_exposure_options_are_user_errors(opts, match):
    with pytest.raises(UserError, match=match):
        TheftCheck.from_options(opts)


def test_exposures_are_documented():
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "theft.md").read_text()
    for e in EXPOSURES:
        assert e in doc


@pytest.mark.parametrize("limits,outputs,expect_outputs", [
    ({"daily_rows": 3}, {}, "probabilities"),
    ({"daily_rows": 10}, {"probabilities": False}, "top1"),
    ({"daily_rows": 2000, "rows_burst": 10000}, {"decimals": 1}, "rounded"),
])
def test_serve_config_gives_the_budget_and_outputs(tmp_path, cancer_mlp, limits, outputs, expect_outputs):
    import yaml

    model, heldout = cancer_mlp
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(yaml.safe_dump({"limits": limits, "outputs": outputs}))
    _, r, f = _finding(model, heldout, serve_config=str(cfg), attack_days=2, attacker_keys=1)
    budget = limits["daily_rows"] * 2
    assert r.metrics["exposure"] == "rate-limited" and r.metrics["api_outputs"] == expect_outputs
    assert str(cfg) in f.evidence["threat_model"] and f"{budget:,} queries" in f.evidence["threat_model"]
    if budget < 300:
        assert r.metrics["allowed_budget"] == budget
    else:  # beyond the largest simulated budget: graded there, and the finding says the copy may be better
        assert r.metrics["allowed_budget"] == 300 and "may be better than measured" in f.detail
    fid, base = r.metrics["fidelity_within_allowed_budget"], r.metrics["fidelity_baseline"]
    assert (f.severity is Severity.HIGH) == (fid >= 0.9 and r.metrics["fidelity_at_max_budget"] > base + 0.01)


def test_serve_config_conflicts_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="implies a rate-limited"):
        TheftCheck.from_options({"serve_config": "x.yaml", "exposure": "internal"})
    with pytest.raises(UserError, match="at least 1"):
        TheftCheck.from_options({"serve_config": "x.yaml", "attacker_keys": 0})
