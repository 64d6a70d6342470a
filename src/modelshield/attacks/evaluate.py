"""Robust-accuracy evaluation: eps grids, curves over eps, and the per-sample worst case."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelshield.attacks import ATTACKS, AttackResult, make_attack
from modelshield.attacks.threat import ThreatModel
from modelshield.errors import UserError
from modelshield.models.base import BaseModel, Capability

__all__ = ["Curve", "default_attack", "default_attacks", "default_eps_grid", "reference_eps", "robustness_curve",
           "worst_case"]

#: L-inf grids; L2 grids are these times sqrt(number of mutable features).
_TABULAR_STD = (0.05, 0.1, 0.25, 0.5, 1.0)  # in per-feature standard deviations
_IMAGE = (0.01, 0.02, 0.05, 0.1, 0.2)  # in [0, 1] pixel units
_IMAGE_L2 = (0.1, 0.25, 0.5, 1.0, 2.0)


def default_eps_grid(threat: ThreatModel, n_mutable: int) -> list[float]:
    """The default eps grid for ``threat``: per-feature standard deviations for tabular data
    (``0.05 .. 1`` std in L-inf, times ``sqrt(d)`` in L2), pixel units for one common box
    (``0.01 .. 0.2`` of the box's width in L-inf, ``0.1 .. 2`` widths in L2)."""
    if threat.kind == "image":  # one box in raw units: the pixel grid, scaled to the box's width
        width = threat.box[1] - threat.box[0] if threat.box is not None else 1.0
        return [round(b * width, 6) for b in (_IMAGE if threat.norm == "inf" else _IMAGE_L2)]
    base = _TABULAR_STD
    if threat.kind == "tabular-raw" and threat.lower is not None and threat.upper is not None:
        spans = threat.upper - threat.lower
        spans = spans[np.isfinite(spans)]
        if spans.size:
            span = float(np.median(np.maximum(spans, 1e-12)))
            base = tuple(b * span / 4 for b in base)  # raw units: a quarter of the typical range ~ 1 std
    if threat.norm == "2":
        k = math.sqrt(max(n_mutable, 1))
        return [round(b * k, 6) for b in base]
    return list(base)


def reference_eps(grid: Sequence[float]) -> float:
    """The eps the headline ``robust_accuracy`` is reported at: the middle of the grid."""
    g = sorted(grid)
    return float(g[len(g) // 2]) if g else 0.0


def default_attack(model: BaseModel, norm: str = "inf") -> str:
    """The one attack ``modelshield attack`` runs when none is named: PGD on differentiable models,
    otherwise the black-box Square (scores, L-inf) or HopSkipJump (labels only, or L2)."""
    if Capability.GRADIENTS in model.capabilities:
        return "pgd"
    if Capability.PROBABILITIES in model.capabilities and norm == "inf":
        return "square"
    return "hsj"


def default_attacks(model: BaseModel) -> list[str]:
    """White-box FGSM, PGD and the APGD ensemble for differentiable models; otherwise Square
    (when the model gives scores) and HopSkipJump."""
    if Capability.GRADIENTS in model.capabilities:
        return ["fgsm", "pgd", "apgd"]
    if Capability.PROBABILITIES in model.capabilities:
        return ["square", "hsj"]
    return ["hsj"]


@dataclass
class Curve:
    """Robust accuracy of one attack over an eps grid (one :class:`AttackResult` per eps)."""

    attack: str
    eps: list[float]
    results: list[AttackResult] = field(default_factory=list)

    @property
    def robust_accuracy(self) -> list[float]:
        return [r.robust_accuracy for r in self.results]

    def at(self, eps: float) -> AttackResult:
        for e, r in zip(self.eps, self.results):
            if math.isclose(e, eps, rel_tol=1e-9, abs_tol=1e-12):
                return r
        raise KeyError(eps)


def robustness_curve(
    model: BaseModel,
    X: np.ndarray,
    y: np.ndarray,
    attack: str,
    threat: ThreatModel,
    eps_grid: Sequence[float],
    *,
    seed: int = 0,
    budget: int | None = None,
    options: dict[str, Any] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Curve:
    """Run ``attack`` at each eps of ``eps_grid`` on the same samples.

    A minimum-norm attack (HopSkipJump) runs once, stopping each sample at the smallest eps, and
    the curve is read off its minimal distances; the others run once per eps.
    """
    if attack not in ATTACKS:
        raise UserError(f"unknown attack {attack!r}; expected one of: {', '.join(ATTACKS)}")
    grid = sorted(float(e) for e in eps_grid)
    if not grid:
        raise UserError("the eps grid is empty")
    cls, _ = ATTACKS[attack]
    curve = Curve(attack=attack, eps=grid)
    if getattr(cls, "minimum_norm", False):
        res = make_attack(attack, threat.with_(eps=grid[0]), seed=seed, **(options or {})).generate(
            model, X, y, budget)
        curve.results = [res if i == 0 else res.at_eps(e) for i, e in enumerate(grid)]
        if progress:
            progress(1.0, f"{attack}: done")
        return curve
    for i, e in enumerate(grid):
        a = make_attack(attack, threat.with_(eps=e), seed=seed, **(options or {}))
        curve.results.append(a.generate(model, X, y, budget))
        if progress:
            progress((i + 1) / len(grid), f"{attack} at eps={e:g}")
    return curve


def worst_case(results: Sequence[AttackResult]) -> np.ndarray:
    """Per-sample worst case over attacks run on the same samples: robust only if it resisted all."""
    if not results:
        raise ValueError("no results")
    out = results[0].adv_correct.copy()
    for r in results[1:]:
        out &= r.adv_correct
    return out
