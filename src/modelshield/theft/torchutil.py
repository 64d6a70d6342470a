"""Small torch helpers shared by the theft modules: thread limits, seeded MLPs, soft-label training."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelshield.models.base import BaseModel
from modelshield.models.torchutil import few_threads, make_mlp
from modelshield.models.wrap import wrap_object

__all__ = ["as_model", "few_threads", "make_mlp", "train_soft"]


def train_soft(
    module: Any,
    X: np.ndarray,
    targets: np.ndarray,
    *,
    steps: int = 300,
    batch_size: int = 512,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> Any:
    """Train ``module`` (inputs -> logits) with cross-entropy against soft or one-hot ``targets``.

    ``targets`` has shape ``(n, n_classes)`` (rows sum to 1) or ``(n,)`` class indices.
    Mini-batches are drawn with a seeded generator, so training is deterministic.
    """
    import torch  # lazy: torch is heavy; imported only where it runs

    Xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
    tt = np.asarray(targets)
    Tt = torch.as_tensor(tt.astype(np.float32) if tt.ndim == 2 else tt.astype(np.int64))
    n = len(Xt)
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    module.train()
    for _ in range(int(steps)):
        if n > batch_size:
            idx = torch.randint(0, n, (batch_size,), generator=gen)
            xb, tb = Xt[idx], Tt[idx]
        else:
            xb, tb = Xt, Tt
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(xb), tb).backward()
        opt.step()
    return module.eval()


def as_model(model: Any, input_shape: tuple[int, ...] | None = None) -> Any:
    """Wrap ``model`` in its adapter; ``input_shape`` helps torch modules whose shape cannot be
    inferred (TorchScript, convolutional nets) find their classes."""

    if isinstance(model, BaseModel):
        return model
    try:
        import torch  # lazy: torch is heavy; imported only where it runs

        if isinstance(model, torch.nn.Module) and input_shape is not None:
            return wrap_object(model, input_shape=tuple(input_shape))
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    return wrap_object(model)
