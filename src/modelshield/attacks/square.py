"""Square Attack: score-based black-box random search (Andriushchenko et al., 2020)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from modelshield.attacks.base import Attack, AttackContext, RawAttack

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
    torch_float32: ClassVar[bool] = True

    p_init: float = 0.8

    #: the largest window table (positions x pixels) precomputed per window size; larger images
    #: build each window from a row and a column mask instead
    table_limit: ClassVar[int] = 1 << 22

    def _attack(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, budget: int) -> RawAttack:
        import torch  # lazy: torch is heavy; imported only where it runs

        with torch.no_grad():
            return self._search(ctx, x0, y, budget)

    def _search(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, budget: int) -> RawAttack:
        import torch  # lazy: torch is heavy; imported only where it runs

        proj = ctx.proj
        n, d = x0.shape
        eps = self.threat.eps
        gen = ctx.gen
        dt = x0.dtype
        unit = proj.scale * proj.mask  # one eps step per feature, x-space
        shape = ctx.shape
        spatial = len(shape) in (2, 3) and min(shape[-2:]) > 1
        c, h, w = ((1, *shape) if len(shape) == 2 else shape) if spatial else (1, 1, d)
        hw = h * w
        module, model, targeted = ctx.module, ctx.model, ctx.targeted
        rounds = not proj.all_mutable or proj.has_integer  # queries need finalize (and x0)

        def margins(xq: torch.Tensor, xq0: torch.Tensor, ycol: torch.Tensor, ymask: torch.Tensor) -> torch.Tensor:
            """One query per row: ``score_y - max_{j != y} score_j`` (negated when targeted) as an
            ``(m, 1)`` column, from the logits of a torch module (log-softmax cancels) or the
            log-probabilities."""
            xf = proj.finalize(xq, xq0) if rounds else xq
            if module is not None:
                z = module(xf.view((len(xq), *shape)))
                if z.dtype != dt:
                    z = z.to(dt)
            else:
                p = model.predict_proba(xf.numpy().reshape((len(xq), *shape)))
                z = torch.log(torch.as_tensor(p, dtype=dt).clamp_min(1e-30))
            zy = z.gather(1, ycol)
            other = (z + ymask).amax(1, keepdim=True)
            return other - zy if targeted else zy - other

        def rsign(*size: int) -> torch.Tensor:
            return torch.randint(0, 2, size, generator=gen, dtype=torch.int64).to(dt) * 2 - 1

        lo, hi = ctx.linf_bounds(x0)  # shared with generate()'s final projection
        if spatial:
            delta = (rsign(n, c, 1, w) * torch.ones((n, c, h, w), dtype=dt)).reshape(n, d)
        else:
            delta = rsign(n, d)
        x = torch.clamp(x0 + eps * delta * unit, lo, hi)
        # A feature only ever takes one of two values, x0 +- eps clipped to the feasible box: both
        # are precomputed, so a candidate is two ``where`` and needs no projection.
        up = torch.clamp(x0 + eps * unit, lo, hi)
        down = torch.clamp(x0 - eps * unit, lo, hi)
        # State of the still-robust rows, compacted only when some of them succeed.
        idx, xs0, ys = torch.arange(n), x0, y[:, None]
        ymask = torch.zeros((n, ctx.n_classes), dtype=dt).scatter_(1, ys, float("-inf"))
        margin = margins(x, xs0, ys, ymask)
        best = x0.clone()
        queries = np.zeros(n, dtype=np.int64)
        n_mut = max(proj.n_mutable, 1)
        neg_immutable = None if proj.all_mutable else (1 - proj.mask) * 2
        tables: dict[int, Any] = {}
        # the schedule, once: window side (images) or features changed (tabular) per iteration
        fracs = [_p_at(i, budget, self.p_init) for i in range(budget)]
        if spatial:
            size = [int(min(max(round(math.sqrt(f * hw)), 1), h - 1, w - 1)) or 1 for f in fracs]
        else:
            size = [max(round(f * n_mut), 1) for f in fracs]
        it = 0
        while True:
            last = it == budget - 1
            if last or float(margin.min()) < 0:
                # rows leave: their point and the queries they spent (the first one included)
                out = torch.ones_like(margin, dtype=torch.bool) if last else margin < 0
                fin = torch.nonzero(out[:, 0])[:, 0]
                rows = idx.index_select(0, fin)
                best.index_copy_(0, rows, x.index_select(0, fin))
                queries[rows.numpy()] = it + 1
                if len(fin) == len(idx):
                    break
                keep = torch.nonzero(~out[:, 0])[:, 0]
                idx, x, up, down, ys, ymask, margin = (
                    t.index_select(0, keep) for t in (idx, x, up, down, ys, ymask, margin))
                if rounds:
                    xs0 = xs0.index_select(0, keep)
            it += 1
            m = len(idx)
            if spatial:
                sz = size[it]
                if sz not in tables:
                    tables[sz] = self._window_table(sz, h, w)
                win = _draw_windows(tables[sz], m, gen)
                sign = torch.randint(0, 2, (m, c), generator=gen, dtype=torch.bool)  # per window, channel
            else:
                kf = size[it]
                score = torch.rand((m, d), generator=gen, dtype=dt)
                if neg_immutable is not None:
                    score = score - neg_immutable
                top = score.topk(kf, dim=1).indices
                win = torch.zeros((m, d), dtype=torch.bool).scatter_(1, top, True)
                sign = torch.randint(0, 2, (m, d), generator=gen, dtype=torch.bool)
            if c == 1:  # (m, d) throughout: no views
                xc = torch.where(win, torch.where(sign, up, down), x)
            else:  # one window for every channel, one sign per channel
                new = torch.where(sign[:, :, None], up.view(m, c, hw), down.view(m, c, hw))
                xc = torch.where(win[:, None, :], new, x.view(m, c, hw)).view(m, d)
            mc = margins(xc, xs0, ys, ymask)
            better = mc < margin  # (m, 1): broadcasts over the features
            x = torch.where(better, xc, x)
            margin = torch.minimum(mc, margin)
        return RawAttack(x_adv=best, queries=queries)

    def _window_table(self, sz: int, h: int, w: int) -> tuple[int, int, Any, Any, Any]:
        """The ``sz x sz`` windows of an ``h x w`` image: row and column masks per position and,
        below ``table_limit``, the full ``(positions, h * w)`` mask table."""
        import torch  # lazy: torch is heavy; imported only where it runs

        nr, nc = h - sz + 1, w - sz + 1
        rows, cols = torch.arange(h), torch.arange(w)
        rm = (rows[None] >= torch.arange(nr)[:, None]) & (rows[None] < torch.arange(nr)[:, None] + sz)
        cm = (cols[None] >= torch.arange(nc)[:, None]) & (cols[None] < torch.arange(nc)[:, None] + sz)
        full = (rm[:, None, :, None] & cm[None, :, None, :]).reshape(nr * nc, h * w) \
            if nr * nc * h * w <= self.table_limit else None
        return nr, nc, rm, cm, full


def _draw_windows(table: tuple[int, int, Any, Any, Any], m: int, gen: Any) -> torch.Tensor:
    """``m`` random windows of one :meth:`Square._window_table` as ``(m, h * w)`` masks, uniformly
    over positions: what every spatial iteration of the search draws."""
    import torch  # lazy: torch is heavy; imported only where it runs

    nr, nc, rm, cm, full = table
    k = torch.randint(0, nr * nc, (m,), generator=gen)
    if full is not None:
        return full.index_select(0, k)
    return (rm.index_select(0, k // nc)[:, :, None] & cm.index_select(0, k % nc)[:, None, :]).reshape(
        m, rm.shape[1] * cm.shape[1])
