"""Fixtures for the privacy tests: small leaky and non-leaky models built on the fly."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def noisy_tabular():
    """(X_in, y_in, X_out, y_out, X_other, y_other): 300 members, 300 non-members and 300 rows of
    the same distribution for a model that never saw either set; 15 % flipped labels."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=900, n_features=8, n_informative=5, flip_y=0.15, random_state=1)
    return X[:300], y[:300], X[300:600], y[300:600], X[600:], y[600:]


@pytest.fixture(scope="session")
def leaky_forest(noisy_tabular):
    """A fully grown random forest: memorises its (noisy) training rows."""
    from sklearn.ensemble import RandomForestClassifier

    X_in, y_in = noisy_tabular[:2]
    return RandomForestClassifier(n_estimators=15, random_state=0, n_jobs=1).fit(X_in, y_in)


@pytest.fixture(scope="session")
def blind_forest(noisy_tabular):
    """The same recipe trained on other rows: the 'members' are not members at all (null case)."""
    from sklearn.ensemble import RandomForestClassifier

    X_o, y_o = noisy_tabular[4:]
    return RandomForestClassifier(n_estimators=15, random_state=0, n_jobs=1).fit(X_o, y_o)


@pytest.fixture(scope="session")
def bc_split(breast_cancer):
    return breast_cancer


def make_mlp(seed: int = 0, hidden: int = 64):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(30, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))


@pytest.fixture(scope="session")
def overfit_mlp(breast_cancer):
    """A 30-64-2 MLP trained long on breast cancer with 10 % flipped training labels; returns
    (module, y_train_as_trained)."""
    import torch

    from modelshield.privacy.membership import TrainingRecipe

    torch.set_num_threads(1)
    Xtr, _, ytr, _ = breast_cancer
    rng = np.random.default_rng(0)
    flip = rng.random(len(ytr)) < 0.1
    y = np.where(flip, 1 - ytr, ytr)
    net = TrainingRecipe(epochs=400, lr=1e-2).fit(make_mlp(), Xtr, y, seed=0)
    return net, y
