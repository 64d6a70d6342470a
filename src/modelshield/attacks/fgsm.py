"""FGSM: one signed-gradient step (Goodfellow et al., 2015)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from modelshield.attacks.base import Attack, AttackContext, RawAttack, ce_loss

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["FGSM"]


@dataclass(kw_only=True)
class FGSM(Attack):
    """Fast Gradient Sign Method: ``x + eps * sign(grad_x CE)`` (L-inf), or the normalised
    gradient for L2, projected onto the threat model. White-box; one forward and backward pass.

    Distance: ``threat.norm`` in ``threat.scale`` units. Inputs ``(n, *shape)``; labels ``(n,)``.

    References
    ----------
    Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015.
    https://arxiv.org/abs/1412.6572

    Examples
    --------
    >>> res = FGSM(threat=ThreatModel(eps=0.1)).generate(model, X, y)   # doctest: +SKIP
    >>> res.robust_accuracy                                             # doctest: +SKIP
    """

    name: ClassVar[str] = "fgsm"

    def _attack(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, budget: int) -> RawAttack:
        import torch  # lazy: torch is heavy; imported only where it runs

        x = x0.clone().requires_grad_(True)
        loss = ce_loss(ctx.logits(x, x0), y, ctx.targeted).sum()
        (grad,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            x_adv = ctx.proj.project(x0 + self.threat.eps * ctx.proj.ascent(grad), x0)
        return RawAttack(x_adv=x_adv, queries=np.ones(len(x0), dtype=np.int64))
