"""joblib files: pickles whose array data is written *inline* between opcodes, optionally compressed.

A ``joblib.numpy_pickle.NumpyArrayWrapper`` object is followed, at the moment its ``BUILD`` runs,
by the raw array bytes (after an alignment padding byte in joblib >= 1.2) or, for object arrays,
by a complete nested pickle. Scanners that read the file as one plain pickle stop at those bytes;
we follow joblib's own reader: compute the array size from the wrapper's shape and dtype and skip it,
or simulate the nested pickle with the same policy.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import lzma
from typing import Any, BinaryIO

from modelshield.artifacts._io import InflateStream
from modelshield.artifacts.numpy_scan import numpy_dtype, plain_code_itemsize
from modelshield.artifacts.pickle_scan import Call, G, PickleScan, Seq, _Malformed
from modelshield.formats import COMPRESSED_MAGIC

__all__ = ["COMPRESSED_MAGIC", "joblib_on_build", "open_compressed"]

WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_RECONSTRUCTORS = frozenset(("copyreg._reconstructor", "copy_reg._reconstructor"))

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


@functools.lru_cache(maxsize=512)
def _code_info(code: str) -> tuple[int, bool] | None:
    """(itemsize, hasobject) of a dtype code string (plain grammar, else NumPy's parser); None when
    NumPy rejects it. Cached: a file repeats a handful of codes over thousands of arrays."""
    size = plain_code_itemsize(code)
    if size is not None:
        return size, False
    dt = numpy_dtype(code)
    return None if dt is None else (dt.itemsize, bool(dt.hasobject))


def _dtype_info(dtype: Any, depth: int = 0) -> tuple[int | None, bool]:
    """(itemsize, hasobject) of a symbolic ``numpy.dtype(code, ...)`` call plus its ``BUILD`` state,
    decided as NumPy decides it; ``(None, True)`` when it cannot be (treated as an object array).

    NumPy takes ``hasobject`` from the state's flags (protocol-3 dtype state, flag bit 0x01), not
    from the code: ``dtype('f8')`` with object flags makes joblib unpickle what follows. Structured
    and sub-array dtypes are judged on every field. A code string outside the plain grammar is read
    with NumPy's own parser (no eval).
    """
    if depth > 32 or type(dtype) is not Call:
        return None, True
    func = dtype.func
    args = dtype.args
    if (type(func) is not G or func.name != "dtype" or not (func.module == "numpy" or func.module.startswith("numpy."))
            or type(args) is not tuple or not args or type(args[0]) is not str):
        return None, True
    info = _code_info(args[0])
    if info is None:
        return None, True
    size, obj = info
    state = dtype.state
    if state is None:
        return size, obj
    if type(state) is not tuple or len(state) < 8 or type(state[0]) is not int:
        return None, True
    _version, _order, subarray, names, fields, elsize, _align, flags = state[:8]
    if type(flags) is not int:
        return None, True
    if flags & 0x01:
        obj = True
    if subarray is None and names is None and fields is None:
        if size == 0:
            size = elsize if type(elsize) is int and elsize > 0 else None
        return size, obj
    parts: list[Any] = []
    if subarray is not None:
        if type(subarray) is not tuple or not subarray:
            return None, True
        parts.append(subarray[0])
    if fields is not None:
        if not isinstance(fields, Seq) or fields.kind != "dict" or fields.n > len(fields.items):
            return None, True
        for _k, v in fields.items:
            if type(v) is not tuple or not v:
                return None, True
            parts.append(v[0])
    for sub in parts:
        if _dtype_info(sub, depth + 1)[1]:
            return None, True
    return (elsize if type(elsize) is int and elsize > 0 else None), obj


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

