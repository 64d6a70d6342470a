"""The one number formatter of reports and command-line tables, so a value reads the same everywhere:
a missing or non-finite value is ``n/a``, booleans are yes/no, tiny and huge magnitudes use scientific
notation, sequences are joined (the first 12 items)."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

__all__ = ["MISSING", "fmt_value"]

#: how a value that is absent (``None``) or not a finite number (NaN, inf) is shown
MISSING = "n/a"


def fmt_value(v: Any, digits: int = 3, *, trim: bool = False) -> str:
    """``v`` for a table cell: ``digits`` decimals (``trim``: without trailing zeros), scientific
    notation below 1e-3 or from 1e6 up, thousands separators from 1000 up, integers as they are;
    sequences and mappings item by item (the first 12)."""
    if v is None:
        return MISSING
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, Integral):
        return str(int(v))
    if isinstance(v, Real):
        x = float(v)
        if not math.isfinite(x):
            return MISSING
        if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e6):
            return f"{x:.{max(digits - 1, 1)}e}"
        if abs(x) >= 1000:
            return f"{x:,.1f}"
        text = f"{x:.{digits}f}"
        return text.rstrip("0").rstrip(".") if trim and "." in text else text
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt_value(x, digits, trim=trim) for x in v[:12]) + (" …" if len(v) > 12 else "")
    if isinstance(v, dict):
        return ", ".join(f"{k}: {fmt_value(x, digits, trim=trim)}" for k, x in list(v.items())[:12])
    return str(v)
