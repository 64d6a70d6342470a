"""Training a torch classifier, and the removal attacks an adversary applies to a stolen one.

Shared by the theft engine (fingerprints are calibrated on independently trained and on fine-tuned,
pruned and distilled copies) and by watermark hardening (:mod:`modelshield.harden.watermark` trains
with a trigger set and measures what these attacks do to it). torch is imported inside each function:
it is an optional dependency, and ``import modelshield.theft`` must not pay for it.
"""

from __future__ import annotations

import copy
import io
import math
from typing import Any

import numpy as np

from modelshield.errors import DataError
from modelshield.theft.torchutil import few_threads
from modelshield.theft.watermark import TriggerSet

__all__ = ["accuracy", "as_tensors", "check_labels", "copy_module", "distill", "fine_tune", "n_outputs",
           "prune_magnitude", "reinitialised",
           "train_classifier"]


def as_tensors(X: np.ndarray, y: np.ndarray | None = None) -> tuple[Any, Any]:
    import torch  # lazy: torch is heavy; imported only where it runs

    xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
    yt = None if y is None else torch.as_tensor(np.asarray(y).astype(np.int64))
    return xt, yt


def check_labels(y: np.ndarray, n_out: int | None) -> np.ndarray:
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        if np.all(np.asarray(y, dtype=np.float64) == np.round(np.asarray(y, dtype=np.float64))):
            y = np.asarray(y, dtype=np.int64)
        else:
            raise DataError("training labels must be class indices 0..n_classes-1")
    if y.min() < 0 or (n_out is not None and y.max() >= n_out):
        raise DataError(f"training labels must be class indices 0..{(n_out or 0) - 1}")
    return y.astype(np.int64)


def n_outputs(module: Any, X: np.ndarray) -> int:
    import torch  # lazy: torch is heavy; imported only where it runs

    with torch.no_grad():
        return int(module(as_tensors(X[:1])[0]).shape[-1])


