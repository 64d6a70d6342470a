"""Adversarial training for PyTorch classifiers: PGD (Madry et al.) and TRADES (Zhang et al.).

The inner attack uses the same :class:`~modelshield.attacks.threat.ThreatModel` as the
audit, so a model hardened here is hardened against the perturbations the ``robustness`` check
measures (per-feature scale, bounds, integer and immutable features).
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelshield.attacks import PGD
from modelshield.attacks.base import label_indices
from modelshield.attacks.threat import Projector, ThreatModel, parse_box
from modelshield.data.dataset import Dataset
from modelshield.errors import DataError, UserError
from modelshield.models.base import BaseModel, Capability
from modelshield.models.torch import TorchModel

if TYPE_CHECKING:  # pragma: no cover - torch is imported where it runs (it is heavy)
    import torch

__all__ = ["METHODS", "AdversarialTrainingConfig", "AdversarialTrainingReport", "adversarial_train",
           "harden_adversarial", "torchscript_bytes"]

METHODS = ("pgd", "trades")


@dataclass(frozen=True, kw_only=True)
class AdversarialTrainingConfig:
    """How :func:`harden_adversarial` trains (plain data: CLI flags, JSON and keywords alike).

    ``method`` pgd (Madry) or trades (Zhang, weight ``beta``); ``eps``/``norm``/``units`` the training
    budget (units as the audit's threat model: auto, std or raw); ``attack_steps`` PGD steps per batch;
    ``from_scratch`` re-initialises instead of fine-tuning; ``max_eval`` rows for the before/after PGD-20
    evaluation; ``bounds`` (one box ``"lo,hi"``) over ``bounds_file`` (per-feature schema) over inferred
    bounds."""

    method: str = "pgd"
    eps: float = 0.1
    norm: str = "inf"
    units: str = "auto"
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    beta: float = 6.0
    attack_steps: int = 7
    from_scratch: bool = False
    max_eval: int = 500
    seed: int = 0
    bounds: Any = None
    bounds_file: str | Path | None = None

    def validate(self) -> AdversarialTrainingConfig:
        """What can be checked before any loading: the method and the one-box ``bounds`` (one-line
        :class:`UserError`); returns the config."""
        if self.method not in METHODS:
            raise UserError(f"unknown adversarial-training method {self.method!r}; expected pgd or trades",
                            cli_hint="fix --method")
        if self.bounds is not None:
            try:
                parse_box(self.bounds)
            except UserError as exc:
                raise UserError(str(exc), cli_hint="fix --bounds") from None
        return self


@dataclass
class AdversarialTrainingReport:
    """Before/after numbers of :func:`harden_adversarial` (plain data, JSON-ready)."""

    method: str
    threat: dict[str, Any]
    epochs: int
    from_scratch: bool
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    evaluated_on: str = "test"
    samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pgd_inner(module: Any, proj: Projector, x0: torch.Tensor, y: torch.Tensor, *, steps: int, alpha: float,
               gen: torch.Generator, target_p: torch.Tensor | None = None) -> torch.Tensor:
    """Full-length PGD on a training batch: CE (PGD training) or KL to the clean log-probabilities
    ``target_p`` (TRADES)."""
    import torch  # lazy: heavy, imported where it runs
    import torch.nn.functional as F

    if target_p is None:
        x = proj.random_start(x0, gen)
    else:  # TRADES starts next to the clean point
        x = proj.project(x0 + 0.001 * torch.randn(x0.shape, generator=gen, dtype=x0.dtype) * proj.scale, x0)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        xr = x + (proj.finalize(x, x0) - x).detach() if proj.has_integer else x
        logits = module(xr)
        if target_p is None:
            loss = F.cross_entropy(logits, y)
        else:
            loss = F.kl_div(F.log_softmax(logits, dim=1), target_p, reduction="batchmean", log_target=True)
        (g,) = torch.autograd.grad(loss, x)
        x = proj.project(x.detach() + alpha * proj.ascent(g), x0)
    return proj.finalize(x.detach(), x0)


def adversarial_train(
    module: Any,
    X: np.ndarray,
    y_idx: np.ndarray,
    *,
    threat: ThreatModel,
    method: str = "pgd",
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    beta: float = 6.0,
    attack_steps: int = 7,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> Any:
    """Train ``module`` (logits) in place on adversarial examples and return it.

    ``method="pgd"`` minimises the cross-entropy on PGD examples (``attack_steps`` steps of
    ``2.5 * eps / attack_steps`` from a random start); ``"trades"`` minimises
    ``CE(f(x), y) + beta * KL(f(x) || f(x'))`` with ``x'`` maximising the KL term.

    References
    ----------
    Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018.
    Zhang et al., "Theoretically Principled Trade-off between Robustness and Accuracy" (TRADES),
    ICML 2019. https://arxiv.org/abs/1901.08573
    """
    import torch  # lazy: heavy, imported where it runs
    import torch.nn.functional as F

    if method not in METHODS:
        raise UserError(f"unknown adversarial-training method {method!r}; expected pgd or trades")
    if epochs < 1 or batch_size < 1 or not lr > 0 or attack_steps < 1:
        raise UserError("epochs, batch size and attack steps must be >= 1 and the learning rate > 0")
    if not (beta >= 0 and np.isfinite(beta)):  # a negative weight would train *against* robustness
        raise UserError(f"the TRADES weight beta must be >= 0, got {beta}", cli_hint="fix --beta")
    n = len(X)
    shape = tuple(X.shape[1:])
    d = int(np.prod(shape))
    proj = threat.projector(d, torch.float32)
    xt = torch.as_tensor(np.asarray(X, dtype=np.float32).reshape(n, d))
    yt = torch.as_tensor(np.asarray(y_idx, dtype=np.int64))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)

    def fwd(x: torch.Tensor) -> torch.Tensor:
        return module(x.reshape((len(x), *shape)))

    alpha = 2.5 * threat.eps / attack_steps
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    for ep in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            xb, yb = xt[idx], yt[idx]
            module.eval()
            if method == "pgd":
                xa = _pgd_inner(fwd, proj, xb, yb, steps=attack_steps, alpha=alpha, gen=gen)
                module.train()
                loss = F.cross_entropy(fwd(xa), yb)
            else:
                with torch.no_grad():
                    p_clean = F.log_softmax(fwd(xb), dim=1)
                xa = _pgd_inner(fwd, proj, xb, yb, steps=attack_steps, alpha=alpha, gen=gen, target_p=p_clean)
                module.train()
                logits = fwd(xb)
                # log-space target: softmax probabilities that underflow to 0 would give NaN gradients
                loss = F.cross_entropy(logits, yb) + beta * F.kl_div(
                    F.log_softmax(fwd(xa), dim=1), F.log_softmax(logits, dim=1), reduction="batchmean",
                    log_target=True)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if progress:
            progress((ep + 1) / epochs, f"epoch {ep + 1}/{epochs}")
    return module.eval()


def _copy_module(module: Any) -> Any:
    """An independent, trainable copy (TorchScript modules are round-tripped through bytes)."""
    import torch  # lazy: heavy, imported where it runs

    if isinstance(module, torch.jit.ScriptModule):
        buf = io.BytesIO()
        torch.jit.save(module, buf)
        buf.seek(0)
        out = torch.jit.load(buf, map_location="cpu")
    else:
        out = copy.deepcopy(module)
    for p in out.parameters():
        p.requires_grad_(True)
    return out


def _evaluate(model: BaseModel, X: np.ndarray, y: np.ndarray, threat: ThreatModel, seed: int) -> dict[str, float]:
    """Clean and PGD-20 robust accuracy (the same attack before and after)."""
    res = PGD(threat=threat.with_(steps=20, step_size=None), seed=seed).generate(model, X, y)
    return {"clean_accuracy": res.clean_accuracy, "robust_accuracy": res.robust_accuracy}


def harden_adversarial(
    model: BaseModel,
    train: Dataset,
    test: Dataset | None = None,
    *,
    config: AdversarialTrainingConfig | None = None,
    progress: Callable[[float, str], None] | None = None,
    **settings: Any,
) -> tuple[Any, AdversarialTrainingReport]:
    """Adversarially train a PyTorch model; return ``(module, report)`` with clean and robust
    accuracy (PGD-20 at the same eps) before and after, on ``test`` (or ``train`` if none).

    The training settings come from ``config`` (an :class:`AdversarialTrainingConfig`) and/or keywords
    naming its fields (``method="trades", eps=0.25``), which override the config's values; an unknown
    keyword is a ``TypeError``.

    ``from_scratch`` re-initialises the weights (needs a retrainable, non-TorchScript module);
    otherwise the existing weights are fine-tuned. The input model is never modified.

    The threat model (training and evaluation) follows the audit's rules
    (:meth:`~modelshield.attacks.threat.ThreatModel.for_dataset`): ``bounds`` (one box,
    ``"lo,hi"``) over ``bounds_file`` (per-feature schema) over bounds inferred from the training and
    test data (a pixel box for data in [0, 1] / [0, 255], else the observed domain widened by a margin).
    """
    import torch  # lazy: heavy, imported where it runs

    cfg = replace(config or AdversarialTrainingConfig(), **settings)
    method, eps, epochs, seed, from_scratch = cfg.method, cfg.eps, cfg.epochs, cfg.seed, cfg.from_scratch
    if Capability.GRADIENTS not in model.capabilities:
        raise UserError("adversarial training needs a PyTorch model (TorchScript or nn.Module); "
                        f"got a {model.framework} model")
    if train.y is None:
        raise DataError("adversarial training needs labels", cli_hint="pass --target")
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    threat = ThreatModel.for_dataset(train, units=cfg.units, eps=eps, norm=cfg.norm, steps=20, bounds=cfg.bounds,
                                     bounds_file=cfg.bounds_file, train=test)
    threat.check_eps(int(np.prod(train.X.shape[1:])), cli_hint="fix --eps")
    on_test = test is not None and test.y is not None
    ev = (test if on_test else train).sample(cfg.max_eval, seed=seed)  # type: ignore[union-attr]
    assert ev.y is not None
    before = _evaluate(model, ev.X, ev.y, threat, seed)
    base = model.as_torch()
    if from_scratch:
        if Capability.RETRAINABLE not in model.capabilities:
            raise UserError("training from scratch needs a retrainable nn.Module (not TorchScript); fine-tune "
                            "instead", cli_hint="drop --from-scratch")
        module = model.clone_unfitted()  # type: ignore[attr-defined]
    else:
        module = _copy_module(base)
    probe = model.predict_proba(train.X[:2])
    y_idx = label_indices(model, train.y, probe.shape[1])
    t0 = time.perf_counter()
    module = adversarial_train(module, train.X, y_idx, threat=threat, method=method, epochs=epochs,
                               batch_size=cfg.batch_size, lr=cfg.lr, beta=cfg.beta, attack_steps=cfg.attack_steps,
                               seed=seed,
                               progress=progress)
    seconds = time.perf_counter() - t0
    if isinstance(module, torch.jit.ScriptModule):  # a trained TorchScript graph keeps grad mode; reload it
        module = _copy_module(module).eval()
    classes = getattr(model, "_classes", None)
    shape = model.input_spec.shape or tuple(train.X.shape[1:])
    hardened = TorchModel(module, input_shape=shape, classes=classes)
    after = _evaluate(hardened, ev.X, ev.y, threat, seed)
    report = AdversarialTrainingReport(method=method, threat=threat.to_dict(), epochs=epochs,
                                       from_scratch=from_scratch, before=before, after=after,
                                       train_seconds=seconds, evaluated_on="test" if on_test else "train",
                                       samples=len(ev))
    return module, report


def torchscript_bytes(module: Any, X: np.ndarray, input_shape: Sequence[int] | None = None) -> bytes:
    """Serialise a trained module as TorchScript (``torch.jit.save``: no pickle): scripted when it scripts,
    else traced on two rows of ``X`` (reshaped to ``input_shape``, one sample's shape)."""
    import torch  # lazy: heavy, imported where it runs

    buf = io.BytesIO()
    try:
        scripted = module if isinstance(module, torch.jit.ScriptModule) else torch.jit.script(module)
    except Exception:  # modules that do not script are traced on a real input
        shape = tuple(input_shape or X.shape[1:])
        example = torch.as_tensor(np.asarray(X[:2], dtype=np.float32).reshape((2, *shape)))
        scripted = torch.jit.trace(module, example)
    torch.jit.save(scripted, buf)
    return buf.getvalue()
