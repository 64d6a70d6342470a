"""Key material, pinned where mutation testing found it unpinned (issue #23, ``scripts/mutation.sh keys``).

Each test states a behaviour a user relies on: the exact error a wrong input gets (type and text,
which the CLI prints as its one-line message), the boundaries of what is accepted, the modes of the
files written, the defaults of the public functions, and what overwriting does and does not do.
"""

from __future__ import annotations

import base64
import os
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from modelshield.errors import FormatError, InputNotFoundError, OutputError, UserError
from modelshield.protect import keys
from modelshield.protect.keys import (
    KeyPermissionWarning,
    check_key_permissions,
    generate_signing_key,
    key_from_env,
    key_permission_problem,
    key_to_text,
    load_key_file,
    load_private_key,
    load_public_key,
    parse_key_text,
    passphrase_from_env,
    public_pem,
    write_key_file,
    write_signing_keypair,
)

HINT = "expected 'modelshield-key-v1:<base64>' (make one with: modelshield protect keygen KEYFILE)"
PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


def _no_key_msg(where: str) -> str:
    return f"{where} does not hold a 256-bit key; {HINT}"


def _write_pem_private(path: Path, key: object, password: bytes | None = None) -> Path:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    path.write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, enc))  # type: ignore[attr-defined]
    path.chmod(0o600)
    return path


def _spki(key: object) -> bytes:
    return key.public_bytes(PEM, SPKI)  # type: ignore[attr-defined]


# --- permission messages ---------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "who"), [(0o640, "group"), (0o604, "others"), (0o666, "group and others"),
                                           (0o620, "group"), (0o602, "others"), (0o677, "group and others")])
def test_permission_problem_names_who_can_read_the_key(tmp_path: Path, mode: int, who: str) -> None:
    p = tmp_path / "m.key"
    write_key_file(p)
    p.chmod(mode)
    assert key_permission_problem(p) == (
        f"key file {p} is accessible by {who} (mode {mode:04o}); a secret key must be readable by its owner "
        f"only: chmod 600 {p}")


