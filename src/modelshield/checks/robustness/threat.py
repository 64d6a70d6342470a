"""The threat model as data: what an attacker may change, and by how much.

A :class:`ThreatModel` holds the norm, the budget ``eps``, the iteration and query budgets, and the
per-feature constraints that keep adversarial rows *valid* rows of tabular data:

* ``scale`` -- per-feature unit in which ``eps`` is measured (the feature's standard deviation for
  tabular data, so ``eps=0.1`` means "a tenth of a standard deviation"; ``1`` for images);
* ``lower`` / ``upper`` -- per-feature bounds (``[0, 1]`` for images);
* ``integer`` -- features that only take whole values (perturbations are rounded *toward* the clean
  value, so the rounded row stays inside the ``eps`` ball);
* ``mutable`` -- features the attacker may change (immutable and categorical features are ``False``).

Attacks use the torch-side :class:`Projector` built by :meth:`ThreatModel.projector`; every point an
attack queries or returns goes through :meth:`Projector.finalize`, so the model never sees an
invalid row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from modelshield.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from modelshield.data.dataset import Dataset

__all__ = ["NORMS", "Projector", "ThreatModel"]

NORMS = ("inf", "2")


def _norm_name(norm: str | float | int) -> str:
    s = str(norm).strip().lower().replace("l", "")
    if s in ("inf", "infinity", "linf"):
        return "inf"
    if s in ("2", "2.0"):
        return "2"
    raise UserError(f"unknown norm {norm!r}; expected 'inf' or '2'")


@dataclass(kw_only=True)
class ThreatModel:
    """What the attacker may do. Plain data: serialisable with :meth:`to_dict`.

    Parameters
    ----------
    norm : ``"inf"`` or ``"2"``; distances are measured in units of ``scale``.
    eps : the perturbation budget (in ``scale`` units).
    steps : iterations of iterative white-box attacks.
    step_size : step of PGD-style attacks in ``scale`` units (default ``2.5 * eps / steps``).
    targeted : when true, the labels passed to an attack are the target classes.
    query_budget : the most model queries a black-box attack may spend per sample.
    lower, upper : per-feature bounds (flattened feature order); ``None`` means unbounded.
    scale : per-feature unit of ``eps``; ``None`` means 1.
    integer : per-feature mask of whole-valued features; ``None`` means none.
    mutable : per-feature mask of features the attacker may change; ``None`` means all.
    box : a global ``(low, high)`` box used where ``lower``/``upper`` are not given (images).
    """

    norm: str = "inf"
    eps: float = 0.1
    steps: int = 20
    step_size: float | None = None
    targeted: bool = False
    query_budget: int = 1000
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    scale: np.ndarray | None = None
    integer: np.ndarray | None = None
    mutable: np.ndarray | None = None
    box: tuple[float, float] | None = None
    kind: str = "custom"

    def __post_init__(self) -> None:
        self.norm = _norm_name(self.norm)
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and self.eps >= 0):
            raise UserError(f"eps must be a finite number >= 0, got {self.eps!r}")
        if int(self.steps) < 1:
            raise UserError(f"steps must be >= 1, got {self.steps!r}")
        if self.step_size is not None and not self.step_size > 0:
            raise UserError(f"step size must be > 0, got {self.step_size!r}")
        if int(self.query_budget) < 1:
            raise UserError(f"query budget must be >= 1, got {self.query_budget!r}")
        self.eps = float(self.eps)
        self.steps = int(self.steps)
        self.query_budget = int(self.query_budget)
        for name in ("lower", "upper", "scale"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, np.asarray(v, dtype=np.float64).reshape(-1))
        for name in ("integer", "mutable"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, np.asarray(v, dtype=bool).reshape(-1))
        if self.scale is not None and np.any(~(self.scale > 0)):
            raise UserError("every per-feature scale must be > 0")

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def image(cls, **kwargs: Any) -> ThreatModel:
        """Images scaled to ``[0, 1]``: the unit box, no per-feature scale."""
        return cls(**kwargs, box=(0.0, 1.0), kind="image")

    @classmethod
    def for_dataset(cls, data: Dataset, *, units: str = "auto", **kwargs: Any) -> ThreatModel:
        """The threat model that keeps adversarial rows valid rows of ``data``.

        ``units``: ``"std"`` measures ``eps`` in per-feature standard deviations (``Dataset.scale``),
        ``"raw"`` in the data's own units, ``"auto"`` picks ``"raw"`` for image-like data (more than
        two axes, values in ``[0, 1]``) and ``"std"`` otherwise. Integer features are kept whole;
        categorical, binary and immutable features are left unchanged.
        """
        if units not in ("auto", "std", "raw"):
            raise UserError(f"unknown eps units {units!r}; expected auto, std or raw")
        if not data.is_numeric:
            raise UserError("adversarial attacks need numeric features")
        flat = data.X.reshape(len(data), -1)
        image_like = data.X.ndim > 2 and float(np.min(flat)) >= 0.0 and float(np.max(flat)) <= 1.0
        if units == "auto":
            units = "raw" if image_like else "std"
        if image_like and units == "raw":
            return cls.image(**kwargs)
        d = flat.shape[1]
        types = list(data.feature_types or ["continuous"] * d)
        integer = np.array([t == "integer" for t in types], dtype=bool)
        frozen = np.array([t in ("categorical", "binary") for t in types], dtype=bool)
        mutable = data.mutable_mask.reshape(-1) & ~frozen
        if mutable.shape[0] != d:
            mutable = ~frozen
        scale = np.asarray(data.scale, dtype=np.float64) if units == "std" else None
        return cls(lower=data.lower, upper=data.upper, scale=scale, integer=integer,
                   mutable=mutable, kind=f"tabular-{units}", **kwargs)

    def with_(self, **changes: Any) -> ThreatModel:
        """A copy with some fields changed (``tm.with_(eps=0.2)``)."""
        return replace(self, **changes)

    # -- derived --------------------------------------------------------------------------
    @property
    def alpha(self) -> float:
        """The effective PGD step size (``scale`` units)."""
        return float(self.step_size) if self.step_size is not None else 2.5 * self.eps / self.steps

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe data for reports: per-feature numeric arrays become lists (non-finite
        bounds become ``None``); boolean masks (``integer``, ``mutable``) become their count."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                if v.dtype == bool:
                    out[f.name] = int(v.sum())
                else:
                    flat = np.asarray(v, dtype=np.float64).reshape(-1)
                    out[f.name] = [float(x) if math.isfinite(x) else None for x in flat.tolist()]
            else:
                out[f.name] = v
        out["step_size"] = self.alpha
        return out

    def projector(self, n_features: int, dtype: Any = None) -> Projector:
        """The torch-side projection operator for inputs with ``n_features`` (flattened) features."""
        import torch

        return Projector(self, n_features, dtype or torch.float32)


class Projector:
    """Torch implementation of a :class:`ThreatModel` on flattened ``(n, d)`` batches.

    Relaxed iterates live in the continuous box; :meth:`finalize` additionally rounds integer
    features toward the clean value (so the rounded row stays in the ``eps`` ball and the bounds).
    """

    def __init__(self, threat: ThreatModel, d: int, dtype: Any) -> None:
        import torch

        self.threat = threat
        self.d = d
        self.dtype = dtype

        def vec(a: np.ndarray | None, what: str, default: float | None) -> torch.Tensor | None:
            if a is None:
                return None if default is None else torch.full((d,), default, dtype=dtype)
            if a.size != d:
                raise UserError(f"threat model has {a.size} {what} values for {d} features")
            return torch.as_tensor(a, dtype=dtype)

        box = threat.box
        self.lower = vec(threat.lower, "lower-bound", box[0] if box else None)
        self.upper = vec(threat.upper, "upper-bound", box[1] if box else None)
        self.scale = vec(threat.scale, "scale", 1.0)
        if threat.mutable is not None and threat.mutable.size != d:
            raise UserError(f"threat model has {threat.mutable.size} mutable flags for {d} features")
        if threat.integer is not None and threat.integer.size != d:
            raise UserError(f"threat model has {threat.integer.size} integer flags for {d} features")
        # the common case (images: every feature mutable, none integer) without numpy round trips
        if threat.mutable is None:
            self.mask = torch.ones(d, dtype=dtype)
            self.n_mutable = d
            self.all_mutable = True
        else:
            mut = threat.mutable
            self.mask = torch.as_tensor(mut, dtype=dtype)
            self.n_mutable = int(mut.sum())
            self.all_mutable = bool(mut.all())
        if threat.integer is None:
            self.integer = torch.zeros(d, dtype=torch.bool)
            self.has_integer = False
        else:
            integer = threat.integer if threat.mutable is None else threat.integer & threat.mutable
            self.integer = torch.tensor(integer)  # a copy: never a view of the threat model
            self.has_integer = bool(integer.any())
        self.eps = threat.eps
        self.norm = threat.norm
        #: every feature mutable and measured in raw units (images): a per-feature step
        #: ``alpha * scale * mask`` is the scalar ``alpha`` (one fused op in PGD's hot loop)
        self.unit_scale = threat.scale is None or bool(np.all(threat.scale == 1.0))
        self.uniform = self.all_mutable and self.unit_scale

    # -- norms in scale units --------------------------------------------------------------
    def dist(self, delta: torch.Tensor) -> torch.Tensor:
        """Per-sample norm of ``delta`` (x-space) in ``scale`` units."""
        z = delta if self.unit_scale else delta / self.scale  # dividing by 1 is exact: skip it
        if self.norm == "inf":
            return z.abs().amax(dim=1)
        return z.norm(dim=1)

    def ball(self, x: torch.Tensor, x0: torch.Tensor, eps: float | torch.Tensor | None = None) -> torch.Tensor:
        """Project ``x`` onto the ``eps`` ball around ``x0`` (mutable features only), no bounds."""
        import torch

        e = self.eps if eps is None else eps
        if isinstance(e, torch.Tensor) and e.ndim == 1:
            e = e[:, None]
        z = (x - x0) / self.scale * self.mask
        if self.norm == "inf":
            z = torch.maximum(torch.minimum(z, torch.as_tensor(e, dtype=z.dtype)), -torch.as_tensor(e, dtype=z.dtype))
        else:
            n = z.norm(dim=1, keepdim=True).clamp_min(1e-12)
            z = z * torch.clamp(torch.as_tensor(e, dtype=z.dtype) / n, max=1.0)
        return x0 + z * self.scale

    def box(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Clip to the bounds (widened to contain ``x0``, so a clean row is always feasible)."""
        import torch

        if self.lower is not None:
            x = torch.maximum(x, torch.minimum(self.lower, x0))
        if self.upper is not None:
            x = torch.minimum(x, torch.maximum(self.upper, x0))
        return x

    def project(self, x: torch.Tensor, x0: torch.Tensor, eps: float | torch.Tensor | None = None) -> torch.Tensor:
        """Ball then box (the box clip moves coordinates toward ``x0``, so it stays in the ball)."""
        import torch

        if self.norm == "inf" and not isinstance(eps, torch.Tensor):
            return torch.clamp(x, *self.linf_bounds(x0, eps))  # ball and box are one box
        return self.box(self.ball(x, x0, eps), x0)

    def linf_bounds(self, x0: torch.Tensor, eps: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """For L-inf the feasible set (ball, box, immutables) is itself a box: its corners, so
        that projecting is a single ``clamp`` (the hot path of PGD)."""
        import torch

        r = (self.eps if eps is None else eps) * self.scale * self.mask
        lo, hi = x0 - r, x0 + r
        if self.lower is not None:
            lo = torch.maximum(lo, torch.minimum(self.lower, x0))
        if self.upper is not None:
            hi = torch.minimum(hi, torch.maximum(self.upper, x0))
        return lo, hi

    def finalize(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """A valid row: integer features rounded toward their clean value, immutables restored."""
        import torch

        if not self.all_mutable:
            x = torch.where(self.mask.bool(), x, x0)
        if self.has_integer:
            x = torch.where(self.integer, x0 + torch.trunc(x - x0), x)
        return x

    def random_start(self, x0: torch.Tensor, gen: torch.Generator,
                     bounds: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """A uniformly random point of the ball (L-inf) or a random direction/radius (L2).

        ``bounds``: L-inf only, ``linf_bounds(x0)`` when the caller already has them (the same
        result, without computing the corners twice)."""
        import torch

        if self.norm == "inf":
            z = (torch.rand(x0.shape, generator=gen, dtype=x0.dtype) * 2 - 1) * self.eps
            if bounds is not None:
                # multiplying by an all-ones scale and mask is exact: skipped when uniform
                return torch.clamp(x0 + (z if self.uniform else z * self.scale * self.mask), *bounds)
        else:
            z = torch.randn(x0.shape, generator=gen, dtype=x0.dtype) * self.mask
            z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
            r = torch.rand((len(x0), 1), generator=gen, dtype=x0.dtype)
            z = z * r * self.eps
        return self.project(x0 + z * self.scale * self.mask, x0)

    def ascent(self, grad: torch.Tensor) -> torch.Tensor:
        """The steepest-ascent direction (x-space) of unit norm in ``scale`` units."""
        g = grad * self.scale * self.mask
        if self.norm == "inf":
            return g.sign() * self.scale
        n = g.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return g / n * self.scale
