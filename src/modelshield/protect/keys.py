"""Key material: symmetric master keys (file, environment variable, passphrase) and signing keys (PEM).

A symmetric key file is one line of text, ``modelshield-key-v1:<base64 of 32 bytes>``, written with
mode 0600. A key in an environment variable is the same line, or the bare base64 / 64 hex digits.
Passphrases are stretched with scrypt (salt and cost stored in the encrypted file's header).

Signing keys are PEM files: Ed25519 or ECDSA P-256 (PKCS#8 private, SubjectPublicKeyInfo public).

Secret key files (master keys, private signing keys) must be readable by their owner only, as ssh
demands of private keys: a file with any group/other permission bit (``mode & 0o077``) is accepted
with a :class:`KeyPermissionWarning` (the CLI prints ``warning: ...``), and refused with
:class:`KeyPermissionError` (exit 3) under ``strict=True`` / ``--strict``. Public keys are not checked.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from modelshield._io import write_bytes_safely
from modelshield.errors import FormatError, InputNotFoundError, OutputError, SecurityError, UserError

__all__ = [
    "KEY_LEN",
    "KeyPermissionError",
    "KeyPermissionWarning",
    "PrivateKey",
    "PublicKey",
    "generate_key",
    "generate_signing_key",
    "check_key_permissions",
    "key_from_env",
    "key_permission_problem",
    "key_to_text",
    "load_key_file",
    "load_private_key",
    "load_public_key",
    "parse_key_text",
    "passphrase_from_env",
    "public_pem",
    "write_key_file",
    "write_signing_keypair",
]

KEY_LEN = 32
_PREFIX = "modelshield-key-v1:"

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
SigningKeyType = Literal["ed25519", "ecdsa-p256"]


class KeyPermissionWarning(UserWarning):
    """A secret key file is accessible by group or others."""


class KeyPermissionError(SecurityError):
    """A secret key file is accessible by group or others and ``strict`` was asked (exit 3)."""


#: Called with a one-line message; ``None`` means :func:`warnings.warn` (``KeyPermissionWarning``).
WarnFn = Callable[[str], None]


def key_permission_problem(path: str | Path) -> str | None:
    """A one-line description when the secret key file ``path`` has group/other permission bits, else
    ``None`` (also on systems without POSIX modes)."""
    if os.name != "posix":  # pragma: no cover - Windows has ACLs, not mode bits
        return None
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if not mode & 0o077:
        return None
    who = " and ".join(w for w, bits in (("group", 0o070), ("others", 0o007)) if mode & bits)
    return (f"key file {path} is accessible by {who} (mode {mode:04o}); a secret key must be readable by "
            f"its owner only: chmod 600 {path}")


def check_key_permissions(path: str | Path, *, strict: bool = False, warn: WarnFn | None = None) -> None:
    """Warn (or, ``strict``, refuse with :class:`KeyPermissionError`) when a secret key file is
    accessible by group or others, as ssh does for private keys."""
    problem = key_permission_problem(path)
    if problem is None:
        return
    if strict:
        raise KeyPermissionError(f"refused (strict key permissions): {problem}", cli_hint="refused because of --strict")
    if warn is not None:
        warn(problem)
    else:
        warnings.warn(problem, KeyPermissionWarning, stacklevel=3)


def generate_key() -> bytes:
    """A fresh random 256-bit master key (from the OS CSPRNG)."""
    return os.urandom(KEY_LEN)


def key_to_text(key: bytes) -> str:
    if len(key) != KEY_LEN:
        raise UserError(f"a master key has {KEY_LEN} bytes, got {len(key)}")
    return _PREFIX + base64.b64encode(key).decode("ascii")


def parse_key_text(text: str, *, where: str) -> bytes:
    """Parse ``modelshield-key-v1:<base64>``, bare base64 or 64 hex digits into 32 key bytes."""
    s = text.strip()
    if s.startswith(_PREFIX):
        s = s[len(_PREFIX):]
    key: bytes | None = None
    if len(s) == 2 * KEY_LEN:
        try:
            key = bytes.fromhex(s)
        except ValueError:
            key = None
    if key is None:
        try:
            key = base64.b64decode(s, validate=True)
        except (binascii.Error, ValueError):
            key = None
    if key is None or len(key) != KEY_LEN:
        raise UserError(
            f"{where} does not hold a 256-bit key; expected 'modelshield-key-v1:<base64>' "
            "(make one with: modelshield protect keygen KEYFILE)"
        )
    return key


def load_key_file(path: str | Path, *, strict: bool = False, warn: WarnFn | None = None) -> bytes:
    """Read a master key file written by :func:`write_key_file` (or 32 raw bytes).

    A file accessible by group/others is warned about (``strict``: refused); see
    :func:`check_key_permissions`."""
    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"key file {p} is a folder, not a file" if p.is_dir() else f"key file not found: {p}")
    check_key_permissions(p, strict=strict, warn=warn)
    raw = p.read_bytes()
    if len(raw) == KEY_LEN and not raw.startswith(_PREFIX.encode()):
        return raw
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise UserError(f"key file {p} is neither a modelshield key nor 32 raw bytes") from None
    return parse_key_text(text, where=f"key file {p}")


def key_from_env(var: str) -> bytes:
    """Read a master key from environment variable ``var`` (never logged)."""
    value = os.environ.get(var)
    if not value:
        raise UserError(f"environment variable {var} is not set or empty; it must hold the key")
    return parse_key_text(value, where=f"environment variable {var}")


def passphrase_from_env(var: str) -> bytes:
    value = os.environ.get(var)
    if not value:
        raise UserError(f"environment variable {var} is not set or empty; it must hold the passphrase")
    if len(value) < 8:
        raise UserError(f"the passphrase in {var} is too short (at least 8 characters)")
    return value.encode("utf-8")


def _write_private(path: Path, data: bytes, force: bool) -> None:
    """A secret: mode 0600, through the project's one atomic, durable write."""
    write_bytes_safely(path, data, force, private=True)


