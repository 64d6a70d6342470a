"""Key material: key files, environment variables, passphrases, PEM signing keys."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from modelshield.errors import FormatError, InputNotFoundError, OutputError, UserError
from modelshield.protect.keys import (
    key_from_env,
    load_key_file,
    load_private_key,
    load_public_key,
    parse_key_text,
    passphrase_from_env,
    write_key_file,
    write_signing_keypair,
)


def test_key_file_round_trip_and_permissions(tmp_path: Path) -> None:
    p = tmp_path / "k"
    key = write_key_file(p)
    assert len(key) == 32 and load_key_file(p) == key
    assert p.stat().st_mode & 0o777 == 0o600
    assert p.read_text().startswith("modelshield-key-v1:")
    with pytest.raises(OutputError):
        write_key_file(p)
    raw = tmp_path / "raw"
    raw.write_bytes(key)
    raw.chmod(0o600)
    assert load_key_file(raw) == key
    with pytest.raises(InputNotFoundError):
        load_key_file(tmp_path / "missing")


def test_key_text_forms(monkeypatch) -> None:
    key = os.urandom(32)
    for text in (key.hex(), base64.b64encode(key).decode(), "modelshield-key-v1:" + base64.b64encode(key).decode()):
        assert parse_key_text(text, where="x") == key
    for bad in ("", "abc", base64.b64encode(os.urandom(16)).decode(), "zz" * 32):
        with pytest.raises(UserError, match="256-bit key"):
            parse_key_text(bad, where="x")
    monkeypatch.setenv("K", key.hex())
    assert key_from_env("K") == key
    monkeypatch.delenv("K")
    with pytest.raises(UserError, match="not set"):
        key_from_env("K")
    monkeypatch.setenv("P", "short")
    with pytest.raises(UserError, match="too short"):
        passphrase_from_env("P")


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_signing_keypair(tmp_path: Path, kind: str) -> None:
    priv, pub = tmp_path / "s.pem", tmp_path / "s.pub"
    write_signing_keypair(priv, pub, kind)  # type: ignore[arg-type]
    assert priv.stat().st_mode & 0o777 == 0o600
    k = load_private_key(priv)
    assert load_public_key(pub).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
        == k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    # a private key where a public one is expected: its public half is used (the same key, of its type)
    half = load_public_key(priv)
    assert type(half) is type(k.public_key())
    assert half.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
        == k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert isinstance(half, ed25519.Ed25519PublicKey if kind == "ed25519" else ec.EllipticCurvePublicKey)


def test_unsupported_keys_are_refused(tmp_path: Path) -> None:
    k = ec.generate_private_key(ec.SECP256K1())
    p = tmp_path / "k1.pem"
    p.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    p.chmod(0o600)
    with pytest.raises(FormatError, match="unsupported curve"):
        load_private_key(p)
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(FormatError):
        load_public_key(tmp_path / "junk.pem")
