"""Sign and verify with PEM key files: what ``modelshield protect sign | verify`` run, callable without the CLI.

The key file is read and parsed while the model hashes (:func:`~.signing.sign` and
:func:`~.signing.verify` call the loader in a background thread), so this module imports only the
signing module; ``cryptography`` loads with the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modelshield.protect.signing import Verification, sign, verify

if TYPE_CHECKING:  # pragma: no cover
    from modelshield.protect.keys import PrivateKey, PublicKey, WarnFn

__all__ = ["sign_with_key_file", "unsigned_warning", "verify_with_key_file"]

#: How many unsigned files :func:`unsigned_warning` names before it counts the rest.
SHOWN_UNSIGNED = 10


def sign_with_key_file(path: str | Path, private_key: str | Path, *, password: bytes | None = None,
                       signature: str | Path | None = None, ignore: Sequence[str] = (), force: bool = False,
                       shards: bool = False, strict: bool = False, warn: WarnFn | None = None) -> Path:
    """Sign ``path`` with the PEM private key in ``private_key`` (``password``: the PEM's, if encrypted);
    returns the signature file. Per-file digests, or fixed-size shards when ``shards``. A key file
    readable by group/others is refused when ``strict``, else reported through ``warn``."""

    def load_key() -> PrivateKey:
        from modelshield.protect.keys import load_private_key  # lazy: cryptography loads while the model hashes

        return load_private_key(private_key, password or None, strict=strict, warn=warn)

    return sign(path, load_key, signature=signature, ignore_paths=ignore, force=force,
                serialization="shards" if shards else "files")


def verify_with_key_file(path: str | Path, public_key: str | Path, *, signature: str | Path | None = None,
                         strict: bool = False) -> Verification:
    """Verify ``path`` against its signature with the PEM public key in ``public_key``; raises
    :class:`~modelshield.errors.IntegrityError` naming what differs. ``strict``: unsigned files present in
    paths the signature leaves out fail it too (otherwise they are listed in the result)."""

    def load_key() -> PublicKey:
        from modelshield.protect.keys import load_public_key  # lazy: cryptography loads while the model hashes

        return load_public_key(public_key)

    return verify(path, load_key, signature=signature, strict=strict)


def unsigned_warning(result: Verification) -> str | None:
    """A one-line warning naming the unsigned files a verification found (``None`` when there are none)."""
    files = result.unsigned
    if not files:
        return None
    more = len(files) - SHOWN_UNSIGNED
    shown = ", ".join(files[:SHOWN_UNSIGNED]) + (f" and {more} more" if more > 0 else "")
    return f"{len(files)} unsigned file(s) present in paths the signature leaves out: {shown}"
