"""modelshield: audit, harden, protect and serve machine-learning models securely.

The safe recipes live here — :func:`audit`, :func:`load_model` (verify → decrypt → scan → load),
:func:`scan`, :func:`load_dataset` — and are imported lazily (PEP 562), so ``modelshield scan`` and
``modelshield protect verify`` start fast. Everything else is reached through subpackages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelshield._lazy import lazy_exports
from modelshield._version import __version__

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Applies": "modelshield.checks.base",
    "AuditContext": "modelshield.checks.base",
    "AuditReport": "modelshield.runner",
    "AuditRun": "modelshield.runner",
    "Capability": "modelshield.models.base",
    "Check": "modelshield.checks.base",
    "CheckResult": "modelshield.findings",
    "Dataset": "modelshield.data.dataset",
    "Figure": "modelshield.findings",
    "Finding": "modelshield.findings",
    "Model": "modelshield.models.base",
    "ModelShieldError": "modelshield.errors",
    "Policy": "modelshield.policy",
    "ScanReport": "modelshield.artifacts",
    "Series": "modelshield.findings",
    "Severity": "modelshield.findings",
    "TrustPolicy": "modelshield.protect.loader",
    "audit": "modelshield.runner",
    "available_checks": "modelshield.checks.registry",
    "load_dataset": "modelshield.data.loaders",
    "load_model": "modelshield.protect.loader",
    "load_policy": "modelshield.policy",
    "scan": "modelshield.artifacts",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - static view of the lazy exports
    from modelshield.artifacts import ScanReport, scan
    from modelshield.checks.base import Applies, AuditContext, Check
    from modelshield.checks.registry import available_checks
    from modelshield.data.dataset import Dataset
    from modelshield.data.loaders import load_dataset
    from modelshield.errors import ModelShieldError
    from modelshield.findings import CheckResult, Figure, Finding, Series, Severity
    from modelshield.models.base import Capability, Model
    from modelshield.policy import Policy, load_policy
    from modelshield.protect.loader import TrustPolicy, load_model
    from modelshield.runner import AuditReport, AuditRun, audit
