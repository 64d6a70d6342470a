"""An AutoAttack-style ensemble: run attacks in turn on the samples that still resist."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from modelshield.attacks.apgd import APGD, APGDTargeted
from modelshield.attacks.base import Attack, AttackContext, AttackResult, RawAttack
from modelshield.attacks.threat import ThreatModel
from modelshield.models.base import BaseModel

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Ensemble", "default_ensemble"]


@dataclass(kw_only=True)
class Ensemble(Attack):
    """Run ``attacks`` one after another, each only on the samples every earlier attack failed on,
    and report the per-sample worst case (a sample is robust only if it resisted every attack).

    The default members (:func:`default_ensemble`) are APGD-CE, APGD-DLR and targeted APGD-T, the
    parameter-free core of AutoAttack; add :class:`~modelshield.attacks.square.Square` for a
    gradient-free member that catches gradient masking. Since finished samples leave the batch,
    the cost falls with the robust accuracy, and a model that breaks early costs little.

    Parameters
    ----------
    attacks : the member attacks (each with its own threat model; normally the same).
    tag : the name results carry (``"apgd"`` for the default members).

    References
    ----------
    The AutoAttack paper (Croce & Hein, ICML 2020), cited in :class:`~modelshield.attacks.apgd.APGD`.

    Examples
    --------
    >>> Ensemble(attacks=default_ensemble(ThreatModel(eps=0.1))).generate(model, X, y)  # doctest: +SKIP
    """

    name: ClassVar[str] = "ensemble"

    attacks: list[Attack] = field(default_factory=list)
    tag: str = "apgd"

    @property
    def label(self) -> str:
        return self.tag

    def __post_init__(self) -> None:
        if not self.attacks:
            self.attacks = default_ensemble(self.threat, seed=self.seed)
        self.threat = self.attacks[0].threat

    @property
    def white_box(self) -> bool:  # type: ignore[override]
        return any(a.white_box for a in self.attacks)

    def params(self) -> dict[str, object]:
        return {"attacks": [{"name": a.label, **a.params()} for a in self.attacks], "seed": self.seed,
                "tag": self.tag}

    def check_model(self, model: BaseModel) -> None:
        for a in self.attacks:
            a.check_model(model)

    def generate(self, model: BaseModel, X: np.ndarray, y: np.ndarray,
                 budget: int | None = None) -> AttackResult:
        self.check_model(model)
        X = np.asarray(X)
        t0 = time.perf_counter()
        first = self.attacks[0].generate(model, X, y, budget)
        x_adv = first.x_adv.copy()
        adv_correct = first.adv_correct.copy()
        success = first.success.copy()
        pert = first.perturbation.copy()
        queries = first.queries.copy()
        per_attack = {first.attack: int(first.success.sum())}
        for a in self.attacks[1:]:
            left = np.flatnonzero(adv_correct & first.clean_correct)
            if len(left) == 0:
                break
            res = a.generate(model, X[left], np.asarray(y)[left], budget)
            queries[left] += res.queries
            hit = left[res.success]
            x_adv[hit] = res.x_adv[res.success]
            adv_correct[hit] = False
            success[hit] = True
            pert[hit] = res.perturbation[res.success]
            per_attack[res.attack] = int(res.success.sum())
        out = AttackResult(
            attack=self.label,
            x_adv=x_adv,
            clean_correct=first.clean_correct,
            adv_correct=adv_correct,
            success=success,
            perturbation=pert,
            queries=queries,
            seconds=time.perf_counter() - t0,
            threat=first.threat,
        )
        out.threat = {**first.threat, "members": [a.label for a in self.attacks], "broken_by": per_attack}
        return out

    def _attack(self, ctx: AttackContext, x0: torch.Tensor, y: torch.Tensor, budget: int) -> RawAttack:
        raise NotImplementedError("Ensemble overrides generate()")  # pragma: no cover


def default_ensemble(threat: object, *, seed: int = 0) -> list[Attack]:
    """APGD-CE, APGD-DLR, then APGD-T on ``threat`` (the parameter-free white-box core of AutoAttack;
    APGD-T only acts on three or more classes). Targeted threat models get APGD-CE and APGD-DLR."""

    assert isinstance(threat, ThreatModel)
    members: list[Attack] = [APGD(threat=threat, loss="ce", seed=seed),
                             APGD(threat=threat, loss="dlr", seed=seed + 1)]
    if not threat.targeted:
        members.append(APGDTargeted(threat=threat, seed=seed + 2))
    return members