def accuracy(module: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Plain accuracy of a logits module on class indices ``y``."""
    import torch  # lazy: torch is heavy; imported only where it runs

    with few_threads(), torch.no_grad():
        pred = module.eval()(as_tensors(X)[0]).argmax(dim=1).numpy()
    return float(np.mean(pred == np.asarray(y)))


def train_classifier(
    module: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 40,
    lr: float = 1e-2,
    batch_size: int = 64,
    seed: int = 0,
    triggers: TriggerSet | None = None,
    trigger_batch: int = 16,
    trigger_jitter: float = 0.0,
    soft_targets: np.ndarray | None = None,
) -> Any:
    """Train ``module`` in place with Adam and cross-entropy; returns it in eval mode (TorchScript
    modules: a fresh copy with the trained weights).

    With ``triggers``, every clean batch is followed in the same step by ``trigger_batch`` trigger
    samples (drawn with replacement), so the watermark is learned alongside the task; with
    ``trigger_jitter`` > 0 each drawn trigger gets Gaussian noise of that standard deviation (the model
    learns a neighbourhood of every trigger, not a point, which resists weight perturbation). With
    ``soft_targets`` (shape ``(n, n_classes)``) the clean loss uses them instead of ``y``
    (distillation).
    """
    import torch  # lazy: torch is heavy; imported only where it runs

    Xt, yt = as_tensors(X, y)
    St = None if soft_targets is None else torch.as_tensor(np.asarray(soft_targets, dtype=np.float32))
    Tx, Ty = (None, None) if triggers is None else as_tensors(triggers.X, triggers.labels)
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    n = len(Xt)
    with few_threads():
        module.train()
        for _ in range(int(epochs)):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                opt.zero_grad()
                target = St[idx] if St is not None else yt[idx]
                loss = torch.nn.functional.cross_entropy(module(Xt[idx]), target)
                if Tx is not None:
                    t_idx = torch.randint(0, len(Tx), (trigger_batch,), generator=gen)
                    tx = Tx[t_idx]
                    if trigger_jitter > 0:
                        tx = tx + trigger_jitter * torch.randn(tx.shape, generator=gen)
                    loss = loss + torch.nn.functional.cross_entropy(module(tx), Ty[t_idx])
                loss.backward()
                opt.step()
    if isinstance(module, torch.jit.ScriptModule):
        # a trained TorchScript module can keep gradient-recording execution plans that ignore
        # no_grad(); a serialisation round trip gives a clean module with the trained weights
        return copy_module(module).eval()
    return module.eval()


# -- removal attacks ---------------------------------------------------------------------------
def copy_module(module: Any) -> Any:
    """An independent copy of ``module`` (TorchScript modules are copied through serialisation,
    which keeps their parameters trainable)."""
    import torch  # lazy: torch is heavy; imported only where it runs

    if isinstance(module, torch.jit.ScriptModule):
        buf = io.BytesIO()
        torch.jit.save(module, buf)
        buf.seek(0)
        return torch.jit.load(buf, map_location="cpu")
    return copy.deepcopy(module)


def reinitialised(module: Any, seed: int) -> Any:
    """A copy of ``module`` with every layer re-initialised from ``seed`` (same architecture).

    Layers with ``reset_parameters`` use it; otherwise (TorchScript) weight matrices get PyTorch's
    default Linear/Conv initialisation (Kaiming-uniform, ``a = sqrt(5)``), biases
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` and 1-D weights (normalisation layers) ones.
    """
    import torch  # lazy: torch is heavy; imported only where it runs

    clone = copy_module(module)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(int(seed))
        for m in clone.modules():
            if hasattr(m, "reset_parameters") and not isinstance(m, torch.jit.ScriptModule):
                m.reset_parameters()
                continue
            params = dict(m.named_parameters(recurse=False))
            w = params.get("weight")
            if w is not None and w.dim() >= 2:
                torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5))
                fan_in = w[0].numel()
                b = params.get("bias")
                if b is not None:
                    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                    torch.nn.init.uniform_(b, -bound, bound)
            elif w is not None:
                torch.nn.init.ones_(w)
                if params.get("bias") is not None:
                    torch.nn.init.zeros_(params["bias"])
    return clone


def fine_tune(module: Any, X: np.ndarray, y: np.ndarray, *, epochs: int = 20, lr: float = 1e-3,
              batch_size: int = 64, seed: int = 0) -> Any:
    """A fine-tuned copy of ``module`` (clean data only, Adam, all layers)."""
    return train_classifier(copy_module(module), X, check_labels(y, None), epochs=epochs, lr=lr,
                            batch_size=batch_size, seed=seed)


def prune_magnitude(module: Any, amount: float = 0.3) -> Any:
    """A copy with the ``amount`` smallest-magnitude weights of all Linear/Conv layers set to zero
    (global unstructured L1 pruning with ``torch.nn.utils.prune``, made permanent; TorchScript
    modules, which cannot take pruning hooks, get the same zeroing applied directly)."""
    import torch  # lazy: torch is heavy; imported only where it runs
    from torch.nn.utils import prune

    clone = copy_module(module)
    if isinstance(clone, torch.jit.ScriptModule):  # no forward hooks: apply the same pruning directly
        weights = [p for n, p in clone.named_parameters() if n.endswith("weight") and p.dim() >= 2]
        if not weights:
            raise DataError("no weight matrices to prune")
        flat = torch.cat([w.detach().abs().reshape(-1) for w in weights])
        k = round(float(amount) * flat.numel())
        if k > 0:
            cut = torch.kthvalue(flat, k).values
            with torch.no_grad():
                for w in weights:
                    w.mul_((w.abs() > cut).to(w.dtype))
        return clone.eval()
    params = [(m, "weight") for m in clone.modules()
              if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))]
    if not params:
        raise DataError("no Linear or Conv layers to prune")
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=float(amount))
    for m, name in params:
        prune.remove(m, name)
    return clone.eval()


def distill(teacher: Any, X_transfer: np.ndarray, *, student: Any | None = None, epochs: int = 40,
            lr: float = 1e-2, temperature: float = 2.0, seed: int = 0) -> Any:
    """A student trained only on the teacher's softened outputs on ``X_transfer`` (clean inputs).

    The student is a freshly initialised copy of the teacher's architecture unless given.
    """
    import torch  # lazy: torch is heavy; imported only where it runs

    Xt = as_tensors(X_transfer)[0]
    with few_threads(), torch.no_grad():
        soft = torch.softmax(teacher.eval()(Xt) / temperature, dim=1).numpy()
    student = reinitialised(teacher, seed + 1) if student is None else student
    hard = soft.argmax(axis=1)
    return train_classifier(student, X_transfer, hard, epochs=epochs, lr=lr, seed=seed, soft_targets=soft)
