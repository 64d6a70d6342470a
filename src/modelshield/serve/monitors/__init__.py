"""Serving monitors: ``Monitor.update(batch) -> list[Alert]`` with persistable state."""

from modelshield.serve.monitors.base import Alert, Batch, Detector, Monitor, load_state, save_state
from modelshield.serve.monitors.drift import DriftMonitor
from modelshield.serve.monitors.extraction import CoverageMonitor, PradaMonitor
from modelshield.serve.monitors.inputs import InputDefense, InputSchema, MahalanobisDetector, Screening

__all__ = [
    "Alert",
    "Batch",
    "CoverageMonitor",
    "Detector",
    "DriftMonitor",
    "InputDefense",
    "InputSchema",
    "MahalanobisDetector",
    "Monitor",
    "PradaMonitor",
    "Screening",
    "load_state",
    "save_state",
]