def test_check_key_permissions_warns_by_default_and_is_silent_for_owner_only(tmp_path: Path) -> None:
    p = tmp_path / "m.key"
    write_key_file(p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_key_permissions(p)  # mode 0600: nothing to say
    p.chmod(0o644)
    with pytest.warns(KeyPermissionWarning) as rec:
        check_key_permissions(p)  # the default is a warning, not a refusal
    assert [str(w.message) for w in rec] == [key_permission_problem(p)]


def _under_mutmut() -> bool:
    # mutmut 3 wraps every function of the mutated module in a trampoline whose frames sit between
    # the caller and the function, so a warning's stacklevel cannot point at the caller there.
    return hasattr(keys, "x_check_key_permissions__mutmut_orig")


@pytest.mark.skipif(_under_mutmut(), reason="mutmut's trampolines add stack frames")
def test_permission_warning_points_at_the_callers_line(tmp_path: Path) -> None:
    p = tmp_path / "m.key"
    write_key_file(p)
    p.chmod(0o640)
    priv = _write_pem_private(tmp_path / "s.pem", ed25519.Ed25519PrivateKey.generate())
    priv.chmod(0o640)
    for load, path in ((load_key_file, p), (load_private_key, priv), (load_public_key, priv)):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            load(path)
        assert len(rec) == 1 and rec[0].category is KeyPermissionWarning
        assert rec[0].filename == __file__, load.__name__  # the user's code, not modelshield's


@pytest.mark.parametrize("load", [load_key_file, load_private_key, load_public_key], ids=lambda f: f.__name__)
def test_permission_warning_is_not_attributed_to_modelshields_key_module(tmp_path: Path, load) -> None:  # type: ignore[no-untyped-def]
    # Weaker than the test above but valid under mutmut too: the warning never blames keys.py itself
    # (stacklevel 1 would, and under mutmut's trampolines so would stacklevel 4).
    p = tmp_path / "secret.pem"
    if load is load_key_file:
        write_key_file(p)
    else:
        _write_pem_private(p, ed25519.Ed25519PrivateKey.generate())
    p.chmod(0o604)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        load(p)
    assert [w.category for w in rec] == [KeyPermissionWarning]
    assert Path(rec[0].filename).resolve().parent != Path(keys.__file__).resolve().parent, rec[0].filename


# --- key text ---------------------------------------------------------------------------------------


def test_key_to_text_refuses_a_wrong_length_with_the_length() -> None:
    with pytest.raises(UserError) as exc:
        key_to_text(b"k" * 31)
    assert str(exc.value) == "a master key has 32 bytes, got 31"
    key = os.urandom(32)
    assert key_to_text(key) == "modelshield-key-v1:" + base64.b64encode(key).decode()


def test_parse_key_text_refuses_base64_with_characters_outside_the_alphabet() -> None:
    key = os.urandom(32)
    b64 = base64.b64encode(key).decode()
    assert parse_key_text(b64, where="w") == key
    # a lenient decoder would drop the stray characters and accept these as the same key
    for bad in (b64[:20] + "*" + b64[20:], b64[:10] + " " + b64[10:], "$" + b64, b64[:-1] + "!="):
        with pytest.raises(UserError) as exc:
            parse_key_text("modelshield-key-v1:" + bad, where="the key")
        assert str(exc.value) == _no_key_msg("the key")


def test_parse_key_text_error_names_where_and_how_to_make_a_key() -> None:
    for bad in ("", "abc", "zz" * 32, base64.b64encode(os.urandom(16)).decode()):
        with pytest.raises(UserError) as exc:
            parse_key_text(bad, where="key file /k")
        assert str(exc.value) == _no_key_msg("key file /k")


# --- key files -------------------------------------------------------------------------------------


def test_load_key_file_missing_and_folder_messages(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError) as exc:
        load_key_file(tmp_path / "missing.key")
    assert str(exc.value) == f"key file not found: {tmp_path / 'missing.key'}"
    with pytest.raises(InputNotFoundError) as exc:
        load_key_file(tmp_path)
    assert str(exc.value) == f"key file {tmp_path} is a folder, not a file"


@pytest.mark.parametrize("form", ["hex", "hex-newline", "b64", "b64-newline", "prefixed"])
def test_load_key_file_parses_text_forms_that_are_not_32_bytes_long(tmp_path: Path, form: str) -> None:
    key = os.urandom(32)
    text = {"hex": key.hex(), "hex-newline": key.hex() + "\n", "b64": base64.b64encode(key).decode(),
            "b64-newline": base64.b64encode(key).decode() + "\n", "prefixed": key_to_text(key)}[form]
    p = tmp_path / "k.key"
    p.write_text(text)
    p.chmod(0o600)
    assert load_key_file(p) == key


def test_load_key_file_32_raw_bytes_are_the_key(tmp_path: Path) -> None:
    p = tmp_path / "raw.key"
    key = os.urandom(32)
    p.write_bytes(key)
    p.chmod(0o600)
    assert load_key_file(p) == key


def test_load_key_file_errors_name_the_file(tmp_path: Path) -> None:
    p = tmp_path / "bin.key"
    p.write_bytes(b"\xff\xfe" + os.urandom(40))  # not ASCII, not 32 bytes
    p.chmod(0o600)
    with pytest.raises(UserError) as exc:
        load_key_file(p)
    assert str(exc.value) == f"key file {p} is neither a modelshield key nor 32 raw bytes"
    p.write_text("modelshield-key-v1:notakey\n")
    with pytest.raises(UserError) as exc:
        load_key_file(p)
    assert str(exc.value) == _no_key_msg(f"key file {p}")


def test_key_from_env_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MS_TEST_KEY", "not a key")
    with pytest.raises(UserError) as exc:
        key_from_env("MS_TEST_KEY")
    assert str(exc.value) == _no_key_msg("environment variable MS_TEST_KEY")
    monkeypatch.setenv("MS_TEST_KEY", "")
    with pytest.raises(UserError) as exc:
        key_from_env("MS_TEST_KEY")
    assert str(exc.value) == "environment variable MS_TEST_KEY is not set or empty; it must hold the key"


def test_passphrase_from_env_length_boundary_and_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MS_TEST_PW", raising=False)
    with pytest.raises(UserError) as exc:
        passphrase_from_env("MS_TEST_PW")
    assert str(exc.value) == "environment variable MS_TEST_PW is not set or empty; it must hold the passphrase"
    monkeypatch.setenv("MS_TEST_PW", "1234567")  # 7 characters: refused
    with pytest.raises(UserError) as exc:
        passphrase_from_env("MS_TEST_PW")
    assert str(exc.value) == "the passphrase in MS_TEST_PW is too short (at least 8 characters)"
    monkeypatch.setenv("MS_TEST_PW", "12345678")  # 8 characters: the minimum
    assert passphrase_from_env("MS_TEST_PW") == b"12345678"
    monkeypatch.setenv("MS_TEST_PW", "pässwört€")  # 9 characters, UTF-8 bytes
    assert passphrase_from_env("MS_TEST_PW") == "pässwört€".encode()


# --- writing key files -----------------------------------------------------------------------------


def test_write_key_file_writes_the_given_key(tmp_path: Path) -> None:
    key = os.urandom(32)
    p = tmp_path / "given.key"
    assert write_key_file(p, key) == key
    assert p.read_text() == key_to_text(key) + "\n"
    assert load_key_file(p) == key


def test_write_key_file_force_overwrites_and_without_force_refuses(tmp_path: Path) -> None:
    p = tmp_path / "k.key"
    first = write_key_file(p)
    with pytest.raises(OutputError) as exc:
        write_key_file(p)
    assert str(exc.value) == f"output {p} already exists"
    assert exc.value.cli_message() == f"output {p} already exists; pass --force to overwrite it"
    assert load_key_file(p) == first
    second = write_key_file(p, force=True)
    assert second != first and load_key_file(p) == second
    assert p.stat().st_mode & 0o777 == 0o600
    assert sorted(x.name for x in tmp_path.iterdir()) == ["k.key"]  # no temp file left


def test_write_key_file_into_a_missing_folder_is_an_output_error(tmp_path: Path) -> None:
    p = tmp_path / "nowhere" / "k.key"
    with pytest.raises(OutputError) as exc:
        write_key_file(p)
    assert str(exc.value) == f"cannot write {p}: folder {tmp_path / 'nowhere'} does not exist"
    assert sorted(x.name for x in tmp_path.iterdir()) == []


def test_write_key_file_relative_path_writes_in_the_current_folder(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    key = write_key_file("rel.key")
    assert load_key_file(tmp_path / "rel.key") == key
    assert sorted(x.name for x in tmp_path.iterdir()) == ["rel.key"]


def test_a_failed_write_keeps_its_own_error_even_when_the_temp_file_is_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_replace(src: object, dst: object) -> None:
        os.unlink(src)  # type: ignore[arg-type]  # e.g. a temp-file cleaner ran in between
        raise PermissionError(13, "denied by the test")

    monkeypatch.setattr(keys.os, "replace", failing_replace)
    with pytest.raises(OutputError, match=r"cannot write .*k\.key: denied by the test"):
        write_key_file(tmp_path / "k.key")
    assert sorted(x.name for x in tmp_path.iterdir()) == []


# --- signing keys ----------------------------------------------------------------------------------


def test_signing_key_defaults_are_ed25519(tmp_path: Path) -> None:
    assert isinstance(generate_signing_key(), ed25519.Ed25519PrivateKey)
    key = write_signing_keypair(tmp_path / "s.pem", tmp_path / "s.pub")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert isinstance(load_private_key(tmp_path / "s.pem"), ed25519.Ed25519PrivateKey)
    assert isinstance(load_public_key(tmp_path / "s.pub"), ed25519.Ed25519PublicKey)


def test_unknown_signing_key_type_message() -> None:
    with pytest.raises(UserError) as exc:
        generate_signing_key("rsa")  # type: ignore[arg-type]
    assert str(exc.value) == "unknown signing key type 'rsa'; expected ed25519 or ecdsa-p256"


def test_signing_keypair_modes(tmp_path: Path) -> None:
    priv, pub = tmp_path / "s.pem", tmp_path / "s.pub"
    key = write_signing_keypair(priv, pub, "ecdsa-p256")
    assert priv.stat().st_mode & 0o777 == 0o600
    assert pub.stat().st_mode & 0o777 == 0o644
    assert pub.read_bytes() == public_pem(key)


@pytest.mark.parametrize("existing", ["private", "public"])
def test_signing_keypair_refuses_to_overwrite_without_force(tmp_path: Path, existing: str) -> None:
    priv, pub = tmp_path / "s.pem", tmp_path / "s.pub"
    target = priv if existing == "private" else pub
    target.write_bytes(b"keep me")
    with pytest.raises(OutputError) as exc:
        write_signing_keypair(priv, pub)
    assert str(exc.value) == f"output {target} already exists"
    assert exc.value.cli_message() == f"output {target} already exists; pass --force to overwrite it"
    assert target.read_bytes() == b"keep me"
    assert sorted(x.name for x in tmp_path.iterdir()) == [target.name]  # the other half was not written


def test_signing_keypair_force_overwrites_both(tmp_path: Path) -> None:
    priv, pub = tmp_path / "s.pem", tmp_path / "s.pub"
    first = write_signing_keypair(priv, pub)
    second = write_signing_keypair(priv, pub, force=True)
    assert _spki(first.public_key()) != _spki(second.public_key())
    assert _spki(load_private_key(priv).public_key()) == _spki(second.public_key())
    assert pub.read_bytes() == public_pem(second)
    assert priv.stat().st_mode & 0o777 == 0o600 and pub.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()], ids=lambda c: c.name)
