"""modelshield's own hardened models (``harden dp`` / ``harden fairness``) scan clean and load safely."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelshield.artifacts import FileStatus, scan
from modelshield.artifacts.restricted import safe_load
from modelshield.data.dataset import Dataset


def _data(n: int = 240) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    g = rng.integers(0, 2, n)
    X = np.column_stack([rng.normal(size=(n, 3)), g]).astype(np.float64)
    y = ((X[:, 0] + 0.5 * g + rng.normal(scale=0.5, size=n)) > 0.3).astype(np.int64)
    return X, y, g


def _assert_clean_and_loads(path, X: np.ndarray, expected: np.ndarray) -> None:
    report = scan(path)
    fr = report.files[0]
    assert fr.status is FileStatus.CLEAN, [f.title for f in fr.findings]
    assert not report.blocks("low"), [f.title for f in fr.findings]
    loaded = safe_load(path)
    assert np.array_equal(loaded.predict(X), expected)


def test_dp_logistic_regression_scans_clean_and_loads(tmp_path):
    import torch

    from modelshield.harden.dp import DPLogisticRegression

    torch.set_num_threads(1)
    X, y, _g = _data()
    model = DPLogisticRegression(epsilon=2.0, epochs=2, seed=0).fit(X, y)
    path = tmp_path / "dp.joblib"
    joblib.dump(model, path)
    globals_seen = scan(path).files[0].details["globals"]
    assert any("modelshield.harden.dp.DPLogisticRegression" in k for k in globals_seen)
    _assert_clean_and_loads(path, X, model.predict(X))


@pytest.mark.parametrize("constraint", ["demographic_parity", "equalized_odds"])
def test_fairness_mitigated_models_scan_clean_and_load(tmp_path, constraint):
    pytest.importorskip("fairlearn")
    from modelshield.harden.fairness import mitigate

    X, y, g = _data()
    ds = Dataset(X=X, y=y, feature_names=["a", "b", "c", "g"], sensitive={"g": g})
    rep = mitigate(LogisticRegression().fit(X, y), ds, sensitive=["g"], constraint=constraint,
                   methods=["exponentiated_gradient", "threshold_optimizer"], max_iter=10, seed=0)
    saved = [o for o in rep.outcomes if o.model is not None]
    assert {o.method for o in saved} == {"exponentiated_gradient", "threshold_optimizer"}
    for o in saved:
        path = tmp_path / f"{o.method}.joblib"
        joblib.dump(o.model, path)
        globals_seen = scan(path).files[0].details["globals"]
        assert any("fairlearn." in k for k in globals_seen), o.method
        _assert_clean_and_loads(path, X, o.model.predict(X))


def test_allowlist_stays_exact_for_own_and_fairlearn_classes():
    from modelshield.artifacts.policy import classify_global

    assert classify_global("modelshield.harden.dp", "DPLogisticRegression").kind == "allow"
    assert classify_global("fairlearn.postprocessing._threshold_optimizer", "ThresholdOptimizer").kind == "allow"
    # neighbours in the same packages are not allowed wholesale
    assert classify_global("modelshield.harden.dp", "harden_dp").kind != "allow"
    assert classify_global("modelshield.protect.loader", "load_model").kind != "allow"
    assert classify_global("fairlearn.datasets", "fetch_adult").kind != "allow"
    assert classify_global("fairlearn.postprocessing", "plot_threshold_optimizer").kind != "allow"


@pytest.mark.parametrize(("shape", "why"), [
    ((2,) * 65, "invalid shape"),                      # more dimensions than numpy allows
    ((1 << 40, 1 << 40, 1 << 40), "absurd array size"),  # an element count no file can hold
    (tuple([1 << 62] * 64), "absurd array size"),        # bounded work: stops at the first overflow
])
def test_joblib_wrapper_with_a_hostile_shape_is_malformed(shape: tuple[int, ...], why: str) -> None:
    import pickle

    import numpy as np
    from joblib.numpy_pickle import NumpyArrayWrapper

    from modelshield.artifacts import scan_bytes

    wrapper = object.__new__(NumpyArrayWrapper)
    wrapper.__dict__.update(subclass=np.ndarray, shape=shape, order="C", dtype=np.dtype("f8"),
                            allow_mmap=False)
    (fr,) = scan_bytes(pickle.dumps(wrapper, protocol=4) + b"\x00" * 64, "hostile.joblib").files
    assert fr.status.value == "malformed"
    assert any(why in f.title or why in (f.detail or "") for f in fr.findings), fr.findings
