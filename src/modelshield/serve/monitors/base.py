"""The serving monitor seam: ``Monitor.update(batch) -> list[Alert]`` with persistable state."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Alert", "Batch", "Detector", "Monitor", "load_state", "save_state"]


@dataclass(frozen=True)
class Alert:
    """Something a monitor wants a human to see. ``key_id`` is set for per-key alerts."""

    monitor: str
    message: str
    severity: str = "medium"  # low | medium | high
    key_id: str | None = None
    value: float | None = None
    threshold: float | None = None
    time: float = field(default_factory=time.time)
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Batch:
    """One accepted request as the monitors see it."""

    X: np.ndarray  # (n, n_features) float
    proba: np.ndarray  # (n, n_classes), before output hardening
    key_id: str
    time: float = field(default_factory=time.time)

    @property
    def pred(self) -> np.ndarray:
        return np.argmax(self.proba, axis=1)


@runtime_checkable
class Monitor(Protocol):
    """A streaming monitor. ``state()``/``load_state()`` round-trip through JSON."""

    name: str

    def update(self, batch: Batch) -> list[Alert]: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Detector(Protocol):
    """An input scorer (OOD / adversarial): higher is more suspicious.

    ``modelshield.attacks.detect`` provides one when installed; :class:`MahalanobisDetector`
    (in :mod:`modelshield.serve.monitors.inputs`) is the built-in fallback.
    """

    def fit(self, model: Any, X_ref: np.ndarray) -> Any: ...

    def score(self, X: np.ndarray) -> np.ndarray: ...


def save_state(monitors: list[Monitor], path: str | Path) -> None:
    """Write every monitor's state to one JSON file (atomically)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps({m.name: m.state() for m in monitors}), encoding="utf-8")
    tmp.replace(p)


def load_state(monitors: list[Monitor], path: str | Path) -> bool:
    p = Path(path)
    if not p.is_file():
        return False
    data = json.loads(p.read_text(encoding="utf-8"))
    for m in monitors:
        if m.name in data:
            m.load_state(data[m.name])
    return True
