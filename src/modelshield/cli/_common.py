"""Helpers shared by CLI areas: consoles, output paths that never clobber, option parsing."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from modelshield.errors import OutputError, UserError

__all__ = [
    "console",
    "err_console",
    "check_output_path",
    "parse_options",
    "write_bytes_safely",
    "write_json",
    "write_text_safely",
]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def check_output_path(path: str | Path, force: bool = False) -> Path:
    """Validate an output path up front (before any work): it must not exist unless ``force``,
    and its folder must exist and be writable."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"output {p} is a directory; give a file name")
    if p.exists() and not force:
        raise OutputError(f"output {p} already exists; pass --force to overwrite it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {p}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {p}: folder {parent} is not writable")
    return p


def write_bytes_safely(path: str | Path, data: bytes, force: bool = False) -> Path:
    """Write atomically (temp file + rename in the same folder); never leaves a half-written file
    and never replaces an existing file unless ``force``."""
    p = check_output_path(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if not force and p.exists():
            raise OutputError(f"output {p} already exists; pass --force to overwrite it")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def write_text_safely(path: str | Path, text: str, force: bool = False) -> Path:
    return write_bytes_safely(path, text.encode("utf-8"), force)


def write_json(path: str | Path, obj: Any, force: bool = False) -> Path:
    return write_text_safely(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", force)


def parse_options(items: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """Parse ``--option check.key=value`` pairs; values are YAML scalars/lists (``[0.1, 0.2]``)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        check, dot, opt = key.partition(".")
        if not sep or not dot or not check or not opt:
            raise UserError(f"bad --option {item!r}: expected CHECK.KEY=VALUE, e.g. robustness.eps=[0.1]")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise UserError(f"bad value in --option {item!r}") from None
        out.setdefault(check.strip(), {})[opt.strip()] = value
    return out
