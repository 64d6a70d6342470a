"""What the secure loader saw: the scan of a model's *decrypted* payload, kept with the loaded model.

The artifact check scans model files without loading them, so it cannot read an encrypted container;
when the secure loader decrypted and scanned the payload (in memory), it records that scan here and
the artifact check reports it for the same file (same bytes: checked by SHA-256) instead of
"encrypted container: cannot be inspected". No plaintext is kept, only the scan report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PayloadScan", "attach_payload_scan", "payload_scan"]

_ATTR = "_modelshield_payload_scan"


@dataclass(frozen=True, kw_only=True)
class PayloadScan:
    """The scan of a decrypted payload.

    ``path``: the resolved path of the file the loader read; ``file_sha256`` / ``file_size``: of the
    bytes read (the encrypted container), so a reader can tell the file has not changed since;
    ``payload_format`` / ``payload_size``: of the decrypted content; ``report``: the scanner's
    ``FileReport`` of the decrypted content; ``enforced``: whether the scan gated the load (``False``
    when the model was loaded with ``trust=True``).
    """

    path: str
    file_sha256: str
    file_size: int
    payload_format: str
    payload_size: int
    report: Any
    enforced: bool


def attach_payload_scan(model: object, scan: PayloadScan) -> None:
    """Record ``scan`` on a loaded model object (silently skipped for objects that take no attributes)."""
    try:
        setattr(model, _ATTR, scan)
    except (AttributeError, TypeError):  # pragma: no cover - __slots__ adapters from plug-ins
        pass


def payload_scan(model: object) -> PayloadScan | None:
    """The decrypted payload's scan recorded by the secure loader for ``model``, if any."""
    found = getattr(model, _ATTR, None)
    return found if isinstance(found, PayloadScan) else None
