"""Removing a backdoor: drop the flagged rows and retrain, or fine-prune (Liu et al. 2018).

A detector rarely flags every poisoned row, and a handful left in the training data re-teaches the trigger
(4 of 126 BadNets rows on digits gave 37% attack success). :func:`reference_disagreements` finds the rest
in the classes a detector called poisoned: a model of the same kind trained only on the clean held-out rows
has never seen the trigger, so it gives a poisoned row its true class, not the attacker's label. Training on
those rows with the reference's labels (rather than dropping them) teaches the retrained model that the
trigger does not mean the target, which outweighs a few poisoned rows still left.

References
----------
.. [1] K. Liu, B. Dolan-Gavitt, S. Garg, "Fine-Pruning: Defending Against Backdooring Attacks on Deep
   Neural Networks", RAID 2018.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelshield.errors import DataError, UserError
from modelshield.poisoning import _torch as T
from modelshield.poisoning.activations import penultimate_activations, torch_module_of

__all__ = ["FinePruneResult", "ReferenceLabels", "fine_prune", "reference_disagreements", "retrain_without"]


def _keep_mask(n: int, rows: Any) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= n):
        raise DataError(f"flagged row indices must lie in 0..{n - 1}")
    keep[rows] = False
    if keep.sum() < 2:
        raise DataError("dropping the flagged rows leaves fewer than 2 training rows")
    return keep


def _reinit(module: Any, seed: int) -> Any:
    """A copy with fresh weights (PyTorch's default Linear/Conv initialisation; TorchScript too)."""
    import torch  # lazy: torch is heavy; imported only where it runs

    clone = T.copy_module(module)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(int(seed))
        for m in clone.modules():
            params = dict(m.named_parameters(recurse=False))
            w = params.get("weight")
            if w is None:
                continue
            if w.dim() >= 2:
                torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5))
                b = params.get("bias")
                if b is not None:
                    bound = 1 / math.sqrt(w[0].numel())
                    torch.nn.init.uniform_(b, -bound, bound)
            else:
                torch.nn.init.ones_(w)
                if params.get("bias") is not None:
                    torch.nn.init.zeros_(params["bias"])
    return clone


def retrain_without(model: Any, X: np.ndarray, y: np.ndarray, rows: Any, *, epochs: int = 40, lr: float = 3e-3,
                    seed: int = 0) -> Any:
    """A fresh model of the same kind trained on the training rows minus ``rows``.

    scikit-learn: ``clone`` of the estimator, fitted on the kept rows. PyTorch / TorchScript: the same
    architecture re-initialised from ``seed`` and trained with Adam (``epochs``, ``lr``); ``y`` must be
    class indices. Returns the estimator or module.
    """
    keep = _keep_mask(len(X), rows)
    if getattr(model, "framework", "") == "sklearn":
        est = model.clone_unfitted()
        est.fit(np.asarray(X)[keep], np.asarray(y)[keep])
        return est
    module = torch_module_of(model)
    prep = getattr(model, "_prepare", None)
    Xn = np.asarray(prep(np.asarray(X)) if callable(prep) else X, dtype=np.float32)
    labels = model.label_index(np.asarray(y)) if hasattr(model, "label_index") else np.asarray(y)
    return T.train(_reinit(module, seed), Xn[keep], labels[keep], epochs=epochs, lr=lr, seed=seed)


@dataclass(frozen=True, kw_only=True)
class ReferenceLabels:
    """The rows (indices) whose label a reference model rejects, and its label for each of them."""

    rows: np.ndarray
    labels: np.ndarray


