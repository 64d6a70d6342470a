"""Privacy checks: membership inference (loss, LiRA, RMIA), PII scanning, anonymization and DP
accounting. The audit check is :class:`modelshield.checks.privacy.PrivacyCheck`."""

from __future__ import annotations

from modelshield.privacy.membership import (
    ATTACKS,
    AttackResult,
    MembershipReport,
    TrainingRecipe,
    membership_inference,
    roc_metrics,
)

__all__ = [
    "ATTACKS",
    "AttackResult",
    "MembershipReport",
    "TrainingRecipe",
    "membership_inference",
    "roc_metrics",
]
