"""Protection: encryption at rest (:mod:`.crypto`), signing (:mod:`.signing`), keys (:mod:`.keys`) and
the secure loader (:mod:`.loader`); the workflows of ``modelshield protect`` over them in :mod:`.recipes` (keys,
encryption) and :mod:`.signer` (signing with key files). See ``docs/protection.md``.

Exports resolve lazily (PEP 562): ``modelshield protect sign|verify`` imports only the signing
module, not the loader (which pulls in numpy and the model adapters)."""

from __future__ import annotations

from modelshield._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "TrustPolicy": "modelshield.protect.loader",
    "create_key": "modelshield.protect.recipes",
    "decrypt_bytes": "modelshield.protect.crypto",
    "decrypt_file": "modelshield.protect.crypto",
    "decrypt_file_to_bytes": "modelshield.protect.crypto",
    "describe_container": "modelshield.protect.recipes",
    "encrypt_bytes": "modelshield.protect.crypto",
    "encrypt_file": "modelshield.protect.crypto",
    "generate_key": "modelshield.protect.keys",
    "is_encrypted": "modelshield.protect.crypto",
    "load_key_file": "modelshield.protect.keys",
    "resolve_secret": "modelshield.protect.recipes",
    "rotate": "modelshield.protect.recipes",
    "rotate_file": "modelshield.protect.crypto",
    "secure_load": "modelshield.protect.loader",
    "sign": "modelshield.protect.signing",
    "sign_with_key_file": "modelshield.protect.signer",
    "verify": "modelshield.protect.signing",
    "verify_with_key_file": "modelshield.protect.signer",
    "write_key_file": "modelshield.protect.keys",
    "write_signing_keypair": "modelshield.protect.keys",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
