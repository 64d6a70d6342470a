"""Proxy detection: mutual information and AUC of features about a sensitive attribute."""

from __future__ import annotations

import numpy as np
import pytest

from modelshield.data.real import make_planted_bias
from modelshield.fairness.proxies import find_proxies, mutual_information


def test_mutual_information_hand_values():
    a = np.array([0, 0, 1, 1])
    assert mutual_information(a, a) == pytest.approx(np.log(2))  # a determines itself: H = log 2
    assert mutual_information(a, np.array([0, 1, 0, 1])) == pytest.approx(0.0)


def test_planted_proxy_ranks_first_and_noise_is_near_zero():
    ds = make_planted_bias(4000, bias=0.3, seed=1)
    rep = find_proxies(ds.X, ds.sensitive, feature_names=ds.feature_names, feature_types=ds.feature_types,
                       seed=0)
    group = [s for s in rep.scores if s.attribute == "group"]
    assert group[0].feature == "group" and group[0].direct and group[0].normalized_mi == pytest.approx(1.0)
    assert group[1].feature == "proxy" and not group[1].direct
    assert group[1].auc > 0.9 and group[1].normalized_mi > 0.5
    for s in group[2:]:
        assert s.normalized_mi < 0.02 and 0.4 < s.auc < 0.6
    assert rep.strongest("group", 1)[0].feature == "proxy"
    # region is independent of every feature
    assert all(s.normalized_mi < 0.02 for s in rep.scores if s.attribute == "region")
    assert rep.combined_auc["group"] > 0.9 and rep.combined_auc["region"] < 0.6


def test_subsample_and_determinism():
    ds = make_planted_bias(8000, bias=0.3, seed=2)
    a = find_proxies(ds.X, ds.sensitive, feature_names=ds.feature_names, max_rows=1000, seed=3, combined=False)
    b = find_proxies(ds.X, ds.sensitive, feature_names=ds.feature_names, max_rows=1000, seed=3, combined=False)
    assert a.rows_used == 1000 and a.scores == b.scores and a.combined_auc == {}


def test_nan_values_get_their_own_bin():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 2, 2000)
    x = rng.normal(size=2000)
    x[s == 1] = np.nan  # missingness reveals the group
    rep = find_proxies(x[:, None], {"s": s}, feature_names=["x"], combined=False)
    assert rep.scores[0].auc > 0.99
