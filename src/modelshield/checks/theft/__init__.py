"""Model theft: extraction-risk simulation, watermark verification and fingerprinting.

Public entry points:

* :func:`~modelshield.checks.theft.extraction.simulate_extraction` - copy a model through its API
* :func:`~modelshield.checks.theft.watermark.verify_watermark` - black-box watermark test
* :func:`~modelshield.checks.theft.fingerprint.create_fingerprint` / ``Fingerprint.compare``
* :class:`~modelshield.checks.theft.check.TheftCheck` - the ``theft`` audit check
"""

from __future__ import annotations

__all__ = ["TheftCheck"]


def __getattr__(name: str) -> object:
    if name == "TheftCheck":
        from modelshield.checks.theft.check import TheftCheck

        return TheftCheck
    raise AttributeError(name)
