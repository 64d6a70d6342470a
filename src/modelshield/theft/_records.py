"""The NPZ record shared by trigger sets and fingerprints: arrays ``X`` and ``labels`` plus a JSON
``header`` naming the format. No pickles, so loading one never runs code."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from modelshield.errors import FormatError, InputNotFoundError


def read_input(path: str | Path, what: str) -> tuple[bytes, str]:
    """The bytes of the input file ``path`` and its name for messages; :class:`InputNotFoundError`
    ("<what> not found: <path>") when it is not a file."""
    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"{what} not found: {p}")
    return p.read_bytes(), str(p)


def record_bytes(X: np.ndarray, labels: np.ndarray, header: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, X=X, labels=labels, header=np.array(json.dumps(header)))
    return buf.getvalue()


def read_record(data: bytes, *, source: str, what: str, fmt: str) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """``(header, X, labels)`` of a record whose header says ``fmt``; one-line :class:`FormatError` otherwise.

    ``what`` names the record in messages ("trigger set", "fingerprint").
    """
    slug = what.replace(" ", "-")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arch:
            keys = set(arch.files)
            if not {"X", "labels", "header"} <= keys:
                raise FormatError(f"{source}: not a modelshield {what} (arrays: {sorted(keys)})")
            header = json.loads(str(arch["header"]))
            X, labels = arch["X"], arch["labels"]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:  # EOFError: empty
        raise FormatError(f"{source}: not a readable {slug} NPZ file") from exc
    found = header.get("format") if isinstance(header, dict) else None
    if found != fmt:
        raise FormatError(f"{source}: unknown {slug} format {found!r}")
    return header, X, labels
