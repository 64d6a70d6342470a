"""Cross-tool verification with the OpenSSF ``model-signing`` package (key mode).

``model_signing`` is a bench/dev-only dependency (``pip install model-signing pyOpenSSL``); these tests
skip when it is absent. Its key mode supports elliptic-curve keys only, so Ed25519 interoperability is
one-way by design of that tool: the last test pins that reason.
"""

from __future__ import annotations

import os
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
