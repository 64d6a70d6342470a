"""Load a :class:`Dataset` from CSV, Parquet or NPZ, selecting target, sensitive and feature columns."""

from __future__ import annotations

import difflib
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelshield._io import input_file
from modelshield.data.dataset import Dataset
from modelshield.data.numeric import require_numeric as _require
from modelshield.errors import DataError, FormatError

__all__ = ["check_model_width", "first_non_finite", "from_frame", "load_dataset", "read_table", "require_numeric",
           "unknown_column"]


def load_dataset(
    path: str | Path,
    *,
    target: str | None = None,
    sensitive: Sequence[str] = (),
    features: Sequence[str] | None = None,
    immutable: Sequence[str] = (),
) -> Dataset:
    """Read a data file. The format comes from the content (NPZ is a zip; Parquet starts ``PAR1``).

    Features default to every column except ``target`` and ``sensitive``, in file order; pass
    ``features`` to choose (sensitive columns may be listed there too).

    For NPZ files: arrays ``X`` (or ``x``/``data``) and ``y`` (or ``labels``); optional
    ``feature_names`` and ``sensitive_<name>`` arrays.
    """
    p = Path(path)
    if p.exists() and p.is_file():
        with p.open("rb") as fh:
            head = fh.read(8)
        if head.startswith(b"PK") and zipfile.is_zipfile(p):
            return _load_npz(p, target=target, sensitive=sensitive, features=features, immutable=immutable)
        if head.startswith(b"\x93NUMPY"):
            raise FormatError(f"{p}: a bare .npy has no labels; save X and y together with numpy.savez")
    frame = read_table(p)
    if len(frame) == 0:
        raise FormatError(f"{p}: no data rows")
    return from_frame(frame, target=target, sensitive=sensitive, features=features, immutable=immutable,
                      name=p.name, source=str(p))


def read_table(path: str | Path, *, as_text: bool = False) -> Any:
    """Read a CSV or Parquet file (by content) into a DataFrame, with one-line errors.

    ``as_text`` keeps every value as text (leading zeros, IDs and phone numbers intact; for PII scans).
    """
    import pandas as pd  # lazy: pandas is slow to import; only this path needs it

    p = input_file(path, "data", ", not a data file")
    with p.open("rb") as fh:
        head = fh.read(4)
    if head == b"PAR1":
        try:
            frame = pd.read_parquet(p)
        except ImportError as exc:
            raise FormatError("reading Parquet needs pyarrow: pip install pyarrow") from exc
        except Exception as exc:  # pyarrow raises ArrowInvalid and friends
            raise FormatError(f"{p}: not a readable Parquet file ({exc})") from exc
        return frame.astype("string").astype(object) if as_text else frame
    text_opts: dict[str, Any] = {"dtype": str, "keep_default_na": False} if as_text else {}
    try:
        return pd.read_csv(p, skipinitialspace=True, **text_opts)
    except UnicodeDecodeError:
        raise FormatError(f"{p}: not a text CSV file (unknown format)") from None
    except pd.errors.EmptyDataError:
        raise FormatError(f"{p}: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise FormatError(f"{p}: not a readable CSV file ({str(exc).splitlines()[0]})") from None


#: at most this many column names in an error line; the rest are counted ("… and 12 more")
MAX_COLUMNS_SHOWN = 40


#: role of a column -> what the command line does about it (the ``cli_hint`` of an unknown-column error)
COLUMN_HINTS = {
    "target": "name the label column with --target",
    "sensitive": "name sensitive columns with --sensitive",
    "feature": "choose feature columns with --features",
    "immutable": "--immutable names feature columns",
}


def unknown_column(col: str, available: Sequence[str], what: str, *, cli_hint: str | None = None) -> DataError:
    """One line: the unknown column (``what``: its role, e.g. ``target``), the closest names (did you mean),
    and the columns there are, all of them up to :data:`MAX_COLUMNS_SHOWN` and the number left out beyond
    that. ``cli_hint`` defaults to the role's entry in :data:`COLUMN_HINTS`."""
    names = [str(c) for c in available]
    by_lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(col.lower(), list(by_lower), n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(by_lower[c]) for c in close)}?)" if close else ""
    shown = ", ".join(names[:MAX_COLUMNS_SHOWN])
    more = len(names) - MAX_COLUMNS_SHOWN
    rest = f", … and {more} more" if more > 0 else ""
    return DataError(f"{what} column {col!r} is not in the data{hint}; the {len(names)} columns are: {shown}{rest}",
                     cli_hint=cli_hint if cli_hint is not None else COLUMN_HINTS.get(what))


