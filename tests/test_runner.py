"""The audit runner: selection, skipping, error isolation, seeding, gate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

import modelshield as ms
from modelshield.checks.base import AuditContext, Check
from modelshield.errors import DataError, UserError
from modelshield.findings import CheckStatus, Finding
from modelshield.models.base import Capability
from modelshield.runner import run_check


@dataclass(kw_only=True)
class Boom(Check):
    name: ClassVar[str] = "boom"
    needs_data: ClassVar[bool] = False

    def _run(self, ctx):
        raise RuntimeError("kaboom")


@dataclass(kw_only=True)
class NeedsGrad(Check):
    name: ClassVar[str] = "needsgrad"
    requires: ClassVar[frozenset] = frozenset({Capability.GRADIENTS})

    def _run(self, ctx):
        return self.result()


@dataclass(kw_only=True)
class Noisy(Check):
    name: ClassVar[str] = "noisy"
    needs_model: ClassVar[bool] = False
    needs_data: ClassVar[bool] = False

    def _run(self, ctx):
        return self.result(metrics={"draw": float(ctx.rng("noisy").random())})


def test_failing_check_is_isolated_and_reported(sk_logreg):
    ctx = AuditContext(model=ms.load_model(sk_logreg))
    r = run_check(Boom(), ctx)
    assert r.status is CheckStatus.ERROR
    assert r.findings[0].rule_id == "boom.error" and "kaboom" in r.findings[0].detail
    assert "Traceback" in r.findings[0].evidence["traceback"]


def test_capability_skip_reason(sk_logreg, breast_cancer):
    _, Xte, _, yte = breast_cancer
    ctx = AuditContext(model=ms.load_model(sk_logreg), data=ms.Dataset(X=Xte, y=yte))
    r = run_check(NeedsGrad(), ctx)
    assert r.status is CheckStatus.SKIPPED and r.skip_reason == "needs gradients"


def test_seeded_rng_is_deterministic_and_salted():
    a = run_check(Noisy(), AuditContext(seed=3)).metrics["draw"]
    b = run_check(Noisy(), AuditContext(seed=3)).metrics["draw"]
    c = run_check(Noisy(), AuditContext(seed=4)).metrics["draw"]
    assert a == b != c
    assert AuditContext(seed=1).rng("x").random() != AuditContext(seed=1).rng("y").random()


@dataclass(kw_only=True)
class Chatty(Check):
    name: ClassVar[str] = "chatty"
    needs_model: ClassVar[bool] = False
    needs_data: ClassVar[bool] = False

    def _run(self, ctx):
        ctx.progress(0.5, "halfway")
        return self.result(metrics={"x": 1.0})


def test_events_start_progress_end_and_end_only_when_skipped(sk_logreg):
    events: list[tuple] = []
    r = run_check(Chatty(), AuditContext(), lambda *e: events.append(e))
    assert events == [("start", "chatty", None), ("progress", "chatty", (0.5, "halfway")), ("end", "chatty", r)]
    assert r.status is CheckStatus.PASSED and r.duration_s > 0
    events.clear()
    skipped = run_check(NeedsGrad(), AuditContext(model=ms.load_model(sk_logreg)), lambda *e: events.append(e))
    assert skipped.status is CheckStatus.SKIPPED and events == [("end", "needsgrad", None)]


def test_direct_run_keeps_the_callers_progress():
    seen: list[tuple] = []
    r = Chatty().run(AuditContext(progress=lambda frac, msg: seen.append((frac, msg))))
    assert seen == [(0.5, "halfway")] and r.status is CheckStatus.PASSED


def test_a_check_returning_something_else_is_an_error():
    @dataclass(kw_only=True)
    class Wrong(Check):
        name: ClassVar[str] = "wrong"
        needs_model: ClassVar[bool] = False
        needs_data: ClassVar[bool] = False

        def _run(self, ctx):
            return {"metrics": {}}

    r = Wrong().run(AuditContext())
    assert r.status is CheckStatus.ERROR and r.summary == "the check failed: TypeError: check wrong returned dict, " \
        "not CheckResult"


def test_audit_baseline_end_to_end(sk_logreg, breast_cancer):
    _, Xte, _, yte = breast_cancer
    rep = ms.audit(sk_logreg, ms.Dataset(X=Xte, y=yte), checks=["baseline"], seed=1)
    run = rep.runs[0]
    res = run.result("baseline")
    assert res.status in (CheckStatus.PASSED, CheckStatus.FINDINGS)
    assert res.metrics["accuracy"] == pytest.approx((sk_logreg.predict(Xte) == yte).mean())
    assert 0 <= res.metrics["ece"] <= 1 and res.metrics["roc_auc"] > 0.95
    assert rep.passed and run.data["sha256"] == ms.Dataset(X=Xte, y=yte).sha256()
    assert rep.to_dict()["runs"][0]["results"][0]["check"] == "baseline"


def test_baseline_flags_useless_model(breast_cancer):
    _, Xte, _, yte = breast_cancer
    from modelshield.models.callable import CallableModel

    const = CallableModel(lambda X: np.tile([0.0, 1.0], (len(X), 1)), classes=[0, 1], n_features=30)
    res = ms.audit(const, ms.Dataset(X=Xte, y=yte), checks=["baseline"]).runs[0].result("baseline")
    assert any(f.rule_id == "baseline.no-better-than-majority" for f in res.findings)


def test_audit_rejects_width_mismatch_and_unknown_checks(sk_logreg, breast_cancer):
    _, Xte, _, yte = breast_cancer
    with pytest.raises(DataError, match="--features"):
        ms.audit(sk_logreg, ms.Dataset(X=Xte[:, :5], y=yte))
    with pytest.raises(UserError, match="unknown check"):
        ms.audit(sk_logreg, ms.Dataset(X=Xte, y=yte), checks=["nope"])


def test_policy_limit_on_real_metric(sk_logreg, breast_cancer):
    _, Xte, _, yte = breast_cancer
    ds = ms.Dataset(X=Xte, y=yte)
    strict = ms.Policy.from_mapping({"limits": ["baseline.accuracy >= 0.999"]})
    loose = ms.Policy.from_mapping({"limits": ["baseline.accuracy >= 0.8"]})
    assert not ms.audit(sk_logreg, ds, checks=["baseline"], policy=strict).passed
    assert ms.audit(sk_logreg, ds, checks=["baseline"], policy=loose).passed


def test_finding_in_custom_check_fails_gate(sk_logreg):
    @dataclass(kw_only=True)
    class Crit(Check):
        name: ClassVar[str] = "crit"
        needs_data: ClassVar[bool] = False

        def _run(self, ctx):
            r = self.result()
            r.add(Finding(check="crit", severity="critical", title="bad"))
            return r

    run = run_check(Crit(), AuditContext(model=ms.load_model(sk_logreg)))
    assert not ms.Policy.default().evaluate([run]).passed


def test_check_options_are_type_checked():
    from modelshield.checks.registry import get_check

    rob = get_check("robustness")
    assert rob.from_options({"eps": 0.1}).eps == [0.1]  # a single value where a list is expected
    assert rob.from_options({"eps": [1, 0.5]}).eps == [1.0, 0.5]
    with pytest.raises(UserError, match=r"robustness.eps: 'abc' is not a valid"):
        rob.from_options({"eps": "abc"})
    with pytest.raises(UserError, match="max_samples"):
        rob.from_options({"max_samples": 1.5})
    with pytest.raises(UserError, match="detector"):
        rob.from_options({"detector": "yes"})
    # values wrong whatever the data fail when the check is built (exit 2), not later as a check error
    with pytest.raises(UserError, match="max_samples must be >= 2"):
        rob.from_options({"max_samples": -5})
    with pytest.raises(UserError, match="unknown attack"):
        rob.from_options({"attacks": ["nope"]})
    with pytest.raises(UserError, match="confidence"):
        get_check("fairness").from_options({"confidence": 1.5})


def test_policy_validate_builds_each_checks_options(tmp_path, capsys):
    from modelshield.cli import main

    bad = tmp_path / "p.yaml"
    bad.write_text("checks:\n  robustness: {max_samples: -5}\n")
    assert main(["policy", "validate", str(bad)]) == 2
    assert "max_samples must be >= 2" in capsys.readouterr().err
    bad.write_text("checks:\n  robustness: {max_samples: 50}\n")
    assert main(["policy", "validate", str(bad)]) == 0