def reference_disagreements(model: Any, X_ref: np.ndarray, y_ref: np.ndarray, X: np.ndarray, y: np.ndarray, *,
                            classes: Any = None, epochs: int = 40, lr: float = 3e-3, seed: int = 0,
                            ) -> ReferenceLabels:
    """The rows of ``X`` whose label ``y`` differs from the prediction of a reference model
    trained on the trusted clean rows ``X_ref, y_ref`` alone (the same kind as ``model``: an unfitted
    scikit-learn clone, or the PyTorch architecture re-initialised from ``seed`` and trained as in
    :func:`retrain_without`). ``classes``: only rows labelled one of these are returned (the classes a
    detector called poisoned; ``None``: all rows). Returns the rows and the reference's labels for them
    (in ``y``'s label values).

    A dirty-label poisoned row carries a trigger and the attacker's label; the reference model never saw
    the trigger and predicts the row's true class. Clean rows it misclassifies are returned too (its
    error rate within ``classes``), so callers restrict ``classes`` to the suspected ones.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y) or len(np.asarray(X_ref)) != len(np.asarray(y_ref)):
        raise DataError("features and labels must have one row each")
    if len(np.unique(np.asarray(y_ref))) < 2:
        raise DataError("the reference rows need at least two classes")
    if getattr(model, "framework", "") == "sklearn":
        est = model.clone_unfitted()
        est.fit(np.asarray(X_ref), np.asarray(y_ref))
        pred = np.asarray(est.predict(X))
    else:
        module = torch_module_of(model)
        prep = getattr(model, "_prepare", None)

        def feats(A: np.ndarray) -> np.ndarray:
            return np.asarray(prep(np.asarray(A)) if callable(prep) else A, dtype=np.float32)

        def index(v: np.ndarray) -> np.ndarray:
            return model.label_index(np.asarray(v)) if hasattr(model, "label_index") else np.asarray(v)

        ref = T.train(_reinit(module, seed), feats(X_ref), index(y_ref), epochs=epochs, lr=lr, seed=seed)
        idx = T.logits(ref, feats(X)).argmax(axis=1)
        known = getattr(model, "classes", None) if hasattr(model, "label_index") else None
        pred = np.asarray(known)[idx] if known is not None else idx
    wrong = pred != y
    if classes is not None:
        wrong &= np.isin(y, np.asarray(list(classes)))
    rows = np.flatnonzero(wrong).astype(np.int64)
    return ReferenceLabels(rows=rows, labels=pred[rows])


@dataclass(frozen=True, kw_only=True)
class FinePruneResult:
    """The fine-pruned module, the pruned penultimate units and the clean accuracy along the way."""

    module: Any
    pruned_units: list[int]
    accuracy_before: float
    accuracy_pruned: float
    accuracy_after: float


def _last_linear(module: Any) -> Any:
    lin = [m for n, m in module.named_modules() if n and str(getattr(m, "original_name", type(m).__name__)) == "Linear"]
    if not lin:
        raise UserError("fine-pruning needs a model whose last layer is Linear")
    return lin[-1]


def fine_prune(model: Any, X_clean: np.ndarray, y_clean: np.ndarray, *, max_accuracy_drop: float = 0.04,
               epochs: int = 10, lr: float = 1e-3, seed: int = 0) -> FinePruneResult:
    """Fine-pruning: prune the penultimate units least active on clean data (a backdoor hides in units
    clean inputs leave dormant) while clean accuracy stays within ``max_accuracy_drop`` of the start,
    then fine-tune on the clean rows with the pruned units held at zero.

    ``X_clean, y_clean``: clean rows the defender trusts (held-out data; ``y`` as the model's labels).
    The model itself is not changed; a pruned, fine-tuned copy is returned.
    """
    import torch  # lazy: torch is heavy; imported only where it runs

    if not (0 <= max_accuracy_drop < 1):
        raise UserError(f"max_accuracy_drop must be in [0, 1), got {max_accuracy_drop}")
    module = T.copy_module(torch_module_of(model))
    prep = getattr(model, "_prepare", None)
    Xn = np.asarray(prep(np.asarray(X_clean)) if callable(prep) else X_clean, dtype=np.float32)
    labels = model.label_index(np.asarray(y_clean)) if hasattr(model, "label_index") else np.asarray(y_clean)
    last = _last_linear(module)
    acts = penultimate_activations(module, Xn)
    order = np.argsort(acts.mean(axis=0), kind="stable")  # least active first
    W = last.weight

    def acc() -> float:
        return float(np.mean(T.logits(module, Xn).argmax(axis=1) == labels))

    before = acc()
    pruned: list[int] = []
    saved = W.detach().clone()
    with torch.no_grad():
        for unit in order[: max(0, len(order) - 1)]:
            col = W[:, int(unit)].clone()
            W[:, int(unit)] = 0.0
            if acc() < before - max_accuracy_drop:
                W[:, int(unit)] = col
                break
            pruned.append(int(unit))
    after_prune = acc()
    mask = torch.ones_like(saved)
    mask[:, pruned] = 0.0
    handle = W.register_hook(lambda g: g * mask)
    try:
        module = T.train(module, Xn, labels, epochs=epochs, lr=lr, seed=seed)
    finally:
        handle.remove()
    with torch.no_grad():
        _last_linear(module).weight.mul_(mask)
    return FinePruneResult(module=module, pruned_units=pruned, accuracy_before=before,
                           accuracy_pruned=after_prune, accuracy_after=acc())
