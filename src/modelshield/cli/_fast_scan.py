"""Lean path for ``modelshield scan``: argparse over exactly the typer command's options, then the
shared :func:`modelshield.cli.scan.scan_command`. No typer, click, rich, yaml or pydantic import.

``run`` returns ``None`` (the typer CLI then handles the command line, with its help text and usage
errors) for anything argparse cannot parse exactly as click would.
"""

from __future__ import annotations

from pathlib import Path

from modelshield.cli._lean import LeanParser, parse_or_none
from modelshield.cli.scan import DEFAULT_FAIL_ON, DEFAULT_TIMEOUT, scan_command

__all__ = ["run"]


def _parser() -> LeanParser:
    p = LeanParser("modelshield scan")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--json", dest="json_out", type=Path, default=None)
    p.add_argument("--sarif", dest="sarif_out", type=Path, default=None)
    p.add_argument("--fail-on", dest="fail_on", default=DEFAULT_FAIL_ON)
    p.add_argument("--force", "-f", action="store_true")
    p.add_argument("--hash", dest="hash_files", action="store_true")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    p.add_argument("--quiet", "-q", action="store_true")
    return p


def run(args: list[str]) -> int | None:
    ns = parse_or_none(_parser(), args)
    if ns is None:
        return None
    return scan_command(ns.paths, json_out=ns.json_out, sarif_out=ns.sarif_out, fail_on=ns.fail_on,
                        force=ns.force, hash_files=ns.hash_files, timeout=ns.timeout, quiet=ns.quiet)
