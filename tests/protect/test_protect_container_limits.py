"""Container limits: scrypt cost ceiling (attacker-chosen header), chunk-size range on both sides,
the nonce layout, ``is_encrypted`` on unreadable paths, and outputs that are directories.

Each class of input is a family of generated cases; every case here failed (or was unpinned) before
the ceiling and the symmetric checks existed.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import pytest

from modelshield.errors import IntegrityError, OutputError, UserError
from modelshield.protect import crypto
from modelshield.protect.crypto import (
    FIXED_LEN,
    HEADER_LEN,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    SCRYPT_LOG2_N_RANGE,
    SCRYPT_MAX_ENV,
    SCRYPT_P_RANGE,
    SCRYPT_R_RANGE,
    ScryptParams,
    decrypt_bytes,
    decrypt_file,
    encrypt_bytes,
    encrypt_file,
    is_encrypted,
    rotate_file,
)

FAST = ScryptParams(log2_n=10, r=8, p=1)
PW = "a passphrase"
_CEILING = crypto.DEFAULT_SCRYPT_MAX_MIB << 20


def _with_params(blob: bytes, log2_n: int, r: int, p: int) -> bytes:
    out = bytearray(blob)
    out[FIXED_LEN + 1:FIXED_LEN + 4] = bytes([log2_n, r, p])
    return bytes(out)


def _over_ceiling() -> list[tuple[int, int, int]]:
    """In-range header values whose cost 128*N*r*p exceeds the default ceiling."""
    grid = itertools.product(range(17, 23), (1, 8, 16, 32), (1, 2, 4, 16))
    cases = [c for c in grid if 128 * (1 << c[0]) * c[1] * c[2] > _CEILING]
    return cases[:: max(1, len(cases) // 12)]  # a spread of a dozen: N-bound, r-bound and p-bound ones


_OUT_OF_RANGE = [(0, 8, 1), (9, 8, 1), (23, 8, 1), (40, 8, 1), (255, 255, 255), (17, 0, 1), (17, 33, 1),
                 (17, 8, 0), (17, 8, 17), (10, 1, 255)]


@pytest.fixture(scope="module")
def pw_blob() -> bytes:
    return encrypt_bytes(os.urandom(5000), passphrase=PW, chunk_size=MIN_CHUNK_SIZE, scrypt=FAST)


@pytest.mark.parametrize("params", _over_ceiling() + _OUT_OF_RANGE, ids=str)
def test_crafted_scrypt_cost_is_refused_before_deriving(pw_blob: bytes, params: tuple[int, int, int]) -> None:
    bad = _with_params(pw_blob, *params)
    t0 = time.perf_counter()
    with pytest.raises(IntegrityError, match=r"scrypt parameters (cost too much|out of range)"):
        decrypt_bytes(bad, passphrase=PW)
    assert time.perf_counter() - t0 < 0.5  # refused, not derived (the cheapest case here is 512 MiB)


def test_over_ceiling_cli_is_exit_3_one_line(tmp_path: Path, pw_blob: bytes, capsys, monkeypatch) -> None:
    from modelshield.cli import main

    enc = tmp_path / "crafted.enc"
    enc.write_bytes(_with_params(pw_blob, 22, 32, 16))
    monkeypatch.setenv("MS_PW", PW)
    t0 = time.perf_counter()
    rc = main(["protect", "decrypt", str(enc), str(tmp_path / "out"), "--passphrase-env", "MS_PW"])
    err = capsys.readouterr().err.strip()
    assert rc == 3 and time.perf_counter() - t0 < 2
    assert err.count("\n") == 0 and err.startswith("error: ") and "ceiling" in err
    assert not (tmp_path / "out").exists()


def test_the_ceiling_is_configurable_and_validated(pw_blob: bytes, monkeypatch) -> None:
    assert bytes(decrypt_bytes(pw_blob, passphrase=PW))  # 1 MiB cost: under the default
    monkeypatch.setenv(SCRYPT_MAX_ENV, "0")
    with pytest.raises(UserError, match=SCRYPT_MAX_ENV):
        decrypt_bytes(pw_blob, passphrase=PW)
    for bad in ("lots", "-1", "1.5", str(crypto.HARD_SCRYPT_MAX_MIB + 1)):
        monkeypatch.setenv(SCRYPT_MAX_ENV, bad)
        with pytest.raises(UserError, match=SCRYPT_MAX_ENV):
            crypto.scrypt_ceiling()
    monkeypatch.setenv(SCRYPT_MAX_ENV, "1")  # exactly this file's cost (2**10 * 8 * 128 = 1 MiB): accepted
    assert bytes(decrypt_bytes(pw_blob, passphrase=PW))
    with pytest.raises(UserError, match="ceiling of 1 MiB"):  # nor written above it
        encrypt_bytes(b"x", passphrase=PW, scrypt=ScryptParams(log2_n=11, r=8, p=1))
    monkeypatch.delenv(SCRYPT_MAX_ENV)
    strong = encrypt_bytes(b"x", passphrase=PW, scrypt=ScryptParams(log2_n=11, r=8, p=1))  # 2 MiB
    assert crypto.parse_header(strong[:HEADER_LEN]).scrypt == ScryptParams(log2_n=11, r=8, p=1)
    monkeypatch.setenv(SCRYPT_MAX_ENV, "1")
    with pytest.raises(IntegrityError, match="ceiling of 1 MiB"):
        decrypt_bytes(strong, passphrase=PW)
    monkeypatch.setenv(SCRYPT_MAX_ENV, "2")
    assert bytes(decrypt_bytes(strong, passphrase=PW)) == b"x"


@pytest.mark.parametrize("params", [*_over_ceiling()[:4], ScryptParams(log2_n=9, r=8, p=1)], ids=str)
def test_encryption_refuses_a_cost_decryption_would_refuse(params: object) -> None:
    p = params if isinstance(params, ScryptParams) else ScryptParams(log2_n=params[0], r=params[1], p=params[2])
    t0 = time.perf_counter()
    with pytest.raises(UserError, match="scrypt parameters"):
        encrypt_bytes(b"data", passphrase=PW, scrypt=p)
    assert time.perf_counter() - t0 < 0.5


def _edges(rng: tuple[int, int]) -> list[tuple[int, bool]]:
    lo, hi = rng
    return [(lo - 1, False), (lo, True), (hi, True), (hi + 1, False)]


@pytest.mark.parametrize(("field", "value", "ok"), [
    *[("log2_n", v, ok) for v, ok in _edges(SCRYPT_LOG2_N_RANGE)],
    *[("r", v, ok) for v, ok in _edges(SCRYPT_R_RANGE)],
    *[("p", v, ok) for v, ok in _edges(SCRYPT_P_RANGE)],
])
def test_scrypt_validate_boundaries(field: str, value: int, ok: bool) -> None:
    base = {"log2_n": 10, "r": 1, "p": 1}
    params = ScryptParams(**{**base, field: value})
    huge = 1 << 60  # isolate the range bounds from the cost ceiling
    if ok:
        params.validate(ceiling=huge)
        params.validate(writing=True, ceiling=huge)
    else:
        with pytest.raises(IntegrityError, match="out of range"):
            params.validate(ceiling=huge)
        with pytest.raises(UserError, match="out of range"):
            params.validate(writing=True, ceiling=huge)


@pytest.mark.parametrize("params", [FAST, ScryptParams(), ScryptParams(log2_n=15, r=4, p=3)], ids=str)
def test_scrypt_cost_boundary_is_inclusive(params: ScryptParams) -> None:
    assert params.cost() == 128 * (1 << params.log2_n) * params.r * params.p
    params.validate(ceiling=params.cost())
    with pytest.raises(IntegrityError, match="ceiling"):
        params.validate(ceiling=params.cost() - 1)


# --- chunk size: encryption refuses what decryption refuses ---------------------------------------


@pytest.mark.parametrize("size", [0, 1, MIN_CHUNK_SIZE - 1, MAX_CHUNK_SIZE + 1, 1 << 31, -MIN_CHUNK_SIZE])
def test_encryption_refuses_chunk_sizes_decryption_refuses(size: int) -> None:
    with pytest.raises(UserError, match="chunk size"):
        encrypt_bytes(b"data", key=bytes(32), chunk_size=size)
    with pytest.raises(UserError, match="chunk size"):
        crypto._new_header(data_key=bytes(32), key=bytes(32), passphrase=None, chunk_size=size, scrypt=None)
    # and a header carrying it (where it fits the field) is refused by the reader
    if 0 <= size < 1 << 32:
        blob = bytearray(encrypt_bytes(b"data", key=bytes(32), chunk_size=MIN_CHUNK_SIZE))
        blob[12:16] = size.to_bytes(4, "big")
        with pytest.raises(IntegrityError, match="chunk size"):
            crypto.parse_header(bytes(blob))


@pytest.mark.parametrize("size", [MIN_CHUNK_SIZE, MIN_CHUNK_SIZE + 1, MAX_CHUNK_SIZE])
def test_chunk_size_range_is_inclusive_both_ways(size: int) -> None:
    hdr = crypto._new_header(data_key=bytes(32), key=bytes(32), passphrase=None, chunk_size=size, scrypt=None)
    assert crypto.parse_header(hdr.to_bytes()).chunk_size == size
    if size < 1 << 20:
        data = os.urandom(2 * size + 3)
        assert bytes(decrypt_bytes(encrypt_bytes(data, key=bytes(32), chunk_size=size), key=bytes(32))) == data


# --- the nonce layout (the on-disk format; the vectors pin it too) ----------------------------------


@pytest.mark.parametrize(("index", "last"), [(0, False), (0, True), (1, False), (255, True), (256, False),
                                             ((1 << 32) - 1, True)])
def test_nonce_is_prefix_4_byte_index_and_last_flag(index: int, last: bool) -> None:
    prefix = bytes(range(1, 8))
    n = crypto._nonce(prefix, index, last)
    assert len(n) == 12 and n[:7] == prefix
    assert int.from_bytes(n[7:11], "big") == index and n[11:] == (b"\x01" if last else b"\x00")


def test_nonce_index_overflow_is_refused() -> None:
    with pytest.raises(UserError, match="2\\*\\*32 chunks"):
        crypto._nonce(bytes(7), 1 << 32, False)


# --- is_encrypted and unreadable paths -------------------------------------------------------------


def test_is_encrypted_answers_false_for_what_cannot_be_read(tmp_path: Path) -> None:
    enc = tmp_path / "m.enc"
    enc.write_bytes(encrypt_bytes(b"x", key=bytes(32)))
    assert is_encrypted(enc) and is_encrypted(str(enc)) and is_encrypted(enc.read_bytes())
    assert is_encrypted(bytearray(enc.read_bytes())) and is_encrypted(memoryview(enc.read_bytes()))
    folder = tmp_path / "folder"
    folder.mkdir()
    (tmp_path / "short").write_bytes(crypto.MAGIC[:-1])
    for p in (folder, tmp_path / "missing", tmp_path / "short", tmp_path / "missing" / "deeper"):
        assert is_encrypted(p) is False
    for b in (b"", crypto.MAGIC[:5], b"PK\x03\x04" + crypto.MAGIC):
        assert is_encrypted(b) is False


# --- outputs that are directories: one clear error, never a raw IsADirectoryError ----------------


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("op", ["encrypt", "decrypt", "rotate", "rotate-rewrap"])
def test_an_output_that_is_a_directory_is_an_output_error(tmp_path: Path, op: str, force: bool) -> None:
    key = bytes(32)
    src, enc, outdir = tmp_path / "m.bin", tmp_path / "m.enc", tmp_path / "out"
    src.write_bytes(b"model bytes")
    encrypt_file(src, enc, key=key)
    outdir.mkdir()
    before = enc.read_bytes()
    with pytest.raises(OutputError, match="is a directory"):
        if op == "encrypt":
            encrypt_file(src, outdir, key=key, force=force)
        elif op == "decrypt":
            decrypt_file(enc, outdir, key=key, force=force)
        else:
            rotate_file(enc, outdir, old_key=key, new_key=os.urandom(32), force=force,
                        rewrap_only=op == "rotate-rewrap")
    assert list(outdir.iterdir()) == [] and enc.read_bytes() == before
