"""safe_load: ordinary models load; anything off the allowlist is refused before it is imported."""

from __future__ import annotations

import copyreg
import os
import pickle
import struct
import subprocess

import numpy as np
import pytest

from modelshield.artifacts.restricted import safe_load
from modelshield.errors import FormatError, UnsafeModelError

from .corpus import _Reduce, call4, glob0, sglob, torch_zip


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


# ------------------------------------------------------------------ every loader path checks identity
_INJECTED = [("numpy.save", np.save), ("os.system", os.system), ("numpy (module)", np), ("os (module)", os),
             ("subprocess.Popen", subprocess.Popen)]


def _ref(module: str, name: str, protocol: int) -> bytes:
    if protocol >= 4:
        return b"\x80\x04" + sglob(module, name) + b"."
    return bytes([0x80, protocol]) + glob0(module, name) + b"."


@pytest.mark.parametrize(("what", "target"), _INJECTED, ids=[w for w, _ in _INJECTED])
@pytest.mark.parametrize("container", ["pickle-p2", "pickle-p4", "joblib", "torch-zip", "npy-object"])
def test_every_loader_refuses_an_allowed_looking_name_that_resolves_elsewhere(monkeypatch, what, target, container):
    """find_class of the plain, joblib, torch and object-.npy unpicklers all check what an allowed
    name resolved to; none returns a module object."""
    import sklearn.linear_model._logistic as mod

    monkeypatch.setattr(mod, "LogisticAlias", target, raising=False)
    ref = _ref("sklearn.linear_model._logistic", "LogisticAlias", 2 if container == "pickle-p2" else 4)
    if container == "torch-zip":
        data, fmt = torch_zip(ref), None
    elif container == "joblib":
        data, fmt = ref, "joblib"
    elif container == "npy-object":
        header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
        header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
        data, fmt = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + ref, None
    else:
        data, fmt = ref, None
    with pytest.raises(UnsafeModelError, match="LogisticAlias"):
        safe_load(data, fmt)


def test_listed_qualified_names_and_python2_names_resolve():
    import zoneinfo

    assert safe_load(_ref("zoneinfo", "ZoneInfo._unpickle", 4)) == zoneinfo.ZoneInfo._unpickle
    assert safe_load(_ref("__builtin__", "xrange", 2)) is range
    assert safe_load(_ref("copy_reg", "_reconstructor", 2)) is copyreg._reconstructor
    with pytest.raises(UnsafeModelError):
        safe_load(_ref("zoneinfo", "ZoneInfo.clear_cache", 4))  # a dotted name that is not listed


@pytest.mark.parametrize(("module", "name"), [("numpy", "random"), ("torch", "nn"), ("sklearn", "linear_model"),
                                              ("sklearn.linear_model._logistic", "np"), ("enum", "bltns")])
def test_a_module_object_is_never_returned(module, name):
    with pytest.raises(UnsafeModelError):
        safe_load(_ref(module, name, 4))


@pytest.mark.parametrize("module_obj", [np, os, subprocess, np.random, pickle], ids=lambda m: m.__name__)
def test_identity_names_a_module_object_as_such(module_obj):
    from modelshield.artifacts.policy import identity_verdict

    verdict = identity_verdict("sklearn.linear_model._logistic", "LogisticRegression", module_obj)
    assert (verdict.kind, verdict.rule) == ("deny", "module-object")
