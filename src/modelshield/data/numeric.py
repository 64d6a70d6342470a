"""Input validation shared by the privacy tools: features must be numbers.

Membership inference and DP training work on numeric feature matrices. A CSV with a text column
(``sex = Female``) or a stray placeholder (``?``) loads as an object array; these helpers name the
offending columns and the first offending cell so the user can fix the data or pick other feature columns
(the CLI's hint names ``--features``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelshield.errors import DataError

__all__ = ["NonNumericColumn", "non_numeric_columns", "numeric_features", "require_numeric"]


@dataclass(frozen=True)
class NonNumericColumn:
    """A feature column holding values that are not numbers: how many, and the first (row, value)."""

    column: str
    count: int
    first_row: int
    first_value: str


def non_numeric_columns(X: Any, names: Sequence[str] | None = None) -> list[NonNumericColumn]:
    """Columns of a 2-D array whose non-missing cells do not parse as numbers (empty list if none).

    Missing cells (``None``, NaN, empty strings) are not reported here: they are a separate problem.
    """
    import pandas as pd  # lazy: pandas is slow to import; only this path needs it

    X = np.asarray(X)
    if X.dtype != object and (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        return []
    X2 = X.reshape(len(X), -1) if X.ndim != 2 else X
    cols = list(names) if names is not None and len(names) == X2.shape[1] else [f"x{j}" for j in range(X2.shape[1])]
    out: list[NonNumericColumn] = []
    for j, name in enumerate(cols):
        s = pd.Series(X2[:, j], dtype=object)
        text = s.astype(str).str.strip()
        present = s.notna().to_numpy() & (text != "").to_numpy()
        bad = present & pd.to_numeric(s.where(present), errors="coerce").isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            out.append(NonNumericColumn(str(name), int(bad.sum()), i, str(X2[i, j])[:20]))
    return out


def require_numeric(ds: Any, what: str, *, hint: str = "pass --features with numeric columns only") -> None:
    """Raise :class:`~modelshield.errors.DataError` naming the columns of ``ds.X`` that hold
    non-numeric values (with the first such cell), or do nothing when the features are numeric."""
    if ds is None or getattr(ds, "X", None) is None:
        return
    bad = non_numeric_columns(ds.X, getattr(ds, "feature_names", None))
    if not bad:
        return
    first = bad[0]
    cols = ", ".join(f"{b.column!r} ({b.count} cells)" for b in bad[:6]) + (" ..." if len(bad) > 6 else "")
    raise DataError(f"{what}: non-numeric values in column(s) {cols}; e.g. row {first.first_row + 1} of "
                    f"{first.column!r} is {first.first_value!r}. Encode them as numbers, or leave those columns out",
                    cli_hint=hint)


def numeric_features(ds: Any, what: str, *, hint: str = "pass --features with numeric columns only"
                     ) -> np.ndarray:
    """``ds.X`` as float32, after :func:`require_numeric`."""
    require_numeric(ds, what, hint=hint)
    try:
        return np.asarray(ds.X, dtype=np.float32)
    except (TypeError, ValueError) as exc:  # e.g. missing cells that cannot be floats
        raise DataError(f"{what}: features cannot be read as numbers ({exc})", cli_hint=hint) from None
