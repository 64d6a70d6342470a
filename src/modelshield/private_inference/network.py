"""A model as a chain of layers the private-inference engines can run: ``Dense(W, b)`` and ``Act(kind)``.

:func:`extract` reads a loaded model adapter (scikit-learn linear model, a pipeline with a
``StandardScaler`` folded into the first layer, ``MLPClassifier``; a PyTorch / TorchScript MLP; an ONNX
MLP) and returns a :class:`Network`, or raises :class:`Unsupported` naming the first layer it cannot run.
The extracted chain is then checked against the model itself on sample rows (:meth:`Network.verify`), so
a forward pass that is not the plain chain of its layers (a skip connection, a functional call the module
list does not show) is refused instead of being computed wrongly.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelshield.errors import UserError

__all__ = ["ACTIVATIONS", "Act", "Dense", "Network", "Unsupported", "extract"]


class Unsupported(UserError):
    """The model has a layer private inference cannot compute (exit 2); the message names the layer."""


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-t))


#: activation name -> plaintext function; "square" and "identity" are exact polynomials
ACTIVATIONS: dict[str, Any] = {
    "identity": lambda t: t,
    "square": lambda t: t * t,
    "relu": lambda t: np.maximum(t, 0.0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
}
#: activations that are already polynomials: exact under HE, no approximation
POLYNOMIAL = {"identity": (0.0, 1.0), "square": (0.0, 0.0, 1.0)}


@dataclass(frozen=True)
class Dense:
    """``y = x @ W + b`` with ``W`` of shape (n_in, n_out)."""

    W: np.ndarray
    b: np.ndarray
    name: str = "dense"

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.W.shape[0]), int(self.W.shape[1])


@dataclass(frozen=True)
class Act:
    kind: str
    name: str = "act"


@dataclass
class Network:
    """A chain of :class:`Dense` and :class:`Act` layers; ``source`` says what it was read from."""

    layers: list[Dense | Act]
    source: str
    notes: list[str] = field(default_factory=list)
    classes: np.ndarray | None = None

    @property
    def n_inputs(self) -> int:
        return self.dense[0].shape[0]

    @property
    def n_outputs(self) -> int:
        return self.dense[-1].shape[1]

    @property
    def dense(self) -> list[Dense]:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def forward(self, X: np.ndarray, acts: dict[str, Any] | None = None, *, upto: int | None = None) -> np.ndarray:
        """Plaintext logits; ``acts`` replaces activation functions by name (e.g. polynomial fits)."""
        h = np.asarray(X, dtype=np.float64)
        for i, layer in enumerate(self.layers[:upto]):
            if isinstance(layer, Dense):
                h = h @ layer.W + layer.b
            else:
                fn = (acts or {}).get(f"{i}") or ACTIVATIONS[layer.kind]
                h = fn(h)
        return h

    def pre_activations(self, X: np.ndarray) -> dict[int, np.ndarray]:
        """Input of each activation layer on ``X`` (the range a polynomial must fit)."""
        return {i: self.forward(X, upto=i) for i, layer in enumerate(self.layers) if isinstance(layer, Act)}

    def predict(self, X: np.ndarray) -> np.ndarray:
        return _argmax(self.forward(X))

    def verify(self, model: Any, X: np.ndarray) -> None:
        """Refuse (Unsupported) when the extracted chain does not compute what ``model`` predicts."""
        ours = self.predict(X)
        theirs = np.asarray(model.predict(np.asarray(X)))
        if self.classes is not None:
            ours = np.asarray(self.classes)[ours]
        elif hasattr(model, "classes"):
            ours = np.asarray(model.classes)[ours]
        agree = float(np.mean(ours.astype(str) == theirs.astype(str))) if len(X) else 1.0
        if agree < 0.999:
            raise Unsupported(f"the model's forward pass is not the plain chain of its layers "
                              f"({', '.join(_describe(layer) for layer in self.layers)}): the chain agrees with "
                              f"the model on {agree:.1%} of the rows only (skip connections and functional "
                              "calls are not supported)")


def _argmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits)
    if logits.shape[1] == 1:  # binary linear model: one score, class 1 when positive
        return (logits[:, 0] > 0).astype(int)
    return np.argmax(logits, axis=1)


def _describe(layer: Dense | Act) -> str:
    return f"Dense {layer.shape[0]}->{layer.shape[1]}" if isinstance(layer, Dense) else layer.kind


# -------------------------------------------------------------------------------------------------- sklearn
_SK_ACT = {"identity": "identity", "relu": "relu", "logistic": "sigmoid", "tanh": "tanh"}


def _from_sklearn(est: Any) -> Network:
    steps: list[tuple[str, Any]] = list(est.steps) if hasattr(est, "steps") else [("model", est)]
    scale: tuple[np.ndarray, np.ndarray] | None = None
    layers: list[Dense | Act] = []
    notes: list[str] = []
    for i, (name, step) in enumerate(steps):
        kind = type(step).__name__
        last = i == len(steps) - 1
        if step is None or step == "passthrough":
            continue
        if kind == "StandardScaler" and not last:
            mean = np.asarray(getattr(step, "mean_", None) if step.with_mean else 0.0, dtype=np.float64)
            sd = np.asarray(getattr(step, "scale_", None) if step.with_std else 1.0, dtype=np.float64)
            if scale is not None or layers:
                raise Unsupported(f"layer {name!r} ({kind}): a scaler is supported only as the first step")
            scale = (np.broadcast_to(mean, np.shape(sd) or (1,)).astype(float), np.asarray(sd, dtype=float))
            notes.append(f"{name} ({kind}) folded into the first layer")
        elif last and hasattr(step, "coef_") and hasattr(step, "intercept_") and not hasattr(step, "coefs_"):
            W = np.atleast_2d(np.asarray(step.coef_, dtype=np.float64)).T
            b = np.atleast_1d(np.asarray(step.intercept_, dtype=np.float64))
            if not hasattr(step, "classes_"):
                raise Unsupported(f"layer {name!r} ({kind}): regressors are not supported (classifiers only)")
            layers.append(Dense(W, b, name=f"{name} ({kind})"))
        elif last and kind == "MLPClassifier":
            acts = _SK_ACT.get(step.activation)
            for j, (W, b) in enumerate(zip(step.coefs_, step.intercepts_)):
                if j:
                    layers.append(Act(acts, name=f"{name}.activation {step.activation}"))
                layers.append(Dense(np.asarray(W, float), np.asarray(b, float), name=f"{name}.layer{j}"))
            if step.out_activation_ == "logistic":
                notes.append("binary MLP: the output sigmoid is monotone; the logit's sign gives the class")
        else:
            raise Unsupported(f"layer {name!r} ({kind}) is not supported: private inference takes a linear "
                              "classifier, MLPClassifier or a StandardScaler before one")
    if not layers:
        raise Unsupported("the pipeline has no classifier step")
    if scale is not None:  # (x - m) / s @ W + b  ==  x @ (W / s) + (b - (m / s) @ W)
        m, s = scale
        s = np.where(s == 0, 1.0, s)
        first = layers[0]
        assert isinstance(first, Dense)
        W = first.W / s.reshape(-1, 1) if s.size > 1 else first.W / float(s)
        layers[0] = Dense(W, first.b - (m / s) @ first.W if m.size > 1 else first.b - float(m / s) * first.W.sum(0),
                          name=f"{first.name} + scaler")
    classes = getattr(est, "classes_", None)
    return Network(layers, source=f"scikit-learn {type(est).__name__}", notes=notes,
                   classes=None if classes is None else np.asarray(classes))


# -------------------------------------------------------------------------------------------------- torch
_PROBE = np.linspace(-3.0, 3.0, 61)


def _probe_activation(fn: Any) -> str | None:
    """The name of the elementwise activation ``fn`` computes (a tensor -> tensor callable), else None."""
    import torch  # lazy: only for PyTorch models

    try:
        with torch.no_grad():
            out = fn(torch.as_tensor(_PROBE.reshape(1, -1), dtype=torch.float32)).double().numpy().reshape(-1)
    except Exception:  # a layer that cannot take a row of 61 values is not an elementwise activation
        return None
    for name, ref in ACTIVATIONS.items():
        if out.shape == _PROBE.shape and np.allclose(out, ref(_PROBE), atol=1e-4, rtol=1e-4):
            return name
    return None


def _from_torch(module: Any) -> Network:
    import torch  # lazy: only for PyTorch models

    leaves = [(n, m) for n, m in module.named_modules() if not list(m.children()) and n]
    if not leaves:
        raise Unsupported("the PyTorch model has no layers (a single function module is not supported)")
    layers: list[Dense | Act] = []
    for name, m in leaves:
        kind = getattr(m, "original_name", type(m).__name__)
        w = getattr(m, "weight", None)
        params = dict(m.named_parameters())
        if kind == "Linear" or (isinstance(m, torch.nn.Linear)):
            W = w.detach().double().numpy().T
            bias = getattr(m, "bias", None)
            b = np.zeros(W.shape[1]) if bias is None else bias.detach().double().numpy()
            layers.append(Dense(W, b, name=f"{name} (Linear {W.shape[0]}->{W.shape[1]})"))
        elif kind in ("Dropout", "Identity", "Flatten"):
            continue
        elif not params:
            act = _probe_activation(m)
            if act is None:
                raise Unsupported(f"layer {name!r} ({kind}) is not supported: not Linear and not an elementwise "
                                  "activation (ReLU, Sigmoid, Tanh, x^2)")
            if act != "identity":
                layers.append(Act(act, name=f"{name} ({kind})"))
        else:
            raise Unsupported(f"layer {name!r} ({kind}) is not supported: only Linear layers and elementwise "
                              "activations (ReLU, Sigmoid, Tanh, x^2) can run under HE/MPC")
    if not layers or not isinstance(layers[0], Dense):
        raise Unsupported("the model must start with a Linear layer")
    if isinstance(layers[-1], Act):
        layers.pop()  # a final monotone activation (softmax-free sigmoid etc.) does not change the argmax
    for a, b in itertools.pairwise(layers):
        if isinstance(a, Dense) and isinstance(b, Dense) and a.shape[1] != b.shape[0]:
            raise Unsupported(f"layer {b.name!r}: input width {b.shape[0]} after an output of {a.shape[1]}")
    return Network(layers, source=f"PyTorch {type(module).__name__}")


# -------------------------------------------------------------------------------------------------- ONNX
def _from_onnx_bytes(data: bytes) -> Network:
    import onnx  # lazy: only for ONNX models; parsing a protobuf runs no code
    from onnx import numpy_helper

    g = onnx.load_from_string(data).graph
    inits = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
    layers: list[Dense | Act] = []
    pending: Dense | None = None
    ops = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}
    for node in g.node:
        op = node.op_type
        if op == "Gemm":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            W = inits.get(node.input[1])
            if W is None or node.input[0] in inits:
                raise Unsupported(f"layer {node.name or op!r} (Gemm): the weights must be constants")
            W = W.T if attrs.get("transB", 0) else W
            W = W * attrs.get("alpha", 1.0)
            b = inits.get(node.input[2], np.zeros(W.shape[1])) if len(node.input) > 2 else np.zeros(W.shape[1])
            layers.append(Dense(W, np.broadcast_to(b * attrs.get("beta", 1.0), (W.shape[1],)).copy(),
                                name=f"{node.name or 'Gemm'}"))
        elif op == "MatMul" and node.input[1] in inits:
            pending = Dense(inits[node.input[1]], np.zeros(inits[node.input[1]].shape[1]), name=node.name or op)
            layers.append(pending)
        elif op == "Add" and pending is not None and layers and layers[-1] is pending and node.input[1] in inits:
            layers[-1] = Dense(pending.W, pending.b + inits[node.input[1]].reshape(-1), name=pending.name)
            pending = None
        elif op in ops:
            layers.append(Act(ops[op], name=node.name or op))
        elif (op == "Mul" and len(node.input) == 2 and node.input[0] == node.input[1]) or (
                op == "Pow" and node.input[1] in inits and float(inits[node.input[1]].reshape(-1)[0]) == 2.0):
            layers.append(Act("square", name=node.name or op))
        elif op in ("Identity", "Flatten", "Dropout"):
            continue
        else:
            raise Unsupported(f"layer {node.name or op!r} ({op}) is not supported by private inference")
    if not layers or not isinstance(layers[0], Dense):
        raise Unsupported("the ONNX graph must start with a Gemm/MatMul layer")
    while isinstance(layers[-1], Act):
        layers.pop()
    return Network(layers, source="ONNX graph")


def extract(model: Any, *, onnx_bytes: bytes | None = None) -> Network:
    """The layer chain of a loaded model adapter (see the module docstring); raises :class:`Unsupported`."""
    framework = getattr(model, "framework", "")
    if framework == "sklearn" or hasattr(model, "estimator"):
        return _from_sklearn(model.estimator)
    if framework == "pytorch" or hasattr(model, "module"):
        return _from_torch(model.module)
    if framework == "onnx":
        if onnx_bytes is None:
            raise Unsupported("an ONNX model needs its file bytes to read the layers")
        return _from_onnx_bytes(onnx_bytes)
    raise Unsupported(f"a {framework or type(model).__name__} model cannot be read layer by layer "
                      "(supported: scikit-learn linear/MLP, PyTorch, TorchScript, ONNX)")
