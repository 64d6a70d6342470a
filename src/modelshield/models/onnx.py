"""Adapter for ONNX models through onnxruntime (CPU)."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelshield.errors import FormatError
from modelshield.models.base import BaseModel, Capability, InputSpec

__all__ = ["OnnxModel"]


class OnnxModel(BaseModel):
    """Run an ONNX classifier with onnxruntime.

    Handles both shapes of classifier export: a single float output of logits/probabilities
    (PyTorch exports) and the ``label`` + ``probabilities`` pair written by skl2onnx, including
    its ``ZipMap`` (a list of ``{class: prob}`` dicts).
    """

    framework = "onnx"
    format = "onnx"

    def __init__(
        self,
        model: bytes | str,
        *,
        classes: list[Any] | np.ndarray | None = None,
        source: str | None = None,
    ) -> None:
        import onnxruntime as ort  # lazy: keeps onnxruntime off CLI start-up; only ONNX models need it

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise FormatError(f"onnxruntime cannot load this model: {str(exc).splitlines()[0]}") from exc
        inp = self.session.get_inputs()[0]
        self._input_name = inp.name
        self._input_type = "float64" if "double" in inp.type else "float32"
        shape = tuple(d if isinstance(d, int) else None for d in inp.shape[1:])
        spec = InputSpec(shape=shape if shape and None not in shape else None, dtype=self._input_type)
        self._outputs = self.session.get_outputs()
        self._prob_index = self._find_prob_output()
        super().__init__(
            classes=classes, input_spec=spec, capabilities=frozenset({Capability.PROBABILITIES}), source=source
        )
        if self._classes is None:
            self._classes = self._discover_classes()

    def _find_prob_output(self) -> int:
        for i, o in enumerate(self._outputs):
            if o.type.startswith("seq(map") or (o.type == "tensor(float)" and len(o.shape) == 2):
                if "label" not in o.name.lower() or len(self._outputs) == 1:
                    return i
        for i, o in enumerate(self._outputs):
            if o.type in ("tensor(float)", "tensor(double)"):
                return i
        raise FormatError("the ONNX model has no float output that could hold class scores")

    def _discover_classes(self) -> np.ndarray:
        n = self.input_spec.n_features
        if n is None:
            raise FormatError("cannot infer the ONNX model's input width; pass classes= and a fixed input shape")
        raw = self._run(np.zeros((1, *self.input_spec.shape), dtype=self._input_type))  # type: ignore[misc]
        if isinstance(raw, list) and raw and isinstance(raw[0], dict):
            return np.array(sorted(raw[0].keys()))
        return np.arange(np.asarray(raw).shape[-1])

    def _run(self, X: np.ndarray) -> Any:
        out = self.session.run(None, {self._input_name: np.asarray(X, dtype=self._input_type)})
        return out[self._prob_index]

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        raw = self._run(X)
        if isinstance(raw, list):  # ZipMap: list of dicts
            keys = self.classes.tolist()
            return np.array([[row[k] for k in keys] for row in raw], dtype=np.float64)
        scores = np.asarray(raw, dtype=np.float64)
        if scores.ndim == 1:
            scores = np.stack([1 - scores, scores], axis=1)
        sums = scores.sum(axis=1)
        if np.any(scores < 0) or not np.allclose(sums, 1.0, atol=1e-3):
            scores = scores - scores.max(axis=1, keepdims=True)
            e = np.exp(scores)
            scores = e / e.sum(axis=1, keepdims=True)
        return scores
