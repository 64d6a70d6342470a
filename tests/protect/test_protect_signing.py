"""Signing and verification: files, directories, named differences, wrong keys, tampered bundles."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from modelshield.errors import IntegrityError, OutputError
from modelshield.protect.keys import load_private_key, load_public_key
from modelshield.protect.signing import build_manifest, hash_file, sign, verify, verify_bytes


def test_hash_file_matches_hashlib(tmp_path: Path) -> None:
    for size in (0, 1, 1 << 20):
        p = tmp_path / f"f{size}"
        data = os.urandom(size)
        p.write_bytes(data)
        assert hash_file(p) == hashlib.sha256(data).hexdigest()


def test_sign_verify_file(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    model = tmp_path / "model.pt"
    model.write_bytes(os.urandom(5000))
    sig = sign(model, load_private_key(priv))
    assert sig == tmp_path / "model.pt.sig"
    res = verify(model, load_public_key(pub))
    assert res.files == 1
    with pytest.raises(OutputError, match="already exists"):
        sign(model, load_private_key(priv))
    data = bytearray(model.read_bytes())
    data[1234] ^= 1
    model.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"model.pt does not match its signature: changed: model.pt"):
        verify(model, load_public_key(pub))


def test_sign_verify_directory_names_each_difference(model_dir: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    sig = sign(model_dir, load_private_key(priv))
    assert sig == model_dir / "model.sig"
    res = verify(model_dir, load_public_key(pub))
    assert res.files == 4  # .git and the signature itself are not part of the manifest
    (model_dir / ".git" / "HEAD").write_text("changed")  # ignored
    verify(model_dir, load_public_key(pub))

    part = model_dir / "shards" / "part-1.bin"
    original = part.read_bytes()
    part.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(IntegrityError, match=r"changed: shards/part-1\.bin$"):
        verify(model_dir, load_public_key(pub))
    part.write_bytes(original)

    (model_dir / "extra.bin").write_bytes(b"new")
    with pytest.raises(IntegrityError, match=r"added \(not signed\): extra\.bin$"):
        verify(model_dir, load_public_key(pub))
    (model_dir / "extra.bin").unlink()

    (model_dir / "config.json").unlink()
    with pytest.raises(IntegrityError, match=r"removed: config\.json$"):
        verify(model_dir, load_public_key(pub))


def test_wrong_key_is_rejected(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    from modelshield.protect.keys import write_signing_keypair

    priv, _ = keypair
    kind = "ed25519" if "ed25519" in priv.name else "ecdsa-p256"
    write_signing_keypair(tmp_path / "other.pem", tmp_path / "other.pub", kind)
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights")
    sign(model, load_private_key(priv))
    with pytest.raises(IntegrityError, match="made with a different key"):
        verify(model, load_public_key(tmp_path / "other.pub"))


def test_altered_statement_is_rejected(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights")
    sig = sign(model, load_private_key(priv))
    bundle = json.loads(sig.read_text())
    stmt = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    # an attacker re-points the signed digest at their own file content
    evil = hashlib.sha256(b"evil").hexdigest()
    stmt["predicate"]["resources"][0]["digest"] = evil
    stmt["subject"][0]["digest"]["sha256"] = hashlib.sha256(bytes.fromhex(evil)).hexdigest()
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    sig.write_text(json.dumps(bundle))
    model.write_bytes(b"evil")
    with pytest.raises(IntegrityError, match="bad signature"):
        verify(model, load_public_key(pub))


def test_missing_signature_and_bytes_verification(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights")
    with pytest.raises(IntegrityError, match="does not exist"):
        verify(model, load_public_key(pub))
    sig = sign(model, load_private_key(priv))
    verify_bytes(b"weights", "m.bin", load_public_key(pub), signature=sig)
    with pytest.raises(IntegrityError, match="changed"):
        verify_bytes(b"weightz", "m.bin", load_public_key(pub), signature=sig)


def test_symlinks_are_refused(model_dir: Path, keypair: tuple[Path, Path]) -> None:
    (model_dir / "link.bin").symlink_to(model_dir / "config.json")
    with pytest.raises(IntegrityError, match="symbolic link"):
        build_manifest(model_dir)


def test_directory_hashing_threads_agree(model_dir: Path) -> None:
    assert build_manifest(model_dir, workers=1).files == build_manifest(model_dir, workers=4).files


def test_signature_outside_the_model_does_not_hide_a_same_named_file(tmp_path: Path, model_dir: Path,
                                                                      keypair: tuple[Path, Path],
                                                                      monkeypatch) -> None:
    priv, pub = keypair
    monkeypatch.chdir(tmp_path)
    sign(model_dir, load_private_key(priv), signature="model.sig")  # ./model.sig, outside model/
    verify(model_dir, load_public_key(pub), signature="model.sig")
    (model_dir / "model.sig").write_text("planted")  # a file of that name inside the model is not exempt
    with pytest.raises(IntegrityError, match=r"added \(not signed\): model\.sig"):
        verify(model_dir, load_public_key(pub), signature="model.sig")


def test_user_ignore_paths_are_model_relative(model_dir: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    sign(model_dir, load_private_key(priv), ignore_paths=["config.json"])
    (model_dir / "config.json").write_text("edited freely")
    assert verify(model_dir, load_public_key(pub)).files == 3


# --- keys loaded while the model hashes (a key *function* instead of a key) ---------------------


def test_key_functions_sign_and_verify_like_keys(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    model = tmp_path / "model"
    model.mkdir()
    for i in range(5):
        (model / f"shard-{i}.bin").write_bytes(os.urandom(300_000))
    sig = sign(model, lambda: load_private_key(priv))
    res = verify(model, lambda: load_public_key(pub))
    assert res.files == 5 and res.signature == sig
    assert res.root_digest == verify(model, load_public_key(pub)).root_digest
    (model / "shard-3.bin").write_bytes(b"changed")
    with pytest.raises(IntegrityError, match=r"changed: shard-3\.bin"):
        verify(model, lambda: load_public_key(pub))


def test_a_failing_key_function_stops_the_hashing_and_writes_nothing(tmp_path: Path) -> None:
    import threading

    from modelshield.protect import _hashing

    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(8 << 20))
    failed = threading.Event()
    outcomes: list[str] = []
    real = _hashing.hash_range

    def slow(path: Path, start: int = 0, end: int | None = None, stop: threading.Event | None = None) -> str:
        failed.wait(10)  # the key has failed before the first block is read
        assert stop is not None and stop.wait(10)  # ... and sign() has seen it
        try:
            digest = real(path, start, end, stop)
        except _hashing.HashingStopped:
            outcomes.append("stopped")
            raise
        outcomes.append("hashed")
        return digest

    def bad_key() -> None:
        try:
            raise OutputError("private key not found: nowhere.pem")
        finally:
            failed.set()

    import unittest.mock

    with unittest.mock.patch.object(_hashing, "hash_range", slow), \
            pytest.raises(OutputError, match="private key not found"):
        sign(model, bad_key)
    assert outcomes == ["stopped"]
    assert not (tmp_path / "model.bin.sig").exists()


def test_stop_event_abandons_a_hash_between_blocks(tmp_path: Path) -> None:
    import threading

    from modelshield.protect._hashing import HashingStopped, hash_range

    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(4 << 20))
    stop = threading.Event()
    assert hash_range(f, stop=stop) == hashlib.sha256(f.read_bytes()).hexdigest()
    stop.set()
    with pytest.raises(HashingStopped):
        hash_range(f, stop=stop)


def test_bad_signature_is_reported_before_any_difference(tmp_path: Path, ec_keypair: tuple[Path, Path]) -> None:
    """With early hashing the verdict order stays: a wrong key or altered statement is the error even
    when the model also changed, and a tiny-shard statement is checked before anything is planned."""
    priv, _ = ec_keypair
    other_priv, other_pub = tmp_path / "o.pem", tmp_path / "o.pub.pem"
    from modelshield.protect.keys import write_signing_keypair

    write_signing_keypair(other_priv, other_pub, "ecdsa-p256")
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(100_000))
    sign(model, load_private_key(priv))
    model.write_bytes(os.urandom(100_000))
    with pytest.raises(IntegrityError, match="bad signature"):
        verify(model, lambda: load_public_key(other_pub))
    # a statement naming shards under 1 MiB is checked before anything is planned (a wrong key here)
    sign(model, load_private_key(priv), serialization="shards", shard_size=4096, force=True)
    from modelshield.protect import signing

    planned: list[object] = []
    real_plan = signing._plan

    def spy(*args: object, **kw: object) -> object:
        planned.append(args)
        return real_plan(*args, **kw)  # type: ignore[arg-type]

    import unittest.mock

    with unittest.mock.patch.object(signing, "_plan", spy), pytest.raises(IntegrityError, match="bad signature"):
        verify(model, lambda: load_public_key(other_pub))
    assert planned == []
