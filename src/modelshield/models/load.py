"""``load_model``: pick the adapter from an object, a URL or a file's *content*.

File formats are recognised by their bytes, never by their extension. Pickle-based files
(pickle, joblib, full PyTorch checkpoints) are untrusted code: they are scanned and loaded through
the secure loader (``modelshield.protect.loader``), or loaded directly only with ``trust=True``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from modelshield.errors import FormatError, InputNotFoundError, UntrustedModelError
from modelshield.models.base import BaseModel

__all__ = ["detect_format", "detect_format_bytes", "load_model", "wrap_object"]

#: joblib compressors: gzip, bz2, xz, lzma, joblib's own zlib header, and raw zlib streams
#: (``joblib.dump(..., compress=3)`` writes zlib with no joblib header).
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x5d\x00\x00", b"ZF",
                     b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")


def detect_format(path: str | Path) -> str:
    """:func:`detect_format_bytes` of a file's content."""
    return detect_format_bytes(Path(path).read_bytes())


def detect_format_bytes(data: bytes | bytearray | memoryview) -> str:
    """Return a coarse format name from content (never the file name).

    One of ``onnx``, ``torchscript``, ``torch-zip``, ``zip``, ``pickle``, ``joblib-compressed``,
    ``npy``, ``safetensors``, ``unknown``. The scanner has the exhaustive detector; this one only
    picks a loader.
    """
    mv = memoryview(data)
    head = bytes(mv[:64])
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(mv)) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            return "unknown"
        low = [n.lower() for n in names]  # torch's reader finds members case-insensitively
        if any(n.endswith("constants.pkl") for n in low) or any("/code/" in n or n.startswith("code/") for n in low):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in low):
            return "torch-zip"
        return "zip"
    if head.startswith(b"\x80") and len(head) > 1 and head[1] <= 5:
        return "pickle"
    if head.startswith(_COMPRESSED_MAGIC):
        return "joblib-compressed"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if _looks_like_onnx(mv):
        return "onnx"
    if head[:1] in (b"(", b"c", b"]", b"}", b"I"):
        return "pickle"  # protocol 0/1 pickles have no header
    return "unknown"


def _looks_like_onnx(mv: memoryview) -> bool:
    try:
        import onnx

        return len(onnx.load_model_from_string(bytes(mv)).graph.node) > 0
    except Exception:  # not protobuf / not a ModelProto
        return False


def wrap_object(obj: Any, **kwargs: Any) -> BaseModel:
    """Wrap an in-memory model object in the matching adapter."""
    if isinstance(obj, BaseModel):
        return obj
    try:
        import torch

        if isinstance(obj, torch.nn.Module):
            from modelshield.models.torch import TorchModel

            return TorchModel(obj, **kwargs)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    if hasattr(obj, "fit") and (hasattr(obj, "predict") or hasattr(obj, "predict_proba")):
        from modelshield.models.sklearn import SklearnModel

        return SklearnModel(obj, **kwargs)
    raise FormatError(f"don't know how to wrap a {type(obj).__module__}.{type(obj).__name__}")


