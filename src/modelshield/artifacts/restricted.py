"""Safe loading: a restricted unpickler that only resolves allowlisted globals.

:func:`safe_load` loads pickle, joblib (raw or compressed, with its inline NumPy arrays), NumPy
``.npy`` and PyTorch zip checkpoints (``torch.save``, state_dicts or whole modules) without ever
resolving a global that is not on :mod:`~modelshield.artifacts.policy`'s allowlist; anything
else raises :class:`~modelshield.errors.UnsafeModelError` *before* it is imported. Scan first
(:func:`modelshield.artifacts.scan_bytes`) to get a report; this module is the second,
independent line of defence.
"""

from __future__ import annotations

import importlib
import io
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from modelshield.artifacts._io import LimitExceeded, Truncated
from modelshield.artifacts.joblib_scan import open_compressed
from modelshield.artifacts.pickle_scan import _Malformed
from modelshield.artifacts.policy import classify_global, compat_name, identity_verdict
from modelshield.errors import FormatError, UnsafeModelError
from modelshield.formats import COMPRESSED_MAGIC, TORCH_LEGACY_MAGIC

__all__ = ["RestrictedUnpickler", "safe_load", "resolve_allowed"]

MAX_DECOMPRESSED = 16 << 30


def resolve_allowed(module: str, name: str) -> Any:
    """The object ``module.name`` names, imported only when the policy allows it.

    The name is first mapped as the unpickler maps Python 2 names (``__builtin__.xrange`` is
    ``builtins.range``) and judged by :func:`~modelshield.artifacts.policy.classify_global`
    (exact ``(module, name)`` pairs and class-like names of trusted module paths; dotted chains only
    when listed exactly). Only then is the module imported and each step of the name resolved; the
    object must not be a module and its own ``__module__``/``__qualname__`` must be allowed
    (:func:`~modelshield.artifacts.policy.identity_verdict`), so an alias under an allowed path
    that is really ``numpy.save`` or ``os.system`` is refused. Anything else raises
    :class:`UnsafeModelError`.
    """
    verdict = classify_global(module, name)
    if verdict.kind != "allow":
        raise UnsafeModelError(
            f"refusing to load: the file needs {module}.{name}, which is not on the allowlist "
            f"({verdict.reason})"
        )
    module, name = compat_name(module, name)
    if f"{module}.{name}" == "torch.storage._load_from_bytes":
        return _load_from_bytes_restricted
    try:
        obj: Any = importlib.import_module(module)
        for step in name.split("."):  # dotted only for exactly listed qualified names
            obj = getattr(obj, step)
    except (ImportError, AttributeError) as exc:
        raise FormatError(f"cannot load the file safely: {module}.{name} cannot be resolved "
                          f"({type(exc).__name__}: {exc})") from None
    identity = identity_verdict(module, name, obj)
    if identity.kind != "allow":
        raise UnsafeModelError(f"refusing to load: {identity.reason}")
    return obj


