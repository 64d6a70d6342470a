"""HAZARDOUS: the frameworks' own, unrestricted loaders. Loading a pickle-based file here runs
whatever code it carries (``torch.load(weights_only=False)``, ``joblib.load``).

Only :mod:`modelshield.protect.loader` imports this module, after the content was verified, decrypted and
scanned, or when the caller said ``trust=True`` for a file they made. Nothing else may import it (an
import-linter contract in ``pyproject.toml`` holds that).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from modelshield.errors import FormatError
from modelshield.models.base import BaseModel
from modelshield.models.onnx import OnnxModel
from modelshield.models.torch import TorchModel
from modelshield.models.wrap import wrap_loaded

__all__ = ["load_file_unrestricted"]


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
    src: Any = io.BytesIO(data) if data is not None else str(path)
    if fmt == "onnx":
        raw = data if data is not None else path.read_bytes()
        return OnnxModel(raw, classes=classes, source=str(path))
    if fmt == "torchscript":
        import torch  # lazy: keeps torch off CLI start-up; only PyTorch files need it

        module = torch.jit.load(src, map_location="cpu")
        return TorchModel(module, input_shape=input_shape, classes=classes, format="torchscript", source=str(path))
    if fmt in ("torch-zip", "pickle", "joblib-compressed"):
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


def _unpickle_trusted(src: Any, fmt: str) -> Any:
    if fmt == "torch-zip":
        import torch

        return torch.load(src, map_location="cpu", weights_only=False)
    import joblib  # lazy: joblib only for pickle/joblib files (CLI start-up)

    return joblib.load(src)
