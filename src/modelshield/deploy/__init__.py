"""Hardened deployment of the gateway: ``export`` writes a Dockerfile, Kubernetes manifests or a
Gramine-SGX manifest template for one model (see :mod:`.docker`, :mod:`.k8s`, :mod:`.gramine`).

Every generated file refers to secrets (a Secret's name, an environment variable's name, an SGX sealing
key's name) and never holds one.
"""

from __future__ import annotations

from modelshield.deploy.exporter import TARGETS, DeploySpec, Export, export, render

__all__ = ["TARGETS", "DeploySpec", "Export", "export", "render"]
