"""Parallel hashing and the OpenSSF ``shards`` serialization (our side; cross-tool checks are in
``test_protect_interop.py``)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from modelshield.errors import InputNotFoundError, IntegrityError, UserError
from modelshield.protect import _hashing
from modelshield.protect.keys import load_private_key, load_public_key
from modelshield.protect.signing import (
    DEFAULT_SHARD_SIZE,
    _ec_hash,
    _pae,
    build_manifest,
    default_shard_size,
    sign,
    verify,
    verify_bytes,
)

SHARD = 4096


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _statement(sig: Path) -> dict[str, Any]:
    return json.loads(base64.b64decode(json.loads(sig.read_text())["dsseEnvelope"]["payload"]))


def _resign(sig: Path, stmt: dict[str, Any], priv: Path) -> None:
    """Replace the signed statement with ``stmt``, validly signed by ``priv`` (a trusted signer's
    mistakes, or another tool's output, must still be checked)."""
    key = load_private_key(priv)
    payload = json.dumps(stmt).encode()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.sign(_pae(payload))
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        raw = key.sign(_pae(payload), ec.ECDSA(_ec_hash(key.public_key())))
    bundle = json.loads(sig.read_text())
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(raw).decode()
    sig.write_text(json.dumps(bundle))


@pytest.fixture
def big_model(tmp_path: Path) -> Path:
    """A directory with one multi-shard file and many small files in nested folders."""
    d = tmp_path / "big-model"
    (d / "weights").mkdir(parents=True)
    (d / "weights" / "model.safetensors").write_bytes(os.urandom(10 * SHARD + 123))
    for i in range(60):
        sub = d / "tok" / f"g{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"piece-{i:03d}.json").write_bytes(os.urandom(1 + i * 37))
    (d / "config.json").write_text('{"layers": 2}')
    return d


# --- the hashing engine ---------------------------------------------------------------------------


def test_hash_range_matches_hashlib_on_every_slice(tmp_path: Path) -> None:
    data = os.urandom(_hashing.CHUNK + 5000)  # crosses a read-buffer boundary
    f = tmp_path / "f.bin"
    f.write_bytes(data)
    for start, end in [(0, None), (0, len(data)), (1, 2), (100, _hashing.CHUNK + 17), (_hashing.CHUNK, None),
                       (len(data) - 1, len(data))]:
        want = hashlib.sha256(data[start:end]).hexdigest()
        assert _hashing.hash_range(f, start, end) == want, (start, end)


def test_hash_range_refuses_a_file_shorter_than_the_range(tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(b"x" * 100)
    with pytest.raises(IntegrityError, match="changed while it was being hashed"):
        _hashing.hash_range(f, 50, 150)
    with pytest.raises(InputNotFoundError, match="cannot read"):
        _hashing.hash_range(tmp_path / "gone.bin")


def test_hash_jobs_keeps_the_order_given_whatever_runs_first(tmp_path: Path) -> None:
    files = []
    for i, size in enumerate([10, 300_000, 1, 70_000, 0, 5_000]):
        f = tmp_path / f"f{i}"
        f.write_bytes(os.urandom(size))
        files.append(f)
    jobs: list[_hashing.Job] = [(f, 0, None) for f in files]
    want = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    sizes = [f.stat().st_size for f in files]
    assert _hashing.hash_jobs(jobs, workers=1) == want
    assert _hashing.hash_jobs(jobs, workers=4, sizes=sizes) == want
    with pytest.raises(InputNotFoundError, match="missing"):
        _hashing.hash_jobs([*jobs, (tmp_path / "missing", 0, None)], workers=3)


def test_one_big_file_is_hashed_by_several_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # no timing: record which threads hashed the shards of a single file
    f = tmp_path / "ckpt.bin"
    f.write_bytes(os.urandom(64 * SHARD))
    threads: set[str] = set()
    gate = threading.Barrier(2, timeout=10)
    real = _hashing.hash_range

    def spy(path: Path, start: int = 0, end: int | None = None, stop: threading.Event | None = None) -> str:
        threads.add(threading.current_thread().name)
        if start < 2 * SHARD:  # the first two shards wait for each other: both must run at once
            gate.wait()
        return real(path, start, end, stop)

    monkeypatch.setattr(_hashing, "hash_range", spy)
    m = build_manifest(f, shard_size=SHARD, workers=4)
    assert len(m.files) == 64 and len(threads) >= 2
    assert all(name.startswith("modelshield-hash") for name in threads)
    monkeypatch.setattr(_hashing, "hash_range", real)
    assert m.files == build_manifest(f, shard_size=SHARD, workers=1).files


def test_shard_ranges_cut_like_model_signing() -> None:
    # model_signing's _endpoints: every shard_size bytes, a shorter last shard, none for an empty file
    assert _hashing.shard_ranges(0, 10) == []
    assert _hashing.shard_ranges(7, 10) == [(0, 7)]
    assert _hashing.shard_ranges(20, 10) == [(0, 10), (10, 20)]
    assert _hashing.shard_ranges(21, 10) == [(0, 10), (10, 20), (20, 21)]


def test_buffer_ranges_hash_in_memory_slices() -> None:
    data = os.urandom(50_000)
    ranges = _hashing.shard_ranges(len(data), 8192)
    want = [hashlib.sha256(data[s:e]).hexdigest() for s, e in ranges]
    assert _hashing.hash_buffer_ranges(data, ranges, workers=3) == want
    assert _hashing.hash_buffer_ranges(bytearray(data), ranges, workers=1) == want


def test_default_workers_and_shard_size() -> None:
    assert 1 <= _hashing.default_workers() <= _hashing.MAX_WORKERS
    assert default_shard_size(0) == DEFAULT_SHARD_SIZE
    assert default_shard_size(512 << 20) == 16 << 20  # a 512 MiB checkpoint: 32 shards
    assert default_shard_size(64 << 30) == 16 << 20  # 4096 shards
    assert default_shard_size((64 << 30) + 1) == 32 << 20  # never more than 4096 shards
    assert (1 << 40) // default_shard_size(1 << 40) <= 4096


# --- manifests ------------------------------------------------------------------------------------


def test_manifest_is_the_same_with_one_thread_or_many(big_model: Path) -> None:
    for shard_size in (None, SHARD):
        one = build_manifest(big_model, workers=1, shard_size=shard_size)
        many = build_manifest(big_model, workers=8, shard_size=shard_size)
        assert one.files == many.files and list(one.files) == list(many.files)
        assert one.root_digest == many.root_digest


def test_sharded_manifest_lists_every_shard(big_model: Path) -> None:
    m = build_manifest(big_model, shard_size=SHARD)
    weights = big_model / "weights" / "model.safetensors"
    data = weights.read_bytes()
    shards = {n: d for n, d in m.files.items() if n.startswith("weights/")}
    assert len(shards) == 11  # 10 full shards and a 123-byte tail
    for start in range(0, len(data), SHARD):
        end = min(start + SHARD, len(data))
        assert shards[f"weights/model.safetensors:{start}:{end}"] == hashlib.sha256(data[start:end]).hexdigest()
    assert m.serialization == "shards" and len(m.paths()) == 62


def test_resources_are_ordered_by_path_components_then_offset(tmp_path: Path,
                                                              keypair: tuple[Path, Path]) -> None:
    # string order puts "a-c" before "a/b" and "x:16384:..." before "x:4096:..."; the format orders by
    # path components and numeric offsets, and hashes the root in that order
    d = tmp_path / "m"
    (d / "a").mkdir(parents=True)
    (d / "a" / "b").write_bytes(os.urandom(5 * SHARD))
    (d / "a-c").write_bytes(b"c")
    priv, pub = keypair
    sig = sign(d, load_private_key(priv), serialization="shards", shard_size=SHARD)
    names = [r["name"] for r in _statement(sig)["predicate"]["resources"]]
    assert names == [f"a/b:{i * SHARD}:{(i + 1) * SHARD}" for i in range(5)] + ["a-c:0:1"]
    verify(d, load_public_key(pub))


# --- sign / verify with shards --------------------------------------------------------------------


def test_sharded_single_file_names_the_changed_shard(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    model = tmp_path / "model.pt"
    model.write_bytes(os.urandom(6 * SHARD + 10))
    sig = sign(model, load_private_key(priv), serialization="shards", shard_size=SHARD)
    stmt = _statement(sig)
    ser = stmt["predicate"]["serialization"]
    assert ser["method"] == "shards" and ser["shard_size"] == SHARD and isinstance(ser["shard_size"], int)
    assert {r["algorithm"] for r in stmt["predicate"]["resources"]} == {f"sha256-sharded-{SHARD}"}
    assert stmt["predicate"]["resources"][0]["name"] == f".:0:{SHARD}"
    res = verify(model, load_public_key(pub))
    assert res.files == 1 and res.serialization == "shards"
    assert res.root_digest == stmt["subject"][0]["digest"]["sha256"]

    _flip(model, 3 * SHARD + 7)  # one byte in the fourth shard
    with pytest.raises(IntegrityError, match=rf"changed: model\.pt \(bytes {3 * SHARD}-{4 * SHARD}\)$"):
        verify(model, load_public_key(pub))
    _flip(model, 3 * SHARD + 7)
    verify(model, load_public_key(pub))

    with model.open("ab") as fh:
        fh.write(b"!")
    with pytest.raises(IntegrityError, match=rf"changed: model\.pt \(size {6 * SHARD + 11} bytes, signed "
                                             rf"{6 * SHARD + 10} bytes\)"):
        verify(model, load_public_key(pub))


def test_sharded_directory_names_each_difference(big_model: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    sign(big_model, load_private_key(priv), serialization="shards", shard_size=SHARD)
    assert verify(big_model, load_public_key(pub)).files == 62

    weights = big_model / "weights" / "model.safetensors"
    _flip(weights, 0)
    _flip(weights, 9 * SHARD)
    small = big_model / "tok" / "g1" / "piece-005.json"
    _flip(small, 3)
    (big_model / "tok" / "g2" / "piece-006.json").unlink()
    (big_model / "tok" / "new.json").write_text("{}")
    with pytest.raises(IntegrityError) as err:
        verify(big_model, load_public_key(pub))
    msg = str(err.value)
    assert f"changed: weights/model.safetensors (bytes 0-{SHARD}, {9 * SHARD}-{10 * SHARD})" in msg
    assert "changed: tok/g1/piece-005.json (bytes 0-186)" in msg
    assert "removed: tok/g2/piece-006.json" in msg
    assert "added (not signed): tok/new.json" in msg


def test_many_shards_changed_are_summarised(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(8 * SHARD))
    sign(model, load_private_key(priv), serialization="shards", shard_size=SHARD)
    for i in range(5):
        _flip(model, i * SHARD)
    with pytest.raises(IntegrityError, match=r"\(bytes 0-4096, 4096-8192, 8192-12288 and 2 more shards\)"):
        verify(model, load_public_key(pub))


def test_default_shard_size_is_recorded_and_used_to_verify(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(3000))
    sig = sign(model, load_private_key(priv), serialization="shards")
    assert _statement(sig)["predicate"]["serialization"]["shard_size"] == DEFAULT_SHARD_SIZE
    assert verify(model, load_public_key(pub)).manifest.shard_size == DEFAULT_SHARD_SIZE


def test_per_file_stays_the_default(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(3 * SHARD))
    sig = sign(model, load_private_key(priv))
    ser = _statement(sig)["predicate"]["serialization"]
    assert ser["method"] == "files" and "shard_size" not in ser
    assert verify(model, load_public_key(pub)).serialization == "files"


def test_sharded_bytes_verification(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    model = tmp_path / "m.bin"
    data = os.urandom(4 * SHARD + 1)
    model.write_bytes(data)
    sig = sign(model, load_private_key(priv), serialization="shards", shard_size=SHARD)
    assert verify_bytes(data, "m.bin", load_public_key(pub), signature=sig).serialization == "shards"
    bad = bytearray(data)
    bad[SHARD + 1] ^= 1
    with pytest.raises(IntegrityError, match=rf"changed: m\.bin \(bytes {SHARD}-{2 * SHARD}\)"):
        verify_bytes(bad, "m.bin", load_public_key(pub), signature=sig)
    with pytest.raises(IntegrityError, match=r"changed: m\.bin \(size 0 bytes"):
        verify_bytes(b"", "m.bin", load_public_key(pub), signature=sig)


def test_shards_refuse_what_the_format_cannot_represent(tmp_path: Path, model_dir: Path,
                                                       keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    key = load_private_key(priv)
    (model_dir / "shards" / "empty.bin").write_bytes(b"")
    with pytest.raises(UserError, match=r"cannot list empty files \(shards/empty\.bin\)"):
        sign(model_dir, key, serialization="shards")
    assert not (model_dir / "model.sig").exists()
    sign(model_dir, key)  # per file: an empty file is signed like any other
    verify(model_dir, load_public_key(pub))
    (model_dir / "shards" / "empty.bin").unlink()
    (model_dir / "a:b.bin").write_bytes(b"x")
    with pytest.raises(UserError, match=r"file names with ':' \(a:b\.bin\)"):
        sign(model_dir, key, serialization="shards", force=True)


def test_an_added_empty_file_is_named_under_shards(model_dir: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    sign(model_dir, load_private_key(priv), serialization="shards", shard_size=SHARD)
    (model_dir / "planted.py").write_bytes(b"")
    with pytest.raises(IntegrityError, match=r"added \(not signed\): planted\.py \(an empty file"):
        verify(model_dir, load_public_key(pub))


def test_bad_arguments_are_user_errors(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    priv, _ = keypair
    key = load_private_key(priv)
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights")
    with pytest.raises(UserError, match="needs serialization='shards'"):
        sign(model, key, shard_size=SHARD)
    with pytest.raises(UserError, match="unknown serialization"):
        sign(model, key, serialization="tensors")  # type: ignore[arg-type]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(UserError, match="shard size must be a positive number"):
            sign(model, key, serialization="shards", shard_size=bad)  # type: ignore[arg-type]


def test_special_files_are_refused(model_dir: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(model_dir / "pipe")
    with pytest.raises(IntegrityError, match="not a regular file"):
        build_manifest(model_dir)


# --- statements a trusted key signed but that are wrong -------------------------------------------


def _sharded(tmp_path: Path, priv: Path) -> tuple[Path, Path, dict[str, Any]]:
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(3 * SHARD))
    sig = sign(model, load_private_key(priv), serialization="shards", shard_size=SHARD)
    return model, sig, _statement(sig)


def test_integral_float_shard_size_is_accepted(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    # model_signing writes the predicate through a protobuf Struct: "shard_size": 4096.0
    priv, pub = keypair
    model, sig, stmt = _sharded(tmp_path, priv)
    stmt["predicate"]["serialization"]["shard_size"] = float(SHARD)
    _resign(sig, stmt, priv)
    assert verify(model, load_public_key(pub)).manifest.shard_size == SHARD


@pytest.mark.parametrize("change", ["fractional", "string", "zero", "algorithm", "misaligned", "oversized",
                                    "duplicate", "root", "hash_type", "short_digest"])
def test_inconsistent_sharded_statements_are_refused(tmp_path: Path, keypair: tuple[Path, Path],
                                                     change: str) -> None:
    priv, pub = keypair
    model, sig, stmt = _sharded(tmp_path, priv)
    ser, res = stmt["predicate"]["serialization"], stmt["predicate"]["resources"]
    if change == "fractional":
        ser["shard_size"] = SHARD + 0.5
    elif change == "string":
        ser["shard_size"] = str(SHARD)
    elif change == "zero":
        ser["shard_size"] = 0
    elif change == "algorithm":
        res[0]["algorithm"] = "sha256"
    elif change == "misaligned":
        res[1]["name"] = f".:{SHARD + 1}:{2 * SHARD}"
    elif change == "oversized":
        res[1]["name"] = f".:{SHARD}:{3 * SHARD}"
    elif change == "duplicate":
        res.append(dict(res[0]))
    elif change == "root":
        stmt["subject"][0]["digest"]["sha256"] = "00" * 32
    elif change == "hash_type":
        ser["hash_type"] = "blake2"
    elif change == "short_digest":
        res[0]["digest"] = "abcd"
    _resign(sig, stmt, priv)
    with pytest.raises(IntegrityError, match=r"m\.bin\.sig: "):
        verify(model, load_public_key(pub))
