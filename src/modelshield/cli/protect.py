"""``modelshield protect keygen|encrypt|decrypt|rotate|sign|verify|inspect``.

Exit codes: 0 done / verified, 2 bad input, 3 integrity failure (wrong key, tampered or truncated file,
bad signature). Outputs are written atomically and never clobber existing files without ``--force``.

``sign`` and ``verify`` are hot commands (deploy hooks, CI): :func:`sign_command` and
:func:`verify_command` implement them, called by the typer commands and by the lean path
(``modelshield.cli._fast_protect``, argparse). This module imports typer only inside ``register``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelshield.cli._lean import clean, say
from modelshield.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import typer

__all__ = ["register", "sign_command", "verify_command"]


def warn_line(message: str) -> None:
    """One ``warning: ...`` line on stderr (key-file permissions and the like)."""
    sys.stderr.write(f"warning: {clean(message)}\n")


def _secret(key_file: Path | None, key_env: str | None, passphrase_env: str | None,
            what: str = "", strict: bool = False) -> tuple[bytes | None, bytes | None]:
    from modelshield.protect.keys import key_from_env, load_key_file, passphrase_from_env

    given = [x for x in (key_file, key_env, passphrase_env) if x]
    if len(given) != 1:
        opts = "--key-file, --key-env or --passphrase-env"
        if what:
            opts = opts.replace("--", f"--{what}")
        raise UserError(f"give exactly one of {opts}")
    if key_file:
        return load_key_file(key_file, strict=strict, warn=warn_line), None
    if key_env:
        return key_from_env(key_env), None
    assert passphrase_env is not None
    return None, passphrase_from_env(passphrase_env)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def sign_command(path: Path, *, private_key: Path, signature: Path | None = None,
                 password_env: str | None = None, ignore: Sequence[str] = (), force: bool = False,
                 shards: bool = False, strict: bool = False) -> int:
    """Sign ``path`` with the PEM private key; prints one line; returns the exit code (0).

    A private key file accessible by group/others: a warning on stderr, or (``strict``) exit 3."""
    import os

    from modelshield.protect.signing import sign as do_sign

    pw = os.environ.get(password_env, "").encode() if password_env else None

    def load_key() -> Any:  # runs while the model hashes: imports cryptography, parses the PEM
        from modelshield.protect.keys import load_private_key

        return load_private_key(private_key, pw or None, strict=strict, warn=warn_line)

    t0 = time.perf_counter()
    sig = do_sign(path, load_key, signature=signature, ignore_paths=ignore or (), force=force,
                  serialization="shards" if shards else "files")
    say(f"signed {path} -> {sig} ({time.perf_counter() - t0:.2f} s)")
    return 0


def verify_command(path: Path, *, public_key: Path, signature: Path | None = None, strict: bool = False) -> int:
    """Verify ``path`` against its signature; prints one line (and a warning naming the unsigned files
    present in paths the signature leaves out); returns 0 (failures raise, exit 3). ``strict``: any
    unsigned file present fails the verification."""
    from modelshield.protect.signing import verify as do_verify

    def load_key() -> Any:  # runs while the model hashes: imports cryptography, parses the PEM
        from modelshield.protect.keys import load_public_key

        return load_public_key(public_key)

    t0 = time.perf_counter()
    res = do_verify(path, load_key, signature=signature, strict=strict)
    if res.unsigned:
        shown = ", ".join(res.unsigned[:10]) + (f" and {len(res.unsigned) - 10} more" if len(res.unsigned) > 10 else "")
        warn_line(f"{len(res.unsigned)} unsigned file(s) present in paths the signature leaves out: {shown} "
                  "(--strict fails on them)")
    say(f"verified {path}: {res.files} file(s) match {res.signature} "
         f"({res.key_type}, root sha256 {res.root_digest[:16]}…, {time.perf_counter() - t0:.2f} s)")
    return 0


def register(app: typer.Typer, harden: typer.Typer) -> None:
    import typer

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
        from modelshield.protect.keys import write_key_file, write_signing_keypair

        kind = kind.lower()
        if kind in ("aes", "aes-256", "master", "symmetric"):
            write_key_file(keyfile, force=force)
            say(f"wrote 256-bit master key {keyfile} (mode 0600); keep it secret and backed up")
            return
        if kind not in ("ed25519", "ecdsa-p256"):
            raise UserError(f"unknown --type {kind!r}: expected aes, ed25519 or ecdsa-p256")
        pub = public_out or keyfile.with_name(keyfile.name + ".pub")
        write_signing_keypair(keyfile, pub, kind, force=force)  # type: ignore[arg-type]
        say(f"wrote {kind} private key {keyfile} (mode 0600) and public key {pub}")

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
        from modelshield.protect.crypto import encrypt_file

        if not 1 <= chunk_mib <= 64:
            raise UserError("--chunk-mib must be between 1 and 64")
        key, pw = _secret(key_file, key_env, passphrase_env, strict=strict)
        t0 = time.perf_counter()
        hdr = encrypt_file(src, out, key=key, passphrase=pw, chunk_size=chunk_mib << 20, force=force)
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
        from modelshield.protect.crypto import decrypt_file

        key, pw = _secret(key_file, key_env, passphrase_env, strict=strict)
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
        from modelshield.cli._common import check_output_path
        from modelshield.protect.crypto import rotate_file

        if verify_payload and not rewrap_only:
            raise UserError("--verify applies to --rewrap-only (re-encryption authenticates every chunk anyway)")
        old_key, old_pw = _secret(key_file, key_env, passphrase_env, strict=strict)
        new_key, new_pw = _secret(new_key_file, new_key_env, new_passphrase_env, what="new-", strict=strict)
        if out is not None and out.resolve() != src.resolve():
            check_output_path(out, force)
        t0 = time.perf_counter()
        hdr = rotate_file(src, out, old_key=old_key, old_passphrase=old_pw, new_key=new_key,
                          new_passphrase=new_pw, verify_payload=verify_payload, rewrap_only=rewrap_only,
                          force=force)
        how = ("data key rewrapped, payload not re-encrypted: the old key with an old copy still opens it"
               if rewrap_only else "re-encrypted under a fresh data key")
        say(f"rotated {src} -> {out or src}: {how}; new key id {hdr.key_id.hex()} "
            f"({time.perf_counter() - t0:.2f} s)")

    @protect.command("sign")
    def sign(
        path: Path = typer.Argument(..., help="Model file or directory."),
        private_key: Path = typer.Option(..., "--private-key", help="Ed25519 or ECDSA P-256 private key (PEM)."),
        signature: Path | None = typer.Option(
            None, "--signature", "-s", help="Signature file [default: FILE.sig, or DIR/model.sig]"),
        password_env: str | None = typer.Option(None, "--password-env",
                                                help="Env var holding the private key's PEM password."),
        ignore: list[str] | None = typer.Option(None, "--ignore", help="Path inside DIR to leave unsigned."),
        force: bool = _FORCE,
        shards: bool = typer.Option(
            False, "--shards",
            help="Digest fixed-size shards, so one big file hashes on every core. modelshield and "
                 "model_signing's Python API verify it; model_signing's CLI (1.1.1) does not."),
        strict: bool = _STRICT,
    ) -> None:
        """Sign (OpenSSF model-signing format: Sigstore bundle, DSSE, in-toto, per-file SHA-256)."""
        sign_command(path, private_key=private_key, signature=signature, password_env=password_env,
                     ignore=ignore or (), force=force, shards=shards, strict=strict)

    @protect.command("verify")
    def verify(
        path: Path = typer.Argument(..., help="Model file or directory."),
        public_key: Path = typer.Option(..., "--public-key", help="Ed25519 or ECDSA public key (PEM)."),
        signature: Path | None = typer.Option(
            None, "--signature", "-s", help="Signature file [default: FILE.sig, or DIR/model.sig]"),
        strict: bool = typer.Option(
            False, "--strict", help="Also fail (exit 3) on unsigned files present in paths the signature "
                                    "leaves out (.git*, --ignore paths); without it they are listed as a warning."),
    ) -> None:
        """Verify a signature and every file digest; names changed, added or removed files (exit 3)."""
        verify_command(path, public_key=public_key, signature=signature, strict=strict)

    @protect.command("inspect")
    def inspect(path: Path = typer.Argument(..., help="Encrypted file.")) -> None:
        """Show an encrypted file's public header (cipher, chunk size, key id); needs no key."""
        from modelshield.cli._common import console
        from modelshield.protect.crypto import read_header

        console.print_json(json.dumps(read_header(path).describe()))

    app.add_typer(protect, name="protect")
