"""The ``theft`` audit check on the demo-like victims: timing, metrics, figures, grading."""

from __future__ import annotations

import time

import numpy as np
import pytest

from modelshield.checks.base import AuditContext
from modelshield.checks.registry import get_check
from modelshield.checks.theft import TheftCheck
from modelshield.errors import UserError
from modelshield.findings import CheckStatus, Severity
from modelshield.policy import Policy
from modelshield.runner import audit


def _theft(report):
    (r,) = [r for r in report.runs[0].results if r.check == "theft"]
    return r


def test_registered():
    assert get_check("theft") is TheftCheck


@pytest.mark.parametrize("victim", ["adult_hgb", "cancer_mlp"])
def test_quick_mode_is_fast_and_complete(victim, request):
    model, heldout, *_ = request.getfixturevalue(victim)
    # CPU time of this process: other jobs on a shared machine do not count against the budget
    t0 = time.process_time()
    r = _theft(audit(model, heldout, checks=["theft"], quick=True, seed=0))
    elapsed = time.process_time() - t0
    assert r.status is CheckStatus.FINDINGS, r.summary
    assert elapsed < 8.0
    m = r.metrics
    assert m["max_budget"] == 1000
    assert 0.0 <= m["fidelity_at_max_budget"] <= 1.0
    assert {"fidelity_top1_at_max_budget", "fidelity_rounded_at_max_budget", "victim_accuracy"} <= set(m)
    fig = r.figures[0]
    assert fig.kind == "line" and fig.log_x
    names = [s.name for s in fig.series]
    assert "knockoff queries, top-1 label only" in names and "random queries, rounded" in names
    assert all(list(s.x) == [50, 200, 1000] for s in fig.series)
    assert len(r.tables["extraction"]) == 2 * 3 * 3
    # the model is well above its constant-guess baseline, so the attack must beat it too
    assert m["fidelity_at_max_budget"] > m["fidelity_baseline"]
    (main,) = [f for f in r.findings if f.rule_id == "theft.extraction.fidelity"]
    assert main.references


def test_grading_follows_policy_thresholds(cancer_mlp):
    model, heldout = cancer_mlp
    opts = {"theft": {"budgets": [200], "strategies": ["knockoff"], "outputs": ["probabilities"],
                      "exposure": "public-unlimited"}}
    lenient = Policy.from_mapping({"thresholds": {"theft.fidelity.high": 1.01, "theft.fidelity.medium": 1.01}})
    strict = Policy.from_mapping({"thresholds": {"theft.fidelity.high": 0.5}})
    r1 = _theft(audit(model, heldout, checks=["theft"], policy=lenient, options=opts, quick=True))
    r2 = _theft(audit(model, heldout, checks=["theft"], policy=strict, options=opts, quick=True))
    assert r1.metrics["fidelity_at_max_budget"] == r2.metrics["fidelity_at_max_budget"] >= 0.9
    sev1 = {f.rule_id: f.severity for f in r1.findings}
    sev2 = {f.rule_id: f.severity for f in r2.findings}
    assert sev1["theft.extraction.fidelity"] is Severity.INFO
    assert sev2["theft.extraction.fidelity"] is Severity.HIGH
    assert r2.metrics["budget_to_high_fidelity"] == 200


def test_check_is_deterministic_under_seed(cancer_mlp):
    model, heldout = cancer_mlp
    check = TheftCheck(budgets=[40], strategies=["knockoff"], outputs=["probabilities", "top1"])
    ctx = AuditContext(model=model, data=heldout, seed=3, quick=True)
    a = check.run(ctx)
    b = check.run(ctx)
    assert a.tables == b.tables and a.metrics == b.metrics


def test_unknown_option_is_a_user_error():
    from modelshield.errors import UserError

    with pytest.raises(UserError, match="unknown option"):
        TheftCheck.from_options({"budget": [1]})


def test_skips_regression_models():
    from sklearn.linear_model import LinearRegression

    from modelshield.data.dataset import Dataset

    X = np.random.default_rng(0).normal(size=(50, 3))
    rep = audit(LinearRegression().fit(X, X[:, 0]), Dataset(X=X, y=X[:, 0]), checks=["theft"])
    assert _theft(rep).status is CheckStatus.SKIPPED


