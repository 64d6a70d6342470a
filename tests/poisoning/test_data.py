"""Training-data checks: label issues under planted label flipping, duplicates, leakage, outliers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits

from modelshield.errors import DataError, UserError
from modelshield.poisoning.data import (
    LABEL_METHODS,
    audit_training_data,
    find_duplicates,
    find_label_issues,
    find_outliers,
    out_of_fold_probabilities,
)
from modelshield.poisoning.planted import flip_labels


def _load(name):
    X, y = (load_digits if name == "digits" else load_breast_cancer)(return_X_y=True)
    return X, y


def _recall_precision(flagged, truth):
    f, t = set(np.asarray(flagged).tolist()), set(np.asarray(truth).tolist())
    tp = len(f & t)
    return tp / max(1, len(t)), tp / max(1, len(f))


@pytest.mark.parametrize("name,seed", [("breast_cancer", 0), ("digits", 1)])
def test_label_flipping_at_10pct_is_found_with_recall_and_precision(name, seed):
    X, y = _load(name)
    pl = flip_labels(y, fraction=0.1, seed=seed)
    rep = audit_training_data(X, pl.y, seed=seed)
    recall, precision = _recall_precision(rep.labels.rows, pl.rows)
    assert recall >= 0.8 and precision >= 0.5, (recall, precision)
    assert set(rep.labels.rows.tolist()) <= set(rep.flagged_rows.tolist())


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.2])
@pytest.mark.parametrize("name", ["breast_cancer", "digits"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_flipping_family(name, fraction, seed):
    X, y = _load(name)
    pl = flip_labels(y, fraction=fraction, seed=seed)
    rep = audit_training_data(X, pl.y, seed=seed)
    recall, precision = _recall_precision(rep.labels.rows, pl.rows)
    assert recall >= 0.8 and precision >= (0.5 if fraction >= 0.1 else 0.35), (recall, precision)


def test_clean_labels_give_few_issues():
    X, y = _load("breast_cancer")
    rep = audit_training_data(X, y, seed=0)
    assert rep.labels.rate < 0.03  # a few genuinely ambiguous rows, not a tenth of the data


def test_methods_nest_from_recall_to_precision_and_rank():
    X, y = _load("breast_cancer")
    pl = flip_labels(y, fraction=0.1, seed=3)
    P = out_of_fold_probabilities(X, pl.y, seed=0)
    a = find_label_issues(pl.y, P, method="confident_learning")
    b = find_label_issues(pl.y, P, method="prune_by_noise_rate")
    c = find_label_issues(pl.y, P, method="predicted_neq_given")
    assert len(a.rows) > 0 and len(b.rows) > 0
    assert set(a.rows.tolist()) <= set(c.rows.tolist()) and set(b.rows.tolist()) <= set(c.rows.tolist())
    assert len(c.rows) >= len(b.rows) >= len(a.rows) - 2
    assert np.all(np.diff(b.self_confidence) >= 0)  # most suspicious first
    assert np.allclose(b.self_confidence, P[b.rows, pl.y[b.rows]])


def test_label_issue_inputs_are_checked():
    P = np.full((4, 2), 0.5)
    with pytest.raises(DataError, match="class indices"):
        find_label_issues(np.array([0, 1, 2, 0]), P)
    with pytest.raises(DataError, match="shape"):
        find_label_issues(np.array([0, 1]), P)
    with pytest.raises(DataError, match="unknown label-issue method"):
        find_label_issues(np.array([0, 1, 1, 0]), P, method="vote")
    with pytest.raises(DataError, match="no labels"):
        audit_training_data(np.zeros((4, 2)), None)
    with pytest.raises(DataError, match="single class"):
        audit_training_data(np.random.default_rng(0).random((10, 2)), np.zeros(10))
    assert LABEL_METHODS[0] == "predicted_neq_given"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_duplicates_conflicts_and_leakage_are_found_by_index(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 6))
    y = rng.integers(0, 3, 300)
    X[10] = X[3]                    # exact duplicate, same label
    y[10] = y[3]
    X[20] = X[5]                    # exact duplicate, conflicting label
    y[20] = (y[5] + 1) % 3
    X[30] = X[7] + 1e-6             # near duplicate
    test = rng.normal(size=(50, 6))
    test[4] = X[100]                # leaked exactly
    test[9] = X[200] + 1e-5         # leaked nearly
    rep = find_duplicates(X, y, X_test=test)
    assert [3, 10] in rep.exact_groups and [5, 20] in rep.exact_groups
    assert rep.conflicting_groups == [[5, 20]]
    assert (7, 30) in rep.near_pairs
    assert rep.leaked_exact == [(4, 100)]
    assert (9, 200) in rep.leaked_near
    assert rep.leak_rate == pytest.approx(2 / 50)


def test_clean_random_data_has_no_duplicates_or_leaks():
    rng = np.random.default_rng(5)
    rep = find_duplicates(rng.normal(size=(200, 5)), X_test=rng.normal(size=(40, 5)))
    assert rep.exact_groups == [] and rep.near_pairs == [] and rep.leaked_exact == [] and rep.leaked_near == []


def test_duplicates_width_mismatch_is_a_data_error():
    with pytest.raises(DataError, match="features"):
        find_duplicates(np.zeros((5, 3)), X_test=np.zeros((2, 4)))


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_outliers_rank_first(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 5))
    y = rng.integers(0, 2, 400)
    planted = rng.choice(400, 4, replace=False)
    X[planted] += 25.0
    rep = find_outliers(X, y)
    assert set(planted.tolist()) <= set(rep.rows[:8].tolist())
    assert len(rep.rows) < 20


def test_flip_labels_fraction_is_validated():
    with pytest.raises(UserError, match=r"above 0 and below 0\.5"):
        flip_labels(np.array([0, 1] * 10), fraction=0.5)
    with pytest.raises(UserError, match=r"above 0 and below 0\.5"):
        flip_labels(np.array([0, 1] * 10), fraction=0)


def test_findings_never_carry_values():
    X, y = _load("breast_cancer")
    rep = audit_training_data(X[:200], y[:200], seed=0)
    for arr in (rep.labels.rows, rep.outliers.rows, rep.flagged_rows):
        assert arr.dtype.kind == "i"
