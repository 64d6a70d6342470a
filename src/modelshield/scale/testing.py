"""Test doubles for executors and registry audits (picklable, importable by worker processes and Ray).

:class:`FaultyUnits` wraps :func:`~modelshield.scale.units.run_unit` and makes the units of chosen models
misbehave the way real ones do: raise outside a check, hang, or kill their worker process.

>>> fn = FaultyUnits({"b.joblib": "hang"}, hang_s=60)   # doctest: +SKIP
>>> audit_registry(src, unit_fn=fn, executor=ProcessExecutor(workers=2, timeout=5))   # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelshield.scale.units import run_unit

__all__ = ["FAULTS", "FaultyUnits", "square", "misbehave"]

FAULTS = ("raise", "hang", "exit")


def misbehave(kind: str, hang_s: float = 3600.0) -> None:
    """Raise, hang or kill this process (``os._exit``: no cleanup, as a segfault)."""
    if kind == "raise":
        raise RuntimeError("injected fault")
    if kind == "hang":
        deadline = time.monotonic() + hang_s
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return
    if kind == "exit":
        os._exit(9)
    raise ValueError(f"unknown fault {kind!r}; one of {FAULTS}")


@dataclass(frozen=True)
class FaultyUnits:
    """A unit function that misbehaves for the models in ``faults`` (keys: a model's label, or
    ``label:check`` for one of its units), else runs the unit."""

    faults: Mapping[str, str] = field(default_factory=dict)
    hang_s: float = 3600.0

    def __call__(self, unit: Any) -> Any:
        kind = self.faults.get(f"{unit.label}:{unit.check}") or self.faults.get(unit.label)
        if kind:
            misbehave(kind, self.hang_s)
        return run_unit(unit)


def square(x: Any) -> Any:
    """``x * x``, or the fault ``x`` names when it is a string (``"hang"``, ``"exit"``, ``"raise"``)."""
    if isinstance(x, str):
        misbehave(x, 3600.0)
        return x
    return x * x
