"""One reader for the YAML (and JSON) files users hand to modelshield: audit policies, the serve config,
anonymization policies, threat-model bounds, registry files.

Every such file goes through :func:`load_yaml_file`: a missing file, an oversized file, undecodable
bytes and invalid YAML each give one neutral error naming the file (never a parser traceback), and
only ``yaml.safe_load`` is used (no Python object tags). Checking the document's shape stays with the
caller, which knows what it expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from modelshield.errors import InputNotFoundError, ModelShieldError, UserError

__all__ = ["MAX_YAML_BYTES", "load_yaml_file"]

#: Larger than any hand-written policy or config; a bigger file is a mistake (or a memory attack).
MAX_YAML_BYTES = 8 << 20


def load_yaml_file(path: str | Path, what: str, *, error: type[ModelShieldError] = UserError,
                   max_bytes: int = MAX_YAML_BYTES) -> Any:
    """The parsed document of ``path`` (``None`` for an empty file).

    ``what`` names the file in messages ("policy file", "config file"). A missing path raises
    :class:`~modelshield.errors.InputNotFoundError` ("<what> not found: <path>"); a file over
    ``max_bytes``, one that cannot be read or decoded as UTF-8, or invalid YAML raises ``error``
    with the first line of the parser's reason.
    """
    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"{what} not found: {p}")
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise error(f"{what} {p} is {size:,} bytes, larger than the {max_bytes:,} allowed")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{what} {p} cannot be read: {type(exc).__name__}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{what} {p} is not valid YAML: {reason}") from None
