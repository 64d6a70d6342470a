"""Cross-tool verification with the OpenSSF ``model-signing`` package (key mode).

``model_signing`` is a bench/dev-only dependency (``pip install model-signing pyOpenSSL``); these tests
skip when it is absent. Its key mode supports elliptic-curve keys only, so Ed25519 interoperability is
one-way by design of that tool: the last test pins that reason.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("OpenSSL", reason="model_signing needs pyOpenSSL")
model_signing = pytest.importorskip("model_signing")

from modelshield.errors import IntegrityError  # noqa: E402
from modelshield.protect.keys import load_private_key, load_public_key  # noqa: E402
from modelshield.protect.signing import sign, verify  # noqa: E402

pytestmark = pytest.mark.peers


def _their_sign(model: Path, sig: Path, priv: Path) -> None:
    model_signing.signing.Config().use_elliptic_key_signer(private_key=priv).sign(model, sig)


def _their_verify(model: Path, sig: Path, pub: Path) -> None:
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(model, sig)


@pytest.mark.parametrize("target", ["file", "dir"])
def test_theirs_verifies_with_ours(tmp_path: Path, model_dir: Path, ec_keypair: tuple[Path, Path],
                                   target: str) -> None:
    priv, pub = ec_keypair
    model = model_dir if target == "dir" else model_dir / "shards" / "part-0.bin"
    sig = tmp_path / "their.sig"
    _their_sign(model, sig, priv)
    res = verify(model, load_public_key(pub), signature=sig)
    assert res.files == (4 if target == "dir" else 1)
    victim = model_dir / "shards" / "part-0.bin"
    victim.write_bytes(victim.read_bytes() + b"!")
    with pytest.raises(IntegrityError, match=r"part-0\.bin"):
        verify(model, load_public_key(pub), signature=sig)


@pytest.mark.parametrize("target", ["file", "dir"])
def test_ours_verifies_with_theirs(tmp_path: Path, model_dir: Path, ec_keypair: tuple[Path, Path],
                                   target: str) -> None:
    priv, pub = ec_keypair
    model = model_dir if target == "dir" else model_dir / "config.json"
    sig = sign(model, load_private_key(priv))  # default location: inside the directory / next to the file
    _their_verify(model, sig, pub)
    (model_dir / "config.json").write_text('{"layers": 3}')
    with pytest.raises(ValueError, match=r"config\.json|Signature mismatch"):
        _their_verify(model, sig, pub)


def test_their_cli_and_ours_on_a_directory(tmp_path: Path, model_dir: Path, ec_keypair: tuple[Path, Path]) -> None:
    priv, pub = ec_keypair
    cli = Path(sys.executable).with_name("model_signing")
    if not cli.exists():
        pytest.skip("model_signing CLI not installed next to this interpreter")
    sig = model_dir / "model.sig"  # their CLI excludes the signature from the manifest, as we do
    env = {**os.environ, "MODEL_SIGNING_LOG_LEVEL": "ERROR"}
    subprocess.run([str(cli), "sign", "key", "--private_key", str(priv), "--signature", str(sig),
                    str(model_dir)], check=True, capture_output=True, env=env)
    verify(model_dir, load_public_key(pub))
    sig.unlink()
    sign(model_dir, load_private_key(priv))
    out = subprocess.run([str(cli), "verify", "key", "--public_key", str(pub), "--signature", str(sig),
                          str(model_dir)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ed25519_is_one_way_because_their_key_mode_is_ec_only(tmp_path: Path, model_dir: Path) -> None:
    from modelshield.protect.keys import write_signing_keypair

    priv, pub = tmp_path / "ed.pem", tmp_path / "ed.pub"
    write_signing_keypair(priv, pub, "ed25519")
    sig = sign(model_dir, load_private_key(priv))
    verify(model_dir, load_public_key(pub))
    # model_signing 1.1: use_elliptic_key_verifier loads the PEM and its _check_supported_ec_key reads
    # key.curve, which an Ed25519 key does not have: it fails before looking at the signature.
    with pytest.raises(AttributeError, match="curve"):
        _their_verify(model_dir, sig, pub)


# --- shards serialization and parallel hashing, both ways -----------------------------------------

SHARD = 4096


def _their_shard_sign(model: Path, sig: Path, priv: Path, shard_size: int | None = SHARD) -> None:
    hashing = model_signing.hashing.Config().use_shard_serialization(
        **({} if shard_size is None else {"shard_size": shard_size}))
    model_signing.signing.Config().use_elliptic_key_signer(private_key=priv).set_hashing_config(hashing).sign(
        model, sig)


def _resources(sig: Path) -> list[tuple[str, str, str]]:
    stmt = json.loads(base64.b64decode(json.loads(sig.read_text())["dsseEnvelope"]["payload"]))
    return [(r["name"], r["algorithm"], r["digest"]) for r in stmt["predicate"]["resources"]]


@pytest.fixture
def mixed_model(tmp_path: Path) -> Path:
    """Many small files in nested folders, one multi-shard file, and names whose string order differs
    from the format's path-component order ("a-c" < "a/b" as strings, not as paths)."""
    d = tmp_path / "mixed"
    (d / "a").mkdir(parents=True)
    (d / "a" / "b.safetensors").write_bytes(os.urandom(12 * SHARD + 99))
    (d / "a-c.json").write_text('{"x": 1}')
    for i in range(40):
        sub = d / "tok" / f"g{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i}.txt").write_bytes(os.urandom(1 + 29 * i))
    return d