def from_frame(
    frame: Any,
    *,
    target: str | None = None,
    sensitive: Sequence[str] = (),
    features: Sequence[str] | None = None,
    immutable: Sequence[str] = (),
    name: str = "data",
    source: str | None = None,
) -> Dataset:
    """Build a :class:`Dataset` from a pandas DataFrame."""
    cols = [str(c) for c in frame.columns]
    frame = frame.set_axis(cols, axis=1)
    if target is not None and target not in cols:
        raise unknown_column(target, cols, "target")
    for s in sensitive:
        if s not in cols:
            raise unknown_column(s, cols, "sensitive")
    if features is None:
        excluded = {target, *sensitive}
        features = [c for c in cols if c not in excluded]
    else:
        for f in features:
            if f not in cols:
                raise unknown_column(f, cols, "feature")
        if target in features:
            raise DataError(f"the feature columns include the target column {target!r}",
                            cli_hint="leave it out of --features")
    if not features:
        raise DataError("no feature columns left", cli_hint="choose them with --features")
    for s in immutable:
        if s not in features:
            raise unknown_column(s, features, "immutable")
    feat = frame[list(features)]
    # lazy: pandas is slow to import; only this path needs it
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    numeric = all(is_numeric_dtype(dt) or is_bool_dtype(dt) for dt in feat.dtypes)
    X = feat.to_numpy(dtype=np.float64) if numeric else feat.to_numpy(dtype=object)
    y = frame[target].to_numpy() if target is not None else None
    if y is not None:
        missing = int(frame[target].isna().sum())
        if missing:
            raise DataError(f"target column {target!r} has {missing} missing value(s); drop those rows first")
        if not np.issubdtype(y.dtype, np.number):
            y = y.astype(str)
    sens = {s: frame[s].to_numpy() for s in sensitive}
    return Dataset(X=X, y=y, feature_names=list(features), sensitive=sens, immutable=frozenset(immutable),
                   name=name, source=source)


def _load_npz(p: Path, *, target: str | None, sensitive: Sequence[str], features: Sequence[str] | None,
              immutable: Sequence[str]) -> Dataset:
    try:
        arch = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FormatError(f"{p}: not a readable NPZ file ({exc or type(exc).__name__})") from exc
    with arch:
        keys = list(arch.files)
        xkey = next((k for k in ("X", "x", "data", "features") if k in keys), None)
        if xkey is None:
            raise DataError(f"{p}: no feature array; expected one named X (arrays: {', '.join(keys)})")
        ykey = target or next((k for k in ("y", "labels", "target") if k in keys), None)
        if target is not None and target not in keys:
            raise unknown_column(target, keys, "target")
        X = arch[xkey]
        y = arch[ykey] if ykey else None
        names = [str(n) for n in arch["feature_names"]] if "feature_names" in keys else None
        sens: dict[str, np.ndarray] = {}
        for s in sensitive:
            k = f"sensitive_{s}" if f"sensitive_{s}" in keys else s
            if k in keys:
                sens[s] = arch[k]
            elif names and s in names:
                sens[s] = X[:, names.index(s)]
            else:
                raise unknown_column(s, keys + (names or []), "sensitive")
    if features is not None:
        if names is None:
            raise DataError(f"{p}: choosing features by name needs a feature_names array in the NPZ file",
                            cli_hint="--features names entries of feature_names")
        for f in features:
            if f not in names:
                raise unknown_column(f, names, "feature")
        X = X[:, [names.index(f) for f in features]]
        names = list(features)
    for s in immutable:  # as for tables: an unknown name is an error, never silently ignored
        if names is None:
            raise DataError(f"{p}: immutable features by name need a feature_names array in the NPZ file",
                            cli_hint="--immutable names entries of feature_names")
        if s not in names:
            raise unknown_column(s, names, "immutable")
    return Dataset(X=X.astype(np.float64) if np.issubdtype(X.dtype, np.number) else X, y=y,
                   feature_names=names, sensitive=sens, immutable=frozenset(immutable), name=p.name,
                   source=str(p))


