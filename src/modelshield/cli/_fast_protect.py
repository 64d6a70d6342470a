"""Lean path for ``modelshield protect sign|verify``: argparse over exactly the typer commands'
options, then :func:`sign_command` / :func:`verify_command`, which the typer commands
(``modelshield.cli.protect``) call too. No typer, click, rich, yaml or pydantic import.

``run_sign`` and ``run_verify`` take what follows ``protect sign`` / ``protect verify`` and return
``None`` (the typer CLI then handles the command line) for anything argparse cannot parse exactly as
click would. ``FAST_COMMANDS`` names each runner (``modelshield.cli._fast_protect:run_sign`` /
``:run_verify``), so the command word, never the options, decides between signing and verifying.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelshield.cli._lean import LeanParser, clean, parse_or_none, say

if TYPE_CHECKING:  # pragma: no cover
    import typer

__all__ = ["register_sign_verify", "run_sign", "run_verify", "sign_command", "verify_command", "warn_line"]


def warn_line(message: str) -> None:
    """One ``warning: ...`` line on stderr (key-file permissions and the like)."""
    sys.stderr.write(f"warning: {clean(message)}\n")


def sign_command(path: Path, *, private_key: Path, signature: Path | None = None,
                 password_env: str | None = None, ignore: Sequence[str] = (), force: bool = False,
                 shards: bool = False, strict: bool = False) -> int:
    """Sign ``path`` with the PEM private key; prints one line; returns the exit code (0).

    A private key file accessible by group/others: a warning on stderr, or (``strict``) exit 3."""
    from modelshield.protect.signer import sign_with_key_file  # lazy: '--help' and bad arguments skip hashing code

    pw = os.environ.get(password_env, "").encode() if password_env else None
    t0 = time.perf_counter()
    sig = sign_with_key_file(path, private_key, password=pw, signature=signature, ignore=ignore, force=force,
                             shards=shards, strict=strict, warn=warn_line)
    say(f"signed {path} -> {sig} ({time.perf_counter() - t0:.2f} s)")
    return 0


def verify_command(path: Path, *, public_key: Path, signature: Path | None = None, strict: bool = False) -> int:
    """Verify ``path`` against its signature; prints one line (and a warning naming the unsigned files
    present in paths the signature leaves out); returns 0 (failures raise, exit 3). ``strict``: any
    unsigned file present fails the verification."""
    from modelshield.protect.signer import unsigned_warning, verify_with_key_file  # lazy: as in sign_command

    t0 = time.perf_counter()
    res = verify_with_key_file(path, public_key, signature=signature, strict=strict)
    warning = unsigned_warning(res)
    if warning is not None:
        warn_line(f"{warning} (--strict fails on them)")
    say(f"verified {path}: {res.files} file(s) match {res.signature} "
        f"({res.key_type}, root sha256 {res.root_digest[:16]}…, {time.perf_counter() - t0:.2f} s)")
    return 0


def register_sign_verify(protect: typer.Typer, *, force_option: Any, strict_option: Any) -> None:
    """The typer ``protect sign`` and ``protect verify`` (their options mirror the parsers below);
    ``force_option`` and ``strict_option`` are the ``protect`` area's shared ``--force`` and ``--strict``."""
    import typer  # lazy: the lean path never imports typer

    _path = typer.Argument(..., help="Model file or directory.")
    _signature = typer.Option(None, "--signature", "-s", help="Signature file [default: FILE.sig, or DIR/model.sig]")

    @protect.command("sign")
    def sign(
        path: Path = _path,
        private_key: Path = typer.Option(..., "--private-key", help="Ed25519 or ECDSA P-256 private key (PEM)."),
        signature: Path | None = _signature,
        password_env: str | None = typer.Option(None, "--password-env",
                                                help="Env var holding the private key's PEM password."),
        ignore: list[str] | None = typer.Option(None, "--ignore", help="Path inside DIR to leave unsigned."),
        force: bool = force_option,
        shards: bool = typer.Option(
            False, "--shards",
            help="Digest fixed-size shards, so one big file hashes on every core. modelshield and "
                 "model_signing's Python API verify it; model_signing's CLI (1.1.1) does not."),
        strict: bool = strict_option,
    ) -> None:
        """Sign (OpenSSF model-signing format: Sigstore bundle, DSSE, in-toto, per-file SHA-256)."""
        sign_command(path, private_key=private_key, signature=signature, password_env=password_env,
                     ignore=ignore or (), force=force, shards=shards, strict=strict)

    @protect.command("verify")
    def verify(
        path: Path = _path,
        public_key: Path = typer.Option(..., "--public-key", help="Ed25519 or ECDSA public key (PEM)."),
        signature: Path | None = _signature,
        strict: bool = typer.Option(
            False, "--strict", help="Also fail (exit 3) on unsigned files present in paths the signature "
                                    "leaves out (.git*, --ignore paths); without it they are listed as a warning."),
    ) -> None:
        """Verify a signature and every file digest; names changed, added or removed files (exit 3)."""
        verify_command(path, public_key=public_key, signature=signature, strict=strict)


def _sign_parser() -> LeanParser:
    p = LeanParser("modelshield protect sign")
    p.add_argument("path", type=Path)
    p.add_argument("--private-key", dest="private_key", type=Path, required=True)
    p.add_argument("--signature", "-s", type=Path, default=None)
    p.add_argument("--password-env", dest="password_env", default=None)
    p.add_argument("--ignore", action="append", default=None)
    p.add_argument("--force", "-f", action="store_true")
    p.add_argument("--shards", action="store_true")
    p.add_argument("--strict", action="store_true")
    return p


def _verify_parser() -> LeanParser:
    p = LeanParser("modelshield protect verify")
    p.add_argument("path", type=Path)
    p.add_argument("--public-key", dest="public_key", type=Path, required=True)
    p.add_argument("--signature", "-s", type=Path, default=None)
    p.add_argument("--strict", action="store_true")
    return p


def run_sign(args: list[str]) -> int | None:
    """``modelshield protect sign ARGS``: the lean path, or ``None`` to hand over to typer."""
    ns = parse_or_none(_sign_parser(), args)
    if ns is None:
        return None
    return sign_command(ns.path, private_key=ns.private_key, signature=ns.signature,
                        password_env=ns.password_env, ignore=ns.ignore or (), force=ns.force,
                        shards=ns.shards, strict=ns.strict)


def run_verify(args: list[str]) -> int | None:
    """``modelshield protect verify ARGS``: the lean path, or ``None`` to hand over to typer."""
    ns = parse_or_none(_verify_parser(), args)
    if ns is None:
        return None
    return verify_command(ns.path, public_key=ns.public_key, signature=ns.signature, strict=ns.strict)
