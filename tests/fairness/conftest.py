"""Fixtures for the fairness tests: a model trained on planted-bias data (exact ground truth)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def planted():
    """(train, test, fitted LogisticRegression) on make_planted_bias(bias=0.5)."""
    from sklearn.linear_model import LogisticRegression

    from modelshield.data.real import make_planted_bias

    ds = make_planted_bias(6000, bias=0.5, seed=0)
    train, test = ds.split(test_size=0.4, seed=0)
    clf = LogisticRegression(max_iter=1000).fit(train.X, train.y)
    return train, test, clf
