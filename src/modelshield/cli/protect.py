"""``modelshield protect keygen|encrypt|decrypt|rotate|inspect``: translators over :mod:`modelshield.protect.recipes`;
``sign`` / ``verify`` (hot: deploy hooks, CI) live in :mod:`._fast_protect` beside their lean path.

Exit codes: 0 done / verified, 2 bad input, 3 integrity failure (wrong key, tampered or truncated file, bad
signature). Outputs are written atomically and never clobber existing files without ``--force``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from modelshield.cli._fast_protect import register_sign_verify, sign_command, verify_command, warn_line
from modelshield.cli._lean import say

if TYPE_CHECKING:  # pragma: no cover
    import typer

__all__ = ["register", "sign_command", "verify_command"]


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def register(app: typer.Typer, harden: typer.Typer) -> None:
    import typer  # lazy: the lean sign/verify path imports this module's helpers without typer

    _KEYFILE = typer.Option(None, "--key-file", "-k", help="Master key file (from `protect keygen`).")
    _KEYENV = typer.Option(None, "--key-env", help="Environment variable holding the master key (base64/hex).")
    _PASSENV = typer.Option(None, "--passphrase-env",
                            help="Environment variable holding a passphrase (stretched with scrypt).")
    _FORCE = typer.Option(False, "--force", "-f", help="Overwrite an existing output.")
    _STRICT = typer.Option(False, "--strict", help="Refuse (exit 3) a key file readable by group/others "
                                                   "instead of warning.")

    protect = typer.Typer(help="Encrypt, sign and verify model files (encryption at rest, integrity).",
                          no_args_is_help=True)

    @protect.command("keygen")
    def keygen(
        keyfile: Path = typer.Argument(..., help="Where to write the key (private keys get mode 0600)."),
        kind: str = typer.Option("aes", "--type", "-t",
                                 help="aes (256-bit master key), ed25519 or ecdsa-p256 (signing key pair)."),
        public_out: Path | None = typer.Option(None, "--public-out",
                                               help="Public key path for signing keys [default: KEYFILE.pub]"),
        force: bool = _FORCE,
    ) -> None:
        """Create a master key (default) or a signing key pair (PEM)."""
        from modelshield.protect.recipes import create_key  # lazy: cryptography stays out of start-up

        made = create_key(keyfile, kind, public_out=public_out, force=force)
        if made.public_path is None:
            say(f"wrote 256-bit master key {keyfile} (mode 0600); keep it secret and backed up")
        else:
            say(f"wrote {made.kind} private key {keyfile} (mode 0600) and public key {made.public_path}")

    @protect.command("encrypt")
    def encrypt(
        src: Path = typer.Argument(..., help="File to encrypt."),
        out: Path = typer.Argument(..., help="Encrypted output file."),
        key_file: Path | None = _KEYFILE,
        key_env: str | None = _KEYENV,
        passphrase_env: str | None = _PASSENV,
        chunk_mib: int = typer.Option(1, "--chunk-mib", help="Chunk size in MiB (1-64)."),
        strict: bool = _STRICT,
        force: bool = _FORCE,
    ) -> None:
        """Encrypt a file with AES-256-GCM in authenticated chunks (envelope: random data key per file)."""
        from modelshield.protect.crypto import encrypt_file  # lazy: cryptography stays out of start-up
        from modelshield.protect.recipes import check_chunk_mib, resolve_secret

        chunk_size = check_chunk_mib(chunk_mib)
        key, pw = resolve_secret(key_file, key_env, passphrase_env, strict=strict, warn=warn_line)
        t0 = time.perf_counter()
        hdr = encrypt_file(src, out, key=key, passphrase=pw, chunk_size=chunk_size, force=force)
        say(f"encrypted {src} -> {out} ({_mb(src.stat().st_size)}, key id {hdr.key_id.hex()}, "
            f"{time.perf_counter() - t0:.2f} s)")

    @protect.command("decrypt")
    def decrypt(
        src: Path = typer.Argument(..., help="Encrypted file."),
        out: Path = typer.Argument(..., help="Plaintext output (written only after full authentication)."),
        key_file: Path | None = _KEYFILE,
        key_env: str | None = _KEYENV,
        passphrase_env: str | None = _PASSENV,
        strict: bool = _STRICT,
        force: bool = _FORCE,
    ) -> None:
        """Decrypt and authenticate every chunk; nothing is written unless the whole file verifies."""
        from modelshield.protect.crypto import decrypt_file  # lazy: cryptography stays out of start-up
        from modelshield.protect.recipes import resolve_secret

        key, pw = resolve_secret(key_file, key_env, passphrase_env, strict=strict, warn=warn_line)
        t0 = time.perf_counter()
        n = decrypt_file(src, out, key=key, passphrase=pw, force=force)
        say(f"decrypted {src} -> {out} ({_mb(n)}, authenticated, {time.perf_counter() - t0:.2f} s)")

    @protect.command("rotate")
    def rotate(
        src: Path = typer.Argument(..., help="Encrypted file (rewritten in place unless --out)."),
        key_file: Path | None = _KEYFILE,
        key_env: str | None = _KEYENV,
        passphrase_env: str | None = _PASSENV,
        new_key_file: Path | None = typer.Option(None, "--new-key-file", help="The new master key file."),
        new_key_env: str | None = typer.Option(None, "--new-key-env", help="Env var holding the new key."),
        new_passphrase_env: str | None = typer.Option(None, "--new-passphrase-env",
                                                      help="Env var holding the new passphrase."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Write here instead of in place."),
        rewrap_only: bool = typer.Option(
            False, "--rewrap-only",
            help="Only rewrap the file's data key for the new key; the payload is copied unchanged (fast). "
                 "RISK: the data key stays the same, so anyone who had the old key and a copy of the old "
                 "file can still decrypt the rotated file and forge content the new key accepts. Use only "
                 "when the old key was never exposed."),
        verify_payload: bool = typer.Option(
            False, "--verify", help="With --rewrap-only: authenticate every chunk before rotating "
                                    "(re-encryption, the default, always does)."),
        strict: bool = _STRICT,
        force: bool = _FORCE,
    ) -> None:
        """Re-encrypt the file under a fresh data key wrapped by the new key (streamed; the original is
        replaced only after every chunk authenticated). --rewrap-only keeps the data key (see its risk)."""
        from modelshield.protect.recipes import resolve_secret, rotate, rotation_summary  # lazy: cryptography

        old_key, old_pw = resolve_secret(key_file, key_env, passphrase_env, strict=strict, warn=warn_line)
        new_key, new_pw = resolve_secret(new_key_file, new_key_env, new_passphrase_env, strict=strict,
                                         warn=warn_line, role="new")
        t0 = time.perf_counter()
        hdr = rotate(src, out, old_key=old_key, old_passphrase=old_pw, new_key=new_key, new_passphrase=new_pw,
                     rewrap_only=rewrap_only, verify_payload=verify_payload, force=force)
        say(f"rotated {src} -> {out or src}: {rotation_summary(rewrap_only)}; new key id {hdr.key_id.hex()} "
            f"({time.perf_counter() - t0:.2f} s)")

    register_sign_verify(protect, force_option=_FORCE, strict_option=_STRICT)

    @protect.command("inspect")
    def inspect(path: Path = typer.Argument(..., help="Encrypted file.")) -> None:
        """Show an encrypted file's public header (cipher, chunk size, key id); needs no key."""
        from modelshield.cli._common import console  # lazy: rich stays out of the lean start-up
        from modelshield.protect.recipes import describe_container

        console.print_json(json.dumps(describe_container(path)))

    app.add_typer(protect, name="protect")
