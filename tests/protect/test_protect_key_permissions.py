"""Secret key files readable by group/others: a warning by default, refused with strict / --strict
(as ssh refuses an unprotected private key). Public keys are not checked."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from modelshield.cli import main
from modelshield.errors import EXIT_SECURITY
from modelshield.protect.keys import (
    KeyPermissionError,
    KeyPermissionWarning,
    key_permission_problem,
    load_key_file,
    load_private_key,
    load_public_key,
    write_key_file,
    write_signing_keypair,
)

OWNER_ONLY = [0o600, 0o400, 0o700, 0o200, 0o500]
LOOSE = [0o640, 0o644, 0o660, 0o604, 0o606, 0o666, 0o777, 0o610, 0o601, 0o620, 0o602, 0o470]


def _master(tmp_path: Path, mode: int) -> tuple[Path, bytes]:
    p = tmp_path / "master.key"
    key = write_key_file(p)
    os.chmod(p, mode)
    return p, key


def _signing(tmp_path: Path, mode: int) -> tuple[Path, Path]:
    priv, pub = tmp_path / "s.pem", tmp_path / "s.pub"
    write_signing_keypair(priv, pub, "ed25519")
    os.chmod(priv, mode)
    return priv, pub


@pytest.mark.parametrize("mode", OWNER_ONLY, ids=oct)
def test_owner_only_keys_load_silently(tmp_path: Path, mode: int) -> None:
    p, key = _master(tmp_path, mode | 0o400)  # readable by the owner
    priv, _ = _signing(tmp_path, mode | 0o400)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_key_file(p) == key and load_key_file(p, strict=True) == key
        assert isinstance(load_private_key(priv, strict=True), ed25519.Ed25519PrivateKey)
    assert key_permission_problem(p) is None


@pytest.mark.parametrize("mode", LOOSE, ids=oct)
def test_loose_keys_warn_and_strict_refuses(tmp_path: Path, mode: int) -> None:
    p, key = _master(tmp_path, mode)
    priv, _ = _signing(tmp_path, mode)
    for load, path in ((load_key_file, p), (load_private_key, priv)):
        with pytest.warns(KeyPermissionWarning, match=rf"mode {mode:04o}.*chmod 600"):
            loaded = load(path)
        if load is load_key_file:
            assert loaded == key
        else:
            assert isinstance(loaded, ed25519.Ed25519PrivateKey)
        with pytest.raises(KeyPermissionError, match=r"^refused \(strict key permissions\): ") as exc:
            load(path, strict=True)
        assert exc.value.exit_code == EXIT_SECURITY
        assert "--" not in str(exc.value) and exc.value.cli_message().endswith("; refused because of --strict")
    who = key_permission_problem(p)
    assert who is not None
    assert ("group" in who) == bool(mode & 0o070) and ("others" in who) == bool(mode & 0o007)
    seen: list[str] = []
    assert load_key_file(p, warn=seen.append) == key and len(seen) == 1  # a caller-supplied warning sink


def test_public_keys_are_not_checked(tmp_path: Path) -> None:
    _, pub = _signing(tmp_path, 0o600)
    os.chmod(pub, 0o644)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(load_public_key(pub), ed25519.Ed25519PublicKey)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_cli_warns_on_stderr_and_strict_exits_3(tmp_path: Path, capsys, mode: int) -> None:
    key, _ = _master(tmp_path, mode)
    src = tmp_path / "m.bin"
    src.write_bytes(b"weights" * 100)
    rc = main(["protect", "encrypt", str(src), str(tmp_path / "m.enc"), "--key-file", str(key)])
    err = capsys.readouterr().err
    assert rc == 0 and err.startswith("warning: key file") and f"mode {mode:04o}" in err
    rc = main(["protect", "decrypt", str(tmp_path / "m.enc"), str(tmp_path / "m.out"), "--key-file", str(key),
               "--strict"])
    err = capsys.readouterr().err.strip()
    assert rc == 3 and err.startswith("error: refused (strict key permissions): ") and "--strict" in err and "\n" not in err
    assert not (tmp_path / "m.out").exists()
    priv, _ = _signing(tmp_path, mode)
    rc = main(["protect", "sign", str(src), "--private-key", str(priv)])
    assert rc == 0 and "warning: key file" in capsys.readouterr().err
    rc = main(["protect", "sign", str(src), "--private-key", str(priv), "--strict", "--force"])
    assert rc == 3 and "because of --strict" in capsys.readouterr().err
