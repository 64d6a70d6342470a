"""APGD-CE and APGD-DLR: step-size-free PGD with momentum (Croce & Hein, 2020)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from modelshield.attacks.base import (
    Attack,
    AttackContext,
    RawAttack,
    ce_loss,
    dlr_loss,
)
from modelshield.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["APGD", "APGDTargeted"]


@dataclass(kw_only=True)
class APGD(Attack):
    """Auto-PGD: PGD whose per-sample step size starts at ``2 * eps`` and is halved at
    checkpoints when the loss stopped rising (fewer than ``rho`` of the steps since the last
    checkpoint improved it, or neither the step nor the best loss changed), restarting each halving
    from the best point; momentum ``0.75``. Needs no step-size tuning, which makes it the reliable
    core of an AutoAttack-style evaluation.

    ``threat.steps`` is the iteration budget (100 in the paper; 20-50 suffice on small models).
    Samples leave the batch at their first adversarial iterate, so the cost falls as it succeeds.

    Parameters
    ----------
    loss : ``"ce"`` (APGD-CE) or ``"dlr"`` (APGD-DLR, scale-invariant; with two classes it
        falls back to the logit margin).
    restarts : random restarts, only for the samples that resisted.
    rho : checkpoint threshold (fraction of improving steps).

    References
    ----------
    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020. https://arxiv.org/abs/2003.01690

    Examples
    --------
    >>> APGD(threat=ThreatModel(eps=0.1, steps=50), loss="dlr").generate(model, X, y)  # doctest: +SKIP
    """

    name: ClassVar[str] = "apgd"

    loss: str = "ce"
    restarts: int = 1
    rho: float = 0.75

    def __post_init__(self) -> None:
        if self.loss not in ("ce", "dlr"):
            raise UserError(f"unknown APGD loss {self.loss!r}; expected ce or dlr")

    @property
    def label(self) -> str:
        return f"apgd-{self.loss}"

    def _attack(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, budget: int) -> RawAttack:
        import torch  # lazy: torch is heavy; imported only where it runs

        n = len(x0)
        best_adv = x0.clone()
        done = torch.zeros(n, dtype=torch.bool)
        queries = np.zeros(n, dtype=np.int64)
        for _ in range(max(1, self.restarts)):
            idx = torch.nonzero(~done)[:, 0]
            if len(idx) == 0:
                break
            xa, ok, q = self._run(ctx, x0[idx], y[idx])
            queries[idx.numpy()] += q
            best_adv[idx[ok]] = xa[ok]
            done[idx[ok]] = True
        return RawAttack(x_adv=best_adv, queries=queries)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, aux: torch.Tensor | None,
              targeted: bool) -> torch.Tensor:
        """Per-sample loss to maximise (``aux``: per-sample extra labels, e.g. targets)."""
        return (ce_loss if self.loss == "ce" else dlr_loss)(logits, y, targeted)

    def _run(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, aux: torch.Tensor | None = None,
             group: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        import torch  # lazy: torch is heavy; imported only where it runs

        proj = ctx.proj
        n_iter = self.threat.steps
        eps = self.threat.eps
        n = len(x0)
        k = max(math.ceil(0.22 * n_iter), 1)
        k_min = max(math.ceil(0.06 * n_iter), 1)
        k_decr = max(math.ceil(0.03 * n_iter), 1)
        queries = np.zeros(n, dtype=np.int64)

        def eval_grad(x: torch.Tensor, xs0: torch.Tensor, ys: torch.Tensor, auxs: torch.Tensor | None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            x = x.clone().requires_grad_(True)
            logits = ctx.logits(x, xs0)
            loss = self._loss(logits, ys, auxs, ctx.targeted)
            (g,) = torch.autograd.grad(loss.sum(), x)
            return loss.detach(), g, ctx.is_adv(logits.detach().argmax(1), ys)

        x = proj.random_start(x0, ctx.gen)
        loss, grad, adv = eval_grad(x, x0, y, aux)
        queries += 1
        success = adv.clone()
        x_best_adv = torch.where(adv[:, None], x, x0)
        x_best, grad_best, loss_best = x.clone(), grad.clone(), loss.clone()
        step = torch.full((n,), 2.0 * eps, dtype=x0.dtype)
        x_old = x.clone()
        hist = torch.zeros((n_iter + 1, n), dtype=x0.dtype)
        hist[0] = loss
        loss_best_last = loss_best.clone()
        reduced_last = torch.ones(n, dtype=torch.bool)
        step_last = step.clone()
        counter, last_check = 0, 0
        act = torch.nonzero(~success)[:, 0]
        if group is not None:
            gdone = torch.zeros(int(group.max()) + 1, dtype=torch.bool)
            gdone[group[success]] = True
            act = act[~gdone[group[act]]]
        for i in range(n_iter):
            if len(act) == 0:
                break
            xa, xs0, ga = x[act], x0[act], grad[act]
            s = step[act][:, None]
            mom = 0.75 if i > 0 else 1.0
            with torch.no_grad():
                z = proj.project(xa + s * proj.ascent(ga), xs0)
                xn = proj.project(xa + mom * (z - xa) + (1 - mom) * (xa - x_old[act]), xs0)
            x_old[act] = xa
            x[act] = xn
            la, ga2, adv = eval_grad(xn, xs0, y[act], None if aux is None else aux[act])
            queries[act.numpy()] += 1
            grad[act] = ga2
            hist[i + 1, act] = la
            newly = act[adv]
            x_best_adv[newly] = xn[adv]
            success[newly] = True
            better = la > loss_best[act]
            up = act[better]
            x_best[up], grad_best[up], loss_best[up] = xn[better], ga2[better], la[better]
            counter += 1
            if counter == k:
                # fraction of the steps since the last checkpoint that increased the loss
                window = hist[last_check : i + 2]
                incr = (window[1:] > window[:-1]).sum(0).to(x0.dtype)
                osc = incr <= k * self.rho
                no_impr = ~reduced_last & (loss_best_last >= loss_best) & (step_last == step)
                halve = osc | no_impr
                reduced_last = halve.clone()
                loss_best_last = loss_best.clone()
                step_last = step.clone()
                h = halve & ~success
                step[h] /= 2.0
                x[h] = x_best[h]
                grad[h] = grad_best[h]
                counter, last_check = 0, i + 1
                k = max(k - k_decr, k_min)
            if group is None:
                act = act[~adv]
            else:  # rows of one sample (e.g. one per target) stop together at the first success
                gdone[group[newly]] = True
                act = act[~gdone[group[act]]]
        return x_best_adv, success, queries


@dataclass(kw_only=True)
class APGDTargeted(APGD):
    """APGD-T: APGD on the targeted DLR loss toward each of the ``n_targets`` most likely wrong
    classes in turn, only on the samples no earlier target broke. Untargeted from the outside (a
    sample is broken as soon as it is misclassified). ``n_targets=3`` (the three most likely wrong
    classes) finds what the full sweep finds on the benchmark models at a third of the cost; use 9
    for AutoAttack's standard sweep on ten classes. The strongest member of AutoAttack's standard ensemble on
    many-class problems; with two classes it adds nothing and returns at once.

    References
    ----------
    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020. https://arxiv.org/abs/2003.01690
    """

    name: ClassVar[str] = "apgd-t"
    supports_targeted: ClassVar[bool] = False

    loss: str = "dlr"
    n_targets: int = 3

    @property
    def label(self) -> str:
        return "apgd-t"

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, aux: torch.Tensor | None,
              targeted: bool) -> torch.Tensor:
        """Targeted DLR of AutoAttack: ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)``."""
        assert aux is not None
        srt, _ = logits.sort(dim=1)
        zy = logits.gather(1, y[:, None])[:, 0]
        zt = logits.gather(1, aux[:, None])[:, 0]
        k = logits.shape[1]
        low = (srt[:, -3] + srt[:, -4]) / 2 if k >= 4 else srt[:, -3]
        return -(zy - zt) / (srt[:, -1] - low + 1e-12)

    def _attack(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, budget: int) -> RawAttack:
        import torch  # lazy: torch is heavy; imported only where it runs

        n = len(x0)
        queries = np.zeros(n, dtype=np.int64)
        best_adv = x0.clone()
        k = min(int(self.n_targets), ctx.n_classes - 1)
        if ctx.n_classes < 3 or k < 1:
            return RawAttack(x_adv=best_adv, queries=queries)
        with torch.no_grad():
            order = ctx.logits(x0, x0).argsort(dim=1, descending=True)
        queries += 1
        # the k most likely classes other than the true one, all attacked in one batch of n * k
        # rows; a sample's rows leave the batch together at its first success
        not_true = order != y[:, None]
        rank = torch.cumsum(not_true.long(), dim=1)
        targets = torch.stack([order.gather(1, (not_true & (rank == j)).long().argmax(1)[:, None])[:, 0]
                               for j in range(1, k + 1)], dim=1)
        group = torch.arange(n).repeat_interleave(k)
        xa, ok, q = self._run(ctx, x0[group], y[group], targets.reshape(-1), group=group)
        np.add.at(queries, group.numpy(), q)
        okm = ok.reshape(n, k)
        hit = okm.any(1)
        first = okm.long().argmax(1)
        best_adv[hit] = xa.reshape(n, k, -1)[torch.arange(n), first][hit]
        return RawAttack(x_adv=best_adv, queries=queries)
