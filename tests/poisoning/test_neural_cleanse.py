"""Neural Cleanse on planted attacks: a BadNets pixel trigger on digits (10% of the training rows poisoned,
target class 0) in a small torch MLP is flagged with its target class; the clean control is not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modelshield.errors import ModelShieldError, OptionError
from modelshield.models.sklearn import SklearnModel
from modelshield.models.torch import TorchModel
from modelshield.poisoning.neural_cleanse import NoGradients, anomaly_index, neural_cleanse


def _pair(get_scenario, seed):
    poisoned, clean = get_scenario("digits", seed, True), get_scenario("digits", seed, False)
    assert poisoned.attack_success >= 0.9 and clean.attack_success <= 0.1  # the plant worked, the control is clean
    return poisoned, clean


def test_backdoor_target_is_flagged_and_clean_control_is_not(get_scenario):
    poisoned, clean = _pair(get_scenario, 0)
    rep = neural_cleanse(poisoned.model, poisoned.Xte, seed=0)
    assert rep.poisoned and rep.target == poisoned.trigger.target
    k = rep.classes.index(rep.target)
    assert rep.anomaly_index[k] > 2 and rep.mask_norms[k] == rep.mask_norms.min()
    trig = rep.trigger
    assert trig is not None and trig.target == 0 and trig.mask.shape == (64,)
    assert trig.attack_success >= 0.9  # the reversed trigger works on clean rows
    # it sits on the planted patch: most of the mask's mass is on the four corner pixels
    corner = list(poisoned.trigger.features)
    assert trig.mask[corner].sum() / trig.mask.sum() >= 0.5
    stamped = trig.apply(clean.Xte[clean.yte != 0])
    assert np.mean(poisoned.model.predict(stamped) == 0) >= 0.9
    crep = neural_cleanse(clean.model, clean.Xte, seed=0)
    assert not crep.poisoned and crep.target is None and crep.trigger is None
    assert crep.score < 2 < rep.score


def test_same_seed_same_result_and_other_seed_differs(get_scenario):
    sc = get_scenario("digits", 0, True)
    a = neural_cleanse(sc.model, sc.Xte, steps=60, seed=3)
    b = neural_cleanse(sc.model, sc.Xte, steps=60, seed=3)
    c = neural_cleanse(sc.model, sc.Xte, steps=60, seed=4)
    np.testing.assert_array_equal(a.mask_norms, b.mask_norms)
    np.testing.assert_array_equal(a.anomaly_index, b.anomaly_index)
    assert not np.array_equal(a.mask_norms, c.mask_norms)


def test_torchscript_and_plain_module_give_the_adapter_result(get_scenario):
    sc = get_scenario("digits", 0, True)
    ref = neural_cleanse(sc.model, sc.Xte, steps=40, seed=1)
    plain = neural_cleanse(sc.model.module, sc.Xte, steps=40, seed=1)
    scripted = neural_cleanse(TorchModel(torch.jit.script(sc.model.module)), sc.Xte, steps=40, seed=1)
    np.testing.assert_allclose(plain.mask_norms, ref.mask_norms, rtol=1e-5)
    np.testing.assert_allclose(scripted.mask_norms, ref.mask_norms, rtol=1e-4)
    assert plain.classes == list(range(10))
    # the model is left as it was: parameters still trainable, eval mode
    assert all(p.requires_grad for p in sc.model.module.parameters())


def test_anomaly_index_is_the_mad_score():
    norms = np.array([10.0, 11.0, 9.0, 10.5, 9.5, 2.0])
    med = np.median(norms)
    mad = 1.4826 * np.median(np.abs(norms - med))
    np.testing.assert_allclose(anomaly_index(norms), np.abs(norms - med) / mad)
    assert anomaly_index(np.full(4, 3.0)).tolist() == [0.0] * 4  # no spread: nothing anomalous


def test_model_without_gradients_is_a_clear_error(get_scenario):
    from sklearn.linear_model import LogisticRegression

    sc = get_scenario("digits", 0, False)
    est = LogisticRegression(max_iter=200).fit(sc.Xtr, sc.ytr)
    with pytest.raises(NoGradients, match="only PyTorch and TorchScript models give; a sklearn model has none"):
        neural_cleanse(SklearnModel(est), sc.Xte)
    with pytest.raises(NoGradients):
        neural_cleanse(object(), sc.Xte)

    class Detached(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(64, 10)

        def forward(self, x):
            return self.lin(x).detach()

    with pytest.raises(NoGradients, match="does not depend differentiably on its input"):
        neural_cleanse(TorchModel(Detached()), sc.Xte)
    assert issubclass(NoGradients, ModelShieldError) and NoGradients.exit_code == 2


def test_bad_options_and_data(get_scenario):
    sc = get_scenario("digits", 0, False)
    with pytest.raises(OptionError, match="steps must be at least 1"):
        neural_cleanse(sc.model, sc.Xte, steps=0)
    with pytest.raises(OptionError, match="success"):
        neural_cleanse(sc.model, sc.Xte, success=1.5)
    bad = sc.Xte.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ModelShieldError, match="missing or infinite value in row 3"):
        neural_cleanse(sc.model, bad)
    with pytest.raises(ModelShieldError, match="high above low"):
        neural_cleanse(sc.model, sc.Xte, bounds=(1.0, 1.0))


@pytest.mark.slow
def test_backdoor_family(get_scenario):
    """Seeds 1-9 (fresh data splits, plants and models): every target is named; the clean controls are
    flagged at most twice (measured: once in 10 at threshold 2, seeds 0-9, 300 and 600 steps)."""
    false_alarms = 0
    for seed in range(1, 10):
        poisoned, clean = _pair(get_scenario, seed)
        assert neural_cleanse(poisoned.model, poisoned.Xte, seed=0).target == poisoned.trigger.target, seed
        false_alarms += neural_cleanse(clean.model, clean.Xte, seed=0).poisoned
    assert false_alarms <= 2


# -- the audit check ------------------------------------------------------------------------------
def _run_check(model, sc):
    from modelshield.checks.base import AuditContext
    from modelshield.checks.poisoning import PoisoningCheck
    from modelshield.data.dataset import Dataset

    ctx = AuditContext(model=model, data=Dataset(X=sc.Xte, y=sc.yte), train=Dataset(X=sc.Xtr, y=sc.ytr), quick=True)
    return PoisoningCheck(nc_steps=300).run(ctx)


def test_check_reports_neural_cleanse_detector_finding_and_figure(get_scenario):
    sc = get_scenario("digits", 0, True)
    res = _run_check(sc.model, sc)
    det = {d["detector"]: d for d in res.tables["backdoor_detectors"]}
    nc = det["neural cleanse"]
    assert nc["verdict"] == "poisoned" and nc["score"] > 2 and "target class 0" in nc["note"]
    assert res.metrics["neural_cleanse_poisoned"] is True and res.metrics["neural_cleanse_target"] == 0
    assert res.metrics["backdoor_suspected"] is True
    f = next(f for f in res.findings if f.rule_id == "poisoning.neural-cleanse")
    assert "class 0" in f.title and f.evidence["target_class"] == 0
    assert set(sc.trigger.features) & set(f.evidence["trigger_features"][:4])
    fig = next(g for g in res.figures if g.title.startswith("Neural Cleanse"))
    assert fig.kind == "bar" and len(fig.series[0].y) == 10
    assert max(fig.series[0].y) == pytest.approx(nc["score"], abs=1e-3)
    rows = {r["class"]: r for r in res.tables["neural_cleanse"]}
    assert rows[0]["verdict"] == "target" and sum(r["verdict"] == "target" for r in rows.values()) >= 1


def test_check_clean_control_and_not_run_cases(get_scenario):
    from sklearn.linear_model import LogisticRegression

    clean = get_scenario("digits", 0, False)
    res = _run_check(clean.model, clean)
    det = {d["detector"]: d for d in res.tables["backdoor_detectors"]}
    assert det["neural cleanse"]["verdict"] == "clean" and res.metrics["neural_cleanse_target"] is None
    assert not any(f.rule_id == "poisoning.neural-cleanse" for f in res.findings)
    sk = SklearnModel(LogisticRegression(max_iter=300).fit(clean.Xtr, clean.ytr))
    res = _run_check(sk, clean)
    det = {d["detector"]: d for d in res.tables["backdoor_detectors"]}
    assert det["neural cleanse"]["verdict"] == "not run" and "no input gradients" in det["neural cleanse"]["note"]
    assert "Neural Cleanse not run" in res.summary and "neural_cleanse_poisoned" not in res.metrics
