"""Federated learning engine: robust aggregators, group-wise secure aggregation, client-level DP, an
in-process attack/defence simulation (numpy only) and its recipes; :mod:`.flower` runs the same plan as a
Flower simulation (the ``fl`` extra)."""

from __future__ import annotations

from .aggregators import AggregatorSpec, bulyan, fedavg, krum, median, multi_krum, parse_aggregator, trimmed_mean
from .dp import client_noise_std, clip, epsilon
from .models import MODELS, FlatModel, local_sgd, make_model
from .secagg import SecAggTranscript, secure_group_sum
from .simulate import (
    ACCOUNTANT,
    ConfigError,
    FederatedConfig,
    FederatedPlan,
    RoundRecord,
    SimulationResult,
    prepare,
    run,
    simulate,
)

__all__ = [
    "ACCOUNTANT",
    "MODELS",
    "AggregatorSpec",
    "ConfigError",
    "FederatedConfig",
    "FederatedPlan",
    "FlatModel",
    "RoundRecord",
    "SecAggTranscript",
    "SimulationResult",
    "bulyan",
    "client_noise_std",
    "clip",
    "epsilon",
    "fedavg",
    "krum",
    "local_sgd",
    "make_model",
    "median",
    "multi_krum",
    "parse_aggregator",
    "prepare",
    "run",
    "secure_group_sum",
    "simulate",
    "trimmed_mean",
]
