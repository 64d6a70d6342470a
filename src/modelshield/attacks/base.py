"""The :class:`Attack` interface and its result, :class:`AttackResult`.

One attack per module; each subclass is a keyword-only dataclass of its options (plain data) and
implements only :meth:`Attack._attack` on the samples that still need attacking. The base class
owns the workflow (template method): input checks, label mapping, selecting the samples the model
still classifies correctly (or, targeted, not yet as the target), timing, query counting, a final
projection onto the threat model and the bookkeeping of the result.

White-box attacks need ``Capability.GRADIENTS`` and use ``model.as_torch()`` (a logits module);
black-box attacks use only ``model.predict_proba`` (score-based) or ``model.predict_index``
(decision-based), always on whole batches.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from modelshield.attacks.threat import Projector, ThreatModel
from modelshield.errors import DataError, UserError
from modelshield.models.base import BaseModel, Capability

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Attack", "AttackContext", "AttackResult", "RawAttack"]


@dataclass(kw_only=True)
class AttackResult:
    """What an attack produced on ``n`` samples.

    Attributes
    ----------
    attack : attack name.
    x_adv : adversarial inputs, same shape as the inputs (clean rows where nothing was attacked).
    clean_correct : ``(n,)`` the model was right on the clean input (targeted: not yet the target).
    adv_correct : ``(n,)`` the model is right on ``x_adv`` (targeted: ``x_adv`` is not the target).
    success : ``(n,)`` the attack flipped a correct prediction (targeted: reached the target).
    perturbation : ``(n,)`` norm of ``x_adv - x`` in the threat model's units.
    queries : ``(n,)`` model queries (black-box) or forward passes (white-box) spent per sample.
    seconds : wall time of the attack proper.
    threat : the threat model as plain data.
    min_distance : ``(n,)`` for minimum-norm attacks (HopSkipJump): the smallest adversarial
        distance found regardless of ``eps`` (``inf`` where none was found; ``0`` where the clean
        input is already misclassified). Lets one run give a whole robust-accuracy-vs-eps curve.
    x_min : the adversarial inputs at ``min_distance`` (minimum-norm attacks only).
    """

    attack: str
    x_adv: np.ndarray
    clean_correct: np.ndarray
    adv_correct: np.ndarray
    success: np.ndarray
    perturbation: np.ndarray
    queries: np.ndarray
    seconds: float
    threat: dict[str, Any] = field(default_factory=dict)
    min_distance: np.ndarray | None = None
    x_min: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.success)

    @property
    def clean_accuracy(self) -> float:
        return float(np.mean(self.clean_correct)) if self.n else float("nan")

    @property
    def robust_accuracy(self) -> float:
        return float(np.mean(self.adv_correct)) if self.n else float("nan")

    @property
    def success_rate(self) -> float:
        """Flipped among the samples that were correct to begin with."""
        k = int(self.clean_correct.sum())
        return float(self.success.sum() / k) if k else float("nan")

    @property
    def median_perturbation(self) -> float:
        """Median perturbation of the successful adversarial examples (``nan`` if none)."""
        return float(np.median(self.perturbation[self.success])) if self.success.any() else float("nan")

    @property
    def total_queries(self) -> int:
        return int(self.queries.sum())

    def at_eps(self, eps: float) -> AttackResult:
        """This result re-read at a larger ``eps`` (minimum-norm attacks only; no new queries)."""
        if self.min_distance is None or self.x_min is None:
            raise ValueError(f"{self.attack} is not a minimum-norm attack; run it at eps={eps}")
        if eps < float(self.threat.get("eps", 0.0)) * (1 - 1e-9):
            raise ValueError(f"at_eps needs eps >= the attack's eps {self.threat.get('eps')}")
        broken = self.clean_correct & (self.min_distance <= eps * (1 + 1e-9))
        x_adv = np.where(broken.reshape((-1,) + (1,) * (self.x_min.ndim - 1)), self.x_min, self.x_adv)
        return AttackResult(
            attack=self.attack, x_adv=x_adv.astype(self.x_adv.dtype), clean_correct=self.clean_correct,
            adv_correct=self.clean_correct & ~broken, success=broken,
            perturbation=np.where(broken, self.min_distance, 0.0), queries=self.queries,
            seconds=self.seconds, threat={**self.threat, "eps": eps}, min_distance=self.min_distance,
            x_min=self.x_min,
        )

    def summary(self) -> dict[str, Any]:
        """Flat JSON-friendly numbers (what ``modelshield attack --json`` writes)."""
        return {
            "attack": self.attack,
            "samples": self.n,
            "clean_accuracy": self.clean_accuracy,
            "robust_accuracy": self.robust_accuracy,
            "attack_success_rate": self.success_rate,
            "median_perturbation": self.median_perturbation,
            "queries_total": self.total_queries,
            "queries_mean": float(self.queries.mean()) if self.n else 0.0,
            "queries_max": int(self.queries.max()) if self.n else 0,
            "seconds": self.seconds,
            "threat": self.threat,
        }


@dataclass
class RawAttack:
    """What :meth:`Attack._attack` returns for the attacked subset (flattened inputs)."""

    x_adv: torch.Tensor
    queries: np.ndarray
    min_distance: np.ndarray | None = None


class AttackContext:
    """Everything an attack step needs: the projector, a seeded generator and model access.

    ``logits`` is differentiable (white-box only); ``labels`` queries the model on a whole batch
    and *finalizes* the rows first, so the model only ever sees valid inputs. It goes through the
    model's predictions, or straight through the torch module when the model has one.
    """

    def __init__(self, model: BaseModel, proj: Projector, shape: tuple[int, ...], n_classes: int,
                 targeted: bool, seed: int, module: Any = None) -> None:
        import torch  # lazy: torch is heavy; imported only where it runs

        self.model = model
        self.proj = proj
        self.shape = shape
        self.n_classes = n_classes
        self.targeted = targeted
        self.gen = torch.Generator().manual_seed(int(seed))
        self.module = module
        #: (clean batch, its L-inf corners); the batch is held, so identity is a safe key
        self._bounds: list[tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]] = []

    def linf_bounds(self, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``proj.linf_bounds(x0)``, computed once per clean batch: the attack's random start, its
        steps and ``generate``'s final projection share the corners of the same ``x0``."""
        for x, b in self._bounds:
            if x is x0:
                return b
        b = self.proj.linf_bounds(x0)
        self._bounds = [*self._bounds[-1:], (x0, b)]
        return b

    def select_rows(self, x0: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``x0``'s rows ``rows``; under L-inf their corners are gathered from ``x0``'s (the
        corners are computed row by row, so gathering gives the same values) rather than
        computed a second time."""
        xs = x0.index_select(0, rows)
        if self.proj.norm == "inf":
            lo, hi = self.linf_bounds(x0)
            self._bounds = [(x0, (lo, hi)), (xs, (lo.index_select(0, rows), hi.index_select(0, rows)))]
        return xs

    def logits(self, x: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable logits of flattened ``x``. With ``x0`` and integer features, the forward
        pass sees the rounded row while the gradient passes straight through."""
        if x0 is not None and self.proj.has_integer:
            x = x + (self.proj.finalize(x, x0) - x).detach()
        assert self.module is not None
        return self.module(x if x.shape[1:] == self.shape else x.reshape((len(x), *self.shape)))

    def labels(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        import torch  # lazy: torch is heavy; imported only where it runs

        xf = self.proj.finalize(x, x0).detach()
        if self.module is not None:
            with torch.no_grad():
                return self.module(xf.float().reshape((len(x), *self.shape))).argmax(1)
        return torch.as_tensor(self.model.predict_index(xf.numpy().reshape((len(x), *self.shape))))

    def is_adv(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pred == y if self.targeted else pred != y


@dataclass(kw_only=True)
class Attack(ABC):
    """Base class of every attack. Subclasses are keyword-only dataclasses of their options.

    Parameters
    ----------
    threat : the :class:`ThreatModel` (norm, eps, steps, query budget, per-feature constraints).
    seed : seed of the attack's random generator (results are deterministic under a seed).
    """

    name: ClassVar[str] = ""
    white_box: ClassVar[bool] = True
    norms: ClassVar[tuple[str, ...]] = ("inf", "2")
    supports_targeted: ClassVar[bool] = True
    minimum_norm: ClassVar[bool] = False
    #: a black-box attack that runs in float32 (the module's own precision, no conversion per
    #: query) when the model is a torch module
    torch_float32: ClassVar[bool] = False

    threat: ThreatModel = field(default_factory=ThreatModel)
    seed: int = 0

    @property
    def label(self) -> str:
        """The name shown in results (``apgd-dlr`` rather than ``apgd``)."""
        return self.name

    def params(self) -> dict[str, Any]:
        out = asdict(self)
        out["threat"] = self.threat.to_dict()
        return out

    def check_model(self, model: BaseModel) -> None:
        """Raise a clear :class:`UserError` when ``model`` cannot be attacked this way."""
        if self.white_box and Capability.GRADIENTS not in model.capabilities:
            raise UserError(
                f"attack {self.name!r} is white-box and needs a differentiable (PyTorch) model; "
                "use a black-box attack (square, hsj) for this model"
            )
        if self.threat.norm not in self.norms:
            raise UserError(f"attack {self.name!r} supports norm {', '.join(self.norms)}, "
                            f"not {self.threat.norm!r}")
        if self.threat.targeted and not self.supports_targeted:
            raise UserError(f"attack {self.name!r} has no targeted mode")

    def generate(self, model: BaseModel, X: np.ndarray, y: np.ndarray,
                 budget: int | None = None) -> AttackResult:
        """Attack ``X`` (labels ``y``, or target labels when the threat model is targeted).

        ``budget`` overrides the threat model's per-sample query budget (black-box attacks).
        """
        import torch  # lazy: torch is heavy; imported only where it runs

        self.check_model(model)
        X = np.asarray(X)
        if X.ndim < 2 or len(X) == 0:
            raise DataError("attacks need a non-empty batch of inputs (n, features...)")
        if y is None or len(y) != len(X):
            raise DataError("attacks need one label per input")
        n = len(X)
        shape = tuple(model.input_spec.shape) if model.input_spec.shape is not None else tuple(X.shape[1:])
        d = math.prod(shape)
        if math.prod(X.shape[1:]) != d:
            raise DataError(f"inputs have {math.prod(X.shape[1:])} features but the model expects {d}")
        # a differentiable model is also evaluated natively by black-box attacks (outputs only;
        # no numpy round trip per query)
        module = model.as_torch() if self.white_box or Capability.GRADIENTS in model.capabilities else None
        clean_scores = self._predict(model, module, X.reshape((n, *shape)))
        n_classes = clean_scores.shape[1]
        y_idx = label_indices(model, y, n_classes)
        dtype = torch.float32 if self.white_box or (module is not None and self.torch_float32) else torch.float64
        proj = self.threat.projector(d, dtype)
        x0 = torch.as_tensor(X.reshape(n, d), dtype=dtype)
        ctx = AttackContext(model, proj, shape, n_classes, self.threat.targeted, self.seed, module)
        yt = torch.as_tensor(y_idx)
        clean_pred = np.argmax(clean_scores, axis=1)
        clean_correct = (clean_pred != y_idx) if self.threat.targeted else (clean_pred == y_idx)
        todo = np.flatnonzero(clean_correct)
        x_adv = x0
        queries = np.zeros(n, dtype=np.int64)
        min_dist = np.where(clean_correct, np.inf, 0.0) if self.minimum_norm else None
        budget = int(budget) if budget is not None else self.threat.query_budget
        t0 = time.perf_counter()
        if len(todo) and (self.threat.eps > 0 or self.minimum_norm):
            whole = len(todo) == n  # the usual case: no gather, no scatter
            sel = torch.as_tensor(todo)
            raw = self._attack(ctx, x0 if whole else ctx.select_rows(x0, sel),
                               yt if whole else yt.index_select(0, sel), budget)
            if whole:
                x_adv = raw.x_adv.detach().to(dtype)
            else:
                x_adv = x0.clone().index_copy_(0, sel, raw.x_adv.detach().to(dtype))
            queries[todo] = raw.queries
            if min_dist is not None and raw.min_distance is not None:
                min_dist[todo] = raw.min_distance
        seconds = time.perf_counter() - t0
        x_min = None
        with torch.no_grad():
            if min_dist is not None:
                # minimum-norm attack: keep the smallest adversarial found, use it where it fits eps
                xm = proj.finalize(proj.box(x_adv, x0), x0)
                x_min = xm.numpy().astype(np.float64).reshape(X.shape)
                fits = torch.as_tensor(min_dist <= self.threat.eps * (1 + 1e-9))
                x_adv = torch.where(fits[:, None], xm, x0)
            # the final projection (L-inf: one clamp against the corners the attack already used)
            x_adv = torch.clamp(x_adv, *ctx.linf_bounds(x0)) if proj.norm == "inf" else proj.project(x_adv, x0)
            x_adv = proj.finalize(x_adv, x0)
            pert = proj.dist(x_adv - x0).double().numpy()
        x_out = x_adv.numpy().astype(X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64, copy=False)
        # the final check: predict the rows returned. A torch module sees ``x_adv`` as float32
        # directly -- the same values ``x_out`` converts back to when it is float32 or float64
        # (a float16 ``x_out`` is rounded further: it is predicted as returned).
        if module is not None and x_out.dtype in (np.float32, np.float64):
            with torch.no_grad():
                adv_scores = module(x_adv.float().reshape((n, *shape))).numpy()
        else:
            adv_scores = self._predict(model, module, x_out.reshape((n, *shape)))
        adv_pred = np.argmax(adv_scores, axis=1)
        if self.threat.targeted:
            hit = adv_pred == y_idx
            adv_correct = ~hit
            success = clean_correct & hit
        else:
            adv_correct = adv_pred == y_idx
            success = clean_correct & ~adv_correct
        return AttackResult(
            attack=self.label,
            x_adv=x_out.reshape(X.shape),
            clean_correct=clean_correct,
            adv_correct=adv_correct,
            success=success,
            perturbation=np.where(success, pert, 0.0),
            queries=queries,
            seconds=seconds,
            threat=self.threat.to_dict(),
            min_distance=min_dist,
            x_min=x_min,
        )

    @staticmethod
    def _predict(model: BaseModel, module: Any, X: np.ndarray) -> np.ndarray:
        """Scores of a batch: logits straight from the torch module for white-box attacks (no
        numpy round trip), ``predict_proba`` otherwise."""
        if module is None:
            return model.predict_proba(X)
        import torch  # lazy: torch is heavy; imported only where it runs

        with torch.no_grad():
            return module(torch.as_tensor(np.asarray(X, dtype=np.float32))).numpy()

    @abstractmethod
    def _attack(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, budget: int) -> RawAttack:
        """Attack flattened inputs ``x0`` (all still correctly classified) with label indices ``y``."""


def label_indices(model: BaseModel, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Class indices of labels ``y``; models that do not know their classes (some TorchScript
    modules) take integer labels ``0 .. n_classes-1`` as indices."""
    y = np.asarray(y)
    try:
        _ = model.classes  # raises AttributeError when the model does not know them
    except AttributeError:
        if not np.issubdtype(y.dtype, np.integer) and not np.all(np.mod(y, 1) == 0):
            raise DataError("the model does not know its classes; labels must be class indices") from None
        idx = y.astype(np.int64)
        if idx.min() < 0 or idx.max() >= n_classes:
            raise DataError(f"labels must be class indices 0..{n_classes - 1} for this model") from None
        return idx
    return model.label_index(y)


# -- losses shared by the white-box attacks ---------------------------------------------------
def ce_loss(logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Per-sample cross-entropy (negated for targeted attacks, so it is always maximised)."""
    import torch  # lazy: torch is heavy; imported only where it runs

    loss = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    return -loss if targeted else loss


def dlr_loss(logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Difference-of-logits-ratio loss (Croce & Hein, 2020), maximised.

    With fewer than three classes the normaliser is undefined; the loss falls back to the plain
    logit margin (a CW-style loss).
    """
    import torch  # lazy: torch is heavy; imported only where it runs

    srt, _ = logits.sort(dim=1)
    zy = logits.gather(1, y[:, None])[:, 0]
    other = logits.clone()
    other.scatter_(1, y[:, None], float("-inf"))
    zmax_other = other.amax(dim=1)
    if logits.shape[1] >= 3:
        denom = srt[:, -1] - srt[:, -3] + 1e-12
    else:
        denom = torch.ones_like(zy)
    if targeted:
        return (zy - zmax_other) / denom
    return -(zy - zmax_other) / denom