def test_nist_curves_are_accepted_private_and_public(tmp_path: Path, curve: ec.EllipticCurve) -> None:
    k = ec.generate_private_key(curve)
    priv = _write_pem_private(tmp_path / "k.pem", k)
    pub = tmp_path / "k.pub"
    pub.write_bytes(_spki(k.public_key()))
    assert _spki(load_private_key(priv).public_key()) == _spki(k.public_key())
    assert _spki(load_public_key(pub)) == _spki(k.public_key())


def test_other_curves_are_refused_with_the_file_named(tmp_path: Path) -> None:
    k = ec.generate_private_key(ec.SECP256K1())
    priv = _write_pem_private(tmp_path / "k1.pem", k)
    pub = tmp_path / "k1.pub"
    pub.write_bytes(_spki(k.public_key()))
    for load, path in ((load_private_key, priv), (load_public_key, pub)):
        with pytest.raises(FormatError) as exc:
            load(path)
        assert str(exc.value) == f"{path}: unsupported curve secp256k1; use Ed25519 or ECDSA P-256"


def test_rsa_keys_are_refused_with_their_type_named(tmp_path: Path) -> None:
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = _write_pem_private(tmp_path / "rsa.pem", k)
    pub = tmp_path / "rsa.pub"
    pub.write_bytes(_spki(k.public_key()))
    with pytest.raises(FormatError) as exc:
        load_private_key(priv)
    assert str(exc.value) == f"{priv}: unsupported key type {type(k).__name__}; use Ed25519 or ECDSA P-256"
    with pytest.raises(FormatError) as exc:
        load_public_key(pub)
    assert str(exc.value) == (f"{pub}: unsupported key type {type(k.public_key()).__name__}; "
                              "use Ed25519 or ECDSA P-256")


