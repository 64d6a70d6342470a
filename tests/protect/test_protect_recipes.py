"""protect.recipes and protect.signer without the CLI: picking the one secret, making keys, rotation's
up-front checks, the public header, and signing/verifying with key files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelshield.errors import IntegrityError, OutputError, UserError
from modelshield.protect.crypto import decrypt_file, encrypt_file
from modelshield.protect.keys import key_to_text, load_key_file, load_private_key, load_public_key
from modelshield.protect.recipes import (
    check_chunk_mib,
    create_key,
    describe_container,
    resolve_secret,
    rotate,
    rotation_summary,
)
from modelshield.protect.signer import sign_with_key_file, unsigned_warning, verify_with_key_file
from modelshield.protect.signing import Verification


@pytest.fixture
def key_file(tmp_path: Path) -> tuple[Path, bytes]:
    made = create_key(tmp_path / "master.key")
    return made.path, load_key_file(made.path)


@pytest.mark.parametrize("given", [{}, {"key_file": "k", "key_env": "E"}, {"key_env": "E", "passphrase_env": "P"},
                                   {"key_file": "k", "key_env": "E", "passphrase_env": "P"}])
def test_exactly_one_secret(given: dict[str, str]) -> None:
    with pytest.raises(UserError) as exc:
        resolve_secret(**given)
    assert f"{len(given)} given" in str(exc.value) and "--" not in str(exc.value)
    assert exc.value.cli_hint == "give exactly one of --key-file, --key-env or --passphrase-env"


def test_the_role_names_the_secret_and_its_flags() -> None:
    with pytest.raises(UserError) as exc:
        resolve_secret(role="new")
    assert "exactly one new secret" in str(exc.value)
    assert exc.value.cli_hint == "give exactly one of --new-key-file, --new-key-env or --new-passphrase-env"


def test_each_source(key_file: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    path, key = key_file
    assert resolve_secret(path) == (key, None)
    monkeypatch.setenv("MS_TEST_KEY", key_to_text(key))
    assert resolve_secret(key_env="MS_TEST_KEY") == (key, None)
    monkeypatch.setenv("MS_TEST_PASS", "correct horse battery")
    assert resolve_secret(passphrase_env="MS_TEST_PASS") == (None, b"correct horse battery")


def test_a_readable_key_file_warns_or_is_refused(key_file: tuple[Path, bytes]) -> None:
    path, key = key_file
    os.chmod(path, 0o644)
    seen: list[str] = []
    assert resolve_secret(path, warn=seen.append) == (key, None)
    assert len(seen) == 1 and "chmod 600" in seen[0]
    with pytest.raises(Exception) as exc:
        resolve_secret(path, strict=True)
    assert exc.value.exit_code == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(("mib", "size"), [(1, 1 << 20), (64, 64 << 20)])
def test_chunk_sizes(mib: int, size: int) -> None:
    assert check_chunk_mib(mib) == size


@pytest.mark.parametrize("mib", [0, 65, -1])
def test_chunk_sizes_out_of_range(mib: int) -> None:
    with pytest.raises(UserError) as exc:
        check_chunk_mib(mib)
    assert exc.value.cli_hint == "--chunk-mib" and "--" not in str(exc.value)


@pytest.mark.parametrize("kind", ["aes", "AES-256", "master", "symmetric"])
def test_create_master_key(tmp_path: Path, kind: str) -> None:
    made = create_key(tmp_path / "k", kind)
    assert made.kind == "aes" and made.public_path is None
    assert len(load_key_file(made.path)) == 32 and made.path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(OutputError):
        create_key(made.path, kind)
    create_key(made.path, kind, force=True)


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_create_signing_pair(tmp_path: Path, kind: str) -> None:
    made = create_key(tmp_path / "sig", kind)
    assert made.kind == kind and made.public_path == tmp_path / "sig.pub"
    load_private_key(made.path)
    load_public_key(made.public_path)
    other = create_key(tmp_path / "sig2", kind, public_out=tmp_path / "elsewhere.pem")
    assert other.public_path == tmp_path / "elsewhere.pem" and other.public_path.is_file()


def test_unknown_key_type(tmp_path: Path) -> None:
    with pytest.raises(UserError) as exc:
        create_key(tmp_path / "k", "rsa")
    assert "unknown key type 'rsa'" in str(exc.value) and exc.value.cli_hint == "--type"
    assert not (tmp_path / "k").exists()


def test_rotate_checks_before_any_work(tmp_path: Path, key_file: tuple[Path, bytes]) -> None:
    _, key = key_file
    src, out = tmp_path / "m.enc", tmp_path / "taken.enc"
    encrypt_file(_plain(tmp_path), src, key=key)
    out.write_bytes(b"old")
    before = src.read_bytes()
    new = os.urandom(32)
    with pytest.raises(UserError) as exc:
        rotate(src, old_key=key, new_key=new, verify_payload=True)
    assert exc.value.cli_hint == "--verify applies to --rewrap-only"
    with pytest.raises(OutputError, match="already exists"):
        rotate(src, out, old_key=key, new_key=new)
    assert src.read_bytes() == before and out.read_bytes() == b"old"


@pytest.mark.parametrize("rewrap_only", [False, True])
def test_rotate_in_place_and_to_another_file(tmp_path: Path, key_file: tuple[Path, bytes], rewrap_only: bool) -> None:
    _, key = key_file
    plain = _plain(tmp_path)
    src = tmp_path / "m.enc"
    encrypt_file(plain, src, key=key)
    new = os.urandom(32)
    hdr = rotate(src, tmp_path / "r.enc", old_key=key, new_key=new, rewrap_only=rewrap_only,
                 verify_payload=rewrap_only)
    assert describe_container(tmp_path / "r.enc")["key_id"] == hdr.key_id.hex()
    decrypt_file(tmp_path / "r.enc", tmp_path / "r.out", key=new)
    assert (tmp_path / "r.out").read_bytes() == plain.read_bytes()
    rotate(src, src, old_key=key, new_key=new)  # the same path: in place, no output check
    with pytest.raises(IntegrityError):
        decrypt_file(src, tmp_path / "old.out", key=key)


def test_rotation_summary_states_the_rewrap_risk() -> None:
    assert "old copy still opens it" in rotation_summary(True)
    assert rotation_summary(False) == "re-encrypted under a fresh data key"


def test_describe_container_needs_no_key(tmp_path: Path, key_file: tuple[Path, bytes]) -> None:
    _, key = key_file
    encrypt_file(_plain(tmp_path), tmp_path / "m.enc", key=key, chunk_size=2 << 20)
    info = describe_container(tmp_path / "m.enc")
    assert info["cipher"] == "AES-256-GCM (STREAM chunks)" and info["chunk_size"] == 2 << 20
    assert info["key"] == "master key" and info["scrypt"] is None


def test_sign_and_verify_with_key_files(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    model = _plain(tmp_path)
    sig = sign_with_key_file(model, priv)
    assert sig == tmp_path / "plain.bin.sig" and sig.is_file()
    res = verify_with_key_file(model, pub)
    assert res.files == 1 and unsigned_warning(res) is None
    model.write_bytes(b"changed")
    with pytest.raises(IntegrityError):
        verify_with_key_file(model, pub)


def test_sign_shards_and_a_readable_private_key(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    priv, pub = keypair
    os.chmod(priv, 0o644)
    seen: list[str] = []
    sig = sign_with_key_file(_plain(tmp_path), priv, shards=True, warn=seen.append, signature=tmp_path / "s.sig")
    assert sig == tmp_path / "s.sig" and len(seen) == 1
    res = verify_with_key_file(tmp_path / "plain.bin", pub, signature=sig)
    assert res.serialization.startswith("shard")
    with pytest.raises(Exception) as exc:
        sign_with_key_file(tmp_path / "plain.bin", priv, strict=True, force=True)
    assert exc.value.exit_code == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(("n", "tail"), [(1, "a0"), (10, "a9"), (11, "a9 and 1 more"), (25, "a9 and 15 more")])
def test_unsigned_warning_names_ten_then_counts(n: int, tail: str) -> None:
    res = Verification(path=Path("m"), signature=Path("m.sig"), files=1, key_type="ed25519", root_digest="0" * 64,
                       manifest=None, unsigned=tuple(f"a{i}" for i in range(n)))  # type: ignore[arg-type]
    text = unsigned_warning(res)
    assert text is not None and text.startswith(f"{n} unsigned file(s) present in paths the signature leaves out: a0")
    assert text.endswith(tail) and text.count(", ") == min(n, 10) - 1


def _plain(tmp_path: Path) -> Path:
    p = tmp_path / "plain.bin"
    p.write_bytes(os.urandom(100_000))
    return p
