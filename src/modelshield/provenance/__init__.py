"""Provenance: a CycloneDX 1.6 machine-learning bill of materials (ML-BOM) for a model, and its check.

:func:`build_bom` ties together the model file (SHA-256 and SHA-512, format, framework versions), the data
sets it was audited with (hash, size, sensitive columns), the Python distributions installed where the BOM
is made, the results of a ``modelshield audit --json`` report and references to the model's signature.
:func:`verify_bom` recomputes the model's hashes and compares them (constant time) with the BOM's.

The BOM is plain JSON built here (no third-party library: ``cyclonedx-python-lib`` 11.12 has no model
card); the tests validate it against the official CycloneDX 1.6 JSON schema.
"""

from __future__ import annotations

from modelshield.provenance.bom import (
    BOM_PROPERTY_PREFIX,
    SPEC_VERSION,
    BomCheck,
    HashCheck,
    build_bom,
    load_bom,
    verify_bom,
)

__all__ = ["BOM_PROPERTY_PREFIX", "SPEC_VERSION", "BomCheck", "HashCheck", "build_bom", "load_bom", "verify_bom"]
