"""Model theft: extraction-risk simulation, watermark verification and fingerprinting.

Public entry points (imported lazily, so ``import modelshield.checks.theft`` stays cheap):

* :func:`~modelshield.checks.theft.extraction.simulate_extraction` - copy a model through its API
* :func:`~modelshield.checks.theft.watermark.verify_watermark`, :class:`TriggerSet` - black-box
  watermark test (embedding lives in :mod:`modelshield.harden.watermark`)
* :func:`~modelshield.checks.theft.fingerprint.create_fingerprint`, :class:`Fingerprint`
* :class:`~modelshield.checks.theft.check.TheftCheck` - the ``theft`` audit check
"""

from __future__ import annotations

import importlib

__all__ = [
    "Fingerprint",
    "TheftCheck",
    "TriggerSet",
    "WatermarkVerdict",
    "create_fingerprint",
    "simulate_extraction",
    "verify_watermark",
]

_WHERE = {
    "TheftCheck": "check",
    "simulate_extraction": "extraction",
    "TriggerSet": "watermark",
    "WatermarkVerdict": "watermark",
    "verify_watermark": "watermark",
    "Fingerprint": "fingerprint",
    "create_fingerprint": "fingerprint",
}


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
