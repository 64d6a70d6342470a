"""Output files that are validated up front, written atomically and never clobbered silently."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from modelshield.errors import OutputError

__all__ = ["check_output_path", "private_dir", "write_bytes_safely", "write_json", "write_text_safely"]


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


def private_dir(path: str | Path, what: str = "state directory") -> Path:
    """Create ``path`` and its parents (mode 0700); a path that cannot be a directory (a file in the way,
    no permission, a read-only file system) is one clear :class:`OutputError` (exit 2), not a crash."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise OutputError(f"cannot create the {what} {p}: {exc.strerror or type(exc).__name__}") from None
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_safely(path: str | Path, data: bytes, force: bool = False, *, private: bool = False) -> Path:
    """Write atomically (temp file + rename in the same folder); never leaves a half-written file
    and never replaces an existing file unless ``force``."""
    p = check_output_path(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent or ".")
    try:
        os.chmod(tmp, 0o600 if private else 0o666 & ~_umask())  # mkstemp makes 0600; reports are ordinary files
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
