"""Encryption at rest: round trips, tampering in every byte-position class, keys, rotation, memory."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from modelshield.errors import IntegrityError, OutputError, UserError
from modelshield.protect import crypto
from modelshield.protect.crypto import (
    HEADER_LEN,
    TAG_LEN,
    ScryptParams,
    decrypt_bytes,
    decrypt_file,
    decrypt_file_to_bytes,
    encrypt_bytes,
    encrypt_file,
    iter_decrypt,
    rotate_file,
)

CS = 4096
SEG = CS + TAG_LEN
FAST_SCRYPT = ScryptParams(log2_n=10, r=8, p=1)


def _enc(payload: bytes, key: bytes) -> bytes:
    return encrypt_bytes(payload, key=key, chunk_size=CS)


def _chunks(ct: bytes) -> list[bytes]:
    body = ct[HEADER_LEN:]
    return [body[i:i + SEG] for i in range(0, len(body), SEG)]


@pytest.mark.parametrize("size", [0, 1, CS - 1, CS, CS + 1, 3 * CS, 3 * CS + 17])
def test_round_trip_all_sizes(size: int, master_key: bytes) -> None:
    data = os.urandom(size)
    ct = _enc(data, master_key)
    n_chunks = max(1, -(-size // CS))
    assert len(ct) == HEADER_LEN + size + n_chunks * TAG_LEN
    assert bytes(decrypt_bytes(ct, key=master_key)) == data
    assert b"".join(iter_decrypt(io.BytesIO(ct), key=master_key)) == data


def test_ciphertext_is_randomised(master_key: bytes, payload: bytes) -> None:
    a, b = _enc(payload, master_key), _enc(payload, master_key)
    assert a != b  # fresh data key and nonce prefix per file
    assert payload[:64] not in a


def _assert_rejected(ct: bytes, key: bytes, match: str | None = None) -> None:
    with pytest.raises(IntegrityError, match=match):
        decrypt_bytes(ct, key=key)
    with pytest.raises(IntegrityError, match=match):
        b"".join(iter_decrypt(io.BytesIO(ct), key=key))


def test_every_header_byte_is_authenticated(master_key: bytes, payload: bytes) -> None:
    ct = _enc(payload, master_key)
    for pos in range(HEADER_LEN):
        bad = bytearray(ct)
        bad[pos] ^= 0x01
        _assert_rejected(bytes(bad), master_key)


def test_every_scrypt_header_byte_is_authenticated(payload: bytes) -> None:
    ct = encrypt_bytes(payload, passphrase="a good passphrase", chunk_size=CS, scrypt=FAST_SCRYPT)
    assert bytes(decrypt_bytes(ct, passphrase="a good passphrase")) == payload
    for pos in range(HEADER_LEN):
        bad = bytearray(ct)
        bad[pos] ^= 0x01
        with pytest.raises(IntegrityError):
            decrypt_bytes(bytes(bad), passphrase="a good passphrase")


def test_tampered_chunk_body_and_tag_are_detected(master_key: bytes, payload: bytes) -> None:
    ct = _enc(payload, master_key)
    chunks = _chunks(ct)
    assert len(chunks) == 4
    offset = HEADER_LEN
    for i, ch in enumerate(chunks):
        for where in (0, len(ch) // 2, len(ch) - TAG_LEN - 1):  # chunk body
            bad = bytearray(ct)
            bad[offset + where] ^= 0x80
            _assert_rejected(bytes(bad), master_key, match=f"chunk {i} failed authentication")
        for where in (len(ch) - TAG_LEN, len(ch) - 1):  # tag
            bad = bytearray(ct)
            bad[offset + where] ^= 0x01
            _assert_rejected(bytes(bad), master_key, match=f"chunk {i}")
        offset += len(ch)


@pytest.mark.parametrize("cut", [
    0, 5, HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + 10,   # inside the header / no chunks
    HEADER_LEN + SEG, HEADER_LEN + 3 * SEG,              # at chunk boundaries (drops whole chunks)
    HEADER_LEN + 2 * SEG + 100,                          # inside a chunk
    -1, -TAG_LEN,                                        # the end of the last chunk
])
def test_truncation_is_detected(cut: int, master_key: bytes, payload: bytes) -> None:
    ct = _enc(payload, master_key)
    _assert_rejected(ct[:cut], master_key)


def test_reordered_duplicated_and_dropped_chunks_are_detected(master_key: bytes, payload: bytes) -> None:
    ct = _enc(payload, master_key)
    head, ch = ct[:HEADER_LEN], _chunks(ct)
    _assert_rejected(head + ch[1] + ch[0] + ch[2] + ch[3], master_key, match="chunk 0")
    _assert_rejected(head + ch[0] + ch[0] + ch[2] + ch[3], master_key, match="chunk 1")
    _assert_rejected(head + ch[0] + ch[2] + ch[3], master_key, match="chunk 1")
    _assert_rejected(head + ch[0] + ch[1] + ch[2], master_key)  # last chunk dropped: 2 was not final


def test_chunks_from_another_file_are_rejected(master_key: bytes, payload: bytes) -> None:
    a, b = _enc(payload, master_key), _enc(payload, master_key)
    _assert_rejected(a[:HEADER_LEN] + b[HEADER_LEN:], master_key, match="chunk 0")


@pytest.mark.parametrize(
    "extra",
    [b"\x00", bytes(range(TAG_LEN)), bytes(i % 251 for i in range(SEG)), b"\x01\x02\x03"],
    ids=["one-byte", "tag-sized", "segment-sized", "three-bytes"],
)
def test_appended_data_is_detected(extra: bytes, master_key: bytes, payload: bytes) -> None:
    ct = _enc(payload, master_key)
    _assert_rejected(ct + extra, master_key)
    # the same for a plaintext that fills its last chunk exactly
    full = _enc(payload[: 3 * CS], master_key)
    _assert_rejected(full + extra, master_key)


def test_wrong_key_and_wrong_secret_kind(master_key: bytes, payload: bytes) -> None:
    ct = _enc(payload, master_key)
    _assert_rejected(ct, os.urandom(32), match="wrong key: this file names key id")
    with pytest.raises(IntegrityError, match="encrypted with a master key"):
        decrypt_bytes(ct, passphrase="not a key at all")
    pct = encrypt_bytes(payload, passphrase="passphrase one", chunk_size=CS, scrypt=FAST_SCRYPT)
    with pytest.raises(IntegrityError, match="wrong passphrase"):
        decrypt_bytes(pct, passphrase="passphrase two")
    with pytest.raises(IntegrityError, match="encrypted with a passphrase"):
        decrypt_bytes(pct, key=master_key)
    with pytest.raises(UserError):
        decrypt_bytes(ct)


def test_not_a_container_is_rejected(master_key: bytes) -> None:
    with pytest.raises(IntegrityError, match="not a modelshield-encrypted file"):
        decrypt_bytes(b"\x80\x04plain pickle bytes", key=master_key)


def test_decrypt_file_writes_nothing_on_failure(tmp_path: Path, master_key: bytes, payload: bytes) -> None:
    src = tmp_path / "m.bin"
    src.write_bytes(payload)
    enc = tmp_path / "m.enc"
    encrypt_file(src, enc, key=master_key, chunk_size=CS)
    bad = bytearray(enc.read_bytes())
    bad[-1] ^= 1  # last tag: the first chunks decrypt fine, the failure comes at the very end
    enc.write_bytes(bytes(bad))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(IntegrityError, match="chunk 3"):
        decrypt_file(enc, out_dir / "m.bin", key=master_key)
    assert list(out_dir.iterdir()) == []  # no output, no temp file


def test_file_round_trip_and_no_clobber(tmp_path: Path, master_key: bytes, payload: bytes) -> None:
    src, enc, out = tmp_path / "m.bin", tmp_path / "m.enc", tmp_path / "m.out"
    src.write_bytes(payload)
    encrypt_file(src, enc, key=master_key)
    assert crypto.is_encrypted(enc) and not crypto.is_encrypted(src)
    assert bytes(decrypt_file_to_bytes(enc, key=master_key)) == payload
    assert decrypt_file(enc, out, key=master_key) == len(payload)
    assert out.read_bytes() == payload
    with pytest.raises(OutputError, match="already exists"):
        decrypt_file(enc, out, key=master_key)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.enc", "m.out"]


def test_rotation_rewrap_only_keeps_the_payload(tmp_path: Path, master_key: bytes, payload: bytes) -> None:
    src, enc = tmp_path / "m.bin", tmp_path / "m.enc"
    src.write_bytes(payload)
    encrypt_file(src, enc, key=master_key, chunk_size=CS)
    before = enc.read_bytes()
    new_key = os.urandom(32)
    rotate_file(enc, old_key=master_key, new_key=new_key, rewrap_only=True)
    after = enc.read_bytes()
    assert after[HEADER_LEN:] == before[HEADER_LEN:]  # payload bytes identical: not re-encrypted
    assert after[:24] == before[:24]  # fixed header (AAD of every chunk) unchanged
    assert after[24:HEADER_LEN] != before[24:HEADER_LEN]  # key section rewrapped
    assert bytes(decrypt_file_to_bytes(enc, key=new_key)) == payload
    with pytest.raises(IntegrityError, match="wrong key"):
        decrypt_file_to_bytes(enc, key=master_key)
    # to a passphrase and back, out of place
    enc2 = tmp_path / "m2.enc"
    rotate_file(enc, enc2, old_key=new_key, new_passphrase="rotated passphrase", scrypt=FAST_SCRYPT,
                rewrap_only=True)
    assert enc2.read_bytes()[HEADER_LEN:] == before[HEADER_LEN:]
    assert bytes(decrypt_file_to_bytes(enc2, passphrase="rotated passphrase")) == payload


def _data_key(blob: bytes, secret: dict) -> bytes:
    return crypto._unwrap(crypto.parse_header(blob[:HEADER_LEN]), secret.get("key"), secret.get("passphrase"))


def _forge(rotated: bytes, old_data_key: bytes, plain: bytes) -> bytes:
    """What someone with the old key and an old copy can build: the rotated file's (public) header,
    followed by chunks of their choice sealed under the old data key."""
    hdr = crypto.parse_header(rotated[:HEADER_LEN])
    aead = AESGCM(old_data_key)
    parts = [plain[i:i + hdr.chunk_size] for i in range(0, len(plain), hdr.chunk_size)] or [b""]
    body = b"".join(aead.encrypt(crypto._nonce(hdr.nonce_prefix, i, i == len(parts) - 1), c, hdr.fixed)
                    for i, c in enumerate(parts))
    return rotated[:HEADER_LEN] + body


_SECRETS = [
    ({"key": b"\x01" * 32}, {"key": b"\x02" * 32}),
    ({"key": b"\x03" * 32}, {"passphrase": "new passphrase", "scrypt": FAST_SCRYPT}),
    ({"passphrase": "old passphrase"}, {"key": b"\x04" * 32}),
]


@pytest.mark.parametrize(("old", "new"), _SECRETS)
@pytest.mark.parametrize("size", [0, CS - 1, 3 * CS + 17])
def test_rotation_reencrypts_under_a_fresh_data_key(tmp_path: Path, old: dict, new: dict, size: int) -> None:
    """After rotation the old key and an old copy neither decrypt nor forge the rotated file."""
    data = os.urandom(size)
    old_blob = encrypt_bytes(data, chunk_size=CS, scrypt=FAST_SCRYPT, **old)
    enc = tmp_path / "m.enc"
    enc.write_bytes(old_blob)
    old_secret, new_secret = old, {k: v for k, v in new.items() if k != "scrypt"}
    hdr = rotate_file(enc, old_key=old_secret.get("key"), old_passphrase=old_secret.get("passphrase"),
                      new_key=new_secret.get("key"), new_passphrase=new_secret.get("passphrase"),
                      scrypt=new.get("scrypt"))
    rotated = enc.read_bytes()
    assert bytes(decrypt_bytes(rotated, **new_secret)) == data
    old_hdr = crypto.parse_header(old_blob[:HEADER_LEN])
    assert hdr.nonce_prefix != old_hdr.nonce_prefix  # fresh nonce prefix
    old_dk, new_dk = _data_key(old_blob, old_secret), _data_key(rotated, new_secret)
    assert old_dk != new_dk  # fresh data key
    assert rotated[HEADER_LEN:] != old_blob[HEADER_LEN:]  # the payload was re-encrypted
    with pytest.raises(IntegrityError):
        decrypt_bytes(rotated, **old_secret)  # the old key does not open the rotated file
    # the old data key (recoverable from an old copy with the old key) does not open a chunk
    first = rotated[HEADER_LEN:HEADER_LEN + min(SEG, len(rotated) - HEADER_LEN)]
    for prefix in (old_hdr.nonce_prefix, hdr.nonce_prefix):
        with pytest.raises(InvalidTag):
            AESGCM(old_dk).decrypt(crypto._nonce(prefix, 0, len(rotated) - HEADER_LEN <= SEG), first, hdr.fixed)
    # a forgery built from the old data key under the rotated header is refused by the new key
    forged = _forge(rotated, old_dk, b"forged content " * 500)
    with pytest.raises(IntegrityError, match="chunk 0"):
        decrypt_bytes(forged, **new_secret)


def test_rewrap_only_rotation_is_forgeable_as_documented(tmp_path: Path, master_key: bytes) -> None:
    """The documented risk of --rewrap-only: the old data key still opens and forges the file."""
    enc = tmp_path / "m.enc"
    enc.write_bytes(encrypt_bytes(b"model" * 1000, key=master_key, chunk_size=CS))
    old_dk = _data_key(enc.read_bytes(), {"key": master_key})
    new_key = os.urandom(32)
    rotate_file(enc, old_key=master_key, new_key=new_key, rewrap_only=True)
    forged = _forge(enc.read_bytes(), old_dk, b"evil" * 10)
    assert bytes(decrypt_bytes(forged, key=new_key)) == b"evil" * 10


@pytest.mark.parametrize("damage", ["chunk", "truncate", "append", "wrong-key"])
@pytest.mark.parametrize("in_place", [True, False])
def test_failed_rotation_keeps_the_original_and_leaves_nothing(tmp_path: Path, master_key: bytes, payload: bytes,
                                                              damage: str, in_place: bool) -> None:
    enc = tmp_path / "m.enc"
    blob = bytearray(encrypt_bytes(payload, key=master_key, chunk_size=CS))
    old_key = master_key
    if damage == "chunk":
        blob[HEADER_LEN + 2 * SEG + 5] ^= 1
    elif damage == "truncate":
        del blob[-SEG // 2:]
    elif damage == "append":
        blob += b"x"
    else:
        old_key = os.urandom(32)
    enc.write_bytes(bytes(blob))
    out = None if in_place else tmp_path / "rotated.enc"
    with pytest.raises(IntegrityError):
        rotate_file(enc, out, old_key=old_key, new_key=os.urandom(32))
    assert enc.read_bytes() == bytes(blob)  # the original is never lost
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.enc"]  # no temp file, no partial output


def test_rotation_is_streamed(tmp_path: Path, master_key: bytes) -> None:
    """Re-encryption keeps a few chunks in memory whatever the file size."""
    cs = 1 << 16
    src, enc = tmp_path / "big.bin", tmp_path / "big.enc"
    with src.open("wb") as fh:
        for _ in range(64):
            fh.write(os.urandom(1 << 18))  # 16 MiB
    encrypt_file(src, enc, key=master_key, chunk_size=cs)
    new_key = os.urandom(32)
    tracemalloc.start()
    try:
        rotate_file(enc, old_key=master_key, new_key=new_key)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, f"peak {peak / 2**20:.1f} MiB to rotate a 16 MiB file"
    assert bytes(decrypt_file_to_bytes(enc, key=new_key)) == src.read_bytes()


def test_rotation_with_wrong_old_key_changes_nothing(tmp_path: Path, master_key: bytes, payload: bytes) -> None:
    src, enc = tmp_path / "m.bin", tmp_path / "m.enc"
    src.write_bytes(payload)
    encrypt_file(src, enc, key=master_key)
    before = enc.read_bytes()
    with pytest.raises(IntegrityError):
        rotate_file(enc, old_key=os.urandom(32), new_key=os.urandom(32))
    assert enc.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.enc"]


class _Zeros(io.RawIOBase):
    """A readable stream of ``n`` (arbitrary) bytes that allocates nothing per read."""

    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        k = min(len(b), self.left)  # the buffer's old content stands in for data: no allocation
        self.left -= k
        return k


class _Sink(io.RawIOBase):
    def __init__(self) -> None:
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.n += len(b)
        return len(b)


def test_streaming_memory_does_not_grow_with_size(master_key: bytes) -> None:
    size = 48 << 20
    cs = 1 << 20
    tracemalloc.start()
    try:
        sink = _Sink()
        crypto.encrypt_stream(_Zeros(size), sink, key=master_key, chunk_size=cs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.n == HEADER_LEN + size + (size // cs) * TAG_LEN
    assert peak < 5 * cs, f"peak {peak / 2**20:.1f} MiB for a {size >> 20} MiB stream"


def test_scrypt_bounds_stop_crafted_headers(payload: bytes) -> None:
    ct = bytearray(encrypt_bytes(payload, passphrase="passphrase!", chunk_size=CS, scrypt=FAST_SCRYPT))
    ct[25] = 40  # log2(N) = 40 would need terabytes: refused before any work
    with pytest.raises(IntegrityError, match="scrypt parameters"):
        decrypt_bytes(bytes(ct), passphrase="passphrase!")


def test_rotation_verify_payload_refuses_a_tampered_payload(tmp_path: Path, master_key: bytes,
                                                             payload: bytes) -> None:
    src, enc = tmp_path / "m.bin", tmp_path / "m.enc"
    src.write_bytes(payload)
    encrypt_file(src, enc, key=master_key, chunk_size=CS)
    bad = bytearray(enc.read_bytes())
    bad[HEADER_LEN + SEG + 7] ^= 1
    enc.write_bytes(bytes(bad))
    # rewrap-only authenticates the header only, unless verify_payload
    rotate_file(enc, tmp_path / "lax.enc", old_key=master_key, new_key=os.urandom(32), rewrap_only=True)
    with pytest.raises(IntegrityError, match="chunk 1"):
        rotate_file(enc, tmp_path / "strict.enc", old_key=master_key, new_key=os.urandom(32), verify_payload=True,
                    rewrap_only=True)
    assert not (tmp_path / "strict.enc").exists()
    with pytest.raises(IntegrityError, match="chunk 1"):  # re-encryption authenticates every chunk
        rotate_file(enc, tmp_path / "default.enc", old_key=master_key, new_key=os.urandom(32))
    assert not (tmp_path / "default.enc").exists()


_FIXED_KEY = bytes(range(32))
_FIXED_CT = encrypt_bytes(bytes(range(256)) * 40, key=_FIXED_KEY, chunk_size=CS)  # 10240 bytes, 3 chunks


@settings(max_examples=200, deadline=None)
@given(pos=st.integers(0, len(_FIXED_CT) - 1), bit=st.integers(0, 7))
def test_any_single_bit_flip_is_detected(pos: int, bit: int) -> None:
    bad = bytearray(_FIXED_CT)
    bad[pos] ^= 1 << bit
    with pytest.raises(IntegrityError):
        decrypt_bytes(bytes(bad), key=_FIXED_KEY)


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(0, len(_FIXED_CT) - 1))
def test_any_truncation_is_detected(cut: int) -> None:
    with pytest.raises(IntegrityError):
        decrypt_bytes(_FIXED_CT[:cut], key=_FIXED_KEY)


def test_directories_are_refused_with_a_hint(tmp_path: Path, master_key: bytes) -> None:
    with pytest.raises(UserError, match="is a directory"):
        encrypt_file(tmp_path, tmp_path / "x.enc", key=master_key)
