from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelshield.data.dataset import Dataset
from modelshield.data.loaders import check_model_width, load_dataset
from modelshield.errors import DataError, FormatError, InputNotFoundError
from modelshield.protect.loader import load_model


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "age": rng.integers(18, 80, 50), "income": rng.normal(50, 10, 50), "sex": rng.choice(["F", "M"], 50),
        "label": rng.integers(0, 2, 50),
    })


def test_csv_selects_target_sensitive_and_features_in_file_order(tmp_path, frame):
    p = tmp_path / "d.csv"
    frame.to_csv(p, index=False)
    ds = load_dataset(p, target="label", sensitive=["sex"])
    assert ds.feature_names == ["age", "income"]
    assert ds.X.dtype == np.float64 and ds.X.shape == (50, 2)
    np.testing.assert_array_equal(ds.y, frame["label"].to_numpy())
    assert ds.sensitive["sex"].tolist() == frame["sex"].tolist()
    assert ds.feature_types == ["integer", "continuous"]
    assert ds.lower[0] == frame["age"].min() and ds.upper[1] == frame["income"].max()
    ds2 = load_dataset(p, target="label", sensitive=["sex"], features=["income", "age"], immutable=["age"])
    assert ds2.feature_names == ["income", "age"] and ds2.mutable_mask.tolist() == [True, False]


def test_parquet_round_trip(tmp_path, frame):
    p = tmp_path / "d.parquet"
    frame.to_parquet(p)
    ds = load_dataset(p, target="label", sensitive=["sex"])
    assert ds.X.shape == (50, 2) and ds.name == "d.parquet"


def test_npz_with_names_and_sensitive(tmp_path):
    p = tmp_path / "d.npz"
    X = np.arange(12, dtype=float).reshape(4, 3)
    np.savez(p, X=X, y=np.array([0, 1, 0, 1]), feature_names=np.array(["a", "b", "c"]),
             sensitive_group=np.array([1, 1, 2, 2]))
    ds = load_dataset(p, sensitive=["group"])
    assert ds.feature_names == ["a", "b", "c"] and ds.sensitive["group"].tolist() == [1, 1, 2, 2]
    sub = load_dataset(p, features=["c", "a"])
    np.testing.assert_array_equal(sub.X, X[:, [2, 0]])
    assert load_dataset(p, immutable=["b"]).immutable == frozenset({"b"})
    with pytest.raises(DataError, match=r"^immutable column 'f9'") as ei:  # an unknown name is never ignored
        load_dataset(p, immutable=["f9"])
    assert "--immutable" in (ei.value.cli_hint or "")
    np.savez(tmp_path / "plain.npz", X=X, y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="feature_names"):
        load_dataset(tmp_path / "plain.npz", immutable=["f9"])


def test_pipes_and_devices_are_refused_not_read(tmp_path):
    import os

    fifo = tmp_path / "data.fifo"
    os.mkfifo(fifo)
    with pytest.raises(FormatError, match="not a regular file"):  # opening it would block forever
        load_dataset(fifo, target="y")


def test_format_is_detected_by_content_not_extension(tmp_path, frame):
    p = tmp_path / "really-parquet.csv"
    frame.to_parquet(p)
    assert load_dataset(p, target="label", sensitive=["sex"]).X.shape == (50, 2)


@pytest.mark.parametrize(("kwargs", "role", "flag"), [({"target": "nope"}, "target", "--target"),
                                                      ({"sensitive": ["race"]}, "sensitive", "--sensitive"),
                                                      ({"features": ["zzz"]}, "feature", "--features")])
def test_unknown_column_names_its_role_and_the_flag_only_in_the_hint(tmp_path, frame, kwargs, role, flag):
    p = tmp_path / "d.csv"
    frame.to_csv(p, index=False)
    with pytest.raises(DataError, match=f"^{role} column ") as ei:
        load_dataset(p, **kwargs)
    assert "columns are: age, income, sex, label" in str(ei.value) and "--" not in str(ei.value)
    assert ei.value.cli_hint is not None and flag in ei.value.cli_hint


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(InputNotFoundError):
        load_dataset(tmp_path / "missing.csv")
    bad = tmp_path / "binary.csv"
    bad.write_bytes(b"\x00\xff\xfe\x00" * 100)
    with pytest.raises(FormatError):
        load_dataset(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(FormatError, match="empty"):
        load_dataset(empty)


def test_width_mismatch_names_features(breast_cancer, sk_logreg):
    _, Xte, _, yte = breast_cancer
    ds = Dataset(X=Xte[:, :10], y=yte, feature_names=[f"c{i}" for i in range(10)])
    with pytest.raises(DataError, match="expects 30 features but the data has 10") as ei:
        check_model_width(ds, load_model(sk_logreg))
    assert "--" not in str(ei.value) and "--features" in (ei.value.cli_hint or "")


def test_dataset_sample_split_and_clip():
    X = np.random.default_rng(0).normal(size=(200, 3))
    y = np.r_[np.zeros(150), np.ones(50)].astype(int)
    ds = Dataset(X=X, y=y)
    s = ds.sample(40, seed=1)
    assert len(s) == 40 and s.y.mean() == pytest.approx(0.25)
    assert ds.sample(40, seed=1).X.tolist() == s.X.tolist()
    a, b = ds.split(0.25, seed=0)
    assert len(a) == 150 and len(b) == 50
    assert np.all(ds.clip(X * 10) <= ds.upper) and np.all(ds.clip(X * 10) >= ds.lower)
    with pytest.raises(DataError):
        Dataset(X=X, y=y[:5])


def test_missing_labels_and_non_numeric_cells_are_data_errors(tmp_path, breast_cancer, sk_logreg):
    _, Xte, _, yte = breast_cancer
    frame = pd.DataFrame(Xte[:20], columns=[f"f{i}" for i in range(30)])
    frame["label"] = yte[:20].astype(float)
    frame.loc[3, "label"] = np.nan
    p = tmp_path / "nolabel.csv"
    frame.to_csv(p, index=False)
    with pytest.raises(DataError, match=r"^target column 'label' has 1 missing"):
        load_dataset(p, target="label")
    frame["label"] = yte[:20]
    frame["f4"] = frame["f4"].astype(object)
    frame.loc[5, "f4"] = "?"
    p2 = tmp_path / "q.csv"
    frame.to_csv(p2, index=False)
    ds = load_dataset(p2, target="label")
    with pytest.raises(DataError, match=r"non-numeric values in column\(s\) 'f4'.*'\?'"):
        check_model_width(ds, load_model(sk_logreg))


def test_forgotten_target_is_hinted(breast_cancer, sk_logreg):
    _, Xte, _, yte = breast_cancer
    ds = Dataset(X=np.c_[Xte, yte], feature_names=[f"f{i}" for i in range(31)])
    with pytest.raises(DataError, match=r"is the label column among them\?") as ei:
        check_model_width(ds, load_model(sk_logreg))
    assert "--" not in str(ei.value) and "--target" in (ei.value.cli_hint or "")
