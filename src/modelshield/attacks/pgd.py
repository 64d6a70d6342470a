"""PGD: projected gradient descent with random start and restarts (Madry et al., 2018)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from modelshield.attacks.base import (
    Attack,
    AttackContext,
    RawAttack,
    dlr_loss,
)
from modelshield.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["PGD"]

#: memory for the iterates a no-early-stop PGD run resolves together (see PGD._fixed_steps)
_CHUNK_BYTES = 64 * 2**20


@dataclass(kw_only=True)
class PGD(Attack):
    """Projected Gradient Descent in L-inf or L2, in per-feature ``scale`` units.

    ``threat.steps`` steps of size ``threat.alpha`` (default ``2.5 * eps / steps``) from a random
    point of the ball, projected onto the ball, the bounds and (in the forward pass) the integer
    grid. A sample's result is its first adversarial iterate (else its last iterate). With
    ``early_stop`` successful samples leave the batch (together, once they are an eighth of it, so
    the batch is compacted a few times rather than at every step), so the cost falls as the attack
    succeeds; ``restarts`` re-runs from new random starts only the samples that resisted.

    Parameters
    ----------
    random_start : start from a uniformly random point of the ball (else from ``x``).
    restarts : number of random restarts (only still-robust samples are restarted).
    loss : ``"ce"`` (cross-entropy) or ``"dlr"`` (difference of logits ratio).
    early_stop : stop attacking samples once they are adversarial.

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
        import torch  # lazy: torch is heavy; imported only where it runs

        if self.loss not in ("ce", "dlr"):
            raise UserError(f"unknown PGD loss {self.loss!r}; expected ce or dlr")
        proj = ctx.proj
        alpha = self.threat.alpha
        steps = self.threat.steps
        targeted = ctx.targeted
        n = len(x0)
        best = x0.clone()
        done = torch.zeros(n, dtype=torch.bool)
        queries = np.zeros(n, dtype=np.int64)
        linf = proj.norm == "inf"
        # L-inf step per feature (x-space); a scalar when every feature moves in raw units
        astep: float | torch.Tensor = alpha if proj.uniform else alpha * proj.scale * proj.mask
        # the loop reads the clean rows only to round integer features and for the L2 projection
        need_x0 = proj.has_integer or not linf
        restarts = max(1, self.restarts)
        for r in range(restarts):
            idx = torch.arange(n) if r == 0 else torch.nonzero(~done)[:, 0]
            if len(idx) == 0:
                break
            xs0, ys = (x0, y) if r == 0 else (x0.index_select(0, idx), y.index_select(0, idx))
            if linf:
                lo, hi = ctx.linf_bounds(xs0)  # shared with generate()'s final projection
                x = proj.random_start(xs0, ctx.gen, (lo, hi)) if self.random_start else xs0.clone()
            else:
                x = proj.random_start(xs0, ctx.gen) if self.random_start else xs0.clone()
            # The last restart's final iterate is returned unchecked: generate() predicts every
            # returned row anyway, so a forward pass here would be a duplicate.
            n_fwd = steps if r == restarts - 1 else steps + 1
            # Bookkeeping without a gather per step: a row's first adversarial iterate is
            # kept in ``first`` (one ``where``); rows that succeeded stay in the batch until they
            # are worth a compaction (an eighth of it), which gathers the rest once.
            if not self.early_stop:  # equal work on every row: the per-step bookkeeping is batched
                xr, seen, n_done = self._fixed_steps(ctx, x, xs0 if need_x0 else None, ys, n_fwd, steps, astep,
                                                     (lo, hi) if linf else None, alpha)
                self._finish(best, done, queries, idx, xr, n_done, seen)
                continue
            seen = torch.zeros(len(idx), dtype=torch.bool)
            first = x
            n_seen = 0
            for step in range(n_fwd):
                xa = x.detach().requires_grad_(True)
                logits = ctx.logits(xa, xs0 if need_x0 else None)
                adv = ctx.is_adv(logits.detach().argmax(1), ys)
                new = adv > seen  # adversarial for the first time
                first = torch.where(new[:, None], xa.detach(), first)
                seen = seen | adv
                if self.early_stop:
                    n_seen = int(seen.sum())
                    if n_seen == len(idx):
                        break
                if step == steps:
                    break
                if self.loss == "ce":
                    total = torch.nn.functional.cross_entropy(logits, ys, reduction="sum")
                    if targeted:
                        total = -total
                else:
                    total = dlr_loss(logits, ys, targeted).sum()
                (grad,) = torch.autograd.grad(total, xa)
                with torch.no_grad():
                    if linf:
                        xn = torch.add(xa.detach(), grad.sign_(), alpha=astep) if proj.uniform else \
                            xa.detach() + grad.sign_() * astep
                        x = xn.clamp_(lo, hi)
                    else:
                        x = proj.project(xa.detach() + alpha * proj.ascent(grad), xs0)
                if n_seen and n_seen * 8 >= len(idx):  # compact: finished rows leave the batch
                    fin = torch.nonzero(seen)[:, 0]
                    self._finish(best, done, queries, idx.index_select(0, fin), first.index_select(0, fin), step + 1)
                    keep = torch.nonzero(~seen)[:, 0]
                    x, ys, idx = x.index_select(0, keep), ys.index_select(0, keep), idx.index_select(0, keep)
                    if linf:
                        lo, hi = lo.index_select(0, keep), hi.index_select(0, keep)
                    if need_x0:
                        xs0 = xs0.index_select(0, keep)
                    seen = torch.zeros(len(idx), dtype=torch.bool)
                    first = x
                    n_seen = 0
            # rows still in the batch took part in every forward of this restart; the unchecked
            # final iterate is the result of those that never succeeded
            self._finish(best, done, queries, idx, torch.where(seen[:, None], first, x), step + 1, seen)
        return RawAttack(x_adv=best, queries=queries)

    def _fixed_steps(self, ctx: AttackContext, x: torch.Tensor, xs0: torch.Tensor | None, ys: torch.Tensor,
                     n_fwd: int, steps: int, astep: float | torch.Tensor,
                     box: tuple[torch.Tensor, torch.Tensor] | None,
                     alpha: float) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``n_fwd`` forward passes (``steps`` gradient steps) on every row, without early stop.

        The result is the same as the early-stop loop's bookkeeping (a row's first adversarial iterate,
        else its last iterate), but the per-step checks (argmax, compare, select) are made once per chunk
        of iterates: the loop keeps references to the iterates and their logits (no copies: each step
        makes new tensors) and resolves them together, at most ``_CHUNK_BYTES`` of them at a time.
        Returns ``(result rows, adversarial flags, forward passes)``."""
        import torch  # lazy: torch is heavy; imported only where it runs

        proj = ctx.proj
        n = len(x)
        seen = torch.zeros(n, dtype=torch.bool)
        first = x0 = x
        iterates: list[torch.Tensor] = []
        logits_k: list[torch.Tensor] = []
        per_step = max(1, x[0].numel() + ctx.n_classes) * 4 * max(1, n)
        chunk = max(1, _CHUNK_BYTES // per_step)

        def resolve(first: torch.Tensor, seen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            with torch.no_grad():
                adv = ctx.is_adv(torch.stack(logits_k).argmax(2), ys)  # (k, n)
                adv &= ~seen  # adversarial for the first time in this chunk
                hit = adv.any(0)
                if bool(hit.any()):
                    rows = torch.nonzero(hit)[:, 0]
                    at = adv.index_select(1, rows).byte().argmax(0)  # first step (argmax: first max)
                    first = first.clone() if first is x0 else first
                    # rows grouped by the step they were first adversarial at: one gather per such step
                    # (no copy of the whole chunk of iterates)
                    order = torch.argsort(at, stable=True)
                    counts = torch.bincount(at, minlength=len(iterates)).tolist()
                    for s, part in zip(range(len(iterates)), rows.index_select(0, order).split(counts)):
                        if len(part):
                            first.index_copy_(0, part, iterates[s].index_select(0, part))
                    seen = seen | hit
            iterates.clear()
            logits_k.clear()
            return first, seen

        step = 0
        for step in range(n_fwd):
            xa = x.detach().requires_grad_(True)
            logits = ctx.logits(xa, xs0)
            iterates.append(xa.detach())
            logits_k.append(logits.detach())
            if step == steps:
                break
            if self.loss == "ce":
                total = torch.nn.functional.cross_entropy(logits, ys, reduction="sum")
                if ctx.targeted:
                    total = -total
            else:
                total = dlr_loss(logits, ys, ctx.targeted).sum()
            (grad,) = torch.autograd.grad(total, xa)
            with torch.no_grad():
                if box is not None:
                    xn = torch.add(xa.detach(), grad.sign_(), alpha=astep) if proj.uniform else \
                        xa.detach() + grad.sign_() * astep
                    x = xn.clamp_(*box)
                else:
                    x = proj.project(xa.detach() + alpha * proj.ascent(grad), xs0)
            if len(iterates) >= chunk:
                first, seen = resolve(first, seen)
        if iterates:
            first, seen = resolve(first, seen)
        return torch.where(seen[:, None], first, x), seen, step + 1

    @staticmethod
    def _finish(best: torch.Tensor, done: torch.Tensor, queries: np.ndarray, rows: torch.Tensor,
                x: torch.Tensor, n_fwd: int, success: torch.Tensor | None = None) -> None:
        """Rows leave the batch: their result, success flag and forward passes."""
        best.index_copy_(0, rows, x)
        if success is None:
            done.index_fill_(0, rows, True)
        else:
            done.index_copy_(0, rows, success)
        queries[rows.numpy()] += n_fwd
