"""Fixtures for the robustness tests: small real models on bundled data (no downloads)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mlp(torch_mlp):
    from modelshield.models.torch import TorchModel

    return TorchModel(torch_mlp)


@pytest.fixture(scope="session")
def cancer_test(breast_cancer):
    """(Dataset of the held-out rows, X, y) -- 171 rows, standardised."""
    from modelshield.data.dataset import Dataset

    _, Xte, _, yte = breast_cancer
    return Dataset(X=Xte, y=yte, name="breast-cancer-test"), Xte, yte


@pytest.fixture(scope="session")
def forest(breast_cancer):
    from sklearn.ensemble import RandomForestClassifier

    from modelshield.models.sklearn import SklearnModel

    Xtr, _, ytr, _ = breast_cancer
    return SklearnModel(RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(Xtr, ytr))


@pytest.fixture(scope="session")
def adult():
    """UCI Adult (2,000 rows) split in two, with categorical/integer/immutable features declared."""
    from modelshield.data.real import load_adult

    data = load_adult(n=2000, seed=0)
    return data.split(test_size=0.3, seed=0)


@pytest.fixture(scope="session")
def adult_hgb(adult):
    from sklearn.ensemble import HistGradientBoostingClassifier

    from modelshield.models.sklearn import SklearnModel

    tr, _ = adult
    return SklearnModel(HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(tr.X, tr.y))


@pytest.fixture(scope="session")
def iris_mlp():
    """A 3-class MLP on iris (standardised), for DLR and targeted attacks."""
    import torch
    from sklearn.datasets import load_iris

    from modelshield.models.torch import TorchModel

    X, y = load_iris(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return TorchModel(net.eval()), X, y


@pytest.fixture(scope="session")
def digits_cnn():
    """A small CNN on 8x8 digits scaled to [0, 1] (image threat model)."""
    import torch
    from sklearn.datasets import load_digits

    from modelshield.models.torch import TorchModel

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(8 * 64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    xt, yt = torch.as_tensor(X[:1200]), torch.as_tensor(y[:1200])
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return TorchModel(net.eval(), input_shape=(1, 8, 8)), X[1200:1400], y[1200:1400]
