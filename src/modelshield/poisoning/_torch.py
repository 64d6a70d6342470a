"""Small torch helpers of the poisoning engine (torch is imported inside each function)."""

from __future__ import annotations

import copy
import io
from typing import Any

import numpy as np

from modelshield.models.torchutil import few_threads
from modelshield.models.torchutil import make_mlp as _make_mlp


def make_mlp(n_in: int, n_out: int, hidden: tuple[int, ...] = (64, 32), seed: int = 0) -> Any:
    """A ReLU MLP whose initial weights depend only on ``seed`` (the engine's default widths)."""
    return _make_mlp(n_in, n_out, hidden, seed)


def train(module: Any, X: np.ndarray, y: np.ndarray, *, epochs: int = 30, lr: float = 1e-2,
          batch_size: int = 64, weight_decay: float = 0.0, seed: int = 0) -> Any:
    """Train ``module`` (inputs -> logits) in place with Adam and cross-entropy; returns it in eval mode."""
    import torch  # lazy: torch is heavy; imported only where it runs

    Xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y).astype(np.int64))
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    with few_threads():
        module.train()
        for _ in range(int(epochs)):
            order = torch.randperm(len(Xt), generator=gen)
            for s in range(0, len(Xt), batch_size):
                idx = order[s : s + batch_size]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(module(Xt[idx]), yt[idx]).backward()
                opt.step()
    if isinstance(module, torch.jit.ScriptModule):
        # a trained TorchScript module can keep gradient-recording plans that ignore no_grad(); a
        # serialisation round trip gives a clean module with the trained weights
        return copy_module(module).eval()
    return module.eval()


def logits(module: Any, X: np.ndarray, batch: int = 4096) -> np.ndarray:
    """The module's outputs for ``X`` as a numpy array (no gradients)."""
    import torch  # lazy: torch is heavy; imported only where it runs

    outs = []
    with few_threads(), torch.no_grad():
        for s in range(0, len(X), batch):
            outs.append(module(torch.as_tensor(np.asarray(X[s : s + batch], dtype=np.float32))).detach().numpy())
    return np.concatenate(outs) if outs else np.empty((0, 0))


def copy_module(module: Any) -> Any:
    """An independent copy (TorchScript through a serialisation round trip)."""
    import torch  # lazy: torch is heavy; imported only where it runs

    if isinstance(module, torch.jit.ScriptModule):
        buf = io.BytesIO()
        torch.jit.save(module, buf)
        buf.seek(0)
        return torch.jit.load(buf)
    return copy.deepcopy(module)


def reinitialised(module: Any, seed: int) -> Any:
    """A copy with every layer's parameters re-initialised from ``seed``."""
    import torch  # lazy: torch is heavy; imported only where it runs

    clone = copy_module(module)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in clone.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return clone
