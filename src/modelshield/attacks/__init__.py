"""Adversarial attacks, one module each, behind the :class:`~.base.Attack` interface."""

from __future__ import annotations

from typing import Any

from modelshield.attacks.apgd import APGD, APGDTargeted
from modelshield.attacks.base import Attack, AttackContext, AttackResult, RawAttack
from modelshield.attacks.ensemble import Ensemble, default_ensemble
from modelshield.attacks.fgsm import FGSM
from modelshield.attacks.hopskipjump import HopSkipJump
from modelshield.attacks.pgd import PGD
from modelshield.attacks.square import Square
from modelshield.attacks.threat import ThreatModel
from modelshield.errors import UserError

__all__ = [
    "APGD",
    "APGDTargeted",
    "ATTACKS",
    "Attack",
    "AttackContext",
    "AttackResult",
    "Ensemble",
    "FGSM",
    "HopSkipJump",
    "PGD",
    "RawAttack",
    "Square",
    "default_ensemble",
    "make_attack",
]

#: CLI / option name -> (class, fixed options). ``apgd`` is the APGD-CE + APGD-DLR + APGD-T ensemble.
ATTACKS: dict[str, tuple[type[Attack], dict[str, Any]]] = {
    "fgsm": (FGSM, {}),
    "pgd": (PGD, {}),
    "apgd-ce": (APGD, {"loss": "ce"}),
    "apgd-dlr": (APGD, {"loss": "dlr"}),
    "apgd-t": (APGDTargeted, {}),
    "apgd": (Ensemble, {}),
    "square": (Square, {}),
    "hsj": (HopSkipJump, {}),
}


def make_attack(name: str, threat: ThreatModel, *, seed: int = 0, **options: Any) -> Attack:
    """Build the attack called ``name`` (see :data:`ATTACKS`) on ``threat``."""
    key = name.strip().lower()
    if key in ("hopskipjump", "hop-skip-jump"):
        key = "hsj"
    if key not in ATTACKS:
        raise UserError(f"unknown attack {name!r}; expected one of: {', '.join(ATTACKS)}")
    cls, fixed = ATTACKS[key]
    return cls(threat=threat, seed=seed, **fixed, **options)
