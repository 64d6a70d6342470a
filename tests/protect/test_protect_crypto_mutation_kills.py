"""Encryption at rest, pinned where mutation testing found it unpinned (issue #23,
``scripts/mutation.sh crypto``).

Each test states a behaviour a user relies on: the exact error (type and one-line text) for each
way a file or an argument can be wrong, the header bytes a file is written with, what ``describe``
reports, overwriting only with ``force``, passphrases given as text or bytes, and streams that
return short reads or more data after an end of file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from pathlib import Path

import pytest

from modelshield import _io
from modelshield.errors import InputNotFoundError, IntegrityError, OutputError, UserError
from modelshield.protect import crypto
from modelshield.protect.crypto import (
    ERR_HEADER,
    ERR_MAGIC,
    FIXED_LEN,
    HEADER_LEN,
    MAGIC,
    SCRYPT_MAX_ENV,
    TAG_LEN,
    ScryptParams,
    decrypt_bytes,
    decrypt_file,
    decrypt_file_to_bytes,
    decrypt_stream,
    encrypt_bytes,
    encrypt_file,
    encrypt_stream,
    iter_decrypt,
    parse_header,
    read_header,
    rewrap_header,
    rotate_file,
)

CS = 4096
SEG = CS + TAG_LEN
FAST = ScryptParams(log2_n=10, r=8, p=1)
FAST2 = ScryptParams(log2_n=11, r=4, p=2)
PW = "pässwort für tests"  # not ASCII: the UTF-8 encoding is part of the format
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _kid(kek: bytes) -> bytes:
    """The documented key id: SHA-256("modelshield.kid.v1" || KEK)[:8]."""
    return hashlib.sha256(b"modelshield.kid.v1" + kek).digest()[:8]


def _truncated(why: str) -> str:
    return f"the file is truncated: {why} (nothing was written)"


def _chunk_msg(i: int) -> str:
    return (f"chunk {i} failed authentication: the file was tampered with, truncated, reordered or extended "
            "(nothing was written)")


def _raises(exc_type: type[Exception], message: str, fn, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """``fn`` raises exactly ``exc_type``, and the line the CLI prints is ``message`` (the library's own
    message is neutral; a CLI hint such as '; pass --force to overwrite it' is added only there)."""
    with pytest.raises(exc_type) as exc:
        fn(*args, **kwargs)
    assert type(exc.value) is exc_type
    assert exc.value.cli_message() == message  # type: ignore[attr-defined]
    if exc.value.cli_hint:  # type: ignore[attr-defined]
        assert str(exc.value) == message.removesuffix("; " + exc.value.cli_hint)  # type: ignore[attr-defined]


class _Parts(io.RawIOBase):
    """A raw stream that returns the given parts one read at a time (split to fit the caller's
    buffer); an empty part is an end of file after which the next parts still follow, as on a
    terminal or a pipe that is written to again."""

    def __init__(self, parts: list[bytes]) -> None:
        super().__init__()
        self._parts = list(parts)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def,override]
        if not self._parts:
            return 0
        part = self._parts[0]
        n = min(len(b), len(part))
        b[:n] = part[:n]
        if n == len(part):
            self._parts.pop(0)
        else:
            self._parts[0] = part[n:]
        return n


def _trickle(data: bytes, step: int = 7) -> _Parts:
    """A stream that returns at most ``step`` bytes per read (a pipe, a socket)."""
    return _Parts([data[i:i + step] for i in range(0, len(data), step)])


# --- scrypt parameters ---------------------------------------------------------------------------


def test_the_hard_ceiling_itself_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCRYPT_MAX_ENV, "2048")
    assert crypto.scrypt_ceiling() == 2048 << 20
    monkeypatch.setenv(SCRYPT_MAX_ENV, "1")
    assert crypto.scrypt_ceiling() == 1 << 20
    monkeypatch.setenv(SCRYPT_MAX_ENV, "2049")
    _raises(UserError, f"{SCRYPT_MAX_ENV}='2049': expected a whole number of MiB from 1 to 2048",
            crypto.scrypt_ceiling)


def test_scrypt_range_messages_when_writing_and_reading() -> None:
    bad = ScryptParams(log2_n=9, r=33, p=1)
    detail = "out of range: log2(N)=9 (allowed 10-22), r=33 (1-32), p=1 (1-16)"
    _raises(UserError, f"scrypt parameters {detail}", bad.validate, writing=True)
    _raises(IntegrityError, f"{ERR_HEADER} (scrypt parameters {detail})", bad.validate)


def test_scrypt_cost_messages_when_writing_and_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SCRYPT_MAX_ENV, raising=False)
    big = ScryptParams(log2_n=18, r=8, p=2)  # 128 * 2**18 * 8 * 2 bytes = 512 MiB
    detail = ("cost too much: N=2^18, r=8, p=2 need 512 MiB x passes, over the ceiling of 256 MiB; refused "
              f"before deriving (raise {SCRYPT_MAX_ENV} only for a file you made with that cost)")
    _raises(UserError, f"scrypt parameters {detail}", big.validate, writing=True)
    _raises(IntegrityError, f"{ERR_HEADER} (scrypt parameters {detail})", big.validate)
    _raises(UserError, f"scrypt parameters {detail.replace('of 256 MiB', 'of 300 MiB')}", big.validate,
            writing=True, ceiling=300 << 20)
    big.validate(ceiling=512 << 20)  # at the ceiling: allowed


# --- headers written and parsed ------------------------------------------------------------------


def test_master_key_header_bytes_and_description() -> None:
    out = io.BytesIO()
    header = encrypt_stream(io.BytesIO(b"x" * 100), out, key=KEY, chunk_size=CS)
    blob = out.getvalue()
    assert header == parse_header(blob) == parse_header(blob[:HEADER_LEN])
    assert header.version == 1 and header.chunk_size == CS and header.kdf == 0 and header.scrypt is None
    assert blob[FIXED_LEN:FIXED_LEN + 20] == bytes(20)  # kdf 0, cost 0/0/0, salt all zero
    assert header.salt == bytes(16)
    assert header.key_id == _kid(KEY) == blob[FIXED_LEN + 20:FIXED_LEN + 28]
    assert len(header.wrapped_key) == 32 + TAG_LEN and header.to_bytes() == blob[:HEADER_LEN]
    want = {"format": "modelshield encrypted container v1", "cipher": "AES-256-GCM (STREAM chunks)",
            "chunk_size": CS, "key": "master key", "scrypt": None, "key_id": _kid(KEY).hex()}
    assert header.describe() == want
    assert parse_header(blob).describe() == want


def test_passphrase_header_bytes_and_description(tmp_path: Path) -> None:
    src, enc = tmp_path / "m.bin", tmp_path / "m.enc"
    src.write_bytes(b"weights" * 1000)
    header = encrypt_file(src, enc, passphrase=PW, chunk_size=CS, scrypt=FAST2)
    parsed = read_header(enc)
    assert header == parsed
    assert parsed.kdf == 1 and parsed.scrypt == FAST2
    blob = enc.read_bytes()
    assert blob[FIXED_LEN:FIXED_LEN + 4] == bytes([1, 11, 4, 2])
    assert blob[FIXED_LEN + 4:FIXED_LEN + 20] == parsed.salt != bytes(16)
    kek = hashlib.scrypt(PW.encode("utf-8"), salt=parsed.salt, n=1 << 11, r=4, p=2, dklen=32)
    assert parsed.key_id == _kid(kek)
    assert parsed.describe() == {
        "format": "modelshield encrypted container v1", "cipher": "AES-256-GCM (STREAM chunks)",
        "chunk_size": CS, "key": "passphrase (scrypt)", "scrypt": {"N": 2048, "r": 4, "p": 2},
        "key_id": _kid(kek).hex()}
    assert bytes(decrypt_file_to_bytes(enc, passphrase=PW)) == b"weights" * 1000


def test_every_passphrase_file_gets_its_own_salt() -> None:
    salts = {parse_header(encrypt_bytes(b"", passphrase=PW, chunk_size=CS, scrypt=FAST)).salt for _ in range(3)}
    assert len(salts) == 3 and bytes(16) not in salts


@pytest.mark.parametrize("form", ["str", "bytes", "bytearray"])
def test_a_passphrase_is_its_utf8_bytes_whatever_its_type(form: str) -> None:
    given = {"str": PW, "bytes": PW.encode("utf-8"), "bytearray": bytearray(PW.encode("utf-8"))}[form]
    blob = encrypt_bytes(b"secret weights", passphrase=given, chunk_size=CS, scrypt=FAST)
    for other in (PW, PW.encode("utf-8")):
        assert bytes(decrypt_bytes(blob, passphrase=other)) == b"secret weights"
    _raises(IntegrityError, "wrong passphrase (or the header's salt/cost was tampered with)",
            decrypt_bytes, blob, passphrase=PW.encode("latin-1"))


def test_chunk_size_message() -> None:
    msg = "chunk size must be between 4096 and 67108864 bytes"
    _raises(UserError, msg, encrypt_bytes, b"", key=KEY, chunk_size=CS - 1)
    _raises(UserError, msg, encrypt_bytes, b"", key=KEY, chunk_size=(1 << 26) + 1)


def test_secret_selection_messages() -> None:
    both = "give exactly one of a key (key file / --key-env) or a passphrase"
    _raises(UserError, both, encrypt_bytes, b"", key=KEY, passphrase=PW, chunk_size=CS)
    _raises(UserError, both, encrypt_bytes, b"", chunk_size=CS)
    raw = encrypt_bytes(b"data", key=KEY, chunk_size=CS)
    pw = encrypt_bytes(b"data", passphrase=PW, chunk_size=CS, scrypt=FAST)
    _raises(UserError, both, decrypt_bytes, raw)
    _raises(IntegrityError, "this file was encrypted with a master key, not a passphrase", decrypt_bytes, raw,
            passphrase=PW)
    _raises(IntegrityError, "this file was encrypted with a passphrase, not a master key", decrypt_bytes, pw,
            key=KEY)
    _raises(UserError, "a master key has 32 bytes, got 16", decrypt_bytes, raw, key=KEY[:16])
    _raises(UserError, "a master key has 32 bytes, got 33", encrypt_bytes, b"", key=KEY + b"!", chunk_size=CS)


def test_a_passphrase_header_without_scrypt_parameters_is_refused() -> None:
    header = parse_header(encrypt_bytes(b"", passphrase=PW, chunk_size=CS, scrypt=FAST))
    broken = dataclasses.replace(header, scrypt=None)
    _raises(IntegrityError, f"{ERR_HEADER} (scrypt parameters missing)", rewrap_header, broken,
            old_passphrase=PW, new_key=KEY)


# --- structural header errors ---------------------------------------------------------------------


def _edit(blob: bytes, offset: int, value: int) -> bytes:
    out = bytearray(blob)
    out[offset] = value
    return bytes(out)


def test_magic_and_header_length_messages() -> None:
    blob = encrypt_bytes(b"abc", key=KEY, chunk_size=CS)
    for bad in (b"", MAGIC[:7], b"PK\x03\x04" + bytes(200), _edit(blob, 0, 0x88)):
        _raises(IntegrityError, ERR_MAGIC, decrypt_bytes, bad, key=KEY)
    for n in (len(MAGIC), len(MAGIC) + 1, HEADER_LEN - 1):
        _raises(IntegrityError, _truncated(f"the header has {n} of {HEADER_LEN} bytes"), parse_header, blob[:n])
        _raises(IntegrityError, _truncated(f"the header has {n} of {HEADER_LEN} bytes"),
                lambda b: list(iter_decrypt(io.BytesIO(b), key=KEY)), blob[:n])


@pytest.mark.parametrize(("offset", "value", "detail"), [
    (8, 2, "unsupported container version 2; this build reads v1"),
    (8, 0, "unsupported container version 0; this build reads v1"),
    (9, 2, "unknown cipher/flags"),   # aead
    (9, 0, "unknown cipher/flags"),
    (10, 1, "unknown cipher/flags"),  # flags, high byte
    (11, 1, "unknown cipher/flags"),  # flags, low byte
    (23, 1, "unknown cipher/flags"),  # reserved
    (14, 0x0f, "chunk size 3840 out of range"),  # 0x00000f00
    (12, 0x05, "chunk size 83890176 out of range"),  # 0x05001000
    (FIXED_LEN, 2, "unknown key derivation 2"),
    (FIXED_LEN + 1, 10, "unknown key derivation 0"),  # a raw-key file with a scrypt cost
    (FIXED_LEN + 3, 1, "unknown key derivation 0"),
])
def test_structural_header_errors_name_the_field(offset: int, value: int, detail: str) -> None:
    blob = encrypt_bytes(os.urandom(5000), key=KEY, chunk_size=CS)
    bad = _edit(blob, offset, value)
    _raises(IntegrityError, f"{ERR_HEADER} ({detail})", decrypt_bytes, bad, key=KEY)
    _raises(IntegrityError, f"{ERR_HEADER} ({detail})", parse_header, bad)


# --- unwrapping ----------------------------------------------------------------------------------


def test_wrong_key_names_both_key_ids() -> None:
    blob = encrypt_bytes(b"data", key=KEY, chunk_size=CS)
    msg = (f"wrong key: this file names key id {_kid(KEY).hex()}, the key given has id {_kid(OTHER_KEY).hex()} "
           "(or the file's header was altered: the key id is authenticated with the content)")
    _raises(IntegrityError, msg, decrypt_bytes, blob, key=OTHER_KEY)


@pytest.mark.parametrize("offset", [16, 22, FIXED_LEN + 28, FIXED_LEN + 39, HEADER_LEN - 1])
def test_right_key_altered_header_is_a_header_error(offset: int) -> None:
    # nonce prefix, wrap nonce or wrapped key changed: the key id still matches the key
    blob = encrypt_bytes(b"data", key=KEY, chunk_size=CS)
    bad = _edit(blob, offset, blob[offset] ^ 0x40)
    _raises(IntegrityError, ERR_HEADER, decrypt_bytes, bad, key=KEY)


def test_nonce_overflow_message() -> None:
    _raises(UserError, "file too large for this chunk size (2**32 chunks)", crypto._nonce, bytes(7), 1 << 32, True)
    assert crypto._nonce(bytes(7), (1 << 32) - 1, True) == bytes(7) + b"\xff\xff\xff\xff\x01"


# --- streams ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, CS - 1, CS, CS + 1, 3 * CS + 5])
def test_short_reads_round_trip(size: int) -> None:
    data = os.urandom(size)
    out = io.BytesIO()
    encrypt_stream(_trickle(data), out, key=KEY, chunk_size=CS)
    blob = out.getvalue()
    assert len(blob) == HEADER_LEN + size + max(1, -(-size // CS)) * TAG_LEN
    assert b"".join(iter_decrypt(_trickle(blob, 13), key=KEY)) == data
    sink = io.BytesIO()
    assert decrypt_stream(_trickle(blob, 5), sink, key=KEY) == size
    assert sink.getvalue() == data


def test_encryption_stops_at_the_first_end_of_file() -> None:
    out = io.BytesIO()
    encrypt_stream(_Parts([b"a" * 100, b"", b"b" * 50]), out, key=KEY, chunk_size=CS)
    assert bytes(decrypt_bytes(out.getvalue(), key=KEY)) == b"a" * 100


def test_decryption_stops_at_the_first_end_of_file() -> None:
    blob = encrypt_bytes(b"a" * 100, key=KEY, chunk_size=CS)
    assert list(iter_decrypt(_Parts([blob, b"", b"more data later"]), key=KEY)) == [b"a" * 100]


def test_truncation_messages_in_memory_and_streamed() -> None:
    blob = encrypt_bytes(os.urandom(CS + 100), key=KEY, chunk_size=CS)  # two chunks
    no_chunk = _truncated("no complete chunk after the header")
    _raises(IntegrityError, no_chunk, decrypt_bytes, blob[:HEADER_LEN], key=KEY)
    _raises(IntegrityError, no_chunk, decrypt_bytes, blob[:HEADER_LEN + TAG_LEN - 1], key=KEY)
    short_last = _truncated("the last chunk is shorter than its tag")
    _raises(IntegrityError, short_last, decrypt_bytes, blob[:HEADER_LEN + SEG + 5], key=KEY)
    _raises(IntegrityError, short_last, decrypt_bytes, blob[:HEADER_LEN + SEG + TAG_LEN - 1], key=KEY)

    def stream(b: bytes) -> list[bytes]:
        return list(iter_decrypt(io.BytesIO(b), key=KEY))

    _raises(IntegrityError, _truncated("chunk 0 is shorter than its tag"), stream, blob[:HEADER_LEN + 5])
    _raises(IntegrityError, _truncated("chunk 1 is shorter than its tag"), stream, blob[:HEADER_LEN + SEG + 5])


def test_a_file_that_changes_size_while_read_is_refused_and_zeroed() -> None:
    # _decrypt_into_memory trusts the size taken before reading (os.fstat for files): a file that
    # shrinks or grows after that must still fail closed, with the chunk named.
    plain = os.urandom(2 * CS + 100)
    blob = encrypt_bytes(plain, key=KEY, chunk_size=CS)  # three chunks
    _raises(IntegrityError, _truncated("the file ended inside chunk 2"), crypto._decrypt_into_memory,
            io.BytesIO(blob[:-5]), len(blob), KEY, None)
    _raises(IntegrityError, _truncated("the file ended inside chunk 1"), crypto._decrypt_into_memory,
            io.BytesIO(blob[:HEADER_LEN + SEG + 10]), len(blob), KEY, None)
    _raises(IntegrityError, _chunk_msg(2) + " (data after the last chunk)", crypto._decrypt_into_memory,
            io.BytesIO(blob + b"x"), len(blob), KEY, None)


def test_a_file_that_grows_while_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    enc = tmp_path / "m.enc"
    blob = encrypt_bytes(os.urandom(CS + 1), key=KEY, chunk_size=CS)  # two chunks
    enc.write_bytes(blob + b"appended after the size was taken")
    real_fstat = os.fstat

    class _Stat:
        def __init__(self, st: os.stat_result) -> None:
            self.st_size = len(blob)
            self.st_mode = st.st_mode

    monkeypatch.setattr(crypto.os, "fstat", lambda fd: _Stat(real_fstat(fd)))
    _raises(IntegrityError, _chunk_msg(1) + " (data after the last chunk)", decrypt_file_to_bytes, enc, key=KEY)


# --- files ---------------------------------------------------------------------------------------


def test_encrypt_and_decrypt_file_overwrite_only_with_force(tmp_path: Path) -> None:
    src, enc, out = tmp_path / "m.bin", tmp_path / "m.enc", tmp_path / "m.out"
    data = os.urandom(3 * CS + 7)
    src.write_bytes(data)
    enc.write_bytes(b"old")
    out.write_bytes(b"old")
    _raises(OutputError, f"output {enc} already exists; pass --force to overwrite it", encrypt_file, src, enc,
            key=KEY, chunk_size=CS)
    assert enc.read_bytes() == b"old"
    encrypt_file(src, enc, key=KEY, chunk_size=CS, force=True)
    _raises(OutputError, f"output {out} already exists; pass --force to overwrite it", decrypt_file, enc, out,
            key=KEY)
    assert out.read_bytes() == b"old"
    assert decrypt_file(enc, out, key=KEY, force=True) == len(data)
    assert out.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.enc", "m.out"]


def test_decrypt_file_returns_the_whole_plaintext_size(tmp_path: Path) -> None:
    enc, out = tmp_path / "m.enc", tmp_path / "m.out"
    data = os.urandom(4 * CS + 1)
    enc.write_bytes(encrypt_bytes(data, key=KEY, chunk_size=CS))
    assert decrypt_file(enc, out, key=KEY) == len(data)
    sink = io.BytesIO()
    assert decrypt_stream(io.BytesIO(enc.read_bytes()), sink, key=KEY) == len(data) == len(sink.getvalue())


def test_encrypt_file_uses_the_passphrase_and_scrypt_cost_given(tmp_path: Path) -> None:
    src, enc = tmp_path / "m.bin", tmp_path / "m.enc"
    src.write_bytes(b"w" * 5000)
    header = encrypt_file(src, enc, passphrase=PW, chunk_size=CS, scrypt=FAST2)
    assert header.kdf == 1 and header.scrypt == FAST2 and read_header(enc).scrypt == FAST2
    assert bytes(decrypt_file_to_bytes(enc, passphrase=PW)) == b"w" * 5000


# --- the re-encryption reader -----------------------------------------------------------------------


def test_plain_reader_serves_uneven_reads_across_chunks() -> None:
    reader = crypto._PlainReader(iter([b"abcdef", b"", b"gh", b"ijklmnop"]))
    assert reader.readable() is True
    got, buf = [], bytearray(4)
    while n := reader.readinto(buf):
        got.append(bytes(buf[:n]))
    assert got == [b"abcd", b"ef", b"gh", b"ijkl", b"mnop"]
    assert reader.readinto(buf) == 0
    buffered = io.BufferedReader(crypto._PlainReader(iter([b"abcdef", b"gh", b"ijklmnop"])), buffer_size=3)
    assert buffered.read(5) == b"abcde" and buffered.read() == b"fghijklmnop"


# --- rotation ------------------------------------------------------------------------------------


def test_rotate_to_an_existing_output_needs_force(tmp_path: Path) -> None:
    enc, dst = tmp_path / "m.enc", tmp_path / "r.enc"
    blob = encrypt_bytes(os.urandom(CS + 3), key=KEY, chunk_size=CS)
    enc.write_bytes(blob)
    dst.write_bytes(b"keep")
    for rewrap_only in (False, True):
        _raises(OutputError, f"output {dst} already exists; pass --force to overwrite it", rotate_file, enc, dst,
                old_key=KEY, new_key=OTHER_KEY, rewrap_only=rewrap_only)
        assert dst.read_bytes() == b"keep" and enc.read_bytes() == blob
    rotate_file(enc, dst, old_key=KEY, new_key=OTHER_KEY, force=True)
    assert bytes(decrypt_file_to_bytes(dst, key=OTHER_KEY)) == bytes(decrypt_bytes(blob, key=KEY))


@pytest.mark.parametrize("rewrap_only", [False, True])
@pytest.mark.parametrize("verify_payload", [False, True])
def test_rotate_between_passphrases_keeps_the_scrypt_cost_given(tmp_path: Path, rewrap_only: bool,
                                                                verify_payload: bool) -> None:
    enc, dst = tmp_path / "m.enc", tmp_path / "r.enc"
    data = os.urandom(2 * CS + 9)
    enc.write_bytes(encrypt_bytes(data, passphrase=PW, chunk_size=CS, scrypt=FAST))
    new = rotate_file(enc, dst, old_passphrase=PW.encode("utf-8"), new_passphrase="the new one", scrypt=FAST2,
                      rewrap_only=rewrap_only, verify_payload=verify_payload)
    assert new.scrypt == FAST2 and read_header(dst) == new
    assert bytes(decrypt_file_to_bytes(dst, passphrase="the new one")) == data
    _raises(IntegrityError, "wrong passphrase (or the header's salt/cost was tampered with)",
            decrypt_file_to_bytes, dst, passphrase=PW)


def test_rewrap_header_from_a_passphrase_keeps_the_payload_and_cost() -> None:
    data = os.urandom(CS + 1)
    blob = encrypt_bytes(data, passphrase=PW, chunk_size=CS, scrypt=FAST)
    new = rewrap_header(parse_header(blob), old_passphrase=PW, new_passphrase="the new one", scrypt=FAST2)
    assert new.scrypt == FAST2 and new.fixed == blob[:FIXED_LEN]
    assert bytes(decrypt_bytes(new.to_bytes() + blob[HEADER_LEN:], passphrase="the new one")) == data


# --- atomic outputs ------------------------------------------------------------------------------


def test_a_missing_input_file_is_named() -> None:
    missing = Path("/nonexistent-modelshield-test/m.bin")
    for op in (lambda: encrypt_file(missing, "out.enc", key=KEY), lambda: decrypt_file(missing, "out", key=KEY),
               lambda: decrypt_file_to_bytes(missing, key=KEY), lambda: read_header(missing),
               lambda: rotate_file(missing, old_key=KEY, new_key=OTHER_KEY)):
        _raises(InputNotFoundError, f"file not found: {missing}", op)


def test_an_output_in_a_missing_folder_is_refused_before_writing(tmp_path: Path) -> None:
    src = tmp_path / "m.bin"
    src.write_bytes(b"w" * 10)
    dst = tmp_path / "nowhere" / "m.enc"
    _raises(OutputError, f"cannot write {dst}: folder {dst.parent} does not exist", encrypt_file, src, dst,
            key=KEY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]


@pytest.mark.parametrize("op", ["encrypt", "decrypt", "rotate", "rotate-rewrap"])
def test_the_temp_file_is_a_hidden_part_file_beside_the_output_and_is_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, op: str) -> None:
    src, enc = tmp_path / "m.bin", tmp_path / "m.enc"
    src.write_bytes(os.urandom(CS + 3))
    encrypt_file(src, enc, key=KEY, chunk_size=CS)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dst = out_dir / ("m.out" if op == "decrypt" else "r.enc")
    seen: list[list[str]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the temp file just before it is renamed onto the output, then the folder
        seen.append(sorted(p.name for p in out_dir.iterdir()))
        real_fsync(fd)

    monkeypatch.setattr(crypto.os, "fsync", fsync)
    if op == "encrypt":
        encrypt_file(src, dst, key=KEY, chunk_size=CS)
    elif op == "decrypt":
        decrypt_file(enc, dst, key=KEY)
    else:
        rotate_file(enc, dst, old_key=KEY, new_key=OTHER_KEY, rewrap_only=op == "rotate-rewrap")
    assert len(seen) == 2 and len(seen[0]) == 1, seen
    name = seen[0][0]
    assert name.startswith(f".{dst.name}.") and name.endswith(".part") and len(name) > len(dst.name) + 7
    assert seen[1] == [dst.name]  # the folder is synced after the rename
    assert sorted(p.name for p in out_dir.iterdir()) == [dst.name]


def test_an_output_created_during_the_write_is_not_clobbered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = tmp_path / "m.bin", tmp_path / "m.enc"
    src.write_bytes(b"w" * 100)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # another writer creates the output while ours is being written
        dst.write_bytes(b"the other writer's file")
        real_fsync(fd)

    monkeypatch.setattr(crypto.os, "fsync", fsync)
    _raises(OutputError, f"output {dst} already exists; pass --force to overwrite it", encrypt_file, src, dst,
            key=KEY)
    assert dst.read_bytes() == b"the other writer's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.enc"]


def test_an_output_folder_that_refuses_temp_files_is_an_output_error(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "m.bin"
    src.write_bytes(b"w" * 10)

    def mkstemp(**kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_io.tempfile, "mkstemp", mkstemp)  # the atomic writer lives in modelshield._io
    _raises(OutputError, f"cannot write in {tmp_path}: Permission denied", encrypt_file, src, tmp_path / "m.enc",
            key=KEY)


def test_rewrap_header_refuses_a_nonce_prefix_of_the_wrong_length() -> None:
    header = parse_header(encrypt_bytes(b"", key=KEY, chunk_size=CS))
    _raises(UserError, "a nonce prefix has 7 bytes, got 5", rewrap_header,
            dataclasses.replace(header, nonce_prefix=b"short"), old_key=KEY, new_key=OTHER_KEY)