def test_watermark_option_verifies_owned_and_flags_missing(tmp_path, breast_cancer, cancer_mlp):
    import torch

    from modelshield.data.dataset import Dataset
    from modelshield.harden.watermark import embed_watermark
    from modelshield.protect.keys import generate_signing_key, key_to_text, public_pem
    from modelshield.theft.watermark import TriggerSet

    Xtr, Xte, ytr, yte = breast_cancer
    with torch.random.fork_rng():
        torch.manual_seed(1)
        net = torch.nn.Sequential(torch.nn.Linear(30, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    sk = generate_signing_key()
    res = embed_watermark(net, Xtr, ytr, signing_key=sk, n_triggers=60, epochs=20, seed=4)
    path = res.triggers.save(tmp_path / "t.npz")
    res.commitment.save(tmp_path / "c.json")
    (tmp_path / "owner.pub").write_bytes(public_pem(sk))
    (tmp_path / "wm.key").write_text(key_to_text(res.key))
    heldout = Dataset(X=Xte.astype(float), y=yte)
    opts = {"theft": {"budgets": [50], "strategies": ["knockoff"], "outputs": ["probabilities"],
                      "watermark_triggers": str(path), "watermark_commitment": str(tmp_path / "c.json"),
                      "watermark_public_key": str(tmp_path / "owner.pub"),
                      "watermark_key": str(tmp_path / "wm.key")}}
    owned = _theft(audit(res.module, heldout, checks=["theft"], options=opts, quick=True))
    assert owned.metrics["watermark_owned"] is True and owned.metrics["watermark_p_value"] < 1e-6
    (ok,) = [f for f in owned.findings if f.rule_id == "theft.watermark.verified"]
    assert "signed" in ok.detail
    other, _ = cancer_mlp
    missing = _theft(audit(other, heldout, checks=["theft"], options=opts, quick=True))
    assert missing.metrics["watermark_owned"] is False and missing.metrics["watermark_p_value"] > 0.01
    (f,) = [f for f in missing.findings if f.rule_id == "theft.watermark.missing"]
    assert f.severity is Severity.MEDIUM
    # a forged trigger set (the suspect's own answers on noise) is refused, no agreement is counted
    X = np.random.default_rng(0).uniform(-3, 3, size=(60, 30)).astype(np.float32)
    TriggerSet(X=X, labels=other.predict_index(X), n_classes=2).save(tmp_path / "forged.npz")
    forged = _theft(audit(other, heldout, checks=["theft"], quick=True,
                          options={"theft": {**opts["theft"], "watermark_triggers": str(tmp_path / "forged.npz")}}))
    (r,) = [f for f in forged.findings if f.rule_id.startswith("theft.watermark")]
    assert r.rule_id == "theft.watermark.proof-refused" and "watermark_p_value" not in forged.metrics
    # a trigger set without the proof is a usage error
    with pytest.raises(UserError, match="proves nothing"):
        TheftCheck.from_options({"watermark_triggers": str(path)})
    # a missing trigger file is reported as this check's error, not a crash of the audit
    opts["theft"]["watermark_triggers"] = str(tmp_path / "nope.npz")
    err = _theft(audit(other, heldout, checks=["theft"], options=opts, quick=True))
    assert err.status is CheckStatus.ERROR and "trigger set not found" in err.summary


def test_fingerprint_option(tmp_path, breast_cancer, sk_logreg):
    from sklearn.linear_model import LogisticRegression

    from modelshield.data.dataset import Dataset
    from modelshield.theft.fingerprint import create_fingerprint

    Xtr, Xte, ytr, yte = breast_cancer
    rng = np.random.default_rng(5)
    halves = [rng.choice(len(Xtr), len(Xtr) // 2, replace=False) for _ in range(6)]
    refs = [LogisticRegression(max_iter=500).fit(Xtr[i], ytr[i]) for i in halves]  # independent: other rows
    path = create_fingerprint(sk_logreg, Xtr, n_points=30, independent=refs, seed=0,
                              threshold=0.99).save(tmp_path / "fp.npz")
    heldout = Dataset(X=Xte.astype(float), y=yte)
    opts = {"theft": {"budgets": [50], "strategies": ["knockoff"], "outputs": ["probabilities"],
                      "fingerprint": str(path)}}
    same = _theft(audit(sk_logreg, heldout, checks=["theft"], options=opts, quick=True))
    assert same.metrics["fingerprint_score"] == 1.0 and same.metrics["fingerprint_match"] is True
    shuffled = LogisticRegression(max_iter=500).fit(Xtr, np.random.default_rng(0).permutation(ytr))
    other = _theft(audit(shuffled, heldout, checks=["theft"], options=opts, quick=True))
    assert other.metrics["fingerprint_match"] is False
    (f,) = [f for f in other.findings if f.rule_id == "theft.fingerprint.mismatch"]
    assert "independent references scored" in f.detail and "false-match rate" in f.detail


def test_unlabelled_data_gives_fidelity_without_accuracy(cancer_mlp):
    from modelshield.data.dataset import Dataset

    model, heldout = cancer_mlp
    data = Dataset(X=heldout.X)
    opts = {"theft": {"budgets": [100], "strategies": ["knockoff"]}}
    r = _theft(audit(model, data, checks=["theft"], options=opts, quick=True))
    assert r.metrics["victim_accuracy"] is None and r.metrics["accuracy_at_max_budget"] is None
    assert r.metrics["fidelity_at_max_budget"] > 0.85
    assert len(r.figures) == 1  # the accuracy figure needs labels


def test_constant_model_is_not_graded_as_stolen():
    from modelshield.data.dataset import Dataset
    from modelshield.models.callable import CallableModel

    X = np.random.default_rng(0).normal(size=(200, 4))
    const = CallableModel(lambda A: np.tile([0.9, 0.1], (len(A), 1)), classes=[0, 1], n_features=4)
    opts = {"theft": {"budgets": [50], "strategies": ["knockoff"]}}
    r = _theft(audit(const, Dataset(X=X), checks=["theft"], options=opts, quick=True))
    assert r.metrics["fidelity_at_max_budget"] == 1.0 == r.metrics["fidelity_baseline"]
    (f,) = r.findings  # no "hardening is ineffective" note either: there is nothing to protect
    assert f.severity is Severity.INFO and "majority" in f.title
