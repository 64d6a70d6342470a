"""Policy names are validated against what the checks declare (issue 15 D.3): a misspelled limit metric or
threshold key is one line, exit 2, with a did-you-mean; every declared name is accepted; a plug-in check that
declares nothing gives a warning, not a failure."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import ClassVar

import pytest

from modelshield.checks.base import AuditContext, Check
from modelshield.checks.registry import (
    BUILTIN_CHECKS,
    BUILTIN_METRICS,
    BUILTIN_THRESHOLDS,
    available_checks,
    declarations,
    declared_metrics,
    declared_thresholds,
)
from modelshield.cli import main
from modelshield.errors import PolicyError
from modelshield.findings import CheckResult
from modelshield.policy import Policy, did_you_mean, matches_declared
from modelshield.runner import audit, validate_policy

INSTANCE = {"{attribute}": "sex"}


def _instance(pattern: str) -> str:
    for k, v in INSTANCE.items():
        pattern = pattern.replace(k, v)
    return pattern


def _typos(name: str, rng: random.Random, n: int = 3) -> list[str]:
    """Misspellings of ``name`` a user makes: a letter left out, doubled, or two letters swapped."""
    out: set[str] = set()
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    while len(out) < n:
        i = rng.choice(letters[1:-1] or letters)
        kind = rng.randrange(3)
        if kind == 0:
            t = name[:i] + name[i + 1:]
        elif kind == 1:
            t = name[:i] + name[i] + name[i:]
        else:
            j = min(i + 1, len(name) - 1)
            t = name[:i] + name[j] + name[i] + name[j + 1:] if name[i] != name[j] else name[:i] + "x" + name[i:]
        out.add(t)
    return sorted(out)


METRIC_CASES = [(check, _instance(m)) for check, ms in BUILTIN_METRICS.items() for m in ms]
THRESHOLD_CASES = [(check, t) for check, ts in BUILTIN_THRESHOLDS.items() for t in ts]


@pytest.mark.parametrize(("check", "metric"), METRIC_CASES, ids=[f"{c}.{m}" for c, m in METRIC_CASES])
def test_every_declared_metric_is_accepted_and_its_typos_are_refused(check, metric):
    metrics, _ = declarations()
    ok = Policy.from_mapping({"limits": [f"{check}.{metric} >= 0"]}, source="p.yaml")
    assert validate_policy(ok) == []
    rng = random.Random(f"{check}.{metric}")
    for typo in _typos(metric, rng):
        if matches_declared(typo, metrics[check]):  # e.g. a typo inside an attribute name: still a valid name
            continue
        bad = Policy.from_mapping({"limits": [f"{check}.{typo} >= 0"]}, source="p.yaml")
        with pytest.raises(PolicyError) as exc:
            validate_policy(bad)
        msg = str(exc.value)
        assert "\n" not in msg and "p.yaml" in msg and repr(typo) in msg
        hint = msg.split("did you mean")[1].split("?")[0] if "did you mean" in msg else ""
        # a typo that moves a dot changes the (user-named) attribute segment: the metric part must be right
        wanted = repr(metric) if "." not in metric else f".{metric.rsplit('.', 1)[1]}'"
        assert wanted in hint, msg


@pytest.mark.parametrize(("check", "key"), THRESHOLD_CASES, ids=[f"{c}.{k}" for c, k in THRESHOLD_CASES])
def test_every_declared_threshold_is_accepted_and_its_typos_are_refused(check, key):
    ok = Policy.from_mapping({"thresholds": {f"{check}.{key}": 0.5}}, source="p.yaml")
    assert validate_policy(ok) == []
    rng = random.Random(f"{check}.{key}")
    for typo in _typos(key, rng):
        if typo in BUILTIN_THRESHOLDS[check]:
            continue
        bad = Policy.from_mapping({"thresholds": {f"{check}.{typo}": 0.5}}, source="p.yaml")
        with pytest.raises(PolicyError) as exc:
            validate_policy(bad)
        msg = str(exc.value)
        assert "\n" not in msg and f"unknown threshold '{check}.{typo}'" in msg
        assert f"'{check}.{key}'" in msg.split("did you mean")[1].split("?")[0], msg


@pytest.mark.parametrize("key", ["fairnes.demographic_parity_difference.high", "robustnes.robust_accuracy.high",
                                 "privcy.auc.high", "theft", "nosuchcheck.x.high"])
def test_a_threshold_naming_an_unknown_check_is_refused(key):
    with pytest.raises(PolicyError, match=r"unknown check|unknown threshold"):
        validate_policy(Policy.from_mapping({"thresholds": {key: 0.1}}))


@pytest.mark.parametrize(("text", "suggestion"), [
    ("robustness.robust_acuracy >= 0.5", "robust_accuracy"),
    ("fairness.demographic_parity_diference <= 0.1", "demographic_parity_difference"),
    ("fairness.sex.demographic_parity_diference <= 0.1", "sex.demographic_parity_difference"),
    ("privacy.tpr_at_1pct_fp <= 0.05", "tpr_at_1pct_fpr"),
    ("baseline.acuracy >= 0.8", "accuracy"),
    ("theft.fidelity_at_max_budgt <= 0.9", "fidelity_at_max_budget"),
])
def test_issue_examples_name_the_right_spelling(text, suggestion):
    with pytest.raises(PolicyError) as exc:
        validate_policy(Policy.from_mapping({"limits": [text]}))
    assert f"did you mean '{suggestion}'" in str(exc.value)


def test_a_misspelled_check_in_a_limit_gets_a_did_you_mean():
    with pytest.raises(PolicyError, match=r"unknown check 'robustnes' \(did you mean 'robustness'\?\)"):
        validate_policy(Policy.from_mapping({"limits": ["robustnes.robust_accuracy >= 0.5"]}))


def test_did_you_mean_is_empty_when_nothing_is_close():
    assert did_you_mean("zzzz", ["accuracy", "ece"]) == ""


# --- plug-ins: declared names are checked; undeclared ones warn, never fail ----------------------------------

@dataclass(kw_only=True)
class _Declared(Check):
    name: ClassVar[str] = "declared_plugin"
    declared_metrics: ClassVar[dict[str, str]] = {"score": "a score", "{feature}.drift": "per-feature drift"}
    declared_thresholds: ClassVar[dict[str, str]] = {"score.high": "grading"}
    needs_data: ClassVar[bool] = False
    needs_model: ClassVar[bool] = False

    def _run(self, ctx: AuditContext) -> CheckResult:
        return self.result(metrics={"score": 1.0})


@dataclass(kw_only=True)
class _Undeclared(Check):
    name: ClassVar[str] = "old_plugin"
    needs_data: ClassVar[bool] = False
    needs_model: ClassVar[bool] = False

    def _run(self, ctx: AuditContext) -> CheckResult:
        return self.result(metrics={"anything": 1.0})


@pytest.fixture
def plugins(monkeypatch):
    found = {**available_checks(), "declared_plugin": _Declared, "old_plugin": _Undeclared}
    monkeypatch.setattr("modelshield.runner.available_checks", lambda: dict(found))
    return found


def test_a_plugin_that_declares_its_metrics_is_validated(plugins):
    assert validate_policy(Policy.from_mapping({"limits": ["declared_plugin.score >= 0",
                                                           "declared_plugin.age.drift <= 1"],
                                                "thresholds": {"declared_plugin.score.high": 1}})) == []
    with pytest.raises(PolicyError, match="did you mean 'score'"):
        validate_policy(Policy.from_mapping({"limits": ["declared_plugin.scor >= 0"]}))
    with pytest.raises(PolicyError, match=r"did you mean 'declared_plugin\.score\.high'"):
        validate_policy(Policy.from_mapping({"thresholds": {"declared_plugin.score.hgh": 1}}))


def test_a_plugin_without_declarations_warns_and_the_audit_runs(plugins):
    pol = Policy.from_mapping({"limits": ["old_plugin.anything >= 0", "old_plugin.anythng >= 0"],
                               "thresholds": {"old_plugin.x.high": 1}})
    warnings = validate_policy(pol)
    assert len(warnings) == 3 and all("does not declare" in w for w in warnings)
    report = audit(None, None, checks=["old_plugin"], policy=pol)
    gate = report.runs[0].gate
    assert any("does not declare its metrics" in w for w in gate.warnings)
    # the runtime check still catches the typo once the check has run
    assert any("unknown metric old_plugin.anythng (did you mean 'anything'?)" in r for r in gate.reasons)


# --- the command line: policy validate and audit fail before any work ----------------------------------------

TYPO_POLICIES = [
    ("thresholds:\n  fairness.demographic_parity_diference.high: 0.2\n",
     "did you mean 'fairness.demographic_parity_difference.high'"),
    ("limits:\n  - robustness.robust_acuracy >= 0.5\n", "did you mean 'robust_accuracy'"),
    ("limits:\n  - privacy.auc_lowr <= 0.6\n", "did you mean 'auc_lower'"),
    ("thresholds:\n  theft.fidelity.hihg: 0.8\n", "did you mean 'theft.fidelity.high'"),
]


@pytest.mark.parametrize(("text", "hint"), TYPO_POLICIES)
def test_policy_validate_refuses_typos_with_one_line(tmp_path, capsys, text, hint):
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    rc = main(["policy", "validate", str(p)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and hint in err[0], err


@pytest.mark.parametrize(("text", "hint"), TYPO_POLICIES[:2])
def test_audit_refuses_a_policy_typo_before_loading_anything(tmp_path, capsys, text, hint):
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    rc = main(["audit", str(tmp_path / "missing-model.joblib"), "--policy", str(p), "-o", str(tmp_path / "r.html"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and hint in err and "missing-model" not in err  # the policy is read first
    assert not (tmp_path / "r.html").exists()


def test_policy_validate_accepts_the_readme_policy(tmp_path, capsys):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"### Policy \(the CI gate\)\s*```yaml\n(.*?)```", readme, re.S)
    assert block
    p = tmp_path / "readme-policy.yaml"
    p.write_text(block.group(1))
    rc = main(["policy", "validate", str(p)])
    out = capsys.readouterr()
    assert rc == 0, out.err


def test_checks_metrics_lists_every_name_and_each_one_validates(tmp_path, capsys):
    rc = main(["checks", "--metrics"])
    out = capsys.readouterr().out
    assert rc == 0
    limits = [_instance(ln.split()[1]) for ln in out.splitlines() if ln.strip().startswith("limit ")]
    thresholds = [ln.split()[1] for ln in out.splitlines() if ln.strip().startswith("threshold ")]
    builtin = {n: c for n, c in available_checks().items() if n in BUILTIN_CHECKS}
    # a built-in check's names come from its class when it declares them, else from the registry's tables
    assert len(limits) == sum(len(declared_metrics(n, c) or {}) for n, c in builtin.items())
    assert len(thresholds) == sum(len(declared_thresholds(n, c) or {}) for n, c in builtin.items())
    p = tmp_path / "all.yaml"
    p.write_text("limits:\n" + "".join(f"  - {m} >= 0\n" for m in limits)
                 + "thresholds:\n" + "".join(f"  {k}: 0.5\n" for k in thresholds))
    rc = main(["policy", "validate", str(p)])
    captured = capsys.readouterr()
    assert rc == 0 and not captured.err, captured.err
