"""PGD: projected gradient descent with random start and restarts (Madry et al., 2018)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from modelshield.checks.robustness.attacks.base import (
    Attack,
    AttackContext,
    RawAttack,
    ce_loss,
    dlr_loss,
)
from modelshield.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["PGD"]


@dataclass(kw_only=True)
class PGD(Attack):
    """Projected Gradient Descent in L-inf or L2, in per-feature ``scale`` units.

    ``threat.steps`` steps of size ``threat.alpha`` (default ``2.5 * eps / steps``) from a random
    point of the ball, projected onto the ball, the bounds and (in the forward pass) the integer
    grid. With ``early_stop`` a sample leaves the batch at its first adversarial iterate, so the
    cost falls as the attack succeeds; ``restarts`` re-runs from new random starts only the samples
    that resisted.

    Parameters
    ----------
    random_start : start from a uniformly random point of the ball (else from ``x``).
    restarts : number of random restarts (only still-robust samples are restarted).
    loss : ``"ce"`` (cross-entropy) or ``"dlr"`` (difference of logits ratio).
    early_stop : stop attacking a sample once it is adversarial.

    References
    ----------
    Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to
    Adversarial Attacks", ICLR 2018. https://arxiv.org/abs/1706.06083

    Examples
    --------
    >>> pgd = PGD(threat=ThreatModel(norm="inf", eps=0.1, steps=20))    # doctest: +SKIP
    >>> pgd.generate(model, X, y).robust_accuracy                        # doctest: +SKIP
    """

    name: ClassVar[str] = "pgd"

    random_start: bool = True
    restarts: int = 1
    loss: str = "ce"
    early_stop: bool = True

    def _attack(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, budget: int) -> RawAttack:
        import torch

        if self.loss not in ("ce", "dlr"):
            raise UserError(f"unknown PGD loss {self.loss!r}; expected ce or dlr")
        lossfn = ce_loss if self.loss == "ce" else dlr_loss
        proj = ctx.proj
        alpha = self.threat.alpha
        steps = self.threat.steps
        n = len(x0)
        best = x0.clone()
        done = torch.zeros(n, dtype=torch.bool)
        queries = np.zeros(n, dtype=np.int64)
        linf = proj.norm == "inf"
        astep = alpha * proj.scale * proj.mask  # L-inf step per feature (x-space)
        for _ in range(max(1, self.restarts)):
            idx = torch.nonzero(~done)[:, 0]
            if len(idx) == 0:
                break
            xs0, ys = x0[idx], y[idx]
            if linf:
                lo, hi = proj.linf_bounds(xs0)
            x = proj.random_start(xs0, ctx.gen) if self.random_start else xs0.clone()
            act = torch.arange(len(idx))
            full = True  # no sample has left the batch yet: skip the gathers
            for step in range(steps + 1):
                xa = (x if full else x[act]).detach().requires_grad_(True)
                xb0 = xs0 if full else xs0[act]
                yb = ys if full else ys[act]
                logits = ctx.logits(xa, xb0)
                queries[idx[act].numpy()] += 1
                adv = ctx.is_adv(logits.detach().argmax(1), yb)
                any_adv = bool(adv.any())
                if any_adv:
                    hit = idx[act[adv]]
                    best[hit] = xa.detach()[adv]
                    done[hit] = True
                if step == steps:
                    break
                (grad,) = torch.autograd.grad(lossfn(logits, yb, ctx.targeted).sum(), xa)
                with torch.no_grad():
                    if linf:
                        xn = torch.clamp(xa.detach() + grad.sign() * astep, lo if full else lo[act],
                                         hi if full else hi[act])
                    else:
                        xn = proj.project(xa.detach() + alpha * proj.ascent(grad), xb0)
                if full:
                    x = xn
                else:
                    x[act] = xn
                if self.early_stop and any_adv:
                    if full:
                        x = x.clone()
                    act = act[~adv]
                    full = False
                    if len(act) == 0:
                        break
            left = ~done[idx]
            best[idx[left]] = x[left]
        return RawAttack(x_adv=best, queries=queries)
