"""Penultimate-layer activations of PyTorch and TorchScript models (the white-box checks' input).

``penultimate_activations(model, X)`` returns, per row, the input of the model's last ``Linear`` layer
(or of a named layer). A model whose activations cannot be reached (ONNX, a remote endpoint, a
scikit-learn estimator, a TorchScript module that is not a plain ``Sequential``) raises
:class:`NoActivations`, whose message says why; the audit check then falls back to STRIP.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from modelshield.errors import DataError
from modelshield.models.torchutil import few_threads

__all__ = ["NoActivations", "penultimate_activations", "torch_module_of"]


class NoActivations(DataError):
    """The model's internal activations are not accessible; the message says why."""


def torch_module_of(model: Any) -> Any:
    """The ``torch.nn.Module`` behind ``model`` (an adapter or a module); :class:`NoActivations` if none."""
    try:
        import torch  # lazy: torch is heavy; imported only where it runs
    except ImportError as exc:  # pragma: no cover - torch is a core dependency
        raise NoActivations("torch is not installed") from exc
    if isinstance(model, torch.nn.Module):
        return model
    module = getattr(model, "module", None)
    if isinstance(module, torch.nn.Module):
        return module
    fw = getattr(model, "framework", type(model).__name__)
    fmt = getattr(model, "format", "")
    raise NoActivations(f"a {fw}{' ' + fmt if fmt and fmt != 'object' else ''} model exposes no layer "
                        "activations (only PyTorch and TorchScript models do)")


def _kind(m: Any) -> str:
    return str(getattr(m, "original_name", type(m).__name__))  # RecursiveScriptModule keeps the name


def _prepare(model: Any, X: np.ndarray) -> np.ndarray:
    prep = getattr(model, "_prepare", None)
    return np.asarray(prep(X) if callable(prep) else X, dtype=np.float32)


def penultimate_activations(model: Any, X: Any, *, layer: str | None = None, batch: int = 1024) -> np.ndarray:
    """Activations ``(n, width)`` feeding the last ``Linear`` layer of ``model`` (or the input of the
    module named ``layer``, a name from ``named_modules()``), computed in batches without gradients."""
    import torch  # lazy: torch is heavy; imported only where it runs

    module = torch_module_of(model)
    Xn = _prepare(model, np.asarray(X))
    if isinstance(module, torch.jit.ScriptModule):
        run = _scripted_runner(module, layer)
    else:
        run = _hooked_runner(module, layer)
    outs = []
    with _threads_for(module), torch.no_grad():
        for s in range(0, len(Xn), batch):
            a = run(torch.as_tensor(Xn[s : s + batch]))
            outs.append(a.reshape(a.shape[0], -1).detach().double().numpy())
    return np.concatenate(outs) if outs else np.empty((0, 0))


#: Below this many parameters a forward pass runs on one thread: the thread pool's hand-offs cost more than
#: the matrix products (about 30x on a loaded 2-core box for an MLP 64-32); bigger models keep the pool.
SMALL_MODEL_PARAMS = 1_000_000


def _threads_for(module: Any) -> Any:
    small = sum(int(p.numel()) for p in module.parameters()) < SMALL_MODEL_PARAMS
    return few_threads() if small else contextlib.nullcontext()


def _target_name(named: dict[str, Any], layer: str | None) -> str:
    if layer is not None:
        if layer not in named or not layer:
            names = [n for n in named if n]
            raise DataError(f"no layer named {layer!r} in the model; layers: {', '.join(names[:20])}")
        return layer
    linear = [n for n, m in named.items() if n and _kind(m) == "Linear"]
    if not linear:
        raise NoActivations("the model has no Linear layer whose input could serve as penultimate activations")
    return linear[-1]


def _hooked_runner(module: Any, layer: str | None) -> Any:
    named = dict(module.named_modules())
    target = named[_target_name(named, layer)]
    captured: list[Any] = []

    def run(x: Any) -> Any:
        captured.clear()
        handle = target.register_forward_pre_hook(lambda _m, inputs: captured.append(inputs[0]))
        try:
            module.eval()(x)
        finally:
            handle.remove()
        if not captured:
            raise NoActivations("the chosen layer was not called in the forward pass")
        return captured[0]

    return run


def _scripted_runner(module: Any, layer: str | None) -> Any:
    children = list(module.named_children())
    if _kind(module) != "Sequential" or not children:
        raise NoActivations("a TorchScript model that is not a plain Sequential: its layers cannot be run "
                            "one at a time and scripted modules take no hooks")
    names = [n for n, _ in children]
    if layer is not None:
        if layer not in names:
            raise DataError(f"no top-level layer named {layer!r} in the TorchScript model; layers: {', '.join(names)}")
        stop = names.index(layer)
    else:
        linear = [i for i, (_, m) in enumerate(children) if _kind(m) == "Linear"]
        if not linear:
            raise NoActivations("the TorchScript model has no top-level Linear layer")
        stop = linear[-1]
    head = [m for _, m in children[:stop]]

    def run(x: Any) -> Any:
        for m in head:
            x = m(x)
        return x

    return run
