"""Polynomial stand-ins for activations (HE computes only additions and multiplications).

A non-polynomial activation is replaced by the least-squares polynomial of a low degree fitted on the
range its inputs take on the given data (a 10% margin each side); its error is measured on those inputs,
and the accuracy the replacement costs is measured on the whole network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from modelshield.private_inference.network import ACTIVATIONS, POLYNOMIAL, Act, Network

__all__ = ["DEFAULT_DEGREE", "PolyAct", "fit_activations", "poly_depth"]

DEFAULT_DEGREE = {"relu": 2, "sigmoid": 3, "tanh": 3}
MAX_DEGREE = 4


@dataclass(frozen=True)
class PolyAct:
    layer: int
    kind: str
    coeffs: tuple[float, ...]  # power basis, lowest degree first
    lo: float
    hi: float
    max_error: float  # on the data's pre-activation values
    exact: bool

    @property
    def degree(self) -> int:
        return len(self.coeffs) - 1

    def __call__(self, t: np.ndarray) -> np.ndarray:
        return np.polynomial.polynomial.polyval(t, self.coeffs)

    def to_dict(self) -> dict[str, object]:
        return {"layer": self.layer, "activation": self.kind, "degree": self.degree,
                "coefficients": [round(c, 8) for c in self.coeffs], "fit_range": [round(self.lo, 4), round(self.hi, 4)],
                "max_abs_error": self.max_error, "exact": self.exact}


def poly_depth(degree: int) -> int:
    """Levels a power basis up to ``degree`` consumes (coefficients folded into the next layer)."""
    return 0 if degree <= 1 else math.ceil(math.log2(degree))


def fit_activations(net: Network, X: np.ndarray, degree: int | None = None) -> list[PolyAct]:
    """One :class:`PolyAct` per activation layer of ``net``, fitted on ``X``'s pre-activations."""
    out: list[PolyAct] = []
    pre = net.pre_activations(X) if len(X) else {}
    for i, layer in enumerate(net.layers):
        if not isinstance(layer, Act):
            continue
        if layer.kind in POLYNOMIAL:
            out.append(PolyAct(i, layer.kind, POLYNOMIAL[layer.kind], -math.inf, math.inf, 0.0, True))
            continue
        d = degree or DEFAULT_DEGREE[layer.kind]
        d = max(1, min(MAX_DEGREE, d))
        z = np.asarray(pre.get(i, np.zeros((1, 1)))).reshape(-1)
        lo, hi = (float(z.min()), float(z.max())) if z.size else (-1.0, 1.0)
        pad = 0.1 * max(hi - lo, 1e-6)
        lo, hi = lo - pad, hi + pad
        grid = np.concatenate([np.linspace(lo, hi, 512), z[:: max(1, z.size // 2048)]])
        coeffs = np.polynomial.polynomial.polyfit(grid, ACTIVATIONS[layer.kind](grid), d)
        err = float(np.max(np.abs(np.polynomial.polynomial.polyval(z, coeffs) - ACTIVATIONS[layer.kind](z)))) \
            if z.size else math.nan
        out.append(PolyAct(i, layer.kind, tuple(float(c) for c in coeffs), lo, hi, err, False))
    return out


def approx_forward(net: Network, polys: list[PolyAct], X: np.ndarray) -> np.ndarray:
    """Plaintext logits with every activation replaced by its polynomial (what HE computes)."""
    return net.forward(X, {str(p.layer): p for p in polys})
