"""Layer extraction: the chain computes what the model predicts, for families of models; refusals name
the layer."""

from __future__ import annotations

import numpy as np
import pytest

from modelshield.private_inference.network import Unsupported, extract
from modelshield.protect.loader import load_model


def _skl_models():
    from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    return [
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        make_pipeline(StandardScaler(), LinearSVC()),
        make_pipeline(StandardScaler(), RidgeClassifier()),
        make_pipeline(StandardScaler(), SGDClassifier(random_state=0)),
        LogisticRegression(max_iter=2000),
        *[make_pipeline(StandardScaler(), MLPClassifier((8,), activation=a, max_iter=300, random_state=0))
          for a in ("relu", "tanh", "logistic", "identity")],
    ]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("k", range(9))
def test_sklearn_chain_equals_model(k, n_classes, rng):
    X = rng.normal(size=(300, 6)) * rng.uniform(0.5, 50, size=6) + rng.normal(size=6) * 10
    y = (X @ rng.normal(size=6) > 0).astype(int) if n_classes == 2 else np.digitize(X[:, 0], np.quantile(X[:, 0], [1 / 3, 2 / 3]))
    est = _skl_models()[k].fit(X, y)
    m = load_model(est)
    net = extract(m)
    net.verify(m, X)  # raises when the chain disagrees with the model
    assert np.array_equal(np.asarray(net.classes)[net.predict(X)], est.predict(X))


@pytest.mark.parametrize("act", ["ReLU", "Sigmoid", "Tanh", "square"])
def test_torch_chain_equals_model(act, rng):
    import torch

    class Sq(torch.nn.Module):
        def forward(self, x):
            return x * x

    torch.manual_seed(1)
    a = Sq() if act == "square" else getattr(torch.nn, act)()
    mod = torch.nn.Sequential(torch.nn.Linear(5, 7), a, torch.nn.Linear(7, 3)).eval()
    X = rng.normal(size=(50, 5))
    for source in (mod, torch.jit.script(mod)):
        m = load_model(source)
        net = extract(m)
        assert [getattr(layer, "kind", "dense") for layer in net.layers][1] == ("square" if act == "square" else act.lower())
        with torch.no_grad():
            ref = source(torch.as_tensor(X, dtype=torch.float32)).numpy()
        assert np.allclose(net.forward(X), ref, atol=1e-4)


@pytest.mark.parametrize("layer", ["Conv1d", "LayerNorm", "BatchNorm1d"])
def test_unsupported_torch_layer_named(layer):
    import torch

    extra = {"Conv1d": lambda: torch.nn.Conv1d(1, 1, 1), "LayerNorm": lambda: torch.nn.LayerNorm(7),
             "BatchNorm1d": lambda: torch.nn.BatchNorm1d(7)}[layer]()
    mod = torch.nn.Sequential(torch.nn.Linear(5, 7), extra, torch.nn.Linear(7, 2)).eval()
    with pytest.raises(Unsupported, match=layer) as e:
        extract(load_model(mod, input_shape=(5,)))
    assert e.value.exit_code == 2 and "\n" not in str(e.value)


def test_unsupported_sklearn_model_named(rng):
    from sklearn.ensemble import RandomForestClassifier

    X = rng.normal(size=(40, 4))
    rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, X[:, 0] > 0)
    with pytest.raises(Unsupported, match="RandomForestClassifier"):
        extract(load_model(rf))


def test_skip_connection_refused_by_verify(rng):
    import torch

    class Skip(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(4, 4)
            self.b = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.b(self.a(x) + x)  # not the plain chain a -> b

    torch.manual_seed(0)
    mod = Skip().eval()
    with torch.no_grad():
        mod.a.weight.mul_(0.01)
    m = load_model(mod)
    net = extract(m)
    X = rng.normal(size=(200, 4)) * 3
    with pytest.raises(Unsupported, match="plain chain"):
        net.verify(m, X)