def test_encrypted_private_keys_need_their_password(tmp_path: Path) -> None:
    k = ed25519.Ed25519PrivateKey.generate()
    priv = _write_pem_private(tmp_path / "enc.pem", k, password=b"pem password")
    loaded = load_private_key(priv, b"pem password")
    assert _spki(loaded.public_key()) == _spki(k.public_key())
    with pytest.raises(UserError) as exc:
        load_private_key(priv)
    msg = str(exc.value)
    assert type(exc.value) is UserError
    assert msg.startswith(f"{priv}: ") and msg.endswith(" (the key is encrypted: give its password)")
    with pytest.raises(FormatError) as exc:
        load_private_key(priv, b"wrong password")
    assert str(exc.value) == f"{priv} is not a PEM private key (or the password is wrong)"


def test_missing_signing_keys_and_non_keys_messages(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError) as exc:
        load_private_key(tmp_path / "none.pem")
    assert str(exc.value) == f"private key not found: {tmp_path / 'none.pem'}"
    with pytest.raises(InputNotFoundError) as exc:
        load_public_key(tmp_path / "none.pub")
    assert str(exc.value) == f"public key not found: {tmp_path / 'none.pub'}"
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    junk.chmod(0o600)
    with pytest.raises(FormatError) as exc:
        load_public_key(junk)
    assert str(exc.value) == f"{junk} is not a PEM public key"
    with pytest.raises(FormatError) as exc:
        load_private_key(junk)
    assert str(exc.value) == f"{junk} is not a PEM private key (or the password is wrong)"


def test_a_loose_private_key_given_as_public_warns_and_gives_its_public_half(tmp_path: Path) -> None:
    k = ec.generate_private_key(ec.SECP384R1())
    priv = _write_pem_private(tmp_path / "k.pem", k)
    priv.chmod(0o644)
    with pytest.warns(KeyPermissionWarning):
        half = load_public_key(priv)
    assert _spki(half) == _spki(k.public_key())
