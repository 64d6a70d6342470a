"""safetensors: validate the JSON header against the file without reading tensor data.

Rules follow the format's own loader: 8-byte little-endian header length, a JSON object of
``name -> {dtype, shape, data_offsets}`` plus optional ``__metadata__`` (str -> str), offsets inside
the byte buffer, sized exactly ``prod(shape) * itemsize``, neither overlapping nor leaving holes.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

from modelshield.artifacts.pickle_scan import RawFinding, _Malformed
from modelshield.findings import Severity

__all__ = ["scan_safetensors"]

MAX_HEADER = 100 << 20
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "U16": 2, "I16": 2,
    "F16": 2, "BF16": 2, "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8, "C64": 8,
    "F4": 1, "F6_E2M3": 1, "F6_E3M2": 1,
}


def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Malformed(f"duplicate key {k!r} in the safetensors header")
        out[k] = v
    return out


def scan_safetensors(fh: BinaryIO, size: int | None) -> list[RawFinding]:
    raw = fh.read(8)
    if len(raw) < 8:
        raise _Malformed("file shorter than the 8-byte header length")
    n = struct.unpack("<Q", raw)[0]
    if size is not None and n > size - 8:
        raise _Malformed(f"header length {n} exceeds the file size {size}")
    if n > MAX_HEADER:
        raise _Malformed(f"header length {n} exceeds the {MAX_HEADER}-byte bound")
    text = fh.read(n)
    if len(text) != n:
        raise _Malformed("truncated header")
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_no_dupes)
    except _Malformed:
        raise
    except Exception as exc:
        raise _Malformed(f"header is not valid UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise _Malformed("header is not a JSON object")
    buffer = None if size is None else size - 8 - n
    spans: list[tuple[int, int, str]] = []
    out: list[RawFinding] = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in info.items()):
                raise _Malformed("__metadata__ must map strings to strings")
            continue
        if not isinstance(info, dict) or set(info) - {"dtype", "shape", "data_offsets"}:
            raise _Malformed(f"tensor {name!r}: entry must hold dtype/shape/data_offsets only")
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPE_SIZES:
            raise _Malformed(f"tensor {name!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise _Malformed(f"tensor {name!r}: invalid shape")
        if (not isinstance(offs, list) or len(offs) != 2 or not all(type(o) is int for o in offs)
                or offs[0] < 0 or offs[1] < offs[0]):
            raise _Malformed(f"tensor {name!r}: invalid data_offsets")
        count = 1
        for d in shape:
            count *= d
        if offs[1] - offs[0] != count * DTYPE_SIZES[dtype]:
            raise _Malformed(f"tensor {name!r}: data_offsets span {offs[1] - offs[0]} bytes, "
                             f"shape x dtype needs {count * DTYPE_SIZES[dtype]}")
        if buffer is not None and offs[1] > buffer:
            raise _Malformed(f"tensor {name!r}: data_offsets run past the end of the file")
        spans.append((offs[0], offs[1], name))
    spans.sort()
    pos = 0
    for a, b, name in spans:
        if a < pos:
            raise _Malformed(f"tensor {name!r} overlaps the previous tensor")
        if a > pos:
            raise _Malformed(f"hole of {a - pos} bytes before tensor {name!r}")
        pos = b
    if buffer is not None and pos != buffer:
        out.append(RawFinding(Severity.LOW, "artifact.pickle.trailing-data",
                              f"{buffer - pos} bytes after the last tensor", 8 + n + pos,
                              "Data that no tensor refers to."))
    return out
