"""Lean path for ``modelshield protect sign|verify``: argparse over exactly the typer commands'
options, then the shared :func:`modelshield.cli.protect.sign_command` / ``verify_command``.
No typer, click, rich, yaml or pydantic import.

``run_sign`` and ``run_verify`` take what follows ``protect sign`` / ``protect verify`` and return
``None`` (the typer CLI then handles the command line) for anything argparse cannot parse exactly as
click would. ``FAST_COMMANDS`` names each runner (``modelshield.cli._fast_protect:run_sign`` /
``:run_verify``), so the command word, never the options, decides between signing and verifying.
"""

from __future__ import annotations

from pathlib import Path

from modelshield.cli._lean import LeanParser, parse_or_none

__all__ = ["run_sign", "run_verify"]


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
    from modelshield.cli.protect import sign_command

    return sign_command(ns.path, private_key=ns.private_key, signature=ns.signature,
                        password_env=ns.password_env, ignore=ns.ignore or (), force=ns.force,
                        shards=ns.shards, strict=ns.strict)


def run_verify(args: list[str]) -> int | None:
    """``modelshield protect verify ARGS``: the lean path, or ``None`` to hand over to typer."""
    ns = parse_or_none(_verify_parser(), args)
    if ns is None:
        return None
    from modelshield.cli.protect import verify_command

    return verify_command(ns.path, public_key=ns.public_key, signature=ns.signature, strict=ns.strict)
