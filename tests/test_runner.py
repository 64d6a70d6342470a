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
    with pytest.raises(DataError, match="the model expects 30 features but the data has 5") as ei:
        ms.audit(sk_logreg, ms.Dataset(X=Xte[:, :5], y=yte))
    assert "--" not in str(ei.value) and "--features" in (ei.value.cli_hint or "")
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
    # the library call: option values are only built on request (an audit builds them when it runs)
    from modelshield.runner import validate_policy

    pol = ms.Policy.from_mapping({"checks": {"robustness": {"max_samples": -5}}})
    assert validate_policy(pol) == []
    with pytest.raises(UserError, match="max_samples must be >= 2"):
        validate_policy(pol, build_options=True)


# --- the recipes the CLI calls: AuditOptions, audit_sources, audit_targets -----------------------------------

def test_audit_takes_an_options_object_or_the_keywords_not_both(sk_logreg, breast_cancer):
    from modelshield.runner import AuditOptions

    _, Xte, _, yte = breast_cancer
    ds = ms.Dataset(X=Xte, y=yte)
    strict = ms.Policy.from_mapping({"limits": ["baseline.accuracy >= 0.999"]})
    by_kw = ms.audit(sk_logreg, ds, checks=["baseline"], policy=strict, seed=3)
    by_cfg = ms.audit(sk_logreg, ds, config=AuditOptions(checks=["baseline"], policy=strict, seed=3))
    assert not by_kw.passed and not by_cfg.passed  # the config's policy is the one applied
    assert by_cfg.runs[0].seed == 3 and [r.check for r in by_cfg.runs[0].results] == ["baseline"]
    assert by_cfg.runs[0].result("baseline").metrics == by_kw.runs[0].result("baseline").metrics
    with pytest.raises(UserError, match="not both"):
        ms.audit(sk_logreg, ds, seed=4, config=AuditOptions(checks=["baseline"]))


def test_audit_sources_reads_files_and_loads_through_the_given_loader(tmp_path, sk_logreg, breast_cancer):
    import joblib

    from modelshield.runner import AuditOptions, audit_sources

    _, Xte, _, yte = breast_cancer
    np.savez(tmp_path / "test.npz", X=Xte, y=yte)
    joblib.dump(sk_logreg, tmp_path / "m.joblib")
    loaded, notes, labels = [], [], []

    def loader(src, **kw):
        loaded.append((src, kw))
        return ms.load_model(src, trust=True, **kw)

    rep = audit_sources(str(tmp_path / "m.joblib"), tmp_path / "test.npz",
                        config=AuditOptions(checks=["baseline"], seed=2), load=loader, note=notes.append,
                        on_run=labels.append)
    run = rep.runs[0]
    assert loaded == [(str(tmp_path / "m.joblib"), {"input_shape": None})]
    assert labels == ["m.joblib"] == [run.label] and notes == [f"loading {tmp_path / 'm.joblib'}"]
    assert run.model["path"] == str(tmp_path / "m.joblib") and len(run.model["sha256"]) == 64
    assert run.data["sha256"] == ms.load_dataset(tmp_path / "test.npz").sha256() and run.seed == 2
    # the default loader is the secure one: a pickle that calls os.system is refused before it is unpickled
    import os
    import pickle

    from modelshield.errors import SecurityError

    class Planted:
        def __reduce__(self):
            return (os.system, ("true",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Planted()))
    with pytest.raises(SecurityError):
        audit_sources(str(tmp_path / "evil.pkl"), tmp_path / "test.npz", config=AuditOptions(checks=["baseline"]))


def test_audit_sources_refuses_columns_without_data_and_headers_for_files(sk_logreg):
    from modelshield.runner import AuditOptions, audit_sources

    with pytest.raises(UserError) as exc:
        audit_sources(sk_logreg, None, config=AuditOptions(target="y"))
    assert "--" not in str(exc.value) and "--data" in exc.value.cli_message()
    with pytest.raises(UserError, match="endpoints only"):
        audit_sources("model.joblib", None, config=AuditOptions(headers={"Authorization": "Bearer x"}))


