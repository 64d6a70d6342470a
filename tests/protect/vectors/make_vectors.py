"""Generate the fixed format vectors in this folder. **Run once by hand; never by the tests.**

    .venv/bin/python tests/protect/vectors/make_vectors.py

The tests (``tests/protect/test_protect_format_vectors.py``) only *read* these files: decrypting each
committed container must give its committed plaintext, and each committed signature must verify,
forever. Re-running this script writes new random data keys, nonces, salts and (ECDSA) signatures,
so do it only for a deliberate new format version, with new file names: a change to the v1 files
is a format change that the tests exist to catch.

Everything here is test material: the keys are public and protect nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from modelshield.protect import crypto, signing
from modelshield.protect.keys import key_to_text, public_pem

HERE = Path(__file__).resolve().parent


def _stream(label: str, n: int) -> bytes:
    """``n`` deterministic bytes: SHA-256 in counter mode over ``label``."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


MASTER_KEY = hashlib.sha256(b"modelshield format vector v1: master key").digest()
PASSPHRASE = "modelshield format vector v1 passphrase"
SCRYPT = crypto.ScryptParams(log2_n=10, r=8, p=1)  # small: the vectors must decrypt fast
CHUNK = 4096
PLAIN = _stream("plaintext", 2 * CHUNK + 1808)  # three chunks, the last one short
ED25519_SEED = hashlib.sha256(b"modelshield format vector v1: ed25519 seed").digest()
ECDSA_SCALAR = int.from_bytes(hashlib.sha256(b"modelshield format vector v1: ecdsa p-256").digest(), "big")


def _private_pem(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def main() -> None:
    meta: dict[str, object] = {"format": "modelshield encrypted container v1 / OpenSSF model-signing v1.0"}
    (HERE / "v1_plain.bin").write_bytes(PLAIN)
    (HERE / "v1_master.key").write_text(key_to_text(MASTER_KEY) + "\n")
    (HERE / "v1_passphrase.txt").write_text(PASSPHRASE + "\n")
    containers = {
        "v1_masterkey.enc": crypto.encrypt_bytes(PLAIN, key=MASTER_KEY, chunk_size=CHUNK),
        "v1_masterkey_empty.enc": crypto.encrypt_bytes(b"", key=MASTER_KEY, chunk_size=CHUNK),
        "v1_passphrase.enc": crypto.encrypt_bytes(PLAIN, passphrase=PASSPHRASE, chunk_size=CHUNK, scrypt=SCRYPT),
    }
    for name, blob in containers.items():
        (HERE / name).write_bytes(blob)
        hdr = crypto.parse_header(blob[: crypto.HEADER_LEN])
        meta[name] = {"sha256": hashlib.sha256(blob).hexdigest(), "key_id": hdr.key_id.hex(),
                      "chunk_size": hdr.chunk_size, "size": len(blob)}
    meta["v1_plain.bin"] = {"sha256": hashlib.sha256(PLAIN).hexdigest(), "size": len(PLAIN)}

    model = HERE / "signed_model"
    shutil.rmtree(model, ignore_errors=True)
    (model / "weights").mkdir(parents=True)
    (model / "config.json").write_text('{"architecture": "mlp", "layers": 2}\n')
    (model / "weights" / "part-0.bin").write_bytes(_stream("part-0", 3000))
    (model / "weights" / "part-1.bin").write_bytes(_stream("part-1", 5000))
    (model / "weights" / "empty.bin").write_bytes(b"")
    keys = {"ed25519": ed25519.Ed25519PrivateKey.from_private_bytes(ED25519_SEED),
            "ecdsa-p256": ec.derive_private_key(ECDSA_SCALAR, ec.SECP256R1())}
    for kind, key in keys.items():
        (HERE / f"signer-{kind}.pem").write_bytes(_private_pem(key))
        (HERE / f"signer-{kind}.pub").write_bytes(public_pem(key))
        sig = HERE / f"signed_model.{kind}.sig"
        signing.sign(model, key, signature=sig, force=True)
        res = signing.verify(model, key.public_key(), signature=sig)
        meta[sig.name] = {"root_digest": res.root_digest, "files": res.files}
    (HERE / "vectors.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
