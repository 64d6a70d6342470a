"""Numeric-feature validation shared by membership inference and DP training."""

from __future__ import annotations

import numpy as np
import pytest

from modelshield.data.dataset import Dataset
from modelshield.data.numeric import non_numeric_columns, numeric_features, require_numeric
from modelshield.errors import DataError


def test_non_numeric_columns_names_columns_and_first_cell():
    X = np.array([["1.5", "Female", 3], ["?", "Male", 4], ["2", "Male", None], ["", "Female", 1]], dtype=object)
    bad = non_numeric_columns(X, ["age", "sex", "hours"])
    assert [(b.column, b.count, b.first_row, b.first_value) for b in bad] == [
        ("age", 1, 1, "?"), ("sex", 4, 0, "Female")]
    assert non_numeric_columns(np.zeros((3, 2))) == []
    assert non_numeric_columns(np.array([["1", "2e-3"]], dtype=object)) == []


def test_require_numeric_raises_a_data_error_with_a_hint():
    ds = Dataset(X=np.array([[1.0, "?"], [2.0, "3"]], dtype=object), y=np.array([0, 1]),
                 feature_names=["a", "b"])
    with pytest.raises(DataError, match=r"train: non-numeric values in column\(s\) 'b' \(1 cells\).*"
                                        r"row 1 of 'b' is '\?'") as err:
        require_numeric(ds, "train")
    assert "--" not in str(err.value)
    assert err.value.cli_message().endswith("; pass --features with numeric columns only")
    ok = Dataset(X=np.array([[1, "2"], [3, "4.5"]], dtype=object), y=np.array([0, 1]))
    assert numeric_features(ok, "train").dtype == np.float32
