"""A model backed by a plain function: the test double, and the way to wrap anything else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from modelshield.models.base import BaseModel, Capability, InputSpec

__all__ = ["CallableModel"]


class CallableModel(BaseModel):
    """``CallableModel(fn, classes=[0, 1])`` where ``fn(X) -> scores`` of shape ``(n, n_classes)``.

    Example
    -------
    >>> m = CallableModel(lambda X: np.c_[1 - X[:, 0], X[:, 0]], classes=[0, 1], n_features=1)
    >>> m.predict(np.array([[0.2], [0.9]])).tolist()
    [0, 1]
    """

    framework = "callable"

    def __init__(
        self,
        fn: Callable[[np.ndarray], Any],
        *,
        classes: list[Any] | np.ndarray,
        n_features: int | None = None,
        input_shape: tuple[int, ...] | None = None,
        query_only: bool = False,
    ) -> None:
        shape = input_shape or ((n_features,) if n_features else None)
        caps = {Capability.PROBABILITIES}
        if query_only:
            caps.add(Capability.QUERY_ONLY)
        super().__init__(classes=classes, input_spec=InputSpec(shape=shape), capabilities=frozenset(caps))
        self.fn = fn

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(X), dtype=np.float64)