def test_audit_targets_narrows_each_targets_checks(sk_logreg, breast_cancer):
    from types import SimpleNamespace

    from modelshield.runner import AuditOptions, audit_targets

    _, Xte, _, yte = breast_cancer
    ds = ms.Dataset(X=Xte, y=yte)

    def target(label, checks):
        return SimpleNamespace(model=sk_logreg, data=ds, train=None, checks=checks, model_path=None, artifacts=(),
                               label=label)

    targets = [target("a", ["baseline"]), target("b", ["fairness"]), target("c", None)]
    labels: list[str] = []
    rep = audit_targets(targets, config=AuditOptions(checks=["baseline"]), title="t", on_run=labels.append)
    assert labels == ["a", "c"] and [r.label for r in rep.runs] == ["a", "c"] and rep.title == "t"
    assert all([r.check for r in run.results] == ["baseline"] for run in rep.runs)
    rep = audit_targets(targets[:2])
    assert [[r.check for r in run.results] for run in rep.runs] == [["baseline"], ["fairness"]]


def test_audit_check_returns_the_one_result_and_raises_when_it_did_not_run(sk_logreg, breast_cancer):
    from modelshield.runner import audit_check

    _, Xte, _, yte = breast_cancer
    rep = audit_check(sk_logreg, ms.Dataset(X=Xte, y=yte), "baseline", seed=1)
    assert [r.check for r in rep.runs[0].results] == ["baseline"] and rep.runs[0].seed == 1
    assert rep.runs[0].results[0].status in (CheckStatus.PASSED, CheckStatus.FINDINGS)
    with pytest.raises(DataError, match=r"^membership inference does not apply: "):  # privacy needs train data
        audit_check(sk_logreg, ms.Dataset(X=Xte, y=yte), "privacy", what="membership inference")


def test_audit_check_raises_a_failed_checks_own_message(monkeypatch, sk_logreg):
    from modelshield.runner import audit_check

    @dataclass(kw_only=True)
    class BadData(Check):
        name: ClassVar[str] = "baddata"
        needs_data: ClassVar[bool] = False

        def _run(self, ctx):
            raise DataError("column x has no values")

    monkeypatch.setattr("modelshield.runner.available_checks", lambda: {"baddata": BadData, "boom": Boom})
    with pytest.raises(DataError) as exc:  # a modelshield error: its message, without the class name
        audit_check(sk_logreg, None, "baddata")
    assert str(exc.value) == "column x has no values"
    with pytest.raises(DataError) as exc:  # anything else keeps its type name: it says what broke
        audit_check(sk_logreg, None, "boom")
    assert str(exc.value) == "RuntimeError: kaboom"


def test_audit_options_validate_fails_before_any_work():
    from modelshield.errors import PolicyError
    from modelshield.policy import Policy
    from modelshield.runner import AuditOptions

    ok = AuditOptions(checks=["baseline"], policy=Policy.default())
    assert ok.validate() is ok and AuditOptions().validate() == AuditOptions()
    with pytest.raises(UserError, match="unknown check 'bogus'"):
        AuditOptions(checks=["bogus"]).validate()
    with pytest.raises(PolicyError, match=r"baseline\.acuracy"):
        AuditOptions(policy=Policy.from_mapping({"limits": ["baseline.acuracy >= 0.9"]})).validate()


def test_merge_options_puts_options_over_the_policy_and_refuses_unknown_checks():
    from modelshield.checks.registry import available_checks
    from modelshield.policy import Policy
    from modelshield.runner import merge_options

    registry = available_checks()
    policy = Policy.from_mapping({"checks": {"robustness": {"eps": [0.1], "attacks": ["fgsm"]}}})
    merged = merge_options(policy, {"robustness": {"eps": [0.2]}, "baseline": {}}, registry)
    assert merged == {"robustness": {"eps": [0.2], "attacks": ["fgsm"]}, "baseline": {}}
    assert policy.checks["robustness"]["eps"] == [0.1]  # the policy is not changed
    assert merge_options(policy, None, registry) == {"robustness": {"eps": [0.1], "attacks": ["fgsm"]}}
    with pytest.raises(UserError, match=r"option nosuch\.x is for an unknown check 'nosuch'; available: ") as ei:
        merge_options(policy, {"nosuch": {"x": 1}}, registry)
    assert "--option" in (ei.value.cli_hint or "") and "--" not in str(ei.value)
