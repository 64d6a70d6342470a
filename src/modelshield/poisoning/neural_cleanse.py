"""Neural Cleanse: reverse-engineer a backdoor trigger per class and flag the class whose trigger is tiny.

For every class ``t`` the smallest "trigger" -- a mask ``m`` (values in [0, 1], one per input feature) and
a pattern ``p`` (values in the input's range) -- is sought that sends clean inputs to ``t`` when stamped
on them: ``x' = (1 - m) * x + m * p``. A backdoored model has a shortcut to its target class: the
trigger found for that class has a far smaller mask (L1 norm) than the masks of the other classes. The
anomaly index of each class is the median absolute deviation score of its mask norm,
``|norm - median| / (1.4826 * MAD)``; a class whose norm is *below* the median with an anomaly index above
2 is flagged (Wang et al. 2019).

Optimisation: Adam on unconstrained parameters (``m = sigmoid(a)``, ``p = lo + (hi - lo) * sigmoid(b)``),
cross-entropy towards ``t`` plus ``lambda_t * ||m||_1``, all classes at once (one forward pass of
``classes x batch`` stamped rows per step), a fixed number of steps. ``lambda_t`` is adjusted per class
as in the paper (up while the trigger succeeds on at least ``success`` of the batch, down otherwise)
and the smallest mask that succeeded is kept. Deterministic for a given ``seed`` (and torch thread
count).

References
----------
.. [1] B. Wang et al., "Neural Cleanse: Identifying and Mitigating Backdoor Attacks in Neural Networks",
   IEEE S&P 2019.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelshield.errors import DataError, OptionError, UserError
from modelshield.models.torchutil import few_threads
from modelshield.poisoning._common import flat_features

__all__ = ["NeuralCleanseReport", "NoGradients", "ReversedTrigger", "anomaly_index", "neural_cleanse"]

#: consistency constant that makes the MAD estimate the standard deviation of normal data
MAD_SCALE = 1.4826


class NoGradients(UserError):
    """The model gives no input gradients (not PyTorch/TorchScript, or its output is detached)."""


@dataclass(frozen=True, kw_only=True)
class ReversedTrigger:
    """The trigger reverse-engineered for one class: ``mask`` (in [0, 1]) and ``pattern``, each of one
    input sample's shape; ``mask_norm`` its L1 norm; ``attack_success`` the share of the clean rows (not
    already predicted as ``target``) that the stamped trigger sends to ``target``."""

    target: Any
    mask: np.ndarray
    pattern: np.ndarray
    mask_norm: float
    attack_success: float

    def apply(self, X: np.ndarray) -> np.ndarray:
        """``X`` (batch first, any sample shape of the mask's size) with the trigger stamped on."""
        Xa = np.asarray(X, dtype=np.float64)
        flat = Xa.reshape(len(Xa), -1)
        m, p = self.mask.reshape(-1), self.pattern.reshape(-1)
        return ((1.0 - m) * flat + m * p).reshape(Xa.shape)


@dataclass(kw_only=True)
class NeuralCleanseReport:
    """Per class (in the model's class order): ``mask_norms`` (L1 norm of the smallest mask that reached
    the success rate; the last mask where none did), ``attack_success`` of that mask on the clean rows,
    ``reached`` (whether any mask reached ``success``) and ``anomaly_index`` (MAD score of the norm,
    absolute, as in the paper). ``flagged``: classes with a norm below the median and an anomaly index
    above ``threshold`` (that reached the success rate), most anomalous first; ``triggers``: the reversed
    trigger of each flagged class."""

    classes: list[Any]
    mask_norms: np.ndarray
    attack_success: np.ndarray
    reached: np.ndarray
    anomaly_index: np.ndarray
    flagged: list[Any]
    threshold: float
    triggers: dict[Any, ReversedTrigger]
    steps: int
    n_rows: int
    notes: list[str] = field(default_factory=list)

    @property
    def poisoned(self) -> bool:
        return bool(self.flagged)

    @property
    def score(self) -> float:
        """The largest anomaly index on the small side (0 when no norm is below the median)."""
        small = self.mask_norms < np.median(self.mask_norms)
        return float(self.anomaly_index[small].max()) if small.any() else 0.0

    @property
    def target(self) -> Any:
        """The most anomalous flagged class (the suspected backdoor target), or ``None``."""
        return self.flagged[0] if self.flagged else None

    @property
    def trigger(self) -> ReversedTrigger | None:
        """The reversed trigger of :attr:`target`, or ``None``."""
        return self.triggers.get(self.target) if self.flagged else None


def anomaly_index(norms: np.ndarray) -> np.ndarray:
    """``|norm - median| / (1.4826 * MAD)`` per class (MAD 0: the mean absolute deviation, then 1)."""
    v = np.asarray(norms, dtype=np.float64)
    med = float(np.median(v))
    mad = MAD_SCALE * float(np.median(np.abs(v - med)))
    if mad <= 1e-12:
        mad = float(np.mean(np.abs(v - med))) or 1.0
    return np.abs(v - med) / mad


def _module_of(model: Any) -> tuple[Any, Any, list[Any]]:
    """``(logits module, prepare function, class labels)``; :class:`NoGradients` for other models."""
    import torch  # lazy: torch is heavy and only the white-box path needs it

    if isinstance(model, torch.nn.Module):
        return model, (lambda X: np.asarray(X)), []
    as_torch = getattr(model, "as_torch", None)
    module = None
    if callable(as_torch):
        try:
            module = as_torch()
        except TypeError:
            module = None
    if not isinstance(module, torch.nn.Module):
        fw = getattr(model, "framework", type(model).__name__)
        raise NoGradients(f"Neural Cleanse needs input gradients, which only PyTorch and TorchScript models give; "
                          f"a {fw} model has none")
    prep = getattr(model, "_prepare", None)
    try:
        classes = list(np.asarray(model.classes))
    except AttributeError:  # an adapter that does not know its classes: logit indices
        classes = []
    return module, (prep if callable(prep) else (lambda X: np.asarray(X))), classes


def neural_cleanse(model: Any, X: Any, *, steps: int = 300, batch_size: int = 64, lr: float = 0.1,
                   init_cost: float = 1e-3, cost_factor: float = 1.5, check_every: int = 10,
                   success: float = 0.99, threshold: float = 2.0, bounds: tuple[float, float] | None = None,
                   max_rows: int = 1000, seed: int = 0) -> NeuralCleanseReport:
    """Reverse-engineer a trigger for every class of ``model`` on clean inputs ``X`` and compute the
    anomaly index of the mask norms (Neural Cleanse).

    Parameters
    ----------
    model : a PyTorch or TorchScript model (an adapter with ``as_torch()``, or an ``nn.Module`` mapping
        inputs to logits); anything else raises :class:`NoGradients`.
    X : clean inputs (held-out rows), batch first, in the model's input shape or flat.
    steps : Adam steps (all classes optimised together); ``batch_size`` clean rows per step.
    lr : Adam learning rate on the unconstrained mask and pattern parameters.
    init_cost, cost_factor, check_every : the L1 weight starts at ``init_cost`` and is multiplied or
        divided by ``cost_factor`` every ``check_every`` steps (up while the trigger reaches ``success``).
    success : the attack success rate on the batch a mask must reach to count.
    threshold : anomaly index above which a class (norm below the median) is flagged.
    bounds : the pattern's value range; default the min and max of ``X``.
    max_rows : clean rows used (a seeded sample above it).
    seed : seeds the row sample, the batches and the initial parameters.
    """
    import torch  # lazy: torch is heavy and only the white-box path needs it

    for name, val in (("steps", steps), ("batch_size", batch_size), ("max_rows", max_rows),
                      ("check_every", check_every)):
        if int(val) < 1:
            raise OptionError(f"Neural Cleanse {name} must be at least 1, got {val}")
    if not (0 < success <= 1):
        raise OptionError(f"Neural Cleanse success must be above 0 and at most 1, got {success}")
    if not (lr > 0 and init_cost > 0 and cost_factor > 1 and threshold > 0):
        raise OptionError("Neural Cleanse lr, init_cost and threshold must be positive and cost_factor above 1")
    module, prepare, labels = _module_of(model)
    Xa = prepare(np.asarray(X))
    flat_features(Xa, "held-out data")  # finite numbers, at least one row
    rng = np.random.default_rng(seed)
    if len(Xa) > max_rows:
        Xa = Xa[np.sort(rng.choice(len(Xa), max_rows, replace=False))]
    Xa = np.asarray(Xa, dtype=np.float32)
    lo, hi = (float(Xa.min()), float(Xa.max())) if bounds is None else (float(bounds[0]), float(bounds[1]))
    if not hi > lo:
        raise DataError(f"Neural Cleanse needs a pattern range with high above low, got ({lo}, {hi})")
    shape = Xa.shape[1:]
    xt = torch.as_tensor(Xa)
    flags = [p.requires_grad for p in module.parameters()]
    was_training = bool(getattr(module, "training", False))
    try:
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        with few_threads(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            with torch.no_grad():
                pred = torch.cat([module(xt[s: s + 4096]).argmax(dim=1) for s in range(0, len(xt), 4096)])
            probe = module(xt[:1] + torch.zeros_like(xt[:1]).requires_grad_(True))
            if not probe.requires_grad:
                raise NoGradients("Neural Cleanse needs input gradients, but the model's output does not depend "
                                  "differentiably on its input (it is detached or computed without autograd)")
            K = int(probe.shape[-1])
            out = _optimise(module, xt, pred, K, shape, lo, hi, rng, steps=int(steps), batch_size=int(batch_size),
                            lr=lr, init_cost=init_cost, cost_factor=cost_factor, check_every=int(check_every),
                            success=success)
    finally:
        for p, f in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(f)
        module.train(was_training)
    masks, patterns, norms, reached = out
    asr = _success(module, xt, pred, masks, patterns)
    if len(labels) != K:
        labels = list(range(K))
    labels = [v.item() if isinstance(v, np.generic) else v for v in labels]
    ai = anomaly_index(norms)
    med = float(np.median(norms))
    order = np.argsort(-ai, kind="stable")
    flagged_idx = [int(k) for k in order if ai[k] > threshold and norms[k] < med and reached[k]]
    notes = []
    if not reached.all():
        notes.append(f"{int((~reached).sum())} of {K} classes never reached {success:.0%} attack success in "
                     f"{steps} steps; their norms are those of the last mask")
    triggers = {labels[k]: ReversedTrigger(target=labels[k], mask=masks[k].reshape(shape),
                                           pattern=patterns[k].reshape(shape), mask_norm=float(norms[k]),
                                           attack_success=float(asr[k])) for k in flagged_idx}
    return NeuralCleanseReport(classes=labels, mask_norms=norms, attack_success=asr, reached=reached,
                               anomaly_index=ai, flagged=[labels[k] for k in flagged_idx], threshold=threshold,
                               triggers=triggers, steps=int(steps), n_rows=len(Xa), notes=notes)


def _optimise(module: Any, xt: Any, pred: Any, K: int, shape: tuple[int, ...], lo: float, hi: float,
              rng: np.random.Generator, *, steps: int, batch_size: int, lr: float, init_cost: float,
              cost_factor: float, check_every: int, success: float,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All classes' masks and patterns by Adam; returns the best (smallest successful) mask, pattern,
    mask norm and whether each class succeeded at all. Runs inside the caller's seeded torch state."""
    import torch  # lazy: torch is heavy and only the white-box path needs it

    d = int(np.prod(shape))
    a = torch.randn(K, d) * 0.1 - 2.0  # masks start small (sigmoid(-2) ~ 0.12), patterns in mid-range
    b = torch.randn(K, d) * 0.1
    a.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.Adam([a, b], lr=lr, betas=(0.5, 0.9))
    cost = torch.full((K,), float(init_cost))
    target = torch.arange(K)
    best_norm = np.full(K, np.inf)
    best_mask = np.zeros((K, d), dtype=np.float64)
    best_pat = np.zeros((K, d), dtype=np.float64)
    hits = torch.zeros(K)
    seen = torch.zeros(K)
    n = len(xt)
    for step in range(steps):
        idx = torch.as_tensor(rng.integers(0, n, min(batch_size, n)))
        xb = xt[idx].reshape(len(idx), d)  # (B, d)
        other = (pred[idx][None, :] != target[:, None]).float()  # (K, B): rows not already of class k
        m = torch.sigmoid(a)
        p = lo + (hi - lo) * torch.sigmoid(b)
        stamped = (1 - m[:, None, :]) * xb[None, :, :] + (m * p)[:, None, :]  # (K, B, d)
        logits = module(stamped.reshape(K * len(idx), *shape)).reshape(K, len(idx), -1)
        ce = torch.nn.functional.cross_entropy(logits.reshape(K * len(idx), -1),
                                               target.repeat_interleave(len(idx)), reduction="none").reshape(K, -1)
        w = other.sum(dim=1).clamp_min(1.0)
        l1 = m.sum(dim=1)
        loss = ((ce * other).sum(dim=1) / w + cost * l1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            hits += ((logits.argmax(dim=2) == target[:, None]).float() * other).sum(dim=1)
            seen += other.sum(dim=1)
            if (step + 1) % check_every == 0 or step == steps - 1:
                rate = (hits / seen.clamp_min(1.0)).numpy()
                ok = rate >= success
                norms = l1.detach().numpy().astype(np.float64)
                better = ok & (norms < best_norm)
                if better.any():
                    best_norm[better] = norms[better]
                    best_mask[better] = m.detach().numpy()[better]
                    best_pat[better] = p.detach().numpy()[better]
                okt = torch.as_tensor(ok)
                cost = torch.where(okt, cost * cost_factor, cost / cost_factor)
                hits.zero_()
                seen.zero_()
    reached = np.isfinite(best_norm)
    if not reached.all():
        with torch.no_grad():
            m = torch.sigmoid(a).numpy().astype(np.float64)
            p = (lo + (hi - lo) * torch.sigmoid(b)).numpy().astype(np.float64)
        best_mask[~reached], best_pat[~reached] = m[~reached], p[~reached]
        best_norm[~reached] = m[~reached].sum(axis=1)
    return best_mask, best_pat, best_norm, reached


def _success(module: Any, xt: Any, pred: Any, masks: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """Per class, the share of clean rows (not predicted as that class) the stamped trigger sends there."""
    import torch  # lazy: torch is heavy and only the white-box path needs it

    shape = tuple(xt.shape[1:])
    flat = xt.reshape(len(xt), -1)
    out = np.zeros(len(masks))
    with torch.no_grad():
        for k in range(len(masks)):
            keep = pred != k
            if not bool(keep.any()):
                continue
            m = torch.as_tensor(masks[k], dtype=torch.float32)
            p = torch.as_tensor(patterns[k], dtype=torch.float32)
            xs = ((1 - m) * flat[keep] + m * p).reshape(-1, *shape)
            out[k] = float((module(xs).argmax(dim=1) == k).float().mean())
    return out
