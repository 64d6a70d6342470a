"""An authenticated envelope for the ciphertexts between client and server.

HE hides the data but does not authenticate it: a ciphertext changed in transit decrypts to a
different, plausible-looking answer. Both sides share a per-session key (in deployment, derived from
the TLS session or a key exchange; here the client makes it and hands it over with the public context)
and every message carries HMAC-SHA256 over its kind, sequence number and each serialized ciphertext,
length-prefixed. A mismatch is refused with :class:`~modelshield.errors.IntegrityError` (exit 3); the
compare is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass

from modelshield.errors import IntegrityError

__all__ = ["Sealed", "new_session_key", "open_sealed", "seal"]

_DOMAIN = b"modelshield-private-he-v1"


def new_session_key() -> bytes:
    return secrets.token_bytes(32)


@dataclass(frozen=True)
class Sealed:
    kind: str
    seq: int
    parts: tuple[bytes, ...]
    tag: bytes


def _mac(key: bytes, kind: str, seq: int, parts: tuple[bytes, ...]) -> bytes:
    h = hmac.new(key, digestmod=hashlib.sha256)
    h.update(_DOMAIN)
    k = kind.encode()
    h.update(struct.pack(">I", len(k)) + k + struct.pack(">QI", seq, len(parts)))
    for p in parts:
        h.update(struct.pack(">Q", len(p)))
        h.update(p)
    return h.digest()


def seal(key: bytes, kind: str, seq: int, parts: list[bytes] | tuple[bytes, ...]) -> Sealed:
    parts = tuple(parts)
    return Sealed(kind, seq, parts, _mac(key, kind, seq, parts))


def open_sealed(key: bytes, msg: Sealed, *, kind: str, seq: int) -> tuple[bytes, ...]:
    """The parts of ``msg`` if its tag is right for ``kind`` and ``seq``; else IntegrityError."""
    want = _mac(key, kind, seq, msg.parts)
    if not hmac.compare_digest(want, msg.tag) or msg.kind != kind or msg.seq != seq:
        raise IntegrityError(f"the {kind} message failed authentication (tampered with or replayed in transit); "
                             "refusing it")
    return msg.parts
