"""The noise-consistency adversarial-input detector."""

from __future__ import annotations

import numpy as np
import pytest

from modelshield.attacks import PGD, HopSkipJump
from modelshield.attacks.detect import NoiseConsistencyDetector, detection_auc
from modelshield.attacks.threat import ThreatModel
from modelshield.errors import DataError, UserError


@pytest.fixture(scope="module")
def fitted(mlp, breast_cancer):
    Xtr = breast_cancer[0]
    return NoiseConsistencyDetector(seed=0).fit(mlp, Xtr[:200])


def test_separates_pgd_examples_from_clean_inputs(fitted, mlp, cancer_test):
    ds, X, y = cancer_test
    res = PGD(threat=ThreatModel.for_dataset(ds, eps=0.5)).generate(mlp, X, y)
    adv = res.x_adv[res.success]
    clean = X[res.clean_correct]
    assert len(adv) >= 20
    auc = detection_auc(fitted, clean, adv)
    assert auc > 0.85
    # and at a 5 % false-positive threshold it flags most attacks and few clean inputs
    assert fitted.predict(adv).mean() > 0.5
    assert fitted.predict(clean).mean() < 0.15


def test_works_for_black_box_models(forest, cancer_test, breast_cancer):
    ds, X, y = cancer_test
    det = NoiseConsistencyDetector(seed=0).fit(forest, breast_cancer[0][:200])
    res = HopSkipJump(threat=ThreatModel.for_dataset(ds, norm="2", eps=3.0, query_budget=400),
                      max_iter=15).generate(forest, X[:80], y[:80])
    assert res.success.sum() >= 10
    assert detection_auc(det, X[:80][res.clean_correct], res.x_adv[res.success]) > 0.7


def test_scores_are_deterministic_and_bounded(fitted, cancer_test):
    _, X, _ = cancer_test
    a, b = fitted.score(X), fitted.score(X)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 1


def test_misuse_is_a_clear_error(mlp, cancer_test):
    _, X, _ = cancer_test
    with pytest.raises(UserError, match="not fitted"):
        NoiseConsistencyDetector().score(X)
    det = NoiseConsistencyDetector().fit(mlp, X)
    with pytest.raises(DataError, match="features"):
        det.score(X[:, :5])
    with pytest.raises(UserError):
        det.threshold(fpr=1.5)
