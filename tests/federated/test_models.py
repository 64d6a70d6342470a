"""The numpy models of the federated simulation: exact gradients, and both learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from modelshield.errors import UserError
from modelshield.federated import FederatedConfig, make_model, prepare, run, simulate


def _loss(model, w, x, onehot):
    z = model.logits(w, x)
    z = z - z.max(axis=1, keepdims=True)
    return float(-(onehot * (z - np.log(np.exp(z).sum(axis=1, keepdims=True)))).sum(axis=1).mean())


@pytest.mark.parametrize("name", ["logistic", "mlp"])
def test_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(0)
    model = make_model(name, 4, 3, hidden=5)
    x, y = rng.normal(size=(7, 4)), rng.integers(0, 3, 7)
    onehot = np.eye(3)[y]
    w = rng.normal(size=model.size) * 0.5
    g = model.grad(w, x, onehot)
    assert g.shape == (model.size,) == w.shape
    eps = 1e-6
    num = np.array([(_loss(model, w + eps * e, x, onehot) - _loss(model, w - eps * e, x, onehot)) / (2 * eps)
                    for e in np.eye(model.size)])
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7)


def test_unknown_model_refused():
    with pytest.raises(UserError, match="model must be one of"):
        make_model("resnet", 4, 2)


def test_mlp_learns_and_its_size_is_in_the_configuration():
    X, Y = load_breast_cancer(return_X_y=True)
    r = simulate(X, Y, clients=5, rounds=5, model="mlp", hidden=8)
    assert r.final_accuracy > 0.9
    assert r.config["n_params"] == 30 * 8 + 8 + 8 * 2 + 2 and len(r.weights) == r.config["n_params"]


def test_the_result_does_not_depend_on_client_order():
    X, Y = load_breast_cancer(return_X_y=True)
    plan = prepare(X, Y, FederatedConfig(clients=6, rounds=2, fraction=0.7, dp_noise=0.5, clip=1.0))
    w = plan.initial_weights()
    forward = {c: plan.client_update(c, w, 1) for c in plan.participants(1)}
    backward = {c: plan.client_update(c, w, 1) for c in reversed(plan.participants(1))}
    assert all(np.array_equal(forward[c], backward[c]) for c in forward)
    assert run(plan).weights == run(plan).weights
