"""Federated learning engine: robust aggregators, group-wise secure aggregation, client-level DP and an
in-process attack/defence simulation (numpy only; the Flower deployment is not built yet)."""

from __future__ import annotations

from .aggregators import AggregatorSpec, bulyan, fedavg, krum, median, multi_krum, parse_aggregator, trimmed_mean
from .dp import client_noise_std, clip, epsilon
from .secagg import SecAggTranscript, secure_group_sum
from .simulate import RoundRecord, SimulationResult, simulate

__all__ = [
    "AggregatorSpec",
    "RoundRecord",
    "SecAggTranscript",
    "SimulationResult",
    "bulyan",
    "client_noise_std",
    "clip",
    "epsilon",
    "fedavg",
    "krum",
    "median",
    "multi_krum",
    "parse_aggregator",
    "secure_group_sum",
    "simulate",
    "trimmed_mean",
]
