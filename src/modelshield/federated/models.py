"""The models a federated simulation trains, as flat float64 parameter vectors (numpy only).

* ``logistic``: softmax regression, parameters ``W (d x C)`` then ``b (C)``.
* ``mlp``: one hidden ReLU layer of ``hidden`` units, parameters ``W1 (d x h), b1 (h), W2 (h x C), b2 (C)``.

Both train by mini-batch SGD on the cross-entropy loss; :func:`local_sgd` returns the update (new minus old).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelshield.errors import UserError

__all__ = ["MODELS", "FlatModel", "local_sgd", "make_model"]

MODELS = ("logistic", "mlp")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class FlatModel:
    """A classifier whose parameters are one flat vector; ``hidden == 0`` is softmax regression."""

    n_features: int
    n_classes: int
    hidden: int = 0

    @property
    def name(self) -> str:
        return "mlp" if self.hidden else "logistic"

    @property
    def size(self) -> int:
        d, c, h = self.n_features, self.n_classes, self.hidden
        return (d + 1) * c if h == 0 else (d + 1) * h + (h + 1) * c

    def _unpack(self, w: np.ndarray) -> list[np.ndarray]:
        d, c, h = self.n_features, self.n_classes, self.hidden
        shapes = [(d, c), (c,)] if h == 0 else [(d, h), (h,), (h, c), (c,)]
        out, at = [], 0
        for s in shapes:
            n = int(np.prod(s))
            out.append(w[at : at + n].reshape(s))
            at += n
        return out

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """Zeros for softmax regression; He-scaled Gaussian first layer for the MLP (zeros elsewhere)."""
        w = np.zeros(self.size)
        if self.hidden:
            w[: self.n_features * self.hidden] = rng.normal(0.0, np.sqrt(2.0 / self.n_features),
                                                          self.n_features * self.hidden)
        return w

    def logits(self, w: np.ndarray, x: np.ndarray) -> np.ndarray:
        p = self._unpack(w)
        if not self.hidden:
            return x @ p[0] + p[1]
        return np.maximum(x @ p[0] + p[1], 0.0) @ p[2] + p[3]

    def predict(self, w: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(w, x), axis=1)

    def grad(self, w: np.ndarray, x: np.ndarray, onehot: np.ndarray) -> np.ndarray:
        """Gradient of the mean cross-entropy over the rows of ``x``, flat like ``w``."""
        p = self._unpack(w)
        n = len(x)
        if not self.hidden:
            g = _softmax(x @ p[0] + p[1]) - onehot
            return np.concatenate([(x.T @ g / n).ravel(), g.mean(axis=0)])
        h = np.maximum(x @ p[0] + p[1], 0.0)
        g = _softmax(h @ p[2] + p[3]) - onehot
        dh = (g @ p[2].T) * (h > 0)
        return np.concatenate([(x.T @ dh / n).ravel(), dh.mean(axis=0), (h.T @ g / n).ravel(), g.mean(axis=0)])


def make_model(name: str, n_features: int, n_classes: int, hidden: int = 32) -> FlatModel:
    if name not in MODELS:
        raise UserError(f"model must be one of {', '.join(MODELS)}, got {name!r}")
    return FlatModel(n_features, n_classes, hidden if name == "mlp" else 0)


def local_sgd(model: FlatModel, w0: np.ndarray, x: np.ndarray, y: np.ndarray, *, epochs: int, lr: float,
              batch: int, rng: np.random.Generator) -> np.ndarray:
    """``epochs`` of shuffled mini-batch SGD from ``w0``; returns the update ``w - w0``."""
    w = w0.copy()
    onehot = np.eye(model.n_classes)[y]
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for s in range(0, len(y), batch):
            b = order[s : s + batch]
            w -= lr * model.grad(w, x[b], onehot[b])
    return w - w0
