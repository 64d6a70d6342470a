"""The restricted loader's contract, pinned where mutation testing found it loose (issue 23).

Exact refusals (type and text), that a refused global is never imported, that an explicit format is
honoured, and the PyTorch archive reader's checks (data.pkl location, byte order, persistent ids,
storage sizes, shared storages). Every file is generated here; malicious payloads are never run.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import struct
import sys
import warnings
import zipfile
import zlib
from collections import OrderedDict

import numpy as np
import pytest

from modelshield.artifacts.policy import classify_global, identity_verdict
from modelshield.artifacts.restricted import (
    RestrictedUnpickler,
    _load_torch_zip,
    resolve_allowed,
    safe_load,
)
from modelshield.errors import FormatError, UnsafeModelError
from modelshield.formats import TORCH_LEGACY_MAGIC

from .corpus import call4, sglob, torch_zip


def _p4(module: str, name: str) -> bytes:
    return b"\x80\x04" + sglob(module, name) + b"."


# ------------------------------------------------------------------ refusals of resolve_allowed
@pytest.mark.parametrize(("module", "name"), [("mypkg", "Thing"), ("os", "system"), ("builtins", "eval"),
                                              ("sklearn.linear_model._logistic", "np")])
def test_a_refusal_names_the_global_and_the_policy_reason(module, name):
    reason = classify_global(module, name).reason
    expected = f"refusing to load: the file needs {module}.{name}, which is not on the allowlist ({reason})"
    with pytest.raises(UnsafeModelError) as direct:
        resolve_allowed(module, name)
    assert str(direct.value) == expected
    with pytest.raises(UnsafeModelError) as loaded:
        safe_load(call4(module, name))
    assert str(loaded.value) == expected


def test_a_refused_global_is_never_imported(tmp_path, monkeypatch):
    pkg = tmp_path / "ms_canary_pkg"
    pkg.mkdir()
    marker = tmp_path / "imported"
    (pkg / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ms_canary_pkg", raising=False)
    with pytest.raises(UnsafeModelError, match=r"ms_canary_pkg\.Thing"):
        safe_load(call4("ms_canary_pkg", "Thing"))
    with pytest.raises(UnsafeModelError):
        RestrictedUnpickler(io.BytesIO(b"")).find_class("ms_canary_pkg", "Thing")
    assert not marker.exists()
    assert "ms_canary_pkg" not in sys.modules


def test_find_class_resolves_only_through_the_policy():
    unpickler = RestrictedUnpickler(io.BytesIO(b""))
    assert unpickler.find_class("builtins", "set") is set
    assert unpickler.find_class("__builtin__", "set") is set  # Python 2 name, mapped
    assert unpickler.find_class("collections", "OrderedDict") is OrderedDict
    with pytest.raises(UnsafeModelError, match=r"os\.system"):
        unpickler.find_class("os", "system")


def test_an_allowed_name_that_does_not_exist_is_a_format_error():
    prefix = "cannot load the file safely: sklearn.linear_model._logistic.NoSuchThing cannot be resolved "
    for load in (lambda: resolve_allowed("sklearn.linear_model._logistic", "NoSuchThing"),
                 lambda: safe_load(call4("sklearn.linear_model._logistic", "NoSuchThing"))):
        with pytest.raises(FormatError) as exc:
            load()
        assert str(exc.value) == (prefix + "(AttributeError: module 'sklearn.linear_model._logistic' has no "
                                  "attribute 'NoSuchThing')")


def test_an_allowed_path_whose_module_does_not_exist_is_a_format_error():
    assert classify_global("sklearn.no_such_module", "Foo").kind == "allow"  # the premise: a rule admits it
    with pytest.raises(FormatError) as exc:
        safe_load(call4("sklearn.no_such_module", "Foo"))
    assert str(exc.value) == ("cannot load the file safely: sklearn.no_such_module.Foo cannot be resolved "
                              "(ModuleNotFoundError: No module named 'sklearn.no_such_module')")


def test_an_alias_that_resolves_elsewhere_is_refused_with_the_identity_reason(monkeypatch):
    import sklearn.linear_model._logistic as mod

    monkeypatch.setattr(mod, "LogisticAlias", np.save, raising=False)
    reason = identity_verdict("sklearn.linear_model._logistic", "LogisticAlias", np.save).reason
    with pytest.raises(UnsafeModelError) as exc:
        resolve_allowed("sklearn.linear_model._logistic", "LogisticAlias")
    assert str(exc.value) == f"refusing to load: {reason}"
    assert "numpy.save" in reason


def test_a_dotted_listed_name_is_resolved_step_by_step():
    import zoneinfo

    assert resolve_allowed("zoneinfo", "ZoneInfo._unpickle") == zoneinfo.ZoneInfo._unpickle
    assert resolve_allowed("zoneinfo", "ZoneInfo") is zoneinfo.ZoneInfo


# ------------------------------------------------------------------ torch.storage._load_from_bytes
def _torch_bytes(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_load_from_bytes_is_replaced_by_the_restricted_loader():
    import torch

    fn = resolve_allowed("torch.storage", "_load_from_bytes")
    assert fn is not torch.storage._load_from_bytes
    assert torch.equal(fn(_torch_bytes(torch.arange(3.0))), torch.arange(3.0))
    assert torch.equal(fn(bytearray(_torch_bytes(torch.arange(2.0)))), torch.arange(2.0))
    with pytest.raises(UnsafeModelError, match=r"posix\.system|os\.system"):
        fn(torch_zip(call4("os", "system", "echo modelshield-test")))


def test_a_nested_torch_blob_inside_a_pickle_goes_through_the_restricted_loader():
    import torch

    blob = _torch_bytes({"w": torch.ones(2)})
    ok = b"\x80\x04" + sglob("torch.storage", "_load_from_bytes") + _short_bytes(blob) + b"\x85R."
    assert torch.equal(safe_load(ok)["w"], torch.ones(2))
    evil = torch_zip(call4("os", "system", "echo modelshield-test"))
    bad = b"\x80\x04" + sglob("torch.storage", "_load_from_bytes") + _short_bytes(evil) + b"\x85R."
    with pytest.raises(UnsafeModelError, match=r"os\.system"):
        safe_load(bad)


def _short_bytes(b: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(b)) + b  # BINBYTES


# ------------------------------------------------------------------ joblib
def test_joblib_arrays_come_back_in_native_byte_order():
    import joblib

    arr = np.arange(5, dtype=">i4")
    buf = io.BytesIO()
    joblib.dump({"a": arr}, buf)
    out = safe_load(buf.getvalue())["a"]
    assert out.dtype == np.dtype("int32") and out.dtype.isnative
    assert out.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("kind", "compress"), [
    ("gzip", gzip.compress), ("bz2", bz2.compress), ("xz", lzma.compress),
    ("lzma", lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE)), ("zlib", zlib.compress),
    ("zlib-legacy", lambda d: b"ZF" + f"0x{len(d):x}".ljust(16).encode() + zlib.compress(d)),
])
def test_compressed_joblib_streams_load_detected_or_named(kind, compress):
    data = compress(pickle.dumps({"w": [1.5, 2.5]}, protocol=4))
    assert safe_load(data) == {"w": [1.5, 2.5]}
    assert safe_load(data, f"joblib-{kind}") == {"w": [1.5, 2.5]}
    assert safe_load(data, "joblib-compressed") == {"w": [1.5, 2.5]}  # the loader's coarse name: detected


@pytest.mark.parametrize(("data", "why"), [
    (b"\x78\x01" + b"\xff" * 40, "Truncated: corrupt deflate stream: "),
    (b"ZF" + b"0" * 16 + b"\xff" * 30, "Truncated: corrupt deflate stream: "),
    (b"\x04\x22\x4d\x18" + b"\x00" * 40, "_Malformed: lz4 compression cannot be read"),
])
def test_a_corrupt_or_unreadable_compressed_stream_is_a_format_error(data, why):
    with pytest.raises(FormatError) as exc:
        safe_load(data)
    assert str(exc.value).startswith(f"cannot load the file safely: {why}")


# ------------------------------------------------------------------ formats: explicit wins, detection
def test_an_explicit_format_is_honoured_not_redetected():
    plain = pickle.dumps({"w": 1}, protocol=4)
    archive = torch_zip(pickle.dumps({"w": 1}, protocol=2))
    assert safe_load(archive) == {"w": 1}
    for fmt in ("pickle", "joblib"):  # a zip read as a pickle stream does not parse
        with pytest.raises(FormatError, match=r"^cannot load the file safely: "):
            safe_load(archive, fmt)
    with pytest.raises(FormatError, match=r"^cannot load the file safely: "):
        safe_load(plain, "npy")
    with pytest.raises(FormatError, match=r"^cannot load the file safely: BadZipFile: "):
        safe_load(plain, "torch-zip")
    with pytest.raises(FormatError, match=r"^cannot load the file safely: "):
        safe_load(plain, "joblib-gzip")
    for other in (None, "onnx", "pickle0", "unknown"):  # not a name of this loader: detected
        assert safe_load(plain, other) == {"w": 1}


def test_sources_as_bytes_bytearray_str_and_path(tmp_path):
    data = pickle.dumps([1, 2], protocol=2)
    path = tmp_path / "m.pkl"
    path.write_bytes(data)
    for source in (data, bytearray(data), str(path), path):
        assert safe_load(source) == [1, 2]


def test_legacy_torch_files_are_refused_with_the_way_out():
    with pytest.raises(FormatError) as exc:
        safe_load(TORCH_LEGACY_MAGIC + b"\x00" * 32)
    assert str(exc.value) == ("legacy (pre-1.6) PyTorch files are not supported by the safe loader; "
                              "re-save with torch.save or convert to safetensors")


def test_short_pickle_heads_still_load():
    assert safe_load(b"N.") is None  # protocol 0: no PROTO opcode
    assert safe_load(b"\x80\x02N.") is None
    assert safe_load(b"K\x07.") == 7


# ------------------------------------------------------------------ npy
def _object_npy(payload: bytes, shape: tuple[int, ...], *, fortran: bool = False, version: int = 1) -> bytes:
    header = f"{{'descr': '|O', 'fortran_order': {fortran}, 'shape': {shape!r}, }}".encode()
    if version == 1:
        header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload
    header += b" " * (63 - (len(header) + 12) % 64) + b"\n"
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header + payload


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("fortran", [False, True])
def test_object_npy_takes_the_shape_and_order_its_header_declares(version, fortran):
    payload = pickle.dumps(np.array(["a", "b", "c", "d", "e", "f"], dtype=object), protocol=2)
    out = safe_load(_object_npy(payload, (2, 3), fortran=fortran, version=version))
    expected = np.array(list("abcdef"), dtype=object).reshape((2, 3), order="F" if fortran else "C")
    assert out.shape == (2, 3)
    assert out.tolist() == expected.tolist()


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_plain_npy_of_both_header_versions(version):
    arr = np.arange(6, dtype="<f8").reshape(2, 3, order="F")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asfortranarray(arr), version=version)
    for fmt in (None, "npy"):
        out = safe_load(buf.getvalue(), fmt)
        assert np.array_equal(out, arr)


def test_an_object_npy_whose_payload_is_not_an_array_is_refused():
    with pytest.raises(FormatError) as exc:
        safe_load(_object_npy(pickle.dumps({"a": 1}, protocol=2), (1,)))
    assert str(exc.value) == "object .npy payload is not an array"


def test_an_object_npy_payload_goes_through_the_allowlist():
    with pytest.raises(UnsafeModelError, match=r"os\.system"):
        safe_load(_object_npy(call4("os", "system", "echo modelshield-test"), (1,)))


# ------------------------------------------------------------------ PyTorch archives
class _Storage:
    def __init__(self, pid):
        self.pid = pid


class _Rebuild:
    def __init__(self, storage, numel):
        self.storage, self.numel = storage, numel

    def __reduce__(self):
        import torch

        return torch._utils._rebuild_tensor_v2, (self.storage, 0, (self.numel,), (1,), False, OrderedDict())


class _PidPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _Storage) else None


def _pkl(obj) -> bytes:
    buf = io.BytesIO()
    _PidPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def _archive(pkl: bytes, storages: dict[str, bytes], *, prefix: str = "archive", byteorder: bytes | None = b"little",
             pkl_name: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(pkl_name or f"{prefix}/data.pkl", pkl)
        if byteorder is not None:
            zf.writestr(f"{prefix}/byteorder", byteorder)
        for key, raw in storages.items():
            zf.writestr(f"{prefix}/data/{key}", raw)
    return buf.getvalue()


def _f32(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def _float_pid(key="0", numel=2, storage_type=None):
    import torch

    return ("storage", torch.float32 if storage_type is None else storage_type, key, "cpu", numel)


def test_a_tensor_from_a_storage_typed_by_dtype_or_by_storage_class():
    import torch

    for storage_type in (torch.float32, torch.FloatStorage):
        pkl = _pkl({"w": _Rebuild(_Storage(_float_pid(storage_type=storage_type)), 2)})
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the loader silences TypedStorage's deprecation notices itself
            out = safe_load(_archive(pkl, {"0": _f32(1.5, -2.0)}))
        assert out["w"].dtype == torch.float32
        assert out["w"].tolist() == [1.5, -2.0]


def test_the_archive_prefix_is_whatever_folder_holds_data_pkl():
    pkl = _pkl(_Rebuild(_Storage(_float_pid()), 2))
    out = safe_load(_archive(pkl, {"0": _f32(3.0, 4.0)}, prefix="my_model"))
    assert out.tolist() == [3.0, 4.0]


def test_two_tensors_on_one_storage_share_it():
    pid = _float_pid(numel=2)
    out = safe_load(_archive(_pkl([_Rebuild(_Storage(pid), 2), _Rebuild(_Storage(pid), 2)]), {"0": _f32(1, 2)}))
    out[0][0] = 9.0
    assert out[1].tolist() == [9.0, 2.0]


def test_an_empty_storage_loads():
    out = safe_load(_archive(_pkl(_Rebuild(_Storage(_float_pid(numel=0)), 0)), {"0": b""}))
    assert out.numel() == 0
    assert out.untyped_storage().nbytes() == 0


def test_storage_sizes_are_checked_against_the_declared_count_and_item_size():
    import torch

    exact = _archive(_pkl(_Rebuild(_Storage(_float_pid(numel=4)), 4)), {"0": _f32(1, 2, 3, 4)})
    assert safe_load(exact).tolist() == [1, 2, 3, 4]
    short = _archive(_pkl(_Rebuild(_Storage(_float_pid(numel=5)), 5)), {"0": _f32(1, 2, 3, 4)})
    with pytest.raises(FormatError) as exc:
        safe_load(short)
    assert str(exc.value) == "storage 0 is shorter than declared"
    pid64 = ("storage", torch.float64, "k", "cpu", 3)  # 16 bytes hold two doubles, not three
    with pytest.raises(FormatError, match=r"^storage k is shorter than declared$"):
        safe_load(_archive(_pkl(_Rebuild(_Storage(pid64), 3)), {"k": _f32(1, 2, 3, 4)}))


@pytest.mark.parametrize("pid", [
    "storage", ("storage", "x", "0", "cpu"), ("storage", "x", "0", "cpu", 2, 0), ("module", "x", "0", "cpu", 2),
], ids=["not-a-tuple", "four-items", "six-items", "wrong-tag"])
def test_an_unexpected_persistent_id_is_refused_as_unsafe(pid):
    with pytest.raises(UnsafeModelError) as exc:
        safe_load(_archive(_pkl(_Storage(pid)), {"0": _f32(1, 2)}))
    assert str(exc.value) == f"unexpected persistent id in a PyTorch archive: {pid!r:.80}"


@pytest.mark.parametrize("which", ["key", "numel"])
def test_a_malformed_storage_reference_is_a_format_error(which):
    import torch

    pid = ("storage", torch.float32, 0 if which == "key" else "0", "cpu", "2" if which == "numel" else 2)
    with pytest.raises(FormatError) as exc:
        safe_load(_archive(_pkl(_Storage(pid)), {"0": _f32(1, 2)}))
    assert str(exc.value) == "malformed storage reference"


def test_an_unknown_storage_type_is_a_format_error():
    pid = ("storage", "float" * 30, "0", "cpu", 2)
    with pytest.raises(FormatError) as exc:
        safe_load(_archive(_pkl(_Storage(pid)), {"0": _f32(1, 2)}))
    assert str(exc.value) == f"unknown storage type {'float' * 30!r:.80}"


@pytest.mark.parametrize("byteorder", [b"little", b"little\n", b"", None])
def test_little_endian_or_unmarked_archives_load(byteorder):
    pkl = _pkl(_Rebuild(_Storage(_float_pid()), 2))
    assert safe_load(_archive(pkl, {"0": _f32(1, 2)}, byteorder=byteorder)).tolist() == [1, 2]


def test_big_endian_archives_are_refused():
    pkl = _pkl(_Rebuild(_Storage(_float_pid()), 2))
    with pytest.raises(FormatError) as exc:
        safe_load(_archive(pkl, {"0": _f32(1, 2)}, byteorder=b"big"))
    assert str(exc.value) == "big-endian PyTorch archives are not supported by the safe loader"


@pytest.mark.parametrize("pkl_name", ["data.pkl", "a/b/data.pkl", "archive/xdata.pkl", "archive/data.pkl.bak"])
def test_data_pkl_must_sit_in_the_archive_folder(pkl_name):
    with pytest.raises(FormatError) as exc:
        safe_load(_archive(pickle.dumps(1, protocol=2), {}, pkl_name=pkl_name), "torch-zip")
    assert str(exc.value) == "PyTorch archive without data.pkl"


def test_an_empty_zip_is_not_an_npz():
    buf = io.BytesIO()
    zipfile.ZipFile(buf, "w").close()
    with pytest.raises(FormatError, match=r"^PyTorch archive without data\.pkl$"):
        safe_load(buf.getvalue(), "torch-zip")  # an empty zip has no local header: named, not detected


def test_npz_members_load_by_name_and_a_mixed_zip_is_read_as_torch():
    buf = io.BytesIO()
    np.savez(buf, a=np.arange(3), b=np.ones((2, 2)))
    out = safe_load(buf.getvalue())
    assert sorted(out) == ["a", "b"] and out["a"].tolist() == [0, 1, 2]
    mixed = io.BytesIO()
    with zipfile.ZipFile(mixed, "w") as zf:
        zf.writestr("a.npy", buf.getvalue())
        zf.writestr("notes.txt", b"hello")
    with pytest.raises(FormatError, match=r"^PyTorch archive without data\.pkl$"):
        safe_load(mixed.getvalue())


def test_an_unreadable_archive_given_to_the_torch_reader_is_a_format_error():
    with pytest.raises(FormatError, match=r"^not a readable PyTorch archive: "):
        _load_torch_zip(io.BytesIO(b"not a zip at all"))

