"""Backdoor checks on planted attacks: BadNets pixel trigger on digits, a rare value combination on
breast_cancer (10% of the training rows poisoned), clean controls trained the same way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modelshield.errors import DataError, UserError
from modelshield.models.sklearn import SklearnModel
from modelshield.poisoning.activations import NoActivations, penultimate_activations
from modelshield.poisoning.model import activation_clustering, spectral_signatures, strip_test


def detect(sc):
    A = penultimate_activations(sc.model, sc.Xtr)
    HA = penultimate_activations(sc.model, sc.Xte)
    ac = activation_clustering(A, sc.ytr, heldout_labels=sc.yte, heldout_activations=HA, seed=0)
    ss = spectral_signatures(A, sc.ytr, fraction=0.1, heldout_activations=HA, heldout_labels=sc.yte)
    st = strip_test(sc.model.predict_proba, sc.Xtr, sc.Xte, seed=0)
    return ac, ss, st


def _check_pair(get_scenario, name, seed):
    poisoned, clean = get_scenario(name, seed, True), get_scenario(name, seed, False)
    assert poisoned.attack_success >= 0.9 and clean.attack_success <= 0.1  # the plant worked, the control is clean
    ac, ss, st = detect(poisoned)
    assert ac.poisoned or ss.poisoned or st.poisoned
    flagged = set(ac.flagged_rows.tolist()) | set(ss.flagged_rows.tolist()) | set(st.flagged_rows.tolist())
    truth = set(poisoned.poisoned_rows.tolist())
    assert len(flagged & truth) / len(flagged) >= 0.5  # what is flagged is mostly the poison
    cac, css, cst = detect(clean)
    assert not (cac.poisoned or css.poisoned or cst.poisoned)
    return ac, ss, st


@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
def test_planted_backdoor_is_detected_and_clean_control_is_not(get_scenario, name):
    ac, _, _ = _check_pair(get_scenario, name, 0)
    assert ac.poisoned  # activation clustering finds both plants at seed 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_planted_backdoor_family(get_scenario, name, seed):
    _check_pair(get_scenario, name, seed)


def test_activation_clustering_names_the_poisoned_rows(get_scenario):
    sc = get_scenario("breast_cancer", 0, True)
    ac, _, _ = detect(sc)
    truth = set(sc.poisoned_rows.tolist())
    flagged = set(ac.flagged_rows.tolist())
    assert len(flagged & truth) / len(truth) >= 0.8 and len(flagged & truth) / len(flagged) >= 0.8
    poisoned_classes = [c.label for c in ac.classes if c.poisoned]
    assert poisoned_classes == [sc.trigger.target]


def test_calibrated_spectral_signatures_find_the_pixel_trigger(get_scenario):
    sc = get_scenario("digits", 0, True)
    _, ss, _ = detect(sc)
    assert ss.calibrated and ss.poisoned_classes == [sc.trigger.target]
    truth = set(sc.poisoned_rows.tolist())
    assert len(set(ss.flagged_rows.tolist()) & truth) / len(ss.flagged_rows) >= 0.8
    _, clean, _ = detect(get_scenario("digits", 0, False))
    assert not clean.poisoned


def test_strip_flags_triggered_inputs_of_a_black_box_sklearn_model(get_scenario):
    from sklearn.neural_network import MLPClassifier

    sc = get_scenario("digits", 0, True)
    est = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0).fit(sc.Xtr, sc.ytr)
    model = SklearnModel(est)
    triggered = sc.trigger.apply(sc.Xte[sc.yte != sc.trigger.target][:150])
    assert np.mean(model.predict(triggered) == sc.trigger.target) > 0.9
    st = strip_test(model.predict_proba, np.vstack([sc.Xte[:150], triggered]), sc.Xte, seed=0)
    assert st.poisoned
    hit = np.mean(st.flagged_rows >= 150)  # indices 150.. are the triggered inputs
    assert hit >= 0.8
    clean = strip_test(model.predict_proba, sc.Xte, sc.Xte, seed=1)
    assert not clean.poisoned


def test_spectral_signatures_flags_a_small_separated_subpopulation():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(600, 16))
    y = np.repeat([0, 1, 2], 200)
    poison = np.arange(0, 12)           # 6% of class 0, shifted along one direction
    A[poison, 3] += 12.0
    ss = spectral_signatures(A, y, fraction=0.06)
    assert ss.poisoned_classes == [0]
    assert set(poison.tolist()) <= set(ss.flagged_rows.tolist())
    clean = spectral_signatures(rng.normal(size=(600, 16)), y, fraction=0.06)
    assert not clean.poisoned


@pytest.mark.parametrize("bad", [0.0, 0.5, -0.1, 1.2, float("nan")])
def test_poisoned_fraction_outside_the_open_interval_is_refused(bad):
    with pytest.raises(UserError, match=r"above 0 and below 0\.5"):
        spectral_signatures(np.zeros((40, 3)), np.repeat([0, 1], 20), fraction=bad)


def test_activations_from_torchscript_sequential_match_the_module(get_scenario):
    sc = get_scenario("breast_cancer", 0, False)
    module = sc.model.module
    scripted = torch.jit.script(module)
    a = penultimate_activations(module, sc.Xte[:20])
    b = penultimate_activations(scripted, sc.Xte[:20])
    assert a.shape == (20, 32) and np.allclose(a, b, atol=1e-5)
    named = penultimate_activations(module, sc.Xte[:5], layer="1")  # the input of the first ReLU
    assert named.shape == (5, 64)
    with pytest.raises(DataError, match="no layer named"):
        penultimate_activations(module, sc.Xte[:5], layer="nope")


def test_models_without_activations_say_why(get_scenario):
    from sklearn.linear_model import LogisticRegression

    sc = get_scenario("breast_cancer", 0, False)
    sk = SklearnModel(LogisticRegression(max_iter=200).fit(sc.Xtr, sc.ytr))
    with pytest.raises(NoActivations, match="exposes no layer activations"):
        penultimate_activations(sk, sc.Xte[:5])

    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(30, 8)
            self.b = torch.nn.Linear(8, 2)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    with pytest.raises(NoActivations, match="not a plain Sequential"):
        penultimate_activations(torch.jit.script(Branchy()), sc.Xte[:5])


def test_strip_inputs_are_checked():
    f = lambda X: np.full((len(X), 2), 0.5)  # noqa: E731
    with pytest.raises(DataError, match="at least 20 held-out rows"):
        strip_test(f, np.zeros((5, 3)), np.zeros((10, 3)))
    with pytest.raises(DataError, match="fpr"):
        strip_test(f, np.zeros((5, 3)), np.zeros((30, 3)), fpr=0.6)
    with pytest.raises(DataError, match="shape"):
        strip_test(f, np.zeros((5, 3)), np.zeros((30, 4)))
