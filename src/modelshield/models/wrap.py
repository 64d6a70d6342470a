"""Wrap an in-memory model object (a fitted estimator, a ``torch.nn.Module``) in its adapter.

Loading from files is the secure loader's job (:func:`modelshield.protect.loader.load_model`); this
module only wraps what is already in memory, and records where a loaded object came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelshield.errors import FormatError
from modelshield.models.base import BaseModel
from modelshield.models.sklearn import SklearnModel
from modelshield.models.torch import TorchModel

__all__ = ["wrap_loaded", "wrap_object"]


def wrap_object(obj: Any, **kwargs: Any) -> BaseModel:
    """Wrap an in-memory model object in the matching adapter."""
    if isinstance(obj, BaseModel):
        return obj
    try:
        import torch  # lazy: keeps torch off CLI start-up (the CLI imports this module)

        if isinstance(obj, torch.nn.Module):
            return TorchModel(obj, **kwargs)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    if hasattr(obj, "fit") and (hasattr(obj, "predict") or hasattr(obj, "predict_proba")):
        return SklearnModel(obj, **kwargs)
    raise FormatError(f"don't know how to wrap a {type(obj).__module__}.{type(obj).__name__}")


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
        import torch  # lazy: keeps torch off CLI start-up (the CLI imports this module)

        return isinstance(obj, torch.nn.Module)
    except ImportError:  # pragma: no cover
        return False
