"""Input loading shared by the theft area's commands (``theft ...``, ``theft fingerprint ...``,
``harden watermark``): a model whose width may be unknown, and the data it is queried with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from modelshield.cli._common import split_list
from modelshield.cli._loading import LoadFlags

__all__ = ["FEATURES_OPT", "load_data", "load_model"]

FEATURES_OPT = typer.Option([], "--features", help="Model input columns (comma list or repeated).")


def load_model(path: str, load: LoadFlags, shape: tuple[int, ...]) -> Any:
    """Load a model; ``shape`` (one input row) is a fallback for models whose width is unknown (e.g.
    convolutional ones). The model's own width wins, so data of the wrong width is reported by
    :func:`~modelshield.data.loaders.check_model_width` instead of being forced onto the model."""
    if str(path).startswith(("http://", "https://")):
        return load.load(path, input_shape=tuple(shape))
    m = load.load(path)
    return m if getattr(getattr(m, "input_spec", None), "shape", None) else load.load(path, input_shape=tuple(shape))


def load_data(path: Path, target: str | None, features: list[str]) -> Any:
    """The dataset at ``path``; ``features``: the ``--features`` values (comma lists or repeated)."""
    from modelshield.data.loaders import load_dataset  # lazy: keeps CLI start-up free of numpy/pandas

    return load_dataset(path, target=target, features=split_list(features) or None)
