"""Fixed format vectors (``tests/protect/vectors``, made once by ``make_vectors.py``, which no test runs).

Decrypting each committed v1 container must give the committed plaintext forever, and each committed
signature must verify its committed directory forever: a change to the container layout, the nonce
construction (prefix || 4-byte big-endian chunk index || last flag), the key wrap, the key id, scrypt's
use, or the signature statement fails here. A second, independent decryption (``cryptography`` and
``hashlib`` only, following docs/protection.md) pins the documented format rather than the code.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from modelshield.errors import IntegrityError
from modelshield.protect import crypto
from modelshield.protect.keys import load_public_key, parse_key_text
from modelshield.protect.signing import verify

V = Path(__file__).parent / "vectors"
META = json.loads((V / "vectors.json").read_text())
PLAIN = (V / "v1_plain.bin").read_bytes()
KEY = parse_key_text((V / "v1_master.key").read_text(), where="vector key")
PASSPHRASE = (V / "v1_passphrase.txt").read_text().strip()
CONTAINERS = {"v1_masterkey.enc": ({"key": KEY}, PLAIN), "v1_masterkey_empty.enc": ({"key": KEY}, b""),
              "v1_passphrase.enc": ({"passphrase": PASSPHRASE}, PLAIN)}


def test_vectors_are_the_committed_ones() -> None:
    assert hashlib.sha256(PLAIN).hexdigest() == META["v1_plain.bin"]["sha256"]
    for name in CONTAINERS:
        assert hashlib.sha256((V / name).read_bytes()).hexdigest() == META[name]["sha256"], name


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_committed_containers_decrypt_to_their_plaintext(name: str) -> None:
    secret, plain = CONTAINERS[name]
    blob = (V / name).read_bytes()
    assert bytes(crypto.decrypt_bytes(blob, **secret)) == plain
    assert bytes(crypto.decrypt_file_to_bytes(V / name, **secret)) == plain
    assert b"".join(crypto.iter_decrypt(io.BytesIO(blob), **secret)) == plain
    hdr = crypto.read_header(V / name)
    assert hdr.key_id.hex() == META[name]["key_id"] and hdr.chunk_size == META[name]["chunk_size"] == 4096


def _independent_decrypt(blob: bytes, *, key: bytes | None = None, passphrase: str | None = None) -> bytes:
    """The v1 format as documented, without modelshield's code."""
    magic, version, aead, flags, chunk_size, prefix, reserved = struct.unpack(">8sBBHI7sB", blob[:24])
    assert (magic, version, aead, flags, reserved) == (b"\x89MSHLD\r\n", 1, 1, 0, 0)
    kdf, log2_n, r, p, salt = struct.unpack(">BBBB16s", blob[24:44])
    key_id, wrap_nonce, wrapped = blob[44:52], blob[52:64], blob[64:112]
    if kdf == 0:
        assert (log2_n, r, p, salt, passphrase) == (0, 0, 0, bytes(16), None)
        kek = key
    else:
        assert kdf == 1 and key is None and passphrase is not None
        kek = hashlib.scrypt(passphrase.encode(), salt=salt, n=1 << log2_n, r=r, p=p, dklen=32, maxmem=1 << 26)
    assert kek is not None
    assert hashlib.sha256(b"modelshield.kid.v1" + kek).digest()[:8] == key_id
    data_key = AESGCM(kek).decrypt(wrap_nonce, wrapped, blob[:64])  # AAD: fixed header + key section
    body, seg = blob[112:], chunk_size + 16
    chunks = [body[i:i + seg] for i in range(0, len(body), seg)]
    out = b""
    for i, c in enumerate(chunks):
        nonce = prefix + i.to_bytes(4, "big") + (b"\x01" if i == len(chunks) - 1 else b"\x00")
        out += AESGCM(data_key).decrypt(nonce, c, blob[:24])
    return out


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_documented_format_decrypts_the_vectors_independently(name: str) -> None:
    secret, plain = CONTAINERS[name]
    blob = (V / name).read_bytes()
    assert _independent_decrypt(blob, **secret) == plain
    n_chunks = max(1, -(-len(plain) // 4096))
    assert len(blob) == 112 + len(plain) + 16 * n_chunks


@pytest.mark.parametrize("name", list(CONTAINERS))
@pytest.mark.parametrize("where", ["magic", "chunk-size", "nonce-prefix", "kdf", "salt", "key-id", "wrap-nonce",
                                   "wrapped-key", "first-chunk", "last-tag"])
def test_a_changed_byte_in_a_vector_fails(name: str, where: str) -> None:
    secret, _ = CONTAINERS[name]
    blob = bytearray((V / name).read_bytes())
    pos = {"magic": 3, "chunk-size": 14, "nonce-prefix": 18, "kdf": 25, "salt": 30, "key-id": 47,
           "wrap-nonce": 55, "wrapped-key": 80, "first-chunk": 113, "last-tag": len(blob) - 1}[where]
    blob[pos] ^= 0x01
    with pytest.raises(IntegrityError):
        crypto.decrypt_bytes(bytes(blob), **secret)


# --- signatures ------------------------------------------------------------------------------------

KINDS = ["ed25519", "ecdsa-p256"]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return Path(shutil.copytree(V / "signed_model", tmp_path / "signed_model"))


@pytest.mark.parametrize("kind", KINDS)
def test_committed_signature_verifies(model: Path, kind: str) -> None:
    sig = V / f"signed_model.{kind}.sig"
    res = verify(model, load_public_key(V / f"signer-{kind}.pub"), signature=sig)
    assert res.root_digest == META[sig.name]["root_digest"] and res.files == META[sig.name]["files"] == 4
    assert res.key_type.startswith(kind.split("-")[0]) and res.unsigned == ()
    assert verify(V / "signed_model", load_public_key(V / f"signer-{kind}.pub"), signature=sig).files == 4


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target", ["config.json", "weights/part-0.bin", "weights/part-1.bin"])
@pytest.mark.parametrize("offset", [0, -1])
def test_a_changed_byte_in_the_signed_model_fails(model: Path, kind: str, target: str, offset: int) -> None:
    data = bytearray((model / target).read_bytes())
    data[offset] ^= 0x01
    (model / target).write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=f"changed: {target}"):
        verify(model, load_public_key(V / f"signer-{kind}.pub"), signature=V / f"signed_model.{kind}.sig")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("change", ["add", "remove-empty", "fill-empty"])
def test_added_or_removed_files_fail(model: Path, kind: str, change: str) -> None:
    if change == "add":
        (model / "weights" / "part-2.bin").write_bytes(b"\x00")
    elif change == "remove-empty":
        (model / "weights" / "empty.bin").unlink()
    else:
        (model / "weights" / "empty.bin").write_bytes(b"x")
    with pytest.raises(IntegrityError, match="does not match its signature"):
        verify(model, load_public_key(V / f"signer-{kind}.pub"), signature=V / f"signed_model.{kind}.sig")


@pytest.mark.parametrize("kind", KINDS)
def test_a_changed_byte_in_the_signature_fails(tmp_path: Path, kind: str) -> None:
    raw = json.loads((V / f"signed_model.{kind}.sig").read_text())
    sig = bytearray(base64.b64decode(raw["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[len(sig) // 2] ^= 0x01
    raw["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    bad = tmp_path / "bad.sig"
    bad.write_text(json.dumps(raw))
    with pytest.raises(IntegrityError, match="bad signature"):
        verify(V / "signed_model", load_public_key(V / f"signer-{kind}.pub"), signature=bad)
    other = KINDS[1 - KINDS.index(kind)]
    with pytest.raises(IntegrityError, match="bad signature"):
        verify(V / "signed_model", load_public_key(V / f"signer-{other}.pub"),
               signature=V / f"signed_model.{kind}.sig")
