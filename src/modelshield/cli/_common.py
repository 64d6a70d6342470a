"""Helpers shared by CLI areas: consoles, output paths that never clobber, option parsing."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

import yaml
from rich.console import Console

from modelshield._io import check_output_path, write_bytes_safely, write_json, write_text_safely
from modelshield.errors import UserError

__all__ = [
    "PIPED_WIDTH",
    "console",
    "err_console",
    "check_output_path",
    "parse_headers",
    "parse_options",
    "parse_shape",
    "print_table",
    "split_list",
    "write_bytes_safely",
    "write_json",
    "write_text_safely",
]

#: Columns used when output goes to a pipe or file (a CI log, ``| tee``) and ``COLUMNS`` is not set: wide
#: enough that tables and lines are not wrapped mid-way at 80 columns (on a terminal, its own width applies).
PIPED_WIDTH = 160


def _width(stream: TextIO) -> int | None:
    """``None`` (rich's own choice: the terminal's width, or ``COLUMNS``) unless ``stream`` is not a terminal
    and ``COLUMNS`` is not set: then :data:`PIPED_WIDTH`."""
    isatty = getattr(stream, "isatty", None)
    if os.environ.get("COLUMNS") or (isatty is not None and isatty()):
        return None
    return PIPED_WIDTH


console = Console(highlight=False, width=_width(sys.stdout), soft_wrap=True)  # a line never splits a path
err_console = Console(stderr=True, highlight=False, width=_width(sys.stderr), soft_wrap=True)


def split_list(values: Sequence[str] | None) -> list[str]:
    """Flatten repeated and comma-separated values: ``--features a,b --features c`` -> ``[a, b, c]``."""
    out: list[str] = []
    for v in values or ():
        out.extend(x.strip() for x in str(v).split(",") if x.strip())
    return out


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


def parse_headers(items: Sequence[str] | None) -> dict[str, str] | None:
    """``--header 'Name: value'`` pairs -> ``{Name: value}``; ``None`` when none are given."""
    out: dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise UserError(f"bad --header {item.split(':')[0]!r}...: expected 'Name: value'")
        out[name.strip()] = value.strip()
    return out or None


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``--input-shape``: the shape of one sample, ``30`` or ``1,8,8`` (or ``1x8x8``); ``None`` when not given."""
    if not text:
        return None
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise UserError(f"bad --input-shape {text!r}: expected integers like 30 or 1,8,8") from None
    if not shape or any(s <= 0 for s in shape):
        raise UserError(f"bad --input-shape {text!r}: expected positive integers like 30 or 1,8,8")
    return shape


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                right: Sequence[str] = ()) -> None:
    """Print one rich table: ``columns`` (those in ``right`` right-aligned), each row's cells as text."""
    from rich.table import Table  # lazy: rich.table only for commands that print a table (CLI start-up)

    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="right" if c in right else "left")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)

