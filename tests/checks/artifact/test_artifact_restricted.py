"""safe_load: ordinary models load; anything off the allowlist is refused before it is imported."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from modelshield.checks.artifact.restricted import safe_load
from modelshield.errors import FormatError, UnsafeModelError

from .corpus import _Reduce, call4


def test_loads_benign_models(corpus):
    import torch

    for name in ("rf_p0.pkl", "rf_p5.pkl", "pipe.pkl", "rf_raw.joblib", "rf_gzip.joblib", "rf_zlib.joblib",
                 "rf_xz.joblib", "objarr.joblib", "plain_p4.pkl", "rng.pkl", "arr.npy", "strs.npy"):
        obj = safe_load(corpus[f"benign/{name}"].path)
        assert obj is not None, name
    rf = safe_load(corpus["benign/rf_gzip.joblib"].path)
    assert rf.predict(np.zeros((1, 30))).shape == (1,)
    sd = safe_load(corpus["benign/state_dict.pt"].path)
    ref = torch.load(corpus["benign/state_dict.pt"].path, weights_only=True)
    assert all(torch.equal(sd[k], ref[k]) for k in ref)
    net = safe_load(corpus["benign/full_model.pt"].path)
    assert isinstance(net, torch.nn.Module)
    npz = safe_load(corpus["benign/arrs.npz"].path)
    assert npz["b"].shape == (2, 2)


def test_refuses_without_executing(tmp_path):
    marker = tmp_path / "owned"
    data = pickle.dumps(_Reduce(open, (str(marker), "w")), protocol=4)
    with pytest.raises(UnsafeModelError, match=r"io\.open"):
        safe_load(data)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["reduce_os_system.pkl", "proto0.bin", "nested_p2.pkl", "torch_evil.pt",
                                  "joblib_gz.joblib", "joblib_objarray.joblib", "npy_object.npy",
                                  "dunder_chain.pkl", "dotted_chain.pkl", "partial.pkl"])
def test_refuses_malicious_corpus(corpus, name):
    with pytest.raises((UnsafeModelError, FormatError)):
        safe_load(corpus[f"malicious/{name}"].path)


def test_unknown_class_refused():
    with pytest.raises(UnsafeModelError, match=r"mypkg\.Thing"):
        safe_load(call4("mypkg", "Thing"))


def test_garbage_is_a_format_error():
    with pytest.raises(FormatError):
        safe_load(b"\x80\x04\x8c\x03abc")
