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
import warnings as _warnings
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelshield._yaml import load_yaml_file
from modelshield.errors import OptionError, UserError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from modelshield.data.dataset import Dataset

__all__ = [
    "DOMAIN_MARGIN",
    "NORMS",
    "BoundsSpec",
    "Projector",
    "ThreatModel",
    "infer_domain",
    "load_bounds_file",
    "observed_range",
    "parse_box",
    "pixel_box",
]

NORMS = ("inf", "2")

#: how far the inferred domain of tabular features reaches beyond the observed range: this fraction
#: of the range on each side (a non-negative feature stays non-negative, one within [0, 1] stays there)
DOMAIN_MARGIN = 0.1

#: the largest bounds file read (a schema, not data)
_MAX_BOUNDS_FILE = 4 << 20
_FEATURE_TYPES = ("continuous", "integer", "binary", "categorical")


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
    kind : ``"image"`` (one box, raw units), ``"tabular-std"``, ``"tabular-raw"`` or ``"custom"``.
    bounds_source : where the bounds come from, in words (shown in every report).
    warnings : ``(level, message)`` pairs, ``level`` ``"low"`` or ``"info"``: where the threat model
        is (or may be) narrower than the data's domain.
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
    bounds_source: str = ""
    warnings: tuple[tuple[str, str], ...] = ()

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
        if self.box is not None:
            lo, hi = (float(v) for v in self.box)
            if not (lo < hi):
                raise UserError(f"the box must have low < high, got {self.box!r}")
            self.box = (lo, hi)
        self.warnings = tuple((str(a), str(b)) for a, b in self.warnings)

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def image(cls, **kwargs: Any) -> ThreatModel:
        """Images scaled to ``[0, 1]``: the unit box, no per-feature scale."""
        kwargs.setdefault("bounds_source", "the unit box of images")
        return cls(**kwargs, box=(0.0, 1.0), kind="image")

    @classmethod
    def for_dataset(cls, data: Dataset, *, units: str = "auto", bounds: Any = None,
                    bounds_file: str | Path | None = None, train: Dataset | None = None,
                    margin: float = DOMAIN_MARGIN, **kwargs: Any) -> ThreatModel:
        """The strongest threat model that keeps adversarial rows valid rows of ``data``.

        Bounds, by precedence (see docs/robustness.md, "The threat model"):

        1. ``bounds`` -- one box ``(lo, hi)`` or ``"lo,hi"`` for every feature (``--bounds``);
        2. ``bounds_file`` -- per-feature ``lo``/``hi`` (and optionally ``type``, ``mutable``) from a
           JSON/YAML schema (:func:`load_bounds_file`); features it does not name are inferred;
        3. inferred: data whose values all lie in ``[0, 1]`` (or, image-shaped, are whole numbers in
           ``[0, 255]``) gets that box for every feature; other data gets its domain: the observed
           range of ``data`` and ``train`` widened by ``margin`` of each range on each side
           (:func:`infer_domain`) -- never the sample's extremes alone.

        ``units``: ``"std"`` measures ``eps`` in per-feature standard deviations, ``"raw"`` in the
        data's own units, ``"auto"`` picks ``"raw"`` for image-like data (``[0, 1]``, ``[0, 255]``),
        a stated box, or bounds that are one finite box for every feature, and ``"std"`` otherwise.
        Integer features are kept whole and categorical, binary and immutable features are left
        unchanged -- except that for image-like data or a stated box the *inferred* binary/integer
        types are dropped (each feature moves continuously in the box; declared categorical types,
        immutable features and a schema's types still hold).
        Where the chosen bounds are narrower than the data's domain the threat model carries
        ``warnings``.
        """
        if units not in ("auto", "std", "raw"):
            raise UserError(f"unknown eps units {units!r}; expected auto, std or raw")
        if not data.is_numeric:
            raise UserError("adversarial attacks need numeric features")
        if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin >= 0):
            raise UserError(f"the bounds margin must be a finite number >= 0, got {margin!r}")
        flat = np.asarray(data.X, dtype=np.float64).reshape(len(data), -1)
        d = flat.shape[1]
        if train is not None and (not train.is_numeric or train.n_features != d):
            raise UserError(f"the training data has {train.n_features} features, the evaluation data {d}")
        sets = [data] if train is None else [data, train]
        names = list(data.feature_names) if data.feature_names and len(data.feature_names) == d else None
        types = list(data.feature_types) if data.feature_types and len(data.feature_types) == d \
            else ["continuous"] * d
        obs_lo, obs_hi = observed_range(sets, d)
        spec = load_bounds_file(bounds_file, names, d) if bounds_file is not None else None
        box = parse_box(bounds) if bounds is not None else None
        warnings: list[tuple[str, str]] = []
        explicit = np.zeros(d, dtype=bool)
        pixel = None
        if box is not None:
            lower, upper = np.full(d, box[0]), np.full(d, box[1])
            explicit[:] = True
            source = f"stated box [{box[0]:g}, {box[1]:g}] on every feature"
            if spec is not None:
                source += f" (overrides the bounds file {spec.path})"
        else:
            pixel = pixel_box(sets, d)
            if pixel is not None:
                inf_lo, inf_hi = np.full(d, pixel[0]), np.full(d, pixel[1])
                inferred = f"inferred: every value is in [{pixel[0]:g}, {pixel[1]:g}], an image-like box"
            else:
                whole = np.array([t == "integer" for t in types], dtype=bool)
                inf_lo, inf_hi = infer_domain(obs_lo, obs_hi, whole, margin)
                what = "evaluation and training data" if train is not None else "evaluation data"
                inferred = f"inferred: the {what}'s range widened by {margin:.0%} of each range"
            lower, upper = inf_lo, inf_hi
            source = inferred
            if spec is not None:
                given_lo, given_hi = ~np.isnan(spec.lower), ~np.isnan(spec.upper)
                lower = np.where(given_lo, spec.lower, inf_lo)
                upper = np.where(given_hi, spec.upper, inf_hi)
                explicit = given_lo | given_hi
                k = int(explicit.sum())
                source = f"bounds file {spec.path} for {k} of {d} features" + (
                    f"; the others {inferred}" if k < d else "")
                bad = np.flatnonzero(lower > upper)
                if bad.size:
                    j = int(bad[0])
                    raise UserError(f"{spec.path}: feature {_feature_label(j, names)} gets bounds "
                                    f"[{lower[j]:g}, {upper[j]:g}] (lo above hi once the missing side is inferred)")
        # one box for every feature, stated or image-like data: pixels, measured in raw units
        common_box = box is not None or pixel is not None
        if spec is not None:
            types = [t if s is None else s for t, s in zip(types, spec.types, strict=True)]
        if common_box:  # pixels: the inferred whole-number/binary types of a sample do not bind
            inferred_types = spec.types if spec is not None else [None] * d
            types = [("continuous" if t in ("binary", "integer") and s is None else t)
                     for t, s in zip(types, inferred_types, strict=True)]
        integer = np.array([t == "integer" for t in types], dtype=bool)
        frozen = np.array([t in ("categorical", "binary") for t in types], dtype=bool)
        declared = data.mutable_mask.reshape(-1)
        mutable = (declared if declared.shape[0] == d else np.ones(d, dtype=bool)) & ~frozen
        if spec is not None:
            mutable &= ~spec.frozen
        one_box = _one_box(lower, upper)
        if units == "auto":
            units = "raw" if common_box or one_box else "std"
        scale = None
        if units == "std":
            with np.errstate(all="ignore"), _warnings.catch_warnings():
                _warnings.simplefilter("ignore", RuntimeWarning)
                std = np.nanstd(flat, axis=0) if len(flat) else np.zeros(d)
            span = upper - lower
            fallback = np.where(np.isfinite(span) & (span > 0), span / 4, 1e-12)
            scale = np.where(np.isfinite(std) & (std > 0), std, fallback)
        # -- where the chosen threat model is narrower than the data's domain -------------------
        tol = 1e-9 * np.maximum(1.0, np.abs(np.nan_to_num(obs_hi - obs_lo, posinf=0.0)))
        outside = explicit & mutable & ((obs_lo < lower - tol) | (obs_hi > upper + tol))
        if outside.any():
            j = int(np.flatnonzero(outside)[0])
            warnings.append(("low", (
                f"the stated bounds are narrower than the data: {int(outside.sum())} of {d} features have "
                f"values outside them (e.g. {_feature_label(j, names)}: observed [{obs_lo[j]:.4g}, "
                f"{obs_hi[j]:.4g}], bounds [{lower[j]:.4g}, {upper[j]:.4g}]); the attacker's reach "
                "is understated there")))
        if not common_box and not one_box and not explicit.all():
            stuck = ~explicit & mutable & (obs_lo == obs_hi)
            if stuck.any():
                j = int(np.flatnonzero(stuck)[0])
                warnings.append(("low", (
                    f"{int(stuck.sum())} of {d} features take one value in the data (e.g. "
                    f"{_feature_label(j, names)} = {obs_lo[j]:.4g}), so their inferred bounds let them not "
                    "move at all: the threat model may be narrower than their domain; state their bounds "
                    "in a bounds file")))
            if train is None:
                warnings.append(("info", (
                    "bounds inferred from the evaluation data alone (its range widened by "
                    f"{margin:.0%}); the features' domain may be wider: give the training data or a "
                    "bounds file")))
        kind = "image" if one_box and units == "raw" else f"tabular-{units}"
        if kind == "image":
            return cls(box=(float(lower[0]), float(upper[0])), scale=None, integer=integer, mutable=mutable,
                       kind=kind, bounds_source=source, warnings=tuple(warnings), **kwargs)
        return cls(lower=lower, upper=upper, scale=scale, integer=integer, mutable=mutable,
                   kind=kind, bounds_source=source, warnings=tuple(warnings), **kwargs)

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
        bounds become ``None``); boolean masks (``integer``, ``mutable``) become their count;
        ``warnings`` become ``{"level", "message"}`` objects; ``units`` and the one-line
        ``description`` are added."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                if v.dtype == bool:
                    out[f.name] = int(v.sum())
                else:
                    flat = np.asarray(v, dtype=np.float64).reshape(-1)
                    out[f.name] = [float(x) if math.isfinite(x) else None for x in flat.tolist()]
            elif f.name == "warnings":
                out[f.name] = [{"level": a, "message": b} for a, b in self.warnings]
            elif isinstance(v, tuple):
                out[f.name] = list(v)
            else:
                out[f.name] = v
        out["step_size"] = self.alpha
        out["units"] = self.units
        out["description"] = self.describe()
        return out

    @property
    def units(self) -> str:
        """``"raw"`` (eps in the data's units) or ``"std"`` (per-feature standard deviations)."""
        return "std" if self.kind == "tabular-std" else "raw" if self.scale is None else "scaled"

    def bounds_arrays(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature ``(lower, upper)`` for ``d`` features (``-inf``/``inf`` where unbounded)."""
        box = self.box
        lo = self.lower if self.lower is not None else np.full(d, box[0] if box else -np.inf)
        hi = self.upper if self.upper is not None else np.full(d, box[1] if box else np.inf)
        if lo.size != d or hi.size != d:
            raise UserError(f"threat model has {lo.size} bounds for {d} features")
        return lo, hi

    def describe(self, eps: str | None = None) -> str:
        """The threat model in one line: norm, eps and its units, the bounds and where they come
        from, and how many features may change (``eps`` replaces ``eps=<self.eps>``, e.g. a grid)."""
        norm = "L-inf" if self.norm == "inf" else "L2"
        e = eps or f"eps={self.eps:g}"
        units = {"raw": "raw units", "std": "per-feature standard deviations"}.get(
            self.units, "per-feature scale units")
        if self.lower is None and self.upper is None:
            bounds = f"bounds [{self.box[0]:g}, {self.box[1]:g}] on every feature" if self.box else "no bounds"
        else:
            d = (self.lower if self.lower is not None else self.upper).size  # type: ignore[union-attr]
            lo, hi = self.bounds_arrays(d)
            bounds = (f"bounds [{lo[0]:g}, {hi[0]:g}] on every feature" if _one_box(lo, hi)
                      else f"per-feature bounds on {d} features")
        src = self.bounds_source or "set in code"
        if self.mutable is None or self.mutable.all():
            mut = "every feature may change"
        else:
            mut = f"{int(self.mutable.sum())} of {self.mutable.size} features may change"
        return f"{norm}, {e} in {units}, {bounds} ({src}); {mut}"

    def eps_limit(self, d: int) -> float:
        """The eps at which the ball covers the whole box: every mutable feature can take any value
        in its bounds (L-inf: the widest mutable feature's range in ``scale`` units; L2: the box's
        diagonal). ``inf`` when a mutable feature is unbounded or none may change."""
        lo, hi = self.bounds_arrays(d)
        scale = self.scale if self.scale is not None else np.ones(d)
        mask = self.mutable if self.mutable is not None else np.ones(d, dtype=bool)
        if mask.size != d or scale.size != d or not mask.any():
            return math.inf
        z = (hi - lo)[mask] / scale[mask]
        if not np.all(np.isfinite(z)):
            return math.inf
        return float(z.max()) if self.norm == "inf" else float(np.sqrt(np.sum(z**2)))

    def check_eps(self, d: int, eps: float | None = None, what: str = "eps", cli_hint: str | None = None) -> None:
        """Refuse an ``eps`` that cannot be meaningful: at least :meth:`eps_limit` (any input in the
        box is then reachable, so "robust accuracy" measures nothing). ``what`` names the value in the
        message, ``cli_hint`` is the error's advice on the command line."""
        e = self.eps if eps is None else float(eps)
        lim = self.eps_limit(d)
        if e > 0 and e >= lim * (1 - 1e-12):
            units = {"raw": "raw units", "std": "standard deviations"}.get(self.units, "scale units")
            raise OptionError(f"{what}={e:g} cannot be meaningful: it covers the whole box ({lim:.4g} {units} "
                            f"reaches every bound of every feature, so any input is reachable); "
                            f"choose an eps below {lim:.4g}", cli_hint=cli_hint)

    def projector(self, n_features: int, dtype: Any = None) -> Projector:
        """The torch-side projection operator for inputs with ``n_features`` (flattened) features."""
        import torch  # lazy: torch is heavy; imported only where it runs

        return Projector(self, n_features, dtype or torch.float32)


class Projector:
    """Torch implementation of a :class:`ThreatModel` on flattened ``(n, d)`` batches.

    Relaxed iterates live in the continuous box; :meth:`finalize` additionally rounds integer
    features toward the clean value (so the rounded row stays in the ``eps`` ball and the bounds).
    """

    def __init__(self, threat: ThreatModel, d: int, dtype: Any) -> None:
        import torch  # lazy: torch is heavy; imported only where it runs

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
        import torch  # lazy: torch is heavy; imported only where it runs

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
        import torch  # lazy: torch is heavy; imported only where it runs

        if self.lower is not None:
            x = torch.maximum(x, torch.minimum(self.lower, x0))
        if self.upper is not None:
            x = torch.minimum(x, torch.maximum(self.upper, x0))
        return x

    def project(self, x: torch.Tensor, x0: torch.Tensor, eps: float | torch.Tensor | None = None) -> torch.Tensor:
        """Ball then box (the box clip moves coordinates toward ``x0``, so it stays in the ball)."""
        import torch  # lazy: torch is heavy; imported only where it runs

        if self.norm == "inf" and not isinstance(eps, torch.Tensor):
            return torch.clamp(x, *self.linf_bounds(x0, eps))  # ball and box are one box
        return self.box(self.ball(x, x0, eps), x0)

    def linf_bounds(self, x0: torch.Tensor, eps: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """For L-inf the feasible set (ball, box, immutables) is itself a box: its corners, so
        that projecting is a single ``clamp`` (the hot path of PGD)."""
        import torch  # lazy: torch is heavy; imported only where it runs

        r = (self.eps if eps is None else eps) * self.scale * self.mask
        lo, hi = x0 - r, x0 + r
        if self.lower is not None:
            lo = torch.maximum(lo, torch.minimum(self.lower, x0))
        if self.upper is not None:
            hi = torch.minimum(hi, torch.maximum(self.upper, x0))
        return lo, hi

    def finalize(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """A valid row: integer features rounded toward their clean value, immutables restored."""
        import torch  # lazy: torch is heavy; imported only where it runs

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
        import torch  # lazy: torch is heavy; imported only where it runs

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


# -- bounds: stated, from a schema file, or inferred --------------------------------------------
def _one_box(lower: np.ndarray, upper: np.ndarray) -> bool:
    """Every feature has the same finite box."""
    return bool(lower.size and np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))
                and np.all(lower == lower[0]) and np.all(upper == upper[0]))


def _feature_label(j: int, names: list[str] | None) -> str:
    return repr(names[j]) if names is not None else f"#{j}"


def parse_box(value: Any) -> tuple[float, float]:
    """One box for every feature: ``"LO,HI"`` (the CLI's ``--bounds``) or ``[LO, HI]``."""
    if isinstance(value, str):
        parts: list[Any] = [p.strip() for p in value.split(",")]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = []
    usage = f"bad bounds {value!r}: expected LO,HI with finite numbers LO < HI, e.g. 0,1"
    if len(parts) != 2 or any(isinstance(p, bool) for p in parts):
        raise UserError(usage)
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except (TypeError, ValueError):
        raise UserError(usage) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise UserError(usage)
    return lo, hi


@dataclass
class BoundsSpec:
    """Per-feature bounds read from a schema file: ``nan`` where a side is not given (inferred),
    ``-inf``/``inf`` where it is given as ``null`` (unbounded)."""

    lower: np.ndarray
    upper: np.ndarray
    types: list[str | None]
    frozen: np.ndarray
    path: str


def _bound(value: Any, where: str) -> float:
    if value is None:
        return math.nan  # the caller maps an explicit null to an infinite bound
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise UserError(f"{where}: expected a finite number or null, got {value!r}")
    return float(value)


def load_bounds_file(path: str | Path, names: list[str] | None, d: int) -> BoundsSpec:
    """Read per-feature bounds from a JSON or YAML schema::

        default: {lo: 0, hi: 1}              # optional: every feature not listed below
        features:                            # by name (tabular data with names) or 0-based index
          age: {lo: 17, hi: 100, type: integer, mutable: false}
          3: {lo: 0}                         # a missing side is inferred; null means unbounded

    ``features`` may also be a list of ``{name|index, lo, hi, type, mutable}``. Unknown features,
    keys or types, ``lo > hi`` and files over 4 MiB are clear errors.
    """
    p = Path(path)
    where = str(path)
    doc = load_yaml_file(p, "bounds file", max_bytes=_MAX_BOUNDS_FILE)  # JSON is YAML
    if not isinstance(doc, dict) or not doc or set(doc) - {"features", "default"}:
        raise UserError(f"bounds file {where}: expected a mapping with 'features' and/or 'default' "
                        "(see docs/robustness.md)")
    lower = np.full(d, math.nan)
    upper = np.full(d, math.nan)
    types: list[str | None] = [None] * d
    frozen = np.zeros(d, dtype=bool)
    index = {n: j for j, n in enumerate(names or [])}

    def entry(j: int | None, spec: Any, what: str) -> None:
        if not isinstance(spec, dict):
            raise UserError(f"bounds file {where}: {what} must be a mapping like {{lo: 0, hi: 1}}")
        extra = set(spec) - {"lo", "hi", "type", "mutable", "name", "index"}
        if extra:
            raise UserError(f"bounds file {where}: {what}: unknown key {sorted(extra)[0]!r}; "
                            "expected lo, hi, type, mutable")
        rows = range(d) if j is None else (j,)
        for side, arr, inf in (("lo", lower, -math.inf), ("hi", upper, math.inf)):
            if side in spec:
                v = _bound(spec[side], f"bounds file {where}: {what}.{side}")
                for r in rows:
                    arr[r] = inf if math.isnan(v) else v
        if "type" in spec:
            if spec["type"] not in _FEATURE_TYPES:
                raise UserError(f"bounds file {where}: {what}.type {spec['type']!r}; expected one of "
                                f"{', '.join(_FEATURE_TYPES)}")
            for r in rows:
                types[r] = str(spec["type"])
        if "mutable" in spec:
            if not isinstance(spec["mutable"], bool):
                raise UserError(f"bounds file {where}: {what}.mutable must be true or false")
            for r in rows:
                frozen[r] = not spec["mutable"]
        lo = spec.get("lo")
        hi = spec.get("hi")
        if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and not lo <= hi:
            raise UserError(f"bounds file {where}: {what} has lo {lo!r} above hi {hi!r}")

    def column(key: Any) -> int:
        if isinstance(key, bool):
            raise UserError(f"bounds file {where}: feature key {key!r} is neither a name nor an index")
        if isinstance(key, str) and key in index:
            return index[key]
        if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
            j = int(key)
            if not 0 <= j < d:
                raise UserError(f"bounds file {where}: feature index {j} is out of range (0..{d - 1})")
            return j
        known = ", ".join(list(index)[:8]) + (", ..." if len(index) > 8 else "")
        raise UserError(f"bounds file {where}: unknown feature {key!r}"
                        + (f"; known: {known}" if index else "; this data has no feature names, use indices"))

    if "default" in doc:
        entry(None, doc["default"], "default")
    feats = doc.get("features") or {}
    if isinstance(feats, dict):
        items = [(column(k), v, f"feature {k!r}") for k, v in feats.items()]
    elif isinstance(feats, list):
        items = []
        for i, v in enumerate(feats):
            if not isinstance(v, dict) or ("name" in v) == ("index" in v):
                raise UserError(f"bounds file {where}: features[{i}] needs exactly one of name or index")
            key = v.get("name", v.get("index"))
            items.append((column(key), v, f"feature {key!r}"))
    else:
        raise UserError(f"bounds file {where}: 'features' must be a mapping or a list")
    seen: set[int] = set()
    for j, v, what in items:
        if j in seen:
            raise UserError(f"bounds file {where}: {what} is given twice")
        seen.add(j)
        entry(j, v, what)
    return BoundsSpec(lower=lower, upper=upper, types=types, frozen=frozen, path=where)


def observed_range(datasets: list[Dataset], d: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature ``(min, max)`` over every dataset's values and declared bounds (NaN ignored;
    a feature with no finite value is unbounded)."""
    lo = np.full(d, np.inf)
    hi = np.full(d, -np.inf)
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", RuntimeWarning)
        for ds in datasets:
            flat = np.asarray(ds.X, dtype=np.float64).reshape(len(ds), -1)
            cands = [np.nanmin(flat, axis=0), np.nanmax(flat, axis=0)] if len(flat) else []
            for b in (ds.lower, ds.upper):
                if b is not None and np.size(b) == d:
                    cands.append(np.asarray(b, dtype=np.float64).reshape(-1))
            for c in cands:
                c = np.where(np.isfinite(c), c, np.nan)
                lo = np.fmin(lo, c)
                hi = np.fmax(hi, c)
    none = lo > hi  # no finite value at all
    return np.where(none, -np.inf, lo), np.where(none, np.inf, hi)


def pixel_box(datasets: list[Dataset], d: int) -> tuple[float, float] | None:
    """``(0, 1)`` when every finite value is in ``[0, 1]``; ``(0, 255)`` when every value is a whole
    number in ``[0, 255]``, some above 1, and the data is image-shaped (more than two axes, or at
    least 64 features); else ``None`` (tabular data)."""
    lo, hi, whole = math.inf, -math.inf, True
    image_shaped = d >= 64
    for ds in datasets:
        x = np.asarray(ds.X, dtype=np.float64)
        image_shaped = image_shaped or x.ndim > 2
        x = x[np.isfinite(x)]
        if x.size:
            lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
            whole = whole and bool(np.all(x == np.round(x)))
    if lo > hi:
        return None
    if lo >= 0.0 and hi <= 1.0:
        return (0.0, 1.0)
    if lo >= 0.0 and 1.0 < hi <= 255.0 and whole and image_shaped:
        return (0.0, 255.0)
    return None


def infer_domain(lo: np.ndarray, hi: np.ndarray, integer: np.ndarray | None = None,
                 margin: float = DOMAIN_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """A tabular feature's domain from its observed range ``[lo, hi]``: widened by ``margin`` of
    the range on each side, except that a non-negative feature stays non-negative, a non-positive one
    non-positive, one within ``[0, 1]`` within ``[0, 1]``; integer features get whole bounds."""
    with np.errstate(invalid="ignore"):
        span = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
        wlo, whi = lo - margin * span, hi + margin * span
        wlo = np.where(lo >= 0, np.maximum(wlo, 0.0), wlo)
        whi = np.where(hi <= 0, np.minimum(whi, 0.0), whi)
        whi = np.where((lo >= 0) & (hi <= 1), np.minimum(whi, 1.0), whi)
    if integer is not None and integer.any():
        wlo = np.where(integer, np.floor(wlo), wlo)
        whi = np.where(integer, np.ceil(whi), whi)
    return wlo, whi
