"""NumPy ``.npy`` files: header validation; object arrays carry a pickle, which is simulated."""

from __future__ import annotations

import ast
import re
import struct
from typing import Any

from modelshield.artifacts._io import Reader
from modelshield.artifacts.pickle_scan import RawFinding, _Malformed
from modelshield.findings import Severity

__all__ = ["read_npy_header", "descr_itemsize"]

MAX_HEADER = 1 << 20


#: dtype strings whose meaning is fixed and never involves objects (checked against NumPy's own
#: parser by the tests); everything else is parsed by NumPy itself
_PLAIN_CODE = re.compile(r"[<>|=]?(?:b1|\?|[iu][1248]|f(?:2|4|8|16)|c(?:8|16|32)|[SUV][1-9]\d{0,8}|"
                         r"[mM]8(?:\[[0-9]*[A-Za-z]+\])?)")


def plain_code_itemsize(code: str) -> int | None:
    """Itemsize of a dtype string in the plain (never-object) grammar, without importing NumPy."""
    if not _PLAIN_CODE.fullmatch(code):
        return None
    body = code.lstrip("<>|=")
    kind = body[0]
    if kind == "?":
        return 1
    n = int(re.match(r"[a-zA-Z]+(\d+)", body).group(1))  # type: ignore[union-attr]
    return n * 4 if kind == "U" else n


def numpy_dtype(descr: Any) -> Any:
    """NumPy's own dtype for a ``.npy`` header ``descr`` (``numpy.lib.format.descr_to_dtype``: no eval;
    the header itself was parsed with ``ast.literal_eval``), or None when NumPy rejects it."""
    import numpy.lib.format as npf  # lazy: NumPy is imported only for a dtype the fast path cannot read

    try:
        return npf.descr_to_dtype(descr)
    except Exception:  # any rejection: the caller treats the dtype as unknown
        return None


def descr_itemsize(descr: Any) -> tuple[int, bool]:
    """(itemsize, has_object) of a ``.npy`` ``descr``, as ``numpy.load`` decides it (``hasobject``)."""
    if isinstance(descr, str):
        size = plain_code_itemsize(descr)
        if size is not None:
            return size, False
    dt = numpy_dtype(descr)
    if dt is None:
        raise _Malformed(f"dtype {str(descr)[:80]!r} is not one NumPy accepts (numpy.load fails)")
    return dt.itemsize, bool(dt.hasobject)


def read_npy_header(r: Reader) -> dict[str, Any]:
    magic = r.read(6)
    if magic != b"\x93NUMPY":
        raise _Malformed("not a .npy file")
    major, _minor = r.read(2)
    if major == 1:
        hlen = struct.unpack("<H", r.read(2))[0]
    elif major in (2, 3):
        hlen = struct.unpack("<I", r.read(4))[0]
    else:
        raise _Malformed(f"unknown .npy version {major}")
    if hlen > MAX_HEADER:
        raise _Malformed(f".npy header length {hlen} is absurd")
    raw = r.read(hlen)
    try:
        header = ast.literal_eval(raw.decode("latin-1" if major < 3 else "utf-8"))
    except Exception:
        raise _Malformed(".npy header is not a Python literal") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise _Malformed(".npy header does not have exactly descr/fortran_order/shape")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise _Malformed(".npy header has an invalid shape")
    return header


def scan_npy(r: Reader, scan_pickle, location_size: int | None) -> tuple[list[RawFinding], dict[str, Any]]:
    """Scan one ``.npy`` stream. ``scan_pickle(reader)`` simulates a pickle at the reader."""
    header = read_npy_header(r)
    size, has_obj = descr_itemsize(header["descr"])
    count = 1
    for d in header["shape"]:
        count *= d
    details = {"dtype": str(header["descr"])[:200], "shape": list(header["shape"])}
    findings: list[RawFinding] = []
    if has_obj:
        findings.append(RawFinding(
            Severity.LOW, "artifact.numpy.object-array",
            "object array: numpy.load needs allow_pickle=True", r.offset,
            "The payload of an object array is a pickle; it is analysed below.",
        ))
        findings.extend(scan_pickle(r))
        return findings, details
    nbytes = count * size
    rem = r.remaining_known()
    if rem is not None and rem < nbytes:
        raise _Malformed(f".npy declares {nbytes} data bytes but only {rem} are present")
    r.skip(nbytes)
    if rem is not None and rem > nbytes:
        findings.append(RawFinding(Severity.LOW, "artifact.pickle.trailing-data",
                                   f"{rem - nbytes} bytes after the array data", r.offset))
    return findings, details
