"""Extraction simulation: query generation, output hardening, and real extraction curves."""

from __future__ import annotations

import numpy as np
import pytest

from modelshield.data.dataset import Dataset
from modelshield.errors import UserError
from modelshield.models.callable import CallableModel
from modelshield.theft.extraction import (
    harden_outputs,
    knockoff_queries,
    random_queries,
    simulate_extraction,
    train_surrogate,
)


def _typed_data() -> Dataset:
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=200), rng.integers(0, 10, 200), rng.integers(0, 2, 200), rng.choice([3, 7, 11], 200)]
    return Dataset(X=X.astype(float), feature_types=["continuous", "integer", "binary", "categorical"])


def test_random_queries_respect_bounds_and_types():
    d = _typed_data()
    Q = random_queries(d, 2000, np.random.default_rng(1))
    assert Q.shape == (2000, 4)
    assert np.all(Q >= d.lower) and np.all(Q <= d.upper)
    assert np.all(Q[:, 1] == np.round(Q[:, 1]))
    assert set(np.unique(Q[:, 2])) == {0.0, 1.0}
    assert set(np.unique(Q[:, 3])) == {3.0, 7.0, 11.0}
    # uniform, not a copy of the data: the continuous column covers the range evenly
    assert abs(np.mean(Q[:, 0]) - (d.lower[0] + d.upper[0]) / 2) < 0.1 * (d.upper[0] - d.lower[0])


def test_knockoff_queries_are_perturbed_public_rows():
    d = _typed_data()
    Q1 = knockoff_queries(d, 500, np.random.default_rng(3))
    Q2 = knockoff_queries(d, 500, np.random.default_rng(3))
    np.testing.assert_array_equal(Q1, Q2)
    assert np.all(Q1 >= d.lower) and np.all(Q1 <= d.upper)
    assert set(np.unique(Q1[:, 3])) <= {3.0, 7.0, 11.0}
    assert set(np.unique(Q1[:, 2])) <= {0.0, 1.0}
    assert np.all(Q1[:, 1] == np.round(Q1[:, 1]))
    # continuous features are perturbed: almost no query equals a public row exactly
    exact = (Q1[:, None, 0] == d.X[None, :, 0]).any(axis=1).mean()
    assert exact < 0.05


def test_harden_outputs():
    p = np.array([[0.62, 0.38], [0.04, 0.96]])
    np.testing.assert_array_equal(harden_outputs(p, "top1"), [[1, 0], [0, 1]])
    r = harden_outputs(np.array([[0.62, 0.38], [0.04, 0.96]]), "rounded", decimals=1)
    np.testing.assert_allclose(r, [[0.6, 0.4], [0.0, 1.0]])
    np.testing.assert_allclose(harden_outputs(p, "probabilities"), p)
    with pytest.raises(UserError, match="unknown output mode"):
        harden_outputs(p, "logits")


@pytest.mark.parametrize("kind", ["mlp", "gbt"])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_surrogate_learns_a_simple_rule(kind, soft, n_classes):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    Xt = rng.normal(size=(600, 5))

    def scores(A):
        logits = np.stack([A[:, 0], A[:, 1], -A[:, 0] - A[:, 1]][:n_classes], axis=1) * 3
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p = scores(X)
    targets = p if soft else np.eye(n_classes)[p.argmax(axis=1)]
    sur = train_surrogate(X, targets, n_classes, kind=kind, seed=0)
    assert sur.kind == kind
    assert np.mean(sur.predict_index(Xt) == scores(Xt).argmax(axis=1)) > 0.9


def test_extraction_is_query_only_and_counts_queries(cancer_mlp):
    victim, heldout = cancer_mlp
    calls = []

    def api(X):
        calls.append(len(X))
        return victim.predict_proba(X)

    black_box = CallableModel(api, classes=[0, 1], n_features=30, query_only=True)
    public, evaluation = heldout.split(0.5, seed=0)
    res = simulate_extraction(black_box, public, evaluation, budgets=[30, 300], seed=0, surrogate_steps=150)
    # one batch per strategy of max(budget) queries, plus the owner's evaluation of the held-out rows
    assert sorted(calls) == sorted([len(evaluation), 300, 300])
    assert res.queries_used == 600
    best = res.best("probabilities")
    # breast cancer is nearly linearly separable: 300 queries copy the MLP well above the baseline
    assert best.fidelity >= 0.9
    assert best.fidelity > res.fidelity_baseline + 0.2
    assert {p.output for p in res.points} == {"probabilities", "top1", "rounded"}


def test_extraction_curve_on_adult_grows_with_budget(adult_hgb):
    model, heldout, _ = adult_hgb
    public, evaluation = heldout.split(0.5, seed=0)
    res = simulate_extraction(model, public, evaluation, budgets=[20, 1000], strategies=["knockoff", "random"],
                              outputs=["probabilities"], seed=0, surrogate_steps=150)
    knock = res.curve("knockoff", "probabilities")
    rand = res.curve("random", "probabilities")
    assert knock[-1].fidelity > knock[0].fidelity - 0.01
    # knowledge of the data distribution is worth a lot on skewed tabular data
    assert knock[-1].fidelity > rand[-1].fidelity
    assert knock[-1].fidelity > res.fidelity_baseline
    assert 0.8 < res.victim_accuracy < 0.95


def test_label_only_model_gets_top1_series_only(breast_cancer):
    from sklearn.svm import LinearSVC

    from modelshield.models.sklearn import SklearnModel

    Xtr, Xte, ytr, yte = breast_cancer
    svc = SklearnModel(LinearSVC().fit(Xtr, ytr))
    heldout = Dataset(X=Xte.astype(float), y=yte)
    public, evaluation = heldout.split(0.5, seed=0)
    res = simulate_extraction(svc, public, evaluation, budgets=[200], seed=0, surrogate_steps=100)
    assert res.outputs == ["top1"] and not res.has_probabilities
    assert res.best("top1").fidelity > 0.85


def test_extraction_is_deterministic(cancer_mlp):
    victim, heldout = cancer_mlp
    public, evaluation = heldout.split(0.5, seed=0)
    kw = dict(budgets=[50, 100], outputs=["probabilities"], seed=7, surrogate_steps=60)
    a = simulate_extraction(victim, public, evaluation, **kw)
    b = simulate_extraction(victim, public, evaluation, **kw)
    assert [p.to_row() for p in a.points] == [p.to_row() for p in b.points]


def test_bad_options_are_user_errors(cancer_mlp):
    victim, heldout = cancer_mlp
    with pytest.raises(UserError, match="strategy"):
        simulate_extraction(victim, heldout, heldout, strategies=["jbda"])
    with pytest.raises(UserError, match="positive"):
        simulate_extraction(victim, heldout, heldout, budgets=[0])


@pytest.mark.slow
def test_full_budget_curve_on_adult(adult_hgb):
    """The default budgets 100/1k/10k: knowledge of the population copies the model to >= 90%."""
    model, heldout, _ = adult_hgb
    public, evaluation = heldout.split(0.5, seed=0)
    res = simulate_extraction(model, public, evaluation, strategies=["knockoff"], seed=0)
    assert res.budgets == [100, 1000, 10000]
    curve = res.curve("knockoff", "probabilities")
    assert curve[-1].fidelity >= 0.9
    assert curve[-1].fidelity > curve[0].fidelity
    assert res.best("top1").fidelity >= 0.88
