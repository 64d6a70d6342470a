"""modelshield: audit, harden, protect and serve machine-learning models securely.

The safe recipes live here; everything else is reached through subpackages.
"""

from __future__ import annotations

__version__ = "0.1.0"

from modelshield.audit import AuditReport, AuditRun, audit
from modelshield.checks.base import Applies, AuditContext, Check
from modelshield.checks.registry import available_checks
from modelshield.data.dataset import Dataset
from modelshield.data.loaders import load_dataset
from modelshield.errors import ModelShieldError
from modelshield.findings import CheckResult, Figure, Finding, Series, Severity
from modelshield.models.base import Capability, Model
from modelshield.models.load import load_model
from modelshield.policy import Policy, load_policy

__all__ = [
    "Applies",
    "AuditContext",
    "AuditReport",
    "AuditRun",
    "Capability",
    "Check",
    "CheckResult",
    "Dataset",
    "Figure",
    "Finding",
    "Model",
    "ModelShieldError",
    "Policy",
    "Series",
    "Severity",
    "__version__",
    "audit",
    "available_checks",
    "load_dataset",
    "load_model",
    "load_policy",
]
