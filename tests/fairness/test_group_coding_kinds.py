"""Group coding gives identical codes and values whatever kind of column users pass (object, numpy unicode
of any width, pandas categorical with unused or unsorted categories, integer codes), so the fast paths for
unicode and categorical columns (issue 21.4) cannot change a metric."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelshield.errors import DataError
from modelshield.fairness.metrics import encode_groups, fairness_metrics

WORDS = ["", "a", "b", "ab", "Black", "White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "é", "日本", "zz", "a b",
         "Other", "x" * 37]


def _column(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.choice(np.array(WORDS[:k], dtype=object), n)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 2, 5, len(WORDS)])
def test_every_input_kind_codes_alike(seed, k):
    rng = np.random.default_rng(seed)
    col = _column(rng, 500, k)
    ref = encode_groups({"g": col})
    kinds = {
        "unicode": col.astype(str),
        "wide_unicode": col.astype("U64"),
        "categorical": pd.Categorical(col),
        "categorical_unsorted_unused": pd.Categorical(col, categories=[*reversed(WORDS), "never"]),
        "series_category": pd.Series(col, dtype="category"),
    }
    for name, values in kinds.items():
        got = encode_groups({"g": values})
        assert np.array_equal(got.codes, ref.codes), name
        assert got.values == ref.values and got.names == ref.names, name


@pytest.mark.parametrize("seed", range(3))
def test_metrics_equal_across_kinds(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    sex, race = _column(rng, n, 2), _column(rng, n, 6)
    y = rng.integers(0, 2, n)
    p = rng.integers(0, 2, n)
    ref = fairness_metrics(y, p, {"sex": sex, "race": race}, attributes=["sex", "race"])
    for conv in (lambda c: c.astype(str), pd.Categorical):
        got = fairness_metrics(y, p, {"sex": conv(sex), "race": conv(race)}, attributes=["sex", "race"])
        assert got.disparity == ref.disparity
        for key in ref.rates:
            assert np.array_equal(np.asarray(got.rates[key]), np.asarray(ref.rates[key]), equal_nan=True)


def test_missing_values_in_a_categorical_are_refused():
    with pytest.raises(DataError, match="missing values"):
        encode_groups({"g": pd.Categorical(["a", None, "b"])})