def first_non_finite(X: np.ndarray) -> tuple[int, int, int] | None:
    """``(row, column, rows affected)`` of the first missing or non-finite value of a numeric 2-D array
    (0-based), or ``None`` when every value is finite."""
    bad = ~np.isfinite(np.asarray(X, dtype=np.float64).reshape(len(X), -1))
    if not bad.any():
        return None
    rows = np.flatnonzero(bad.any(axis=1))
    return int(rows[0]), int(np.flatnonzero(bad[rows[0]])[0]), len(rows)


def _check_model_data(data: Dataset, model: Any) -> None:
    """One clear error for data the model cannot take: labels that are not among a classifier's classes,
    and missing values when the model cannot predict rows that have them."""
    src = data.source or data.name
    if data.y is not None and getattr(model, "task", "classification") == "classification":
        try:
            classes = model.classes
        except AttributeError:  # a model without classes has nothing to check labels against
            classes = None
        if classes is not None:
            try:
                model.label_index(np.asarray(data.y))
            except DataError as exc:
                raise DataError(f"{src}: {exc}") from None
    found = first_non_finite(data.X) if data.is_numeric and len(data) else None
    if found is not None:
        r, c, n_rows = found
        names = list(data.feature_names or [])
        col = f"feature {names[c]!r}" if c < len(names) else f"column {c + 1}"
        try:
            model.predict_proba(np.asarray(data.X)[r : r + 1])
        except Exception as exc:  # whatever the model raises, the cause is the missing values
            raise DataError(f"{src}: missing or non-finite value in row {r + 1}, {col} ({n_rows} rows in all) "
                            f"and the model cannot predict such rows ({type(exc).__name__}); drop or fill them"
                            ) from None


def check_model_width(data: Dataset, model: Any) -> None:
    """Check that ``data`` fits ``model`` before any check runs; raise a one-line :class:`DataError`.

    The width must match the model's input (the hint says how to choose the features, and to name the
    label column when the one extra column is probably the label), a model that takes numbers must get numbers (the
    message names the first non-numeric column and value), a classifier's labels must be among its
    classes, and rows with missing values only pass when the model can predict them.
    """
    want = getattr(getattr(model, "input_spec", None), "n_features", None)
    if want is not None and data.X.ndim >= 2:
        have = data.n_features
        if have != want:
            names = data.feature_names or []
            shown = (" (" + ", ".join(names[:12]) + (" ..." if len(names) > 12 else "") + ")") if names else ""
            label = data.y is None and have == want + 1
            hint = " (is the label column among them?)" if label else ""
            fix = "choose the model's columns" if names else "keep only the model's columns"
            raise DataError(f"the model expects {want} features but the data has {have}{shown}{hint}; {fix}",
                            cli_hint=("name the label column with --target; " if label else "")
                            + ("--features chooses columns" if names else "or name them and use --features"))
    if not data.is_numeric and not _takes_raw_columns(model):
        require_numeric(data)
    _check_model_data(data, model)


def _takes_raw_columns(model: Any) -> bool:
    """A scikit-learn model fitted on a DataFrame (e.g. a pipeline with encoders) takes text columns."""
    return getattr(model, "framework", "") == "sklearn" and model.input_spec.feature_names is not None


def require_numeric(data: Dataset) -> None:
    """Raise a :class:`DataError` naming the first column with a non-numeric value (no-op when numeric)."""

    _require(data, "data", hint="clean the data or choose numeric columns with --features")
