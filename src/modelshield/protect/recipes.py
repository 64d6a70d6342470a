"""Key and encryption workflows over :mod:`.keys` and :mod:`.crypto`: what ``modelshield protect keygen |
encrypt | decrypt | rotate | inspect`` run, callable without the CLI.

:func:`resolve_secret` picks the one secret given (a key file, a key in an environment variable, or a
passphrase in one); :func:`create_key` makes a master key or a signing key pair; :func:`rotate` moves an
encrypted file to a new secret; :func:`describe_container` reads a file's public header. Errors carry
neutral messages; the flag to fix rides in ``cli_hint``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from modelshield._io import check_output_path
from modelshield.errors import UserError
from modelshield.protect.crypto import ContainerHeader, read_header, rotate_file
from modelshield.protect.keys import (
    WarnFn,
    key_from_env,
    load_key_file,
    passphrase_from_env,
    write_key_file,
    write_signing_keypair,
)

__all__ = ["CHUNK_MIB", "KEY_TYPES", "CreatedKey", "check_chunk_mib", "create_key", "describe_container",
           "resolve_secret", "rotate", "rotation_summary"]

#: ``create_key`` kinds: a 256-bit master key (and its aliases) or a signing key pair.
KEY_TYPES: dict[str, Literal["aes", "ed25519", "ecdsa-p256"]] = {
    "aes": "aes", "aes-256": "aes", "master": "aes", "symmetric": "aes",
    "ed25519": "ed25519", "ecdsa-p256": "ecdsa-p256",
}
#: Chunk sizes (MiB) an encrypted container may use.
CHUNK_MIB = range(1, 65)


@dataclass(frozen=True)
class CreatedKey:
    """What :func:`create_key` wrote: the secret key file and, for a signing pair, the public key."""

    kind: Literal["aes", "ed25519", "ecdsa-p256"]
    path: Path
    public_path: Path | None = None


def resolve_secret(key_file: str | Path | None = None, key_env: str | None = None,
                   passphrase_env: str | None = None, *, strict: bool = False, warn: WarnFn | None = None,
                   role: str = "") -> tuple[bytes | None, bytes | None]:
    """``(key, None)`` from a key file or an environment variable holding a key, or ``(None, passphrase)``
    from an environment variable holding a passphrase: exactly one of the three must be given. A key file
    readable by group/others is refused when ``strict``, else reported through ``warn``. ``role``
    (``"new"``, ...) names the secret in messages and the flags of the hint (``--new-key-file``)."""
    given = [x for x in (key_file, key_env, passphrase_env) if x]
    if len(given) != 1:
        what, prefix = (f"{role} secret", f"--{role}-") if role else ("secret", "--")
        raise UserError(f"exactly one {what} is needed (a key file, a key in an environment variable, or a "
                        f"passphrase in one); {len(given)} given",
                        cli_hint=f"give exactly one of {prefix}key-file, {prefix}key-env or {prefix}passphrase-env")
    if key_file:
        return load_key_file(key_file, strict=strict, warn=warn), None
    if key_env:
        return key_from_env(key_env), None
    assert passphrase_env is not None
    return None, passphrase_from_env(passphrase_env)


def check_chunk_mib(chunk_mib: int) -> int:
    """The chunk size in bytes for ``chunk_mib`` MiB (1 to 64)."""
    if chunk_mib not in CHUNK_MIB:
        raise UserError(f"the chunk size must be between 1 and 64 MiB, got {chunk_mib}", cli_hint="--chunk-mib")
    return chunk_mib << 20


def create_key(path: str | Path, kind: str = "aes", *, public_out: str | Path | None = None,
               force: bool = False) -> CreatedKey:
    """Write a 256-bit master key (``kind`` ``aes``, mode 0600) or a signing key pair (``ed25519`` or
    ``ecdsa-p256``: the private PEM with mode 0600, the public one at ``public_out``, default ``PATH.pub``)."""
    p = Path(path)
    resolved = KEY_TYPES.get(kind.lower())
    if resolved is None:
        raise UserError(f"unknown key type {kind!r}: expected aes, ed25519 or ecdsa-p256", cli_hint="--type")
    if resolved == "aes":
        write_key_file(p, force=force)
        return CreatedKey("aes", p)
    pub = Path(public_out) if public_out is not None else p.with_name(p.name + ".pub")
    write_signing_keypair(p, pub, resolved, force=force)
    return CreatedKey(resolved, p, pub)


def rotate(src: str | Path, out: str | Path | None = None, *, old_key: bytes | None = None,
           old_passphrase: bytes | None = None, new_key: bytes | None = None, new_passphrase: bytes | None = None,
           rewrap_only: bool = False, verify_payload: bool = False, force: bool = False) -> ContainerHeader:
    """:func:`~.crypto.rotate_file` with its options checked first: ``verify_payload`` applies to
    ``rewrap_only`` (re-encryption authenticates every chunk anyway), and an ``out`` other than ``src``
    must be writable (and not exist unless ``force``) before any work. Returns the new header."""
    if verify_payload and not rewrap_only:
        raise UserError("verifying the payload first applies to rewrapping only (re-encryption authenticates "
                        "every chunk anyway)", cli_hint="--verify applies to --rewrap-only")
    if out is not None and Path(out).resolve() != Path(src).resolve():
        check_output_path(out, force)
    return rotate_file(src, out, old_key=old_key, old_passphrase=old_passphrase, new_key=new_key,
                       new_passphrase=new_passphrase, verify_payload=verify_payload, rewrap_only=rewrap_only,
                       force=force)


def rotation_summary(rewrap_only: bool) -> str:
    """What a rotation did to the data key, in words (the risk of a rewrap stated)."""
    if rewrap_only:
        return "data key rewrapped, payload not re-encrypted: the old key with an old copy still opens it"
    return "re-encrypted under a fresh data key"


def describe_container(path: str | Path) -> dict[str, object]:
    """An encrypted file's public header (format, cipher, chunk size, key kind, key id); needs no key."""
    return read_header(path).describe()
