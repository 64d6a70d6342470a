from __future__ import annotations

import pytest

from modelshield.errors import InputNotFoundError, PolicyError
from modelshield.findings import CheckResult, CheckStatus, Finding, Severity
from modelshield.policy import DEFAULT_POLICY_YAML, Limit, Policy, load_policy


def _results(sev: str | None = None, acc: float = 0.9, error: bool = False):
    r = CheckResult(check="robustness", metrics={"robust_accuracy": acc})
    if sev:
        r.findings.append(Finding(check="robustness", severity=sev, title="t"))
    out = [r]
    if error:
        out.append(CheckResult(check="privacy", status=CheckStatus.ERROR,
                               findings=[Finding(check="privacy", severity="high", rule_id="privacy.error",
                                                 title="crashed")]))
    return out


def test_default_policy_is_the_documented_yaml():
    p = Policy.default()
    assert p.fail_on is Severity.HIGH and p.errors_fail and p.limits == ()
    assert "fail_on: high" in DEFAULT_POLICY_YAML


@pytest.mark.parametrize(("sev", "passed"), [(None, True), ("low", True), ("medium", True), ("high", False),
                                              ("critical", False)])
def test_severity_gate(sev, passed):
    assert Policy.default().evaluate(_results(sev)).passed is passed


def test_metric_limits_pass_and_fail(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("fail_on: critical\nlimits:\n  - robustness.robust_accuracy >= 0.5\n")
    p = load_policy(f)
    ok = p.evaluate(_results(acc=0.7))
    bad = p.evaluate(_results(acc=0.3))
    assert ok.passed and ok.limits[0].passed
    assert not bad.passed and "robustness.robust_accuracy >= 0.5" in bad.reasons[0]


def test_missing_metric_warns_or_fails():
    warn = Policy.from_mapping({"limits": ["fairness.demographic_parity_difference <= 0.1"]})
    g = warn.evaluate(_results())
    assert g.passed and g.warnings and g.limits[0].passed is None
    strict = Policy.from_mapping({"limits": ["fairness.x <= 0.1"], "missing_metrics": "fail"})
    assert not strict.evaluate(_results()).passed


def test_errored_check_fails_closed_unless_disabled():
    assert not Policy.default().evaluate(_results(error=True)).passed
    assert Policy.from_mapping({"errors_fail": False}).evaluate(_results(error=True)).passed


@pytest.mark.parametrize("text", [
    "fail_on: severe\n", "limits: robustness.x >= 1\n", "limits: ['robustness accuracy high']\n",
    "unknown_key: 1\n", "version: 2\n", "thresholds: {a: high}\n", "- just\n- a list\n", "fail_on: [unclosed\n",
])
def test_bad_policy_files_raise_policy_error(tmp_path, text):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(PolicyError):
        load_policy(f)


def test_missing_policy_file():
    with pytest.raises(InputNotFoundError):
        load_policy("/nonexistent/policy.yaml")


def test_limit_parse_round_trip():
    lim = Limit.parse("privacy.tpr_at_1pct_fpr<=0.05")
    assert (lim.check, lim.metric, lim.op, lim.value) == ("privacy", "tpr_at_1pct_fpr", "<=", 0.05)
    assert str(lim) == "privacy.tpr_at_1pct_fpr <= 0.05"


def test_unknown_check_and_metric_names_cannot_silently_disable_the_gate(sk_logreg, breast_cancer):
    import modelshield as ms

    _, Xte, _, yte = breast_cancer
    ds = ms.Dataset(X=Xte, y=yte)
    typo_check = Policy.from_mapping({"limits": ["baselin.accuracy >= 0.5"]})
    with pytest.raises(PolicyError, match="unknown check 'baselin'"):
        ms.audit(sk_logreg, ds, checks=["baseline"], policy=typo_check)
    typo_metric = Policy.from_mapping({"limits": ["baseline.acuracy >= 0.5"]})
    # refused before any check runs (it used to be found only after the audit, as a gate failure)
    with pytest.raises(PolicyError, match=r"no metric 'acuracy' \(did you mean 'accuracy'\?\)"):
        ms.audit(sk_logreg, ds, checks=["baseline"], policy=typo_metric)
