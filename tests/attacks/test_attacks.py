"""Every attack: it breaks real models, respects the threat model, counts queries, is deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from modelshield.attacks import (
    APGD,
    FGSM,
    PGD,
    Ensemble,
    HopSkipJump,
    Square,
    make_attack,
)
from modelshield.attacks.threat import ThreatModel
from modelshield.errors import UserError

WHITE = ["fgsm", "pgd", "apgd-ce", "apgd-dlr", "apgd"]


def _norms(res, tm, X):
    d = (res.x_adv - X).reshape(len(X), -1) / (tm.scale if tm.scale is not None else 1.0)
    return np.abs(d).max(1) if tm.norm == "inf" else np.linalg.norm(d, axis=1)


@pytest.mark.parametrize("name", WHITE)
@pytest.mark.parametrize("norm,eps", [("inf", 0.3), ("2", 1.5)])
def test_white_box_attacks_break_the_mlp_within_eps(mlp, cancer_test, name, norm, eps):
    ds, X, y = cancer_test
    tm = ThreatModel.for_dataset(ds, norm=norm, eps=eps, steps=20)
    res = make_attack(name, tm).generate(mlp, X, y)
    assert res.clean_accuracy > 0.9
    assert res.robust_accuracy < res.clean_accuracy - 0.1  # the attack really works
    assert np.all(_norms(res, tm, X) <= eps * (1 + 1e-4) + 1e-5)
    lo, hi = tm.bounds_arrays(X.shape[1])  # the stated domain: it contains the observed range
    assert np.all(lo <= ds.lower) and np.all(hi >= ds.upper)
    assert np.all(res.x_adv >= lo - 1e-5) and np.all(res.x_adv <= hi + 1e-5)
    # success is measured on the returned inputs
    pred = mlp.predict_index(res.x_adv)
    np.testing.assert_array_equal(res.adv_correct, pred == y)
    assert res.queries.max() <= (1 if name == "fgsm" else 2 * (tm.steps + 1))


def test_stronger_attacks_are_at_least_as_strong(mlp, cancer_test):
    ds, X, y = cancer_test
    tm = ThreatModel.for_dataset(ds, eps=0.25, steps=20)
    acc = {n: make_attack(n, tm).generate(mlp, X, y).robust_accuracy for n in ("fgsm", "pgd", "apgd")}
    assert acc["pgd"] <= acc["fgsm"] + 0.01
    assert acc["apgd"] <= acc["pgd"] + 0.01


def test_attacks_are_deterministic_under_a_seed(mlp, cancer_test, forest):
    ds, X, y = cancer_test
    tm = ThreatModel.for_dataset(ds, eps=0.3, steps=10, query_budget=80)
    for attack, model in ((PGD(threat=tm, seed=3), mlp), (Square(threat=tm, seed=3), forest),
                          (HopSkipJump(threat=tm, seed=3, max_iter=5), forest)):
        a = attack.generate(model, X[:40], y[:40])
        b = attack.generate(model, X[:40], y[:40])
        np.testing.assert_array_equal(a.x_adv, b.x_adv)
        np.testing.assert_array_equal(a.queries, b.queries)


def test_eps_zero_changes_nothing(mlp, cancer_test):
    ds, X, y = cancer_test
    res = PGD(threat=ThreatModel.for_dataset(ds, eps=0.0)).generate(mlp, X, y)
    np.testing.assert_array_equal(res.x_adv, X)
    assert res.robust_accuracy == res.clean_accuracy and res.success.sum() == 0


def test_only_correct_samples_are_attacked(mlp, cancer_test):
    ds, X, y = cancer_test
    res = PGD(threat=ThreatModel.for_dataset(ds, eps=0.3)).generate(mlp, X, y)
    wrong = ~res.clean_correct
    assert wrong.any()
    assert np.all(res.queries[wrong] == 0)
    np.testing.assert_array_equal(res.x_adv[wrong], X[wrong])
    assert not res.success[wrong].any()


def test_white_box_attack_on_a_black_box_model_is_a_user_error(forest, cancer_test):
    ds, X, y = cancer_test
    with pytest.raises(UserError, match="white-box"):
        FGSM(threat=ThreatModel.for_dataset(ds)).generate(forest, X, y)
    with pytest.raises(UserError, match="norm"):
        Square(threat=ThreatModel.for_dataset(ds, norm="2")).generate(forest, X, y)


def test_unknown_attack_name():
    with pytest.raises(UserError, match="unknown attack"):
        make_attack("deepfool", ThreatModel())


def test_ensemble_is_the_per_sample_worst_case(mlp, cancer_test):
    ds, X, y = cancer_test
    tm = ThreatModel.for_dataset(ds, eps=0.2, steps=15)
    ce = APGD(threat=tm, loss="ce", seed=0)
    dlr = APGD(threat=tm, loss="dlr", seed=1)
    ens = Ensemble(attacks=[ce, dlr]).generate(mlp, X, y)
    first = ce.generate(mlp, X, y)
    assert ens.robust_accuracy <= first.robust_accuracy
    assert np.all(ens.adv_correct <= first.adv_correct)  # broken by CE stays broken
    assert np.all(mlp.predict_index(ens.x_adv)[ens.success] != y[ens.success])


def test_dlr_and_targeted_on_three_classes(iris_mlp):
    from modelshield.data.dataset import Dataset

    model, X, y = iris_mlp
    ds = Dataset(X=X, y=y)
    tm = ThreatModel.for_dataset(ds, eps=0.5, steps=30)
    dlr = APGD(threat=tm, loss="dlr").generate(model, X, y)
    assert dlr.robust_accuracy < dlr.clean_accuracy - 0.1
    target = (y + 1) % 3
    res = PGD(threat=tm.with_(targeted=True, eps=1.0, steps=40)).generate(model, X, target)
    pred = model.predict_index(res.x_adv)
    assert res.success.sum() > 0.3 * len(X)
    np.testing.assert_array_equal(pred[res.success], target[res.success])


@pytest.mark.parametrize("name", ["square", "hsj"])
def test_black_box_attacks_fool_a_random_forest_within_budget(forest, cancer_test, name):
    ds, X, y = cancer_test
    budget = 400
    tm = ThreatModel.for_dataset(ds, eps=0.5, query_budget=budget)
    res = make_attack(name, tm, **({"max_iter": 20} if name == "hsj" else {})).generate(forest, X[:80], y[:80])
    assert res.success_rate > 0.2, res.summary()
    assert res.queries.max() <= budget
    assert np.all(_norms(res, tm, X[:80]) <= 0.5 + 1e-6)
    pred = forest.predict_index(res.x_adv)
    assert np.all(pred[res.success] != y[:80][res.success])


def test_hsj_min_distance_gives_a_monotone_curve(forest, cancer_test):
    ds, X, y = cancer_test
    tm = ThreatModel.for_dataset(ds, norm="2", eps=0.5, query_budget=500)
    res = HopSkipJump(threat=tm, max_iter=15).generate(forest, X[:60], y[:60])
    accs = [res.at_eps(e).robust_accuracy for e in (0.5, 1.0, 2.0, 4.0)]
    assert accs == sorted(accs, reverse=True) and accs[-1] < accs[0]
    big = res.at_eps(4.0)
    pred = forest.predict_index(big.x_adv)
    assert np.all(pred[big.success] != y[:60][big.success])  # the minimal adversarials are adversarial


@pytest.mark.parametrize("name", ["square", "hsj"])
def test_tabular_rows_stay_valid(adult, adult_hgb, name):
    _, te = adult
    X, y = te.X[:80], te.y[:80]
    tm = ThreatModel.for_dataset(te, eps=1.0, query_budget=300)
    res = make_attack(name, tm).generate(adult_hgb, X, y)
    assert res.success.sum() > 0, res.summary()
    frozen = ~tm.mutable
    np.testing.assert_array_equal(res.x_adv[:, frozen], X[:, frozen])  # categorical / immutable
    ints = tm.integer
    np.testing.assert_array_equal(res.x_adv[:, ints], np.round(res.x_adv[:, ints]))
    lo, hi = tm.bounds_arrays(X.shape[1])  # the stated domain (observed range widened, whole for integers)
    assert np.all(lo <= te.lower) and np.all(hi >= te.upper)
    assert np.all(res.x_adv >= np.minimum(lo, X)) and np.all(res.x_adv <= np.maximum(hi, X))


def test_images_stay_in_the_unit_box(digits_cnn):
    model, X, y = digits_cnn
    tm = ThreatModel.image(eps=0.1, steps=10, query_budget=200)
    for attack in (PGD(threat=tm), Square(threat=tm)):
        res = attack.generate(model, X[:60], y[:60])
        assert res.x_adv.shape == X[:60].shape
        assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
        assert np.abs(res.x_adv - X[:60]).max() <= 0.1 + 1e-6
        assert res.success_rate > 0.2, (attack.name, res.summary())


def test_apgd_t_attacks_the_most_likely_wrong_classes(digits_cnn):
    model, X, y = digits_cnn
    tm = ThreatModel.image(eps=0.05, steps=20)
    t = make_attack("apgd-t", tm).generate(model, X[:80], y[:80])
    ce = make_attack("apgd-ce", tm).generate(model, X[:80], y[:80])
    assert t.robust_accuracy < t.clean_accuracy - 0.05
    pred = model.predict_index(t.x_adv)
    assert np.all(pred[t.success] != y[:80][t.success])
    ens = make_attack("apgd", tm).generate(model, X[:80], y[:80])
    assert ens.threat["members"] == ["apgd-ce", "apgd-dlr", "apgd-t"]
    assert ens.robust_accuracy <= ce.robust_accuracy  # its first member is this very APGD-CE


def test_apgd_t_is_a_no_op_on_two_classes(mlp, cancer_test):
    ds, X, y = cancer_test
    res = make_attack("apgd-t", ThreatModel.for_dataset(ds, eps=0.3)).generate(mlp, X, y)
    assert res.success.sum() == 0 and res.queries.max() <= 1
