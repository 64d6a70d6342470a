"""HopSkipJump: decision-based black-box attack (Chen, Jordan & Wainwright, 2020)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from modelshield.checks.robustness.attacks.base import Attack, AttackContext, RawAttack

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

    def _phi(self, ctx: AttackContext, x: torch.Tensor, x0: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ctx.is_adv(ctx.labels(x, x0), y)

    def _init(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, q: np.ndarray
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Adversarial starting points: nearest other-class rows of the batch and random rows."""
        import torch

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
        dist = proj.dist((proj.finalize(proj.box(flat, x0r), x0r) - x0r)).reshape(n, k)
        dist = torch.where(adv, dist, torch.full_like(dist, float("inf")))
        best = dist.argmin(1)
        found = torch.isfinite(dist.gather(1, best[:, None])[:, 0])
        start = proj.box(c[torch.arange(n), best], x0)
        return torch.where(found[:, None], start, x0), found

    def _bsearch(self, ctx: AttackContext, x_adv: torch.Tensor, x0: torch.Tensor, y: torch.Tensor,
                 steps: int, q: np.ndarray, act: torch.Tensor) -> torch.Tensor:
        """Binary search toward ``x0`` keeping the adversarial side (radial for L2, box for L-inf)."""
        import torch

        proj = ctx.proj
        m = len(x0)
        dist = proj.dist(x_adv - x0)
        lo = torch.zeros(m, dtype=x0.dtype)
        hi = torch.ones(m, dtype=x0.dtype)
        for _ in range(steps):
            mid = (lo + hi) / 2
            xm = proj.ball(x_adv, x0, mid * dist)
            adv = self._phi(ctx, xm, x0, y)
            q[act.numpy()] += 1
            hi = torch.where(adv, mid, hi)
            lo = torch.where(adv, lo, mid)
        return proj.ball(x_adv, x0, hi * dist)

    def _attack(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, budget: int) -> RawAttack:
        import torch

        proj = ctx.proj
        n, _ = x0.shape
        dm = max(proj.n_mutable, 1)
        q = np.zeros(n, dtype=np.int64)
        theta = self.gamma / (dm ** 1.5 if proj.norm == "2" else dm**2)
        bs_steps = int(min(self.max_bs_steps, max(4, math.ceil(math.log2(1 / theta)))))
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
            room = budget - q - bs_steps - self.geom_steps
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
            # geometric step search: halve until the jump lands on the adversarial side
            step = dist / math.sqrt(t)
            pending = torch.ones(m, dtype=torch.bool)
            xn = xa.clone()
            for _ in range(self.geom_steps):
                pi = torch.nonzero(pending)[:, 0]
                if len(pi) == 0:
                    break
                cand = proj.box(xa[pi] + step[pi, None] * upd[pi], xs0[pi])
                ok = self._phi(ctx, cand, xs0[pi], ys[pi])
                q[act[pi].numpy()] += 1
                xn[pi[ok]] = cand[ok]
                pending[pi[ok]] = False
                step[pi[~ok]] /= 2
            xn = self._bsearch(ctx, xn, xs0, ys, bs_steps, q, act)
            x[act] = xn
            xf = proj.finalize(xn, xs0)
            dn = proj.dist(xf - xs0)
            imp = dn < best_d[act]
            best_d[act[imp]] = dn[imp]
            best_x[act[imp]] = xf[imp]
        return RawAttack(x_adv=best_x, queries=q, min_distance=best_d.numpy())
