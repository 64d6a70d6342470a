"""Protection: encryption at rest (:mod:`.crypto`), signing (:mod:`.signing`), keys (:mod:`.keys`) and
the secure loader (:mod:`.loader`). See ``docs/protection.md``."""

from __future__ import annotations

from modelshield.protect.crypto import (
    decrypt_bytes,
    decrypt_file,
    decrypt_file_to_bytes,
    encrypt_bytes,
    encrypt_file,
    is_encrypted,
    rotate_file,
)
from modelshield.protect.keys import generate_key, load_key_file, write_key_file, write_signing_keypair
from modelshield.protect.loader import TrustPolicy, secure_load
from modelshield.protect.signing import sign, verify

__all__ = [
    "TrustPolicy",
    "decrypt_bytes",
    "decrypt_file",
    "decrypt_file_to_bytes",
    "encrypt_bytes",
    "encrypt_file",
    "generate_key",
    "is_encrypted",
    "load_key_file",
    "rotate_file",
    "secure_load",
    "sign",
    "verify",
    "write_key_file",
    "write_signing_keypair",
]