def write_key_file(path: str | Path, key: bytes | None = None, *, force: bool = False) -> bytes:
    """Write a (new, unless given) master key to ``path`` with mode 0600 and return it."""
    key = generate_key() if key is None else key
    _write_private(Path(path), (key_to_text(key) + "\n").encode("ascii"), force)
    return key


# --- signing keys ---------------------------------------------------------------------------------


def generate_signing_key(kind: SigningKeyType = "ed25519") -> PrivateKey:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise UserError(f"unknown signing key type {kind!r}; expected ed25519 or ecdsa-p256")


def public_pem(key: PrivateKey | PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_signing_keypair(
    private_path: str | Path, public_path: str | Path, kind: SigningKeyType = "ed25519", *, force: bool = False
) -> PrivateKey:
    """Generate a signing key pair; private PEM (PKCS#8, mode 0600) and public PEM."""
    key = generate_signing_key(kind)
    priv = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub_p = Path(public_path)
    if pub_p.exists() and not force:
        raise OutputError.exists(pub_p)
    _write_private(Path(private_path), priv, force)
    _write_private(pub_p, public_pem(key), True)
    os.chmod(pub_p, 0o644)
    return key


def _check_key_type(key: object, p: Path) -> None:
    """Refuse (:class:`FormatError`) a key, private or public, other than Ed25519 or ECDSA on P-256/384/521."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise FormatError(f"{p}: unsupported curve {key.curve.name}; use Ed25519 or ECDSA P-256")
    elif not isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        raise FormatError(f"{p}: unsupported key type {type(key).__name__}; use Ed25519 or ECDSA P-256")


def load_private_key(path: str | Path, password: bytes | None = None, *, strict: bool = False,
                     warn: WarnFn | None = None) -> PrivateKey:
    """Load a PEM private signing key; a file accessible by group/others is warned about (``strict``:
    refused), see :func:`check_key_permissions`."""
    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"private key not found: {p}")
    check_key_permissions(p, strict=strict, warn=warn)
    return _parse_private_key(p, password)


def _parse_private_key(p: Path, password: bytes | None) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(p.read_bytes(), password)
    except TypeError as exc:
        raise UserError(f"{p}: {exc} (the key is encrypted: give its password)") from None
    except ValueError as exc:
        raise FormatError(f"{p} is not a PEM private key (or the password is wrong)") from exc
    _check_key_type(key, p)
    return cast(PrivateKey, key)  # load_pem_private_key returns private keys only


def load_public_key(path: str | Path) -> PublicKey:
    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"public key not found: {p}")
    data = p.read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:  # a private key given where a public one is expected: use its public half
            private = _parse_private_key(p, None)
        except (FormatError, UserError):
            raise FormatError(f"{p} is not a PEM public key") from None
        check_key_permissions(p)  # it is a secret after all: warn when others can read it
        return private.public_key()
    _check_key_type(key, p)
    return cast(PublicKey, key)  # load_pem_public_key returns public keys only
