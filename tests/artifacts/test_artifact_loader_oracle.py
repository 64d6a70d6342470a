"""The premises of the bypass-class tests, checked against the real loaders (issue 15 A.2/A.3).

Each crafted file's payload is ``builtins.print`` of a marker: harmless. The loader runs in a child
process and the test looks for the marker on its output, so these prove that torch/joblib really run
what the scanner must therefore reach: torch's reader finds ``data.pkl`` case-insensitively and
follows the zip64 locator's pointer, and joblib unpickles the data behind a ``dtype('f8')`` whose
state carries the object flag. Slow (each child imports torch or joblib).
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import zipfile

import pytest

from modelshield.artifacts import scan
from modelshield.findings import Severity

from .corpus import s8, sglob, write_zip, zip64_two_views

pytestmark = pytest.mark.slow

MARK = "modelshield-oracle-marker"


def _print_pickle(text: str) -> bytes:
    return b"cbuiltins\nprint\n(V" + text.encode() + b"\ntR."


def _run(code: str, path) -> str:
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=240,
                          check=False)
    return proc.stdout + proc.stderr


def _torch_base() -> list[tuple[str, bytes]]:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"w": 1}, buf)
    zf = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    return [(n, zf.read(n)) for n in zf.namelist() if not n.endswith("data.pkl")]


TORCH_LOAD = "import sys, torch; torch.load(sys.argv[1], weights_only=False)"


@pytest.mark.parametrize("name", ["archive/DATA.PKL", "archive/Data.Pkl"])
def test_torch_reads_a_case_variant_data_pkl(tmp_path, name):
    path = tmp_path / "m.pt"
    path.write_bytes(write_zip([*_torch_base(), (name, _print_pickle(MARK))]))
    assert MARK in _run(TORCH_LOAD, path)  # torch runs it ...
    assert any("builtins.print" in f.title for f in scan(path).findings)  # ... and the scanner reaches it


def test_torch_follows_the_zip64_locator(tmp_path):
    base = _torch_base()
    path = tmp_path / "m.pt"
    path.write_bytes(zip64_two_views([*base, ("archive/data.pkl", pickle.dumps({"w": 1}, protocol=2))],
                                     [*base, ("archive/data.pkl", _print_pickle(MARK))]))
    with zipfile.ZipFile(path) as zf:  # zipfile sees the benign archive next to the locator
        assert b"builtins" not in zf.read("archive/data.pkl")
    assert MARK in _run(TORCH_LOAD, path)  # torch (miniz) reads the one the locator points to
    rep = scan(path)
    assert any("builtins.print" in f.title for f in rep.findings)
    assert any(f.rule_id == "artifact.zip.zip64-mismatch" and f.severity >= Severity.HIGH for f in rep.findings)


def test_joblib_unpickles_behind_a_float_dtype_with_object_flags(tmp_path):
    pytest.importorskip("joblib")
    state = (b"(K\x03" + s8("<") + b"NNN" + b"J\xff\xff\xff\xffJ\xff\xff\xff\xffJ\x3f\x00\x00\x00t")
    dtype = sglob("numpy", "dtype") + s8("f8") + b"\x89\x88\x87R" + state + b"b"
    wrapper = (b"}(" + s8("subclass") + sglob("numpy", "ndarray") + s8("shape") + b"K\x01\x85" + s8("order")
               + s8("C") + s8("dtype") + dtype + s8("allow_mmap") + b"\x89u")
    data = (b"\x80\x04" + sglob("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + wrapper + b"b"
            + b"\x80\x04" + _print_pickle(MARK) + b".")
    path = tmp_path / "m.joblib"
    path.write_bytes(data)
    assert MARK in _run("import sys, joblib; joblib.load(sys.argv[1])", path)
    assert any("builtins.print" in f.title for f in scan(path).findings)
