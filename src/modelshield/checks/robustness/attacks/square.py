"""Square Attack: score-based black-box random search (Andriushchenko et al., 2020)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from modelshield.checks.robustness.attacks.base import Attack, AttackContext, RawAttack

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Square"]

#: (fraction of the 10,000-query schedule, divisor of p_init), from the paper's schedule.
_SCHEDULE = ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128),
             (8000, 256))


def _p_at(it: int, budget: int, p_init: float) -> float:
    t = int(it / max(budget, 1) * 10000)
    for limit, div in _SCHEDULE:
        if t <= limit:
            return p_init / div
    return p_init / 512


@dataclass(kw_only=True)
class Square(Attack):
    """Square Attack (L-inf): random search that only reads the model's scores.

    Starts from vertical stripes of ``+-eps`` (images) or a random ``+-eps`` corner of the box
    (tabular rows), then at each iteration redraws ``+-eps`` on a random square window (images) or
    a random subset of features (tabular), keeping the change where the margin loss
    ``log p_y - max_{j != y} log p_j`` decreases. The window shrinks on the paper's schedule. All
    still-robust samples are queried together, one batch per iteration; a sample stops at its first
    success or when its query budget is spent.

    Parameters
    ----------
    p_init : initial fraction of pixels (features) changed per iteration.

    References
    ----------
    Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box
    adversarial attack via random search", ECCV 2020. https://arxiv.org/abs/1912.00049

    Examples
    --------
    >>> Square(threat=ThreatModel(eps=0.3, query_budget=500)).generate(model, X, y)  # doctest: +SKIP
    """

    name: ClassVar[str] = "square"
    white_box: ClassVar[bool] = False
    norms: ClassVar[tuple[str, ...]] = ("inf",)

    p_init: float = 0.8

    def _margin(self, ctx: AttackContext, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        import torch

        logp = torch.log(p.clamp_min(1e-30))
        ly = logp.gather(1, y[:, None])[:, 0]
        other = logp.scatter(1, y[:, None], float("-inf")).amax(1)
        return other - ly if ctx.targeted else ly - other

    def _attack(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, budget: int) -> RawAttack:
        import torch

        proj = ctx.proj
        n, d = x0.shape
        eps = self.threat.eps
        gen = ctx.gen
        unit = proj.scale * proj.mask  # one eps step per feature, x-space
        shape = ctx.shape
        spatial = len(shape) in (2, 3) and min(shape[-2:]) > 1
        if spatial:
            c, h, w = (1, *shape) if len(shape) == 2 else shape

        def rsign(*size: int) -> torch.Tensor:
            return torch.randint(0, 2, size, generator=gen, dtype=torch.int64).to(x0.dtype) * 2 - 1

        if spatial:
            delta = (rsign(n, c, 1, w) * torch.ones((n, c, h, w), dtype=x0.dtype)).reshape(n, d)
        else:
            delta = rsign(n, d)
        x = proj.project(x0 + eps * delta * unit, x0)
        queries = np.ones(n, dtype=np.int64)
        p = ctx.proba(x, x0)
        margin = self._margin(ctx, p, y)
        done = ctx.is_adv(p.argmax(1), y)
        n_mut = max(proj.n_mutable, 1)
        for it in range(1, budget):
            act = torch.nonzero(~done)[:, 0]
            if len(act) == 0:
                break
            m = len(act)
            frac = _p_at(it, budget, self.p_init)
            xa, xs0 = x[act], x0[act]
            cur = (xa - xs0) / proj.scale
            if spatial:
                s = int(min(max(round(np.sqrt(frac * h * w)), 1), h - 1, w - 1)) or 1
                r = torch.randint(0, h - s + 1, (m,), generator=gen)
                cc = torch.randint(0, w - s + 1, (m,), generator=gen)
                rows, cols = torch.arange(h), torch.arange(w)
                mr = (rows[None] >= r[:, None]) & (rows[None] < r[:, None] + s)
                mc = (cols[None] >= cc[:, None]) & (cols[None] < cc[:, None] + s)
                win = (mr[:, None, :, None] & mc[:, None, None, :]).expand(m, c, h, w).reshape(m, d)
                new = (rsign(m, c, 1, 1) * torch.ones((m, c, h, w), dtype=x0.dtype)).reshape(m, d)
            else:
                kf = max(round(frac * n_mut), 1)
                score = torch.rand((m, d), generator=gen, dtype=x0.dtype) - (1 - proj.mask) * 2
                top = score.topk(kf, dim=1).indices
                win = torch.zeros((m, d), dtype=torch.bool).scatter_(1, top, True)
                new = rsign(m, d)
            cand = torch.where(win, eps * new, cur)
            xc = proj.project(xs0 + cand * proj.scale * proj.mask, xs0)
            pc = ctx.proba(xc, xs0)
            queries[act.numpy()] += 1
            mc_ = self._margin(ctx, pc, y[act])
            better = mc_ < margin[act]
            keep = act[better]
            x[keep] = xc[better]
            margin[keep] = mc_[better]
            adv = ctx.is_adv(pc.argmax(1), y[act]) & better
            done[act[adv]] = True
        return RawAttack(x_adv=x, queries=queries)
