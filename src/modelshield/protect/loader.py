"""The secure loader: verify -> decrypt -> scan -> load. Fails closed.

Foundation version: format detection and the trust gate for pickle-based files. The protection
and scanner issues extend it with signature verification, decryption and scanning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelshield.models.base import BaseModel
from modelshield.models.load import detect_format, load_file_unrestricted, require_trust

__all__ = ["secure_load"]

PICKLE_BASED = frozenset({"pickle", "joblib-compressed", "torch-zip"})


def secure_load(
    path: Path,
    *,
    trust: bool = False,
    input_shape: tuple[int, ...] | None = None,
    classes: list[Any] | np.ndarray | None = None,
) -> BaseModel:
    fmt = detect_format(path)
    if fmt in PICKLE_BASED:
        require_trust(path, fmt, trust)
    return load_file_unrestricted(path, fmt, input_shape=input_shape, classes=classes)
