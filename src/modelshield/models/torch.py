"""Adapter for PyTorch ``nn.Module`` and TorchScript models (outputs are logits)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from modelshield.errors import DataError
from modelshield.models.base import BaseModel, Capability, InputSpec

__all__ = ["TorchModel"]


def _infer_input_shape(module: Any) -> tuple[int, ...] | None:
    """The input width of an MLP: the first ``Linear`` layer's ``in_features`` (TorchScript too)."""
    import torch  # lazy: keeps torch off CLI start-up (the CLI imports this module)

    for m in module.modules():
        kind = getattr(m, "original_name", type(m).__name__)  # RecursiveScriptModule keeps the name
        if isinstance(m, torch.nn.Linear) or kind == "Linear":
            weight = getattr(m, "weight", None)
            if weight is not None and weight.dim() == 2:
                return (int(weight.shape[1]),)
        if kind in ("Conv1d", "Conv2d", "Conv3d") or isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            return None  # spatial size unknown: caller must pass input_shape
    return None


class TorchModel(BaseModel):
    """Wrap a PyTorch module that maps a float32 batch to logits of shape ``(n, n_classes)``.

    Parameters
    ----------
    module : torch.nn.Module or torch.jit.ScriptModule
    input_shape : shape of one sample (batch axis excluded). Inferred from the first ``Linear`` layer
        when omitted; required for convolutional models.
    classes : class labels in logit order; ``range(n_outputs)`` by default.
    outputs : ``"logits"`` (default) or ``"probabilities"`` when the module ends in a softmax.
    """

    framework = "pytorch"

    def __init__(
        self,
        module: Any,
        *,
        input_shape: tuple[int, ...] | None = None,
        classes: list[Any] | np.ndarray | None = None,
        outputs: str = "logits",
        format: str = "object",
        source: str | None = None,
    ) -> None:
        import torch  # lazy: keeps torch off CLI start-up (the CLI imports this module)

        if outputs not in ("logits", "probabilities"):
            raise ValueError("outputs must be 'logits' or 'probabilities'")
        self.module = module.eval()
        self.outputs = outputs
        self.format = format
        shape = tuple(input_shape) if input_shape else _infer_input_shape(module)
        if classes is None and shape is not None:
            try:
                with torch.no_grad():
                    out = module(torch.zeros((1, *shape), dtype=torch.float32))
            except Exception as exc:  # TorchScript errors span many lines: name the cause, not the trace
                raise DataError(f"the model cannot run on inputs of shape {shape} ({type(exc).__name__}); "
                                "check the input shape (--input-shape)") from None
            classes = np.arange(out.shape[-1])
        caps = {Capability.PROBABILITIES, Capability.GRADIENTS}
        if not isinstance(module, torch.jit.ScriptModule):
            caps.add(Capability.RETRAINABLE)
        super().__init__(
            classes=classes, input_spec=InputSpec(shape=shape), capabilities=frozenset(caps), source=source
        )

    def _logits(self, X: np.ndarray) -> Any:
        import torch  # lazy: keeps torch off CLI start-up (the CLI imports this module)

        with torch.no_grad():
            return self.module(torch.as_tensor(np.asarray(X, dtype=np.float32)))

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch  # lazy: keeps torch off CLI start-up (the CLI imports this module)

        out = self._logits(X)
        if self.outputs == "logits":
            out = torch.softmax(out, dim=-1)
        return out.double().numpy()

    def as_torch(self) -> Any:
        import torch  # lazy: keeps torch off CLI start-up (the CLI imports this module)

        if self.outputs == "logits":
            return self.module

        class _Log(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, x: Any) -> Any:
                return torch.log(self.inner(x).clamp_min(1e-12))

        return _Log(self.module).eval()

    def clone_unfitted(self) -> Any:
        """A deep copy with every layer's parameters re-initialised (for shadow models)."""
        clone = copy.deepcopy(self.module)
        for m in clone.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        return clone
