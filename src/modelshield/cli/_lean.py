"""Typer-free CLI helpers shared by the typer commands and the lean paths (``_fast_*``).

Nothing here imports typer, click, rich, yaml or pydantic, so a lean command (``modelshield scan``,
``modelshield protect sign|verify``) starts as fast as the scanner itself. Both paths print through
:func:`say`, so their output is byte-identical when stdout is not a terminal; on a terminal a
``style`` adds ANSI colour (disabled by ``NO_COLOR`` or ``TERM=dumb``, forced by ``FORCE_COLOR``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from modelshield import _io

__all__ = ["LeanParser", "check_output_path", "clean", "colour_enabled", "parse_or_none", "say", "write_json"]

_ANSI = {"green": "32", "yellow": "33", "red": "31", "bold red": "1;31", "magenta": "35"}

# C0 controls (but tab and newline), DEL and C1 controls are shown escaped: a file name must not be
# able to move the cursor, rewrite earlier lines or change the terminal's title.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if c not in (0x09, 0x0A)}


def clean(text: object) -> str:
    """``str(text)`` with terminal control characters escaped (``\\x1b`` shows as the 4 characters)."""
    return str(text).translate(_CONTROL)


def colour_enabled() -> bool:
    """Colour only on a terminal, honouring ``NO_COLOR`` / ``TERM=dumb`` / ``FORCE_COLOR``."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def say(*parts: tuple[str, str | None] | str) -> None:
    """Print one line to stdout. Each part is text, or ``(text, style)`` to colour it on a terminal.

    The text is printed as given (no markup, no highlighting, no wrapping) after escaping control
    characters; the stream is looked up at call time, so redirected/captured stdout works.
    """
    colour = colour_enabled()
    out: list[str] = []
    for part in parts:
        text, style = (part, None) if isinstance(part, str) else part
        text = clean(text)
        if colour and style:
            text = f"\x1b[{_ANSI[style]}m{text}\x1b[0m"
        out.append(text)
    sys.stdout.write("".join(out) + "\n")


def check_output_path(path: str | Path, force: bool = False) -> Path:
    """Validate an output path before any work (see :func:`modelshield._io.check_output_path`)."""
    return _io.check_output_path(path, force)


def write_json(path: str | Path, obj: object, force: bool = False) -> Path:
    """Write JSON atomically, never clobbering without ``force`` (see :mod:`modelshield._io`)."""
    return _io.write_json(path, obj, force)


class _NotLean(Exception):
    """argparse could not parse the command line exactly: hand it to the typer CLI."""


class LeanParser(argparse.ArgumentParser):
    """An argparse parser for a lean command: no ``-h`` (help comes from typer), no abbreviated
    options (click has none), options may follow positional arguments (as in click), and any
    parse error raises instead of printing and exiting, so the caller can fall back to typer."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog=prog, add_help=False, allow_abbrev=False)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _NotLean(message)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise _NotLean(message or "")


def parse_or_none(parser: LeanParser, args: Sequence[str]) -> argparse.Namespace | None:
    """Parse ``args``; ``None`` when they are not exactly what the typer command accepts (a
    malformed or unknown option, a missing argument, ``--``): the typer CLI then reports it."""
    if "--" in args:
        return None
    try:
        return parser.parse_intermixed_args(list(args))
    except _NotLean:
        return None