def load_model(
    source: Any,
    *,
    trust: bool = False,
    input_shape: tuple[int, ...] | None = None,
    classes: list[Any] | np.ndarray | None = None,
    headers: dict[str, str] | None = None,
    **loader_options: Any,
) -> BaseModel:
    """Load or wrap a model and return its :class:`~modelshield.models.base.BaseModel` adapter.

    Parameters
    ----------
    source : a fitted estimator, a ``torch.nn.Module``, an adapter, an ``http(s)://`` URL or a path
        to a model file (scikit-learn pickle/joblib, PyTorch checkpoint or TorchScript, ONNX).
    trust : load pickle-based files without the scanner's restrictions. Only for files you made.
    input_shape, classes : hints for PyTorch/ONNX models (shape of one sample; class labels).
    loader_options : passed to the secure loader (e.g. ``policy=``, ``key=``).

    Raises
    ------
    InputNotFoundError, FormatError
        Exit 2: no such file; or content that does not parse or is in no known format (empty, text,
        random bytes, a truncated archive), encrypted or not, whatever the extension.
    UnsafeModelError, UntrustedModelError, IntegrityError
        Exit 3: content that parses but is unsafe or could not be fully inspected; untrusted pickle;
        wrong key, tampered container, bad signature. Nothing is loaded in any of these cases.
    """
    if isinstance(source, (str, Path)) and str(source).startswith(("http://", "https://")):
        from modelshield.models.remote import RemoteModel

        n = int(np.prod(input_shape)) if input_shape else None
        return RemoteModel(str(source), classes=classes, headers=headers, n_features=n)
    if not isinstance(source, (str, Path)):
        kw: dict[str, Any] = {}
        if input_shape is not None:
            kw["input_shape"] = input_shape
        if classes is not None:
            kw["classes"] = classes
        return wrap_object(source, **kw)
    path = Path(source)
    if not path.exists():
        raise InputNotFoundError(f"model file not found: {path}")
    if path.is_dir():
        raise FormatError(f"{path} is a directory; pass the model file inside it")
    if not path.is_file():  # a pipe or device would block or cannot be read twice
        raise FormatError(f"{path} is not a regular file (a pipe, device or socket); save the model to a file")
    from modelshield.protect.loader import secure_load

    return secure_load(path, trust=trust, input_shape=input_shape, classes=classes, **loader_options)


def load_file_unrestricted(
    path: Path,
    fmt: str,
    *,
    input_shape: tuple[int, ...] | None,
    classes: list[Any] | np.ndarray | None,
    data: bytes | None = None,
) -> BaseModel:
    """Load ``path`` (or its decrypted bytes ``data``) with the framework's own loader.

    Dangerous for pickle-based formats: callers must have scanned the content or been told to
    trust it. Used by the secure loader.
    """
    import io

    src: Any = io.BytesIO(data) if data is not None else str(path)
    if fmt == "onnx":
        from modelshield.models.onnx import OnnxModel

        raw = data if data is not None else path.read_bytes()
        return OnnxModel(raw, classes=classes, source=str(path))
    if fmt == "torchscript":
        import torch

        from modelshield.models.torch import TorchModel

        module = torch.jit.load(src, map_location="cpu")
        return TorchModel(module, input_shape=input_shape, classes=classes, format="torchscript", source=str(path))
    if fmt in ("torch-zip", "pickle", "joblib-compressed"):
        import pickle

        try:
            obj = _unpickle_trusted(src, fmt)
        except (EOFError, ValueError, IndexError, KeyError, AttributeError, ImportError, RuntimeError,
                pickle.UnpicklingError) as exc:  # truncated, corrupt, or made with other libraries
            raise FormatError(f"{path}: cannot load this {fmt} model file ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:160] if str(exc) else 'malformed'})") from None
        return wrap_loaded(obj, path, fmt, input_shape=input_shape, classes=classes)
    raise FormatError(
        f"{path}: unsupported model format ({fmt}); expected scikit-learn pickle/joblib, "
        "PyTorch, TorchScript or ONNX"
    )


def wrap_loaded(obj: Any, path: Path, fmt: str, *, input_shape: tuple[int, ...] | None = None,
                classes: list[Any] | np.ndarray | None = None) -> BaseModel:
    """Wrap an object loaded from ``path`` (format ``fmt``) and record where it came from."""
    m = wrap_object(obj, **({"input_shape": input_shape} if input_shape and _is_torch(obj) else {}))
    m.format = fmt
    m.source = str(path)
    if classes is not None and m._classes is None:
        m._classes = np.asarray(classes)
    return m


def _is_torch(obj: Any) -> bool:
    try:
        import torch

        return isinstance(obj, torch.nn.Module)
    except ImportError:  # pragma: no cover
        return False


def _unpickle_trusted(src: Any, fmt: str) -> Any:
    if fmt == "torch-zip":
        import torch

        return torch.load(src, map_location="cpu", weights_only=False)
    import joblib

    return joblib.load(src)


def require_trust(path: Path, fmt: str, trust: bool) -> None:
    if not trust:
        raise UntrustedModelError(
            f"{path} is a {fmt} file, which can run code when loaded; "
            "scan it first or pass --trust if you made it yourself"
        )
