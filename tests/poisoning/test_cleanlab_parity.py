"""Our confident learning equals cleanlab's on shared cases (cleanlab is in the poisoning-bench extra)."""

from __future__ import annotations

import numpy as np
import pytest

cleanlab_filter = pytest.importorskip("cleanlab.filter")

from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402

from modelshield.poisoning.data import LABEL_METHODS, find_label_issues, out_of_fold_probabilities  # noqa: E402
from modelshield.poisoning.planted import flip_labels  # noqa: E402


@pytest.mark.parametrize("method", LABEL_METHODS)
@pytest.mark.parametrize("loader,fraction,seed", [(load_breast_cancer, 0.1, 0), (load_digits, 0.2, 1)])
def test_same_rows_as_cleanlab(loader, fraction, seed, method):
    X, y = loader(return_X_y=True)
    pl = flip_labels(y, fraction=fraction, seed=seed)
    P = out_of_fold_probabilities(X, pl.y, seed=seed)
    ours = find_label_issues(pl.y, P, method=method)
    theirs = np.flatnonzero(cleanlab_filter.find_label_issues(pl.y, P, filter_by=method))
    assert len(theirs) > 0
    assert sorted(ours.rows.tolist()) == theirs.tolist()


@pytest.mark.parametrize("seed", range(5))
def test_same_rows_as_cleanlab_on_random_probabilities(seed):
    rng = np.random.default_rng(seed)
    K = int(rng.integers(2, 6))
    P = rng.dirichlet(np.ones(K) * 0.7, size=300)
    y = rng.integers(0, K, 300)
    for method in LABEL_METHODS:
        ours = find_label_issues(y, P, method=method)
        theirs = np.flatnonzero(cleanlab_filter.find_label_issues(y, P, filter_by=method))
        assert sorted(ours.rows.tolist()) == theirs.tolist()
