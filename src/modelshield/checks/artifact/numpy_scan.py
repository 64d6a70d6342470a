"""NumPy ``.npy`` files: header validation; object arrays carry a pickle, which is simulated."""

from __future__ import annotations

import ast
import re
import struct
from typing import Any

from modelshield.checks.artifact._io import Reader
from modelshield.checks.artifact.pickle_scan import RawFinding, _Malformed
from modelshield.findings import Severity

__all__ = ["read_npy_header", "descr_itemsize"]

MAX_HEADER = 1 << 20


def descr_itemsize(descr: Any, depth: int = 0) -> tuple[int, bool]:
    """(itemsize, has_object) of a ``.npy`` ``descr`` without importing NumPy."""
    if depth > 32:
        raise _Malformed("dtype description nested too deeply")
    if isinstance(descr, str):
        if "O" in descr:
            return 8, True
        m = re.fullmatch(r"[<>|=]?([a-zA-Z])(\d+)(?:\[\w+\])?", descr)
        if not m:
            raise _Malformed(f"unsupported dtype {descr!r}")
        n = int(m.group(2))
        return (n * 4 if m.group(1) == "U" else n), False
    if isinstance(descr, list):
        total, obj = 0, False
        for field in descr:
            if not isinstance(field, tuple) or len(field) not in (2, 3):
                raise _Malformed("bad structured dtype field")
            size, o = descr_itemsize(field[1], depth + 1)
            if len(field) == 3:
                shape = field[2] if isinstance(field[2], tuple) else (field[2],)
                for d in shape:
                    if type(d) is not int or d < 0:
                        raise _Malformed("bad subarray shape")
                    size *= d
            total += size
            obj = obj or o
        return total, obj
    raise _Malformed("unsupported dtype description")


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
