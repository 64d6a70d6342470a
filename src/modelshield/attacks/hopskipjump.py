"""HopSkipJump: decision-based black-box attack (Chen, Jordan & Wainwright, 2020)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from modelshield.attacks.base import Attack, AttackContext, RawAttack

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["HopSkipJump"]


@dataclass(kw_only=True)
class HopSkipJump(Attack):
    """HopSkipJump (L2 or L-inf): needs only the predicted label.

    A minimum-norm attack: it starts from an adversarial point (the nearest differently-labelled
    row of the batch with the immutable features put back, or a random valid row), walks it to the
    decision boundary by binary search, then repeats: estimate the boundary's normal from the
    labels of ``init_evals * sqrt(t)`` random probes, jump along it with a geometrically shrinking
    step, and binary-search back to the boundary. Every step is one batched query for *all* active
    samples (the probes of all samples go in a single call). A sample stops once its distance is
    within ``threat.eps`` or its query budget would be exceeded; ``min_distance`` in the result
    holds the smallest adversarial distance found, so one run gives the whole robust-accuracy-vs-eps
    curve.

    Parameters
    ----------
    max_iter : most boundary iterations.
    init_evals, max_evals : probes per gradient estimate (growing as ``init_evals * sqrt(t)``).
    gamma : binary-search tolerance parameter (``theta = gamma / d^1.5`` for L2, ``/ d^2`` for L-inf).
    max_bs_steps : cap on binary-search steps.
    n_init : candidate starting points tried per sample.
    stop_at_eps : stop a sample as soon as it is adversarial within ``threat.eps``.
    search_points : points probed per call in the binary and geometric searches. ``1`` is the
        classic, most query-efficient search; ``4`` or ``8`` spend more queries per iteration but
        need far fewer model calls, which wins when each call has a fixed cost (tree ensembles,
        remote endpoints).

    References
    ----------
    Chen, Jordan & Wainwright, "HopSkipJumpAttack: A Query-Efficient Decision-Based Attack",
    IEEE S&P 2020. https://arxiv.org/abs/1904.02144

    Examples
    --------
    >>> HopSkipJump(threat=ThreatModel(norm="2", eps=1.0, query_budget=2000)).generate(m, X, y)  # doctest: +SKIP
    """

    name: ClassVar[str] = "hsj"
    white_box: ClassVar[bool] = False
    minimum_norm: ClassVar[bool] = True

    max_iter: int = 40
    init_evals: int = 50
    max_evals: int = 1000
    gamma: float = 1.0
    max_bs_steps: int = 12
    geom_steps: int = 8
    n_init: int = 12
    stop_at_eps: bool = True
    search_points: int = 1

    def _phi(self, ctx: AttackContext, x: torch.Tensor, x0: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ctx.is_adv(ctx.labels(x, x0), y)

    def _init(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, q: np.ndarray
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Adversarial starting points: nearest other-class rows of the batch and random rows."""
        import torch  # lazy: torch is heavy; imported only where it runs

        proj = ctx.proj
        n, d = x0.shape
        k = max(self.n_init, 2)
        cands = []
        if not ctx.targeted and n > 1:
            z = x0 / proj.scale * proj.mask
            dm = torch.cdist(z, z, p=float("inf") if proj.norm == "inf" else 2.0)
            dm[y[:, None] == y[None, :]] = float("inf")
            kp = min(k // 2, n - 1)
            near = dm.topk(kp, dim=1, largest=False)
            valid = torch.isfinite(near.values)
            pool = x0[near.indices]  # (n, kp, d)
            pool = torch.where(valid[..., None], pool, x0[:, None, :])
            cands.append(pool)
        kr = k - (cands[0].shape[1] if cands else 0)
        lo = proj.lower if proj.lower is not None else None
        hi = proj.upper if proj.upper is not None else None
        u = torch.rand((n, kr, d), generator=ctx.gen, dtype=x0.dtype)
        if lo is not None and hi is not None:
            rnd = lo + u * (hi - lo)
        else:
            rnd = x0[:, None, :] + (u * 2 - 1) * 4 * proj.scale
        cands.append(rnd)
        c = torch.cat(cands, dim=1)  # (n, k, d)
        k = c.shape[1]
        c = torch.where(proj.mask.bool(), c, x0[:, None, :])
        flat = c.reshape(n * k, d)
        x0r = x0.repeat_interleave(k, 0)
        adv = self._phi(ctx, proj.box(flat, x0r), x0r, y.repeat_interleave(k)).reshape(n, k)
        q += k
        dist = proj.dist(proj.finalize(proj.box(flat, x0r), x0r) - x0r).reshape(n, k)
        dist = torch.where(adv, dist, torch.full_like(dist, float("inf")))
        best = dist.argmin(1)
        found = torch.isfinite(dist.gather(1, best[:, None])[:, 0])
        start = proj.box(c[torch.arange(n), best], x0)
        return torch.where(found[:, None], start, x0), found

    def _bsearch(self, ctx: AttackContext, x_adv: torch.Tensor, x0: torch.Tensor, y: torch.Tensor,
                 steps: int, q: np.ndarray, act: torch.Tensor) -> torch.Tensor:
        """Search toward ``x0`` keeping the adversarial side (radial for L2, box for L-inf).

        With ``search_points = k > 1`` each call probes ``k`` points of the interval at once
        (a ``k+1``-ary search): fewer, wider model calls for the same precision.
        """
        import torch  # lazy: torch is heavy; imported only where it runs

        proj = ctx.proj
        m = len(x0)
        k = max(1, int(self.search_points))
        dist = proj.dist(x_adv - x0)
        lo = torch.zeros(m, dtype=x0.dtype)
        hi = torch.ones(m, dtype=x0.dtype)
        rounds = steps if k == 1 else math.ceil(steps * math.log(2) / math.log(k + 1))
        frac = torch.arange(1, k + 1, dtype=x0.dtype) / (k + 1)  # (k,)
        for _ in range(rounds):
            t = lo[:, None] + (hi - lo)[:, None] * frac[None, :]  # (m, k)
            pts = proj.ball(x_adv.repeat_interleave(k, 0), x0.repeat_interleave(k, 0), (t * dist[:, None]).reshape(-1))
            adv = self._phi(ctx, pts, x0.repeat_interleave(k, 0), y.repeat_interleave(k)).reshape(m, k)
            q[act.numpy()] += k
            # the first adversarial point bounds the boundary from above, the point before it from below
            first = torch.where(adv.any(1), adv.float().argmax(1), torch.full((m,), k, dtype=torch.long))
            tpad = torch.cat([lo[:, None], t, hi[:, None]], dim=1)  # (m, k+2)
            new_hi = tpad.gather(1, (first + 1)[:, None])[:, 0]
            new_lo = tpad.gather(1, first[:, None])[:, 0]
            lo, hi = new_lo, new_hi
        return proj.ball(x_adv, x0, hi * dist)

    def _geometric(self, ctx: AttackContext, xa: torch.Tensor, xs0: torch.Tensor, ys: torch.Tensor,
                   upd: torch.Tensor, step: torch.Tensor, q: np.ndarray, act: torch.Tensor) -> torch.Tensor:
        """Jump along ``upd`` with the largest of ``step, step/2, step/4, ...`` that stays adversarial
        (kept in place where none does). One call per halving, or one call in all when
        ``search_points > 1``."""
        import torch  # lazy: torch is heavy; imported only where it runs

        proj = ctx.proj
        m, d = xa.shape
        xn = xa.clone()
        g = self.geom_steps
        if self.search_points > 1:
            scales = 0.5 ** torch.arange(g, dtype=xa.dtype)  # (g,)
            cand = xa[:, None, :] + (step[:, None] * scales[None, :])[..., None] * upd[:, None, :]
            base = xs0.repeat_interleave(g, 0)
            cand = proj.box(cand.reshape(m * g, d), base)
            ok = self._phi(ctx, cand, base, ys.repeat_interleave(g)).reshape(m, g)
            q[act.numpy()] += g
            first = ok.float().argmax(1)
            take = ok.any(1)
            xn[take] = cand.reshape(m, g, d)[torch.arange(m), first][take]
            return xn
        pending = torch.ones(m, dtype=torch.bool)
        step = step.clone()
        for _ in range(g):
            pi = torch.nonzero(pending)[:, 0]
            if len(pi) == 0:
                break
            cand = proj.box(xa[pi] + step[pi, None] * upd[pi], xs0[pi])
            ok = self._phi(ctx, cand, xs0[pi], ys[pi])
            q[act[pi].numpy()] += 1
            xn[pi[ok]] = cand[ok]
            pending[pi[ok]] = False
            step[pi[~ok]] /= 2
        return xn

    def _attack(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, budget: int) -> RawAttack:
        import torch  # lazy: torch is heavy; imported only where it runs

        proj = ctx.proj
        n, _ = x0.shape
        dm = max(proj.n_mutable, 1)
        q = np.zeros(n, dtype=np.int64)
        theta = self.gamma / (dm ** 1.5 if proj.norm == "2" else dm**2)
        bs_steps = int(min(self.max_bs_steps, max(4, math.ceil(math.log2(1 / theta)))))
        k = max(1, int(self.search_points))
        bs_cost = bs_steps if k == 1 else k * math.ceil(bs_steps * math.log(2) / math.log(k + 1))
        x, found = self._init(ctx, x0, y, q)
        allidx = torch.arange(n)
        fi = allidx[found]
        if len(fi):
            x[fi] = self._bsearch(ctx, x[fi], x0[fi], y[fi], bs_steps, q, fi)
        xf = proj.finalize(x, x0)
        best_d = torch.where(found, proj.dist(xf - x0), torch.full((n,), float("inf"), dtype=x0.dtype))
        best_x = xf.clone()
        eps = self.threat.eps
        for t in range(1, self.max_iter + 1):
            alive = found & torch.as_tensor(q < budget)
            if self.stop_at_eps:
                alive &= best_d > eps
            evals = int(min(self.init_evals * math.sqrt(t), self.max_evals))
            room = budget - q - bs_cost - self.geom_steps
            alive &= torch.as_tensor(room >= max(4, min(evals, self.init_evals) // 2))
            act = allidx[alive]
            if len(act) == 0:
                break
            evals = int(min(evals, int(room[act.numpy()].min())))
            xa, xs0, ys = x[act], x0[act], y[act]
            m, d = xa.shape
            dist = proj.dist(xa - xs0)
            delta = (math.sqrt(dm) if proj.norm == "2" else dm) * theta * dist
            # gradient estimate at the boundary: one batch of m * evals probes
            if proj.norm == "2":
                rv = torch.randn((m, evals, d), generator=ctx.gen, dtype=x0.dtype)
            else:
                rv = torch.rand((m, evals, d), generator=ctx.gen, dtype=x0.dtype) * 2 - 1
            rv = rv * proj.mask
            rv = rv / rv.norm(dim=2, keepdim=True).clamp_min(1e-12)
            probe = xa[:, None, :] + delta[:, None, None] * rv * proj.scale
            base0 = xs0.repeat_interleave(evals, 0)
            probe = proj.box(probe.reshape(m * evals, d), base0)
            rv = ((probe.reshape(m, evals, d) - xa[:, None, :]) / proj.scale) / delta[:, None, None].clamp_min(1e-12)
            phi = self._phi(ctx, probe, base0, ys.repeat_interleave(evals)).reshape(m, evals)
            q[act.numpy()] += evals
            f = phi.to(x0.dtype) * 2 - 1
            fm = f.mean(1, keepdim=True)
            uniform = fm.abs() == 1
            g = torch.where(uniform[..., None], fm[..., None] * rv, (f - fm)[..., None] * rv).mean(1)
            g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
            upd = (g.sign() if proj.norm == "inf" else g) * proj.scale
            # geometric step search: the largest of step, step/2, ... that lands adversarial
            xn = self._geometric(ctx, xa, xs0, ys, upd, dist / math.sqrt(t), q, act)
            xn = self._bsearch(ctx, xn, xs0, ys, bs_steps, q, act)
            x[act] = xn
            xf = proj.finalize(xn, xs0)
            dn = proj.dist(xf - xs0)
            imp = dn < best_d[act]
            best_d[act[imp]] = dn[imp]
            best_x[act[imp]] = xf[imp]
        return RawAttack(x_adv=best_x, queries=q, min_distance=best_d.numpy())