@pytest.mark.parametrize("target", ["file", "dir"])
def test_our_shards_verify_with_their_api(tmp_path: Path, mixed_model: Path, ec_keypair: tuple[Path, Path],
                                          target: str) -> None:
    priv, pub = ec_keypair
    model = mixed_model if target == "dir" else mixed_model / "a" / "b.safetensors"
    sig = tmp_path / "ours.sig"
    sign(model, load_private_key(priv), signature=sig, serialization="shards", shard_size=SHARD)
    _their_verify(model, sig, pub)  # their verifier reads method and shard size from the signature
    victim = mixed_model / "a" / "b.safetensors"
    data = bytearray(victim.read_bytes())
    data[5 * SHARD] ^= 1
    victim.write_bytes(bytes(data))
    name = "a/b.safetensors" if target == "dir" else "."  # a single-file model's resources are named "."
    with pytest.raises(ValueError, match=rf"Hash mismatch for \W*{re.escape(name)}:{5 * SHARD}:{6 * SHARD}\W"):
        _their_verify(model, sig, pub)


@pytest.mark.parametrize("target", ["file", "dir"])
def test_their_shards_verify_with_ours(tmp_path: Path, mixed_model: Path, ec_keypair: tuple[Path, Path],
                                       target: str) -> None:
    priv, pub = ec_keypair
    model = mixed_model if target == "dir" else mixed_model / "a" / "b.safetensors"
    sig = tmp_path / "their.sig"
    _their_shard_sign(model, sig, priv)
    res = verify(model, load_public_key(pub), signature=sig)
    assert res.serialization == "shards" and res.manifest.shard_size == SHARD
    ours = tmp_path / "ours.sig"
    sign(model, load_private_key(priv), signature=ours, serialization="shards", shard_size=SHARD)
    assert _resources(ours) == _resources(sig)  # names (path:start:end), order, algorithm, digests
    assert res.files == (42 if target == "dir" else 1)
    victim = mixed_model / "a" / "b.safetensors"
    data = bytearray(victim.read_bytes())
    data[7 * SHARD + 3] ^= 1
    victim.write_bytes(bytes(data))
    label = "a/b.safetensors" if target == "dir" else "b.safetensors"
    with pytest.raises(IntegrityError, match=rf"changed: {label} \(bytes {7 * SHARD}-{8 * SHARD}\)"):
        verify(model, load_public_key(pub), signature=sig)


def test_their_default_1gb_shards_verify_with_ours(tmp_path: Path, mixed_model: Path,
                                                   ec_keypair: tuple[Path, Path]) -> None:
    priv, pub = ec_keypair
    sig = tmp_path / "their.sig"
    _their_shard_sign(mixed_model, sig, priv, shard_size=None)
    assert verify(mixed_model, load_public_key(pub), signature=sig).manifest.shard_size == 1_000_000_000


def test_per_file_signatures_of_a_mixed_directory_both_ways(tmp_path: Path, mixed_model: Path,
                                                            ec_keypair: tuple[Path, Path]) -> None:
    # parallel per-file hashing, and resource order by path components ("a/b..." before "a-c.json")
    priv, pub = ec_keypair
    theirs = tmp_path / "their.sig"
    _their_sign(mixed_model, theirs, priv)
    assert verify(mixed_model, load_public_key(pub), signature=theirs).files == 42
    ours = tmp_path / "ours.sig"
    sign(mixed_model, load_private_key(priv), signature=ours)
    _their_verify(mixed_model, ours, pub)
    # same statement content, same order: the same model gets the same root digest from both tools
    assert _resources(ours) == _resources(theirs)
    assert _resources(ours)[0][0] == "a/b.safetensors"


def test_their_cli_cannot_verify_shards_so_they_are_opt_in(tmp_path: Path, mixed_model: Path,
                                                           ec_keypair: tuple[Path, Path]) -> None:
    # model_signing 1.1.1 `verify key` sets a per-file hashing config (no shard option), so a sharded
    # signature never matches: this is why per-file stays our default
    cli = Path(sys.executable).with_name("model_signing")
    if not cli.exists():
        pytest.skip("model_signing CLI not installed next to this interpreter")
    priv, pub = ec_keypair
    sig = tmp_path / "ours.sig"
    sign(mixed_model, load_private_key(priv), signature=sig, serialization="shards", shard_size=SHARD)
    env = {**os.environ, "MODEL_SIGNING_LOG_LEVEL": "ERROR"}
    out = subprocess.run([str(cli), "verify", "key", "--public_key", str(pub), "--signature", str(sig),
                          str(mixed_model)], capture_output=True, text=True, env=env)
    assert out.returncode == 1 and "Signature mismatch" in out.stderr


def test_their_api_cannot_verify_its_own_shards(tmp_path: Path, mixed_model: Path,
                                                ec_keypair: tuple[Path, Path]) -> None:
    # model_signing 1.1.1 writes "shard_size" through a protobuf Struct (a double, 4096.0) and then
    # passes it to range(): its own sharded signatures fail in its verifier; ours verifies them (above).
    # If this starts passing, model_signing fixed it.
    priv, pub = ec_keypair
    sig = tmp_path / "their.sig"
    _their_shard_sign(mixed_model, sig, priv)
    with pytest.raises(TypeError, match="float"):
        _their_verify(mixed_model, sig, pub)
