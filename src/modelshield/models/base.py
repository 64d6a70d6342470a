"""The :class:`Model` protocol every adapter implements, and a shared base class.

Checks ask for capabilities, never frameworks::

    if Capability.GRADIENTS in model.capabilities:
        module = model.as_torch()
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from modelshield.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["BaseModel", "Capability", "InputSpec", "Model"]


class Capability(str, enum.Enum):
    """What an adapter can do. Checks declare which of these they need."""

    PROBABILITIES = "probabilities"  # predict_proba returns calibrated-ish scores
    GRADIENTS = "gradients"  # gradient() / as_torch() are available (white-box)
    QUERY_ONLY = "query_only"  # black box: only predictions through an interface
    RETRAINABLE = "retrainable"  # clone_unfitted() gives an unfitted copy (shadow models)


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """What the model takes: ``shape`` excludes the batch axis (``(30,)`` or ``(1, 8, 8)``)."""

    shape: tuple[int, ...] | None = None
    dtype: str = "float32"
    feature_names: tuple[str, ...] | None = None

    @property
    def n_features(self) -> int | None:
        if self.shape is None:
            return None
        return int(np.prod(self.shape))


@runtime_checkable
class Model(Protocol):
    """A classifier (or regressor) behind a uniform, batch-first numpy interface."""

    framework: str
    format: str
    task: str
    input_spec: InputSpec
    capabilities: frozenset[Capability]

    @property
    def classes(self) -> np.ndarray: ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...


class BaseModel(ABC):
    """Shared behaviour: batching, ``predict`` from ``predict_proba``, gradients via torch.

    Subclasses implement :meth:`_predict_proba` (and, for white-box models, :meth:`as_torch`).
    """

    framework: str = "unknown"
    format: str = "object"
    task: str = "classification"

    def __init__(
        self,
        *,
        classes: np.ndarray | list[Any] | None = None,
        input_spec: InputSpec | None = None,
        capabilities: frozenset[Capability] = frozenset({Capability.PROBABILITIES}),
        batch_size: int = 4096,
        source: str | None = None,
    ) -> None:
        self._classes = None if classes is None else np.asarray(classes)
        self.input_spec = input_spec or InputSpec()
        self.capabilities = frozenset(capabilities)
        self.batch_size = batch_size
        self.source = source
        self.query_count = 0
        self.extra: dict[str, Any] = {}

    # -- capabilities -----------------------------------------------------------------------
    @property
    def differentiable(self) -> bool:
        return Capability.GRADIENTS in self.capabilities

    @property
    def classes(self) -> np.ndarray:
        if self._classes is None:
            raise AttributeError(f"{type(self).__name__} does not know its classes")
        return self._classes

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    # -- prediction -------------------------------------------------------------------------
    @abstractmethod
    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Scores for one batch, shape ``(n, n_classes)``."""

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if self.input_spec.shape is not None and X.ndim >= 1:
            want = self.input_spec.shape
            if X.shape[1:] != want:
                if int(np.prod(X.shape[1:])) == int(np.prod(want)):
                    X = X.reshape((X.shape[0], *want))
                else:
                    raise DataError(
                        f"input has shape {X.shape[1:]} per row but the model expects {want}"
                    )
        return X

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = self._prepare(X)
        self.query_count += len(X)
        if len(X) <= self.batch_size:
            return np.asarray(self._predict_proba(X), dtype=np.float64)
        parts = [
            self._predict_proba(X[i : i + self.batch_size])
            for i in range(0, len(X), self.batch_size)
        ]
        return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])

    def predict(self, X: np.ndarray) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes[np.argmax(proba, axis=1)]

    def predict_index(self, X: np.ndarray) -> np.ndarray:
        """Predicted class *indices* (0..n_classes-1), convenient for attacks."""
        return np.argmax(self.predict_proba(X), axis=1)

    def label_index(self, y: np.ndarray) -> np.ndarray:
        """Map labels to class indices; raises :class:`DataError` for unknown labels."""

        y = np.asarray(y)
        classes = self.classes
        idx = np.searchsorted(classes, y) if _is_sorted(classes) else None
        if idx is None:
            lookup = {c: i for i, c in enumerate(classes.tolist())}
            try:
                return np.array([lookup[v] for v in y.tolist()], dtype=np.int64)
            except KeyError as exc:
                raise DataError(f"label {exc.args[0]!r} is not one of the model's classes") from None
        idx = np.clip(idx, 0, len(classes) - 1)
        if not np.all(classes[idx] == y):
            bad = y[classes[idx] != y][0]
            bad = bad.item() if isinstance(bad, np.generic) else bad  # 5, not np.int64(5)
            raise DataError(
                f"label {bad!r} is not one of the model's classes {classes.tolist()[:10]}"
            )
        return idx.astype(np.int64)

    # -- white box --------------------------------------------------------------------------
    def as_torch(self) -> torch.nn.Module:
        """A ``torch.nn.Module`` mapping inputs to *logits* (white-box models only)."""
        raise TypeError(f"{type(self).__name__} is not differentiable")

    def gradient(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of the cross-entropy loss w.r.t. the input, same shape as ``X``."""
        import torch  # lazy: keeps torch off CLI start-up (the CLI imports this module)

        module = self.as_torch()
        xt = torch.as_tensor(self._prepare(X), dtype=torch.float32).requires_grad_(True)
        yt = torch.as_tensor(self.label_index(y))
        loss = torch.nn.functional.cross_entropy(module(xt), yt, reduction="sum")
        (grad,) = torch.autograd.grad(loss, xt)
        return grad.detach().numpy().reshape(np.shape(X))

    def describe(self) -> dict[str, Any]:
        return {
            "framework": self.framework,
            "format": self.format,
            "task": self.task,
            "adapter": type(self).__name__,
            "classes": None if self._classes is None else self._classes.tolist(),
            "input_shape": self.input_spec.shape,
            "capabilities": sorted(c.value for c in self.capabilities),
            "source": self.source,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(framework={self.framework!r}, format={self.format!r})"


def _is_sorted(a: np.ndarray) -> bool:
    try:
        return bool(np.all(a[:-1] < a[1:]))
    except TypeError:
        return False
