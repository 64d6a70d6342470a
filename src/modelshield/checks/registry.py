"""The check registry: built-in checks plus third-party ones from the ``modelshield.checks``
entry-point group.

A third-party package registers a check in its ``pyproject.toml``::

    [project.entry-points."modelshield.checks"]
    mycheck = "mypkg.checks:MyCheck"
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from modelshield.checks.base import Check
from modelshield.errors import UserError

__all__ = ["ENTRY_POINT_GROUP", "BUILTIN_CHECKS", "available_checks", "get_check", "load_errors"]

ENTRY_POINT_GROUP = "modelshield.checks"

#: name -> "module:Class". One line per built-in check, in report order.
BUILTIN_CHECKS: dict[str, str] = {
    "baseline": "modelshield.checks.baseline:BaselineCheck",
    "artifact": "modelshield.checks.artifact.check:ArtifactCheck",
    "robustness": "modelshield.checks.robustness.check:RobustnessCheck",
    "privacy": "modelshield.checks.privacy.check:PrivacyCheck",
    "fairness": "modelshield.checks.fairness.check:FairnessCheck",
    "theft": "modelshield.checks.theft.check:TheftCheck",
}

_load_errors: dict[str, str] = {}


def _import(target: str) -> type[Check]:
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Check)):
        raise TypeError(f"{target} is not a modelshield Check subclass")
    return cls


def available_checks() -> dict[str, type[Check]]:
    """All checks that load, built-ins first. A plug-in that fails to import is recorded in
    :func:`load_errors` (and shown in reports), never fatal."""
    found: dict[str, type[Check]] = {}
    _load_errors.clear()
    for name, target in BUILTIN_CHECKS.items():
        try:
            found[name] = _import(target)
        except Exception as exc:  # a broken plug-in must not take the audit down
            _load_errors[name] = f"{type(exc).__name__}: {exc}"
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Check)):
                raise TypeError(f"{ep.value} is not a modelshield Check subclass")
            found[ep.name] = cls
        except Exception as exc:
            _load_errors[ep.name] = f"{type(exc).__name__}: {exc}"
    return found


def load_errors() -> dict[str, str]:
    """Checks that failed to load in the last :func:`available_checks` call, with the reason."""
    return dict(_load_errors)


def get_check(name: str) -> type[Check]:
    checks = available_checks()
    if name not in checks:
        raise UserError(f"unknown check {name!r}; available: {', '.join(checks)}")
    return checks[name]
