"""Model theft: extraction-risk simulation, watermark verification and fingerprinting.

Public entry points (imported lazily, so ``import modelshield.theft`` stays cheap):

* :func:`~modelshield.theft.extraction.simulate_extraction` - copy a model through its API
* :func:`~modelshield.theft.watermark.verify_watermark`, :class:`TriggerSet` - black-box
  watermark test (embedding lives in :mod:`modelshield.harden.watermark`)
* :func:`~modelshield.theft.fingerprint.create_fingerprint`, :class:`Fingerprint`
"""

from __future__ import annotations

import importlib

__all__ = [
    "Fingerprint",
    "TriggerSet",
    "WatermarkVerdict",
    "create_fingerprint",
    "simulate_extraction",
    "verify_watermark",
]

_WHERE = {
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