def _load_from_bytes_restricted(b: bytes) -> Any:
    return safe_load(bytes(b))


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` resolves only allowlisted globals itself
    (:func:`resolve_allowed`); the base class's import is never reached."""

    def find_class(self, module: str, name: str) -> Any:
        return resolve_allowed(module, name)


def _restricted_joblib(fobj: BinaryIO) -> Any:
    from joblib.numpy_pickle import NumpyUnpickler  # lazy: joblib only for joblib files

    class _Unpickler(NumpyUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            return resolve_allowed(module, name)

    return _Unpickler("<modelshield>", fobj, True, mmap_mode=None).load()


def _load_torch_zip(data: BinaryIO) -> Any:
    import torch  # lazy: torch is heavy; imported only where it runs

    try:
        zf = zipfile.ZipFile(data)
    except zipfile.BadZipFile as exc:
        raise FormatError(f"not a readable PyTorch archive: {exc}") from None
    with zf:
        names = zf.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") and n.count("/") == 1), None)
        if pkl is None:
            raise FormatError("PyTorch archive without data.pkl")
        prefix = pkl.rsplit("/", 1)[0]
        if f"{prefix}/byteorder" in names and zf.read(f"{prefix}/byteorder").strip() not in (b"little", b""):
            raise FormatError("big-endian PyTorch archives are not supported by the safe loader")
        storages: dict[str, Any] = {}

        class _TorchUnpickler(RestrictedUnpickler):
            def persistent_load(self, pid: Any) -> Any:
                if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
                    raise UnsafeModelError(f"unexpected persistent id in a PyTorch archive: {pid!r:.80}")
                _, storage_type, key, _location, numel = pid
                if not isinstance(key, str) or not isinstance(numel, int):
                    raise FormatError("malformed storage reference")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    dtype = (storage_type if isinstance(storage_type, torch.dtype)
                             else getattr(storage_type, "dtype", None))
                if not isinstance(dtype, torch.dtype):
                    raise FormatError(f"unknown storage type {storage_type!r:.80}")
                if key not in storages:
                    raw = zf.read(f"{prefix}/data/{key}")
                    itemsize = torch.empty((), dtype=dtype).element_size()
                    if len(raw) < numel * itemsize:
                        raise FormatError(f"storage {key} is shorter than declared")
                    buf = (torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw
                           else torch.empty(0, dtype=torch.uint8))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)
                        storages[key] = torch.storage.TypedStorage(
                            wrap_storage=buf.untyped_storage(), dtype=dtype, _internal=True)
                return storages[key]

        with zf.open(pkl) as fh:
            return _TorchUnpickler(io.BufferedReader(fh)).load()  # type: ignore[arg-type]


def _detect(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(TORCH_LEGACY_MAGIC):
        return "torch-legacy"
    if len(head) >= 2 and head[0] == 0x80:
        return "pickle"
    for magic, kind in COMPRESSED_MAGIC:
        if head.startswith(magic):
            return f"joblib-{kind}"
    return "pickle"


def safe_load(source: bytes | str | Path, fmt: str | None = None) -> Any:
    """Load a pickle-based model file through the allowlist-only unpickler.

    Parameters
    ----------
    source : the file's bytes, or its path.
    fmt : ``"pickle"``, ``"joblib"``, ``"joblib-<gzip|bz2|xz|lzma|zlib>"``, ``"npy"`` or
        ``"torch-zip"``; detected from the content when omitted.

    Returns
    -------
    The deserialised object (scikit-learn estimators, NumPy arrays, PyTorch state_dicts/modules).

    Raises
    ------
    UnsafeModelError
        The file needs a global that is not on the allowlist (nothing was imported).
    FormatError
        The content is not a format this loader reads.

    Examples
    --------
    >>> import pickle
    >>> safe_load(pickle.dumps({"w": [1.0, 2.0]}))
    {'w': [1.0, 2.0]}
    """
    data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    if fmt not in ("pickle", "joblib", "npy", "torch-zip") and not (fmt or "").startswith("joblib-"):
        fmt = _detect(bytes(data[:32]))  # None, the loader's coarse names ("joblib-compressed", ...)
    elif fmt == "joblib-compressed":
        fmt = _detect(bytes(data[:32]))
    fh = io.BytesIO(data)
    try:
        if fmt == "torch-zip":
            with zipfile.ZipFile(fh) as zf:
                names = zf.namelist()
                if names and all(n.endswith(".npy") for n in names):
                    return {n[:-4]: _load_npy(io.BytesIO(zf.read(n))) for n in names}
            fh.seek(0)
            return _load_torch_zip(fh)
        if fmt == "npy":
            return _load_npy(fh)
        if fmt == "torch-legacy":
            raise FormatError("legacy (pre-1.6) PyTorch files are not supported by the safe loader; "
                              "re-save with torch.save or convert to safetensors")
        if fmt.startswith("joblib-") and fmt != "joblib-compressed":
            kind = fmt.split("-", 1)[1]
            stream = open_compressed(fh, kind, MAX_DECOMPRESSED)
            return _restricted_joblib(io.BufferedReader(stream) if not hasattr(stream, "peek") else stream)  # type: ignore[arg-type]
        if fmt in ("pickle", "joblib", "pickle0"):
            return _restricted_joblib(fh)
    except (UnsafeModelError, FormatError):
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, OSError, zipfile.BadZipFile, _Malformed, Truncated, LimitExceeded) as exc:
        raise FormatError(f"cannot load the file safely: {type(exc).__name__}: {exc}") from None
    raise FormatError(f"the safe loader does not read {fmt} files")


def _load_npy(fh: BinaryIO) -> Any:
    import numpy as np  # lazy: numpy only for .npy payloads
    from numpy.lib import format as npformat

    version = npformat.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = npformat.read_array_header_1_0(fh)
    else:
        shape, fortran, dtype = npformat.read_array_header_2_0(fh)
    if not dtype.hasobject:
        fh.seek(0)
        return np.load(fh, allow_pickle=False)
    arr = RestrictedUnpickler(fh).load()
    if not isinstance(arr, np.ndarray):
        raise FormatError("object .npy payload is not an array")
    return arr.reshape(shape, order="F" if fortran else "C")
