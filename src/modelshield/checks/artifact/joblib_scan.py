"""joblib files: pickles whose array data is written *inline* between opcodes, optionally compressed.

A ``joblib.numpy_pickle.NumpyArrayWrapper`` object is followed, at the moment its ``BUILD`` runs,
by the raw array bytes (after an alignment padding byte in joblib >= 1.2) or, for object arrays,
by a complete nested pickle. Scanners that read the file as one plain pickle stop at those bytes;
we follow joblib's own reader: compute the array size from the wrapper's shape and dtype and skip it,
or simulate the nested pickle with the same policy.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from typing import Any, BinaryIO

from modelshield.checks.artifact._io import InflateStream
from modelshield.checks.artifact.numpy_scan import numpy_dtype, plain_code_itemsize
from modelshield.checks.artifact.pickle_scan import Call, G, PickleScan, Seq, _Malformed

__all__ = ["COMPRESSED_MAGIC", "joblib_on_build", "open_compressed"]

WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_RECONSTRUCTORS = frozenset(("copyreg._reconstructor", "copy_reg._reconstructor"))

#: magic -> compressor, in joblib's detection order (joblib.compressor._COMPRESSORS)
COMPRESSED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"ZF", "zlib-legacy"),
    (b"\x78\x01", "zlib"),
    (b"\x78\x5e", "zlib"),
    (b"\x78\x9c", "zlib"),
    (b"\x78\xda", "zlib"),
)


def open_compressed(fh: BinaryIO, kind: str, max_out: int) -> BinaryIO:
    """A streaming decompressor over ``fh`` (never decompresses the whole file in memory)."""
    if kind == "gzip":
        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    if kind == "bz2":
        return bz2.BZ2File(fh, mode="rb")  # type: ignore[return-value]
    if kind in ("xz", "lzma"):
        return lzma.LZMAFile(fh, mode="rb")  # type: ignore[return-value]
    if kind == "zlib":
        return InflateStream(fh, wbits=15, max_out=max_out)  # type: ignore[return-value]
    if kind == "zlib-legacy":
        # joblib < 0.10: b"ZF" + 16-byte hex length, then a zlib stream
        fh.read(2 + 16)
        return InflateStream(fh, wbits=15, max_out=max_out)  # type: ignore[return-value]
    raise _Malformed(f"{kind} compression cannot be read (install lz4 to scan it)")


def _is_dtype_call(v: Any) -> bool:
    return (isinstance(v, Call) and isinstance(v.func, G) and v.func.name == "dtype"
            and v.func.module.split(".")[0] == "numpy" and isinstance(v.args, tuple) and bool(v.args)
            and isinstance(v.args[0], str))


def _dtype_info(dtype: Any, depth: int = 0) -> tuple[int | None, bool]:
    """(itemsize, hasobject) of a symbolic ``numpy.dtype(code, ...)`` call plus its ``BUILD`` state,
    decided as NumPy decides it; ``(None, True)`` when it cannot be (treated as an object array).

    NumPy takes ``hasobject`` from the state's flags (protocol-3 dtype state, flag bit 0x01), not
    from the code: ``dtype('f8')`` with object flags makes joblib unpickle what follows. Structured
    and sub-array dtypes are judged on every field. A code string outside the plain grammar is read
    with NumPy's own parser (no eval).
    """
    if depth > 32 or not _is_dtype_call(dtype):
        return None, True
    code: str = dtype.args[0]
    size = plain_code_itemsize(code)
    obj = False
    if size is None:
        dt = numpy_dtype(code)
        if dt is None:
            return None, True
        size, obj = dt.itemsize, bool(dt.hasobject)
    state = dtype.state
    if state is None:
        return size, obj
    if not isinstance(state, tuple) or len(state) < 8 or type(state[0]) is not int:
        return None, True
    _version, _order, subarray, names, fields, elsize, _align, flags = state[:8]
    if type(flags) is not int:
        return None, True
    obj = obj or bool(flags & 0x01)
    structured = subarray is not None or names is not None or fields is not None
    if structured:
        parts: list[Any] = []
        if subarray is not None:
            if not isinstance(subarray, tuple) or not subarray:
                return None, True
            parts.append(subarray[0])
        if fields is not None:
            if not isinstance(fields, Seq) or fields.kind != "dict" or fields.n > len(fields.items):
                return None, True
            for _k, v in fields.items:
                if not isinstance(v, tuple) or not v:
                    return None, True
                parts.append(v[0])
        for sub in parts:
            _s, sub_obj = _dtype_info(sub, depth + 1)
            if sub_obj:
                return None, True
    if structured or size == 0:
        size = elsize if type(elsize) is int and elsize > 0 else None
    return size, obj


#: numpy's own limit on dimensions, and an element count no file can hold (2**62).
_MAX_NDIM = 64
_MAX_ELEMENTS = 1 << 62


def joblib_on_build(scan: PickleScan, target: Call, state: Any, offset: int) -> None:
    """BUILD hook: read past the array data that follows a NumpyArrayWrapper."""
    func = target.func
    if not isinstance(func, G):
        return
    key = func.key
    if key != WRAPPER:
        if not (key in _RECONSTRUCTORS and isinstance(target.args, tuple) and target.args
                and isinstance(target.args[0], G)):
            return
        func = target.args[0]  # protocol 0/1: copyreg._reconstructor(NumpyArrayWrapper, object, None)
        if func.key != WRAPPER:
            return
    scan.flags.add("joblib")
    if not isinstance(state, Seq) or state.kind != "dict":
        raise _Malformed("joblib array wrapper state is not a dict")
    shape = state.get("shape")
    if not isinstance(shape, tuple) or len(shape) > _MAX_NDIM:
        raise _Malformed("joblib array wrapper has an invalid shape")
    count = 1
    for x in shape:
        if type(x) is not int or x < 0:
            raise _Malformed("joblib array wrapper has an invalid shape")
        count *= x
        if count > _MAX_ELEMENTS:  # bounded work on hostile shapes: no array that large can follow
            raise _Malformed("joblib array wrapper declares an absurd array size")
    size, is_object = _dtype_info(state.get("dtype"))
    if is_object or size is None:
        # object, unknown or unreadable dtype: joblib unpickles what follows (or fails); scan it as a
        # pickle, so that nothing hidden there is skipped as raw bytes
        # a nested pickle stream follows, read by a fresh unpickler with the same find_class
        inner = PickleScan(scan.r, scan.budget, depth=scan.depth + 1, nested=scan.nested,
                           on_build=joblib_on_build, fetch_blob=scan.fetch_blob)
        try:
            inner.run()
        finally:
            scan.findings.extend(inner.findings)
            for k, v in inner.globals.items():
                scan.globals.setdefault(k, v)
        return
    nbytes = count * size
    padded = False
    for k, _ in state.items:  # every item, as before: a non-pair item fails the same way
        if k == "numpy_array_alignment_bytes":
            padded = True
    r = scan.r
    if padded:
        pad = r.read1()
        if pad:
            r.skip(pad)
    rem = r.remaining_known()
    if rem is not None and nbytes > rem:
        raise _Malformed(f"joblib array declares {nbytes} bytes but only {rem} remain")
    r.skip(nbytes)

