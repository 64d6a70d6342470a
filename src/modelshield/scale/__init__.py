"""Audits at scale: whole model registries, incremental re-audits, and units of work on an executor.

A registry audit (:func:`audit_registry`) discovers the models of a source (:func:`discover`: a folder tree,
a Hugging Face hub cache, an MLflow registry), splits the work into units (one check on one model,
:class:`WorkUnit`), answers unchanged units from the results cache (:class:`ResultCache`), runs the rest on an
executor (:func:`make_executor`: ``local``, ``processes``, ``ray``) and merges the results per model in a fixed
order, so the same seed gives the same reports whatever the executor. :func:`write_outputs` writes the summary
(JSON, HTML, SARIF) and one report per model. See ``docs/scale.md``.
"""

from __future__ import annotations

from modelshield.scale.cache import ResultCache, cache_url
from modelshield.scale.executors import (
    EXECUTORS,
    Executor,
    LocalExecutor,
    Outcome,
    ProcessExecutor,
    RayExecutor,
    make_executor,
)
from modelshield.scale.registry import ModelRow, RegistryAudit, audit_registry, check_out_dir, write_outputs
from modelshield.scale.sources import RegistryModel, discover
from modelshield.scale.units import DataSpec, UnitOutcome, WorkUnit, run_unit

__all__ = [
    "EXECUTORS",
    "DataSpec",
    "Executor",
    "LocalExecutor",
    "ModelRow",
    "Outcome",
    "ProcessExecutor",
    "RayExecutor",
    "RegistryAudit",
    "RegistryModel",
    "ResultCache",
    "UnitOutcome",
    "WorkUnit",
    "audit_registry",
    "cache_url",
    "check_out_dir",
    "discover",
    "make_executor",
    "run_unit",
    "write_outputs",
]
