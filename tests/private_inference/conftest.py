from __future__ import annotations

import numpy as np
import pytest


def square_mlp(breast_cancer, hidden=16, seed=0, steps=150):
    """A 30-hidden-2 MLP with x^2 activation, trained on the standardised breast-cancer rows."""
    import torch

    class Sq(torch.nn.Module):
        def forward(self, x):
            return x * x

    torch.manual_seed(seed)
    Xtr, _, ytr, _ = breast_cancer
    net = torch.nn.Sequential(torch.nn.Linear(30, hidden), Sq(), torch.nn.Linear(hidden, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    X, y = torch.as_tensor(Xtr), torch.as_tensor(ytr)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
    return net.eval()


@pytest.fixture(scope="session")
def sq_mlp(breast_cancer):
    return square_mlp(breast_cancer)


@pytest.fixture(scope="session")
def raw_cancer():
    """Unscaled breast-cancer rows and a StandardScaler+LogisticRegression pipeline fitted on them."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Xtr, ytr)
    return pipe, Xtr, Xte, ytr, yte


@pytest.fixture
def rng():
    return np.random.default_rng(0)
