"""Find personal data (PII) in tables: per column and per cell, with validators and confidence.

Each detector is a regular expression for candidates plus a validator that keeps false positives
down:

============== ============================================================================
type           validator
============== ============================================================================
email          RFC-5322-ish local part, a dotted domain with an alphabetic TLD
phone          10-15 digits, not one repeated digit; North-American or ``+``-international form
credit_card    13-19 digits, a known issuer prefix (Visa, Mastercard, Amex, Discover, JCB,
               Diners) and the Luhn checksum
iban           country code, the country's length (ISO 13616 registry) and the mod-97 checksum
us_ssn         ``AAA-GG-SSSS``; area not 000, 666 or 900-999, group not 00, serial not 0000
ip_address     IPv4 with octets <= 255 (not a dotted version string such as ``v1.2.3.4``), IPv6
               through :mod:`ipaddress`
date_of_birth  a real calendar date in 1900..today, in a column named like a birth date or
               next to "born"/"DOB"/"date of birth" in free text
postal_address a house number, street name and street-type word (US/UK style), or a postcode
               / ZIP in a column named for it
============== ============================================================================

Values are never copied into reports: only counts, column names and confidences. Quasi-identifiers
(columns that single out people in combination, like ZIP + birth date + sex, Sweeney 2000) are found
by name hints and by measuring k-anonymity of small column combinations.

References
----------
.. [1] L. Sweeney, "Simple Demographics Often Identify People Uniquely", CMU 2000.
.. [2] ISO 13616-1:2020, IBAN; ISO/IEC 7812-1, Luhn check digit.
.. [3] U.S. SSA, "Social Security Number Randomization", 2011 (SSN validity rules).
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelshield.errors import DataError

__all__ = [
    "PII_TYPES",
    "ColumnPii",
    "PiiReport",
    "QuasiIdentifier",
    "find_pii",
    "iban_valid",
    "luhn_valid",
    "scan_dataset",
    "scan_file",
    "scan_frame",
    "ssn_valid",
]


# --------------------------------------------------------------------------------------------
# validators
# --------------------------------------------------------------------------------------------
def luhn_valid(number: str) -> bool:
    """The Luhn (mod-10) checksum of the digits in ``number``."""
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 2:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_CARD_PREFIX = re.compile(r"^(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:2[2-9]|[3-6]\d|7[01])\d{12}|2720\d{12}"
                          r"|3[47]\d{13}|6(?:011|5\d\d)\d{12,15}|35(?:2[89]|[3-8]\d)\d{12,15}|3(?:0[0-5]|[68]\d)\d{11,16})$")


def card_valid(number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    return bool(_CARD_PREFIX.match(digits)) and luhn_valid(digits) and len(set(digits)) > 1


#: IBAN length per country (ISO 13616 registry; the common SEPA and a few others).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28, "CZ": 24,
    "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "KW": 30, "KZ": 20, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26, "UA": 29,
}


def iban_valid(value: str) -> bool:
    """Country length and the ISO 7064 mod-97 checksum."""
    s = re.sub(r"\s", "", value).upper()
    if len(s) < 15 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    want = IBAN_LENGTHS.get(s[:2])
    if want is None or len(s) != want or not s.isalnum():
        return False
    moved = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in moved)
    return int(num) % 97 == 1


def ssn_valid(value: str) -> bool:
    """US SSN structure rules: area 001-665, 667-899; group 01-99; serial 0001-9999."""
    digits = re.sub(r"\D", "", value)
    if len(digits) != 9:
        return False
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    if area == 0 or area == 666 or area >= 900 or group == 0 or serial == 0:
        return False
    return digits not in {"123456789", "078051120", "219099999"}  # famous invalid / advertising numbers


def _email_valid(value: str) -> bool:
    local, _, domain = value.rpartition("@")
    if not local or ".." in value or local.startswith(".") or local.endswith("."):
        return False
    labels = domain.split(".")
    return len(labels) >= 2 and labels[-1].isalpha() and 2 <= len(labels[-1]) <= 24 and all(labels)


def _phone_valid(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return 10 <= len(digits) <= 15 and len(set(digits)) > 2


def _ip_valid(value: str) -> bool:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    return not (ip.version == 4 and value.startswith("0."))


_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}


def _parse_date(value: str) -> _dt.date | None:
    v = value.strip()
    m = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", v)
    cands: list[tuple[int, int, int]] = []
    if m:
        cands.append((int(m.group(1)), int(m.group(2)), int(m.group(3))))
    m = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", v)
    if m:
        a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
        cands += [(y, b, a), (y, a, b)]  # day-first, then month-first
    m = re.fullmatch(r"(\d{1,2})\s+([A-Za-z]{3})[a-z]*\.?,?\s+(\d{4})", v)
    if m and m.group(2).lower() in _MONTHS:
        cands.append((int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1))))
    m = re.fullmatch(r"([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2}),?\s+(\d{4})", v)
    if m and m.group(1).lower() in _MONTHS:
        cands.append((int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2))))
    for y, mo, d in cands:
        try:
            date = _dt.date(y, mo, d)
        except ValueError:
            continue
        if _dt.date(1900, 1, 1) <= date <= _dt.date.today():
            return date
    return None


# --------------------------------------------------------------------------------------------
# detectors
# --------------------------------------------------------------------------------------------
_DATE_RE = (r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}"
            r"|\d{1,2}\s+[A-Z][a-z]{2,8}\.?,?\s+\d{4}|[A-Z][a-z]{2,8}\.?\s+\d{1,2},?\s+\d{4}")
_STREET = (r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace"
           r"|Close|Square|Sq|Parkway|Pkwy|Highway|Hwy|Crescent|Gardens")


#: A whole cell that is a decimal or scientific-notation number (not an integer): never PII.
_FLOAT_CELL = re.compile(r"\s*[+-]?(?:\d+[.,]\d*|[.,]\d+|\d+(?:[.,]\d*)?[eE][+-]?\d+)\s*")


@dataclass(frozen=True)
class _Detector:
    name: str
    pattern: re.Pattern[str]
    validate: Callable[[str], bool]
    precision: float  # prior confidence that a validated match is real PII
    context: re.Pattern[str] | None = None  # free-text keyword required nearby (else column hint)


_DETECTORS: tuple[_Detector, ...] = (
    _Detector("email", re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"),
              _email_valid, 0.98),
    # not part of a decimal number: no digit run after a decimal point, nor before one or an exponent
    _Detector("credit_card", re.compile(
        r"(?<![\d.-])(?<!\d,)\d(?:[ -]?\d){12,18}(?![\d-])(?![.,]\d|[eE][+-]?\d)"), card_valid, 0.95),
    _Detector("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), iban_valid, 0.98),
    _Detector("us_ssn", re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"), ssn_valid, 0.9),
    _Detector("phone", re.compile(
        r"(?<![\w+.-])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}"
        r"|(?:1[ .-])?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4})(?![\w-])"), _phone_valid, 0.85),
    _Detector("ip_address", re.compile(
        r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])|(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"),
              _ip_valid, 0.8),
    _Detector("date_of_birth", re.compile(rf"(?:{_DATE_RE})"), lambda v: _parse_date(v) is not None, 0.9,
              context=re.compile(r"\b(?:born|d\.?o\.?b\.?|date of birth|birth ?date|birthday|geboren|né[e]?)\b",
                                 re.IGNORECASE)),
    _Detector("postal_address", re.compile(
        rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[A-Z][a-z]+\s+){{1,3}}(?:{_STREET})\b\.?"), lambda v: True, 0.85),
)

PII_TYPES = (*(d.name for d in _DETECTORS), "postcode", "person_name")

#: Column-name hints: a column named like this holds that type (or is a quasi-identifier).
_NAME_HINTS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"e[-_ ]?mail", re.I),
    "phone": re.compile(r"phone|mobile|tel(?:ephone)?\b|\bfax\b", re.I),
    "credit_card": re.compile(r"card|\bcc[-_ ]?(?:num|no)|\bpan\b", re.I),
    "iban": re.compile(r"iban|account", re.I),
    "us_ssn": re.compile(r"\bssn\b|social[-_ ]?sec", re.I),
    "ip_address": re.compile(r"\bip\b|ip[-_ ]?addr", re.I),
    "date_of_birth": re.compile(r"birth|\bdob\b|bday", re.I),
    "postal_address": re.compile(r"address|street|\baddr\b", re.I),
    "postcode": re.compile(r"\bzip|post[-_ ]?code|postal", re.I),
    "person_name": re.compile(r"(?:^|[-_ ])(?:first|last|full|given|family|sur)?[-_ ]?name$|^surname$", re.I),
}
_POSTCODE_RE = re.compile(r"^\s*(?:\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|\d{4,5})\s*$", re.I)
_NAME_RE = re.compile(r"^\s*[A-Z][a-z'\u2019-]+(?:\s+[A-Z][a-z'\u2019-]+){0,3}\s*$")
_QI_HINT = re.compile(r"\bage\b|^age|zip|post[-_ ]?code|postal|birth|\bdob\b|gender|\bsex\b|race|ethnic|nation"
                      r"|marital|occupation|job|city|county|state|country|education|religion", re.I)


@dataclass(frozen=True)
class Match:
    """One validated match: its type, the row and column, and the span inside the cell."""

    type: str
    row: int
    column: str
    start: int
    end: int


def find_pii(text: str, *, column: str = "") -> list[Match]:
    """Validated PII matches in one string (for free text and tests). ``column`` enables column
    hints (a birth-date column needs no keyword)."""
    out: list[Match] = []
    for det in _DETECTORS:
        hinted = bool(column) and bool(_NAME_HINTS[det.name].search(column))
        for m in det.pattern.finditer(text):
            if not det.validate(m.group(0)):
                continue
            if det.context is not None and not hinted:
                window = text[max(0, m.start() - 40) : m.start()]
                if not det.context.search(window):
                    continue
            out.append(Match(det.name, 0, column, m.start(), m.end()))
    return _drop_overlaps(out)


def _drop_overlaps(matches: list[Match]) -> list[Match]:
    """Keep the first (highest-priority) detector for overlapping spans: a card number is not also
    a phone number."""
    kept: list[Match] = []
    for m in matches:
        if not any(k.row == m.row and k.start < m.end and m.start < k.end for k in kept):
            kept.append(m)
    return kept


# --------------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class ColumnPii:
    """PII found in one column. ``counts``: type -> number of cells holding it."""

    column: str
    rows: int
    cells: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    matches: int = 0
    confidence: float = 0.0
    name_hint: str | None = None

    @property
    def types(self) -> list[str]:
        return list(self.counts)


@dataclass(frozen=True, kw_only=True)
class QuasiIdentifier:
    """A column combination that singles people out: ``k`` is its k-anonymity (smallest group)."""

    columns: tuple[str, ...]
    unique_rows: int
    k: int


@dataclass(kw_only=True)
class PiiReport:
    rows: int
    columns: list[ColumnPii]
    quasi_identifiers: list[QuasiIdentifier] = field(default_factory=list)
    cell_mask: dict[str, np.ndarray] = field(default_factory=dict)  # column -> bool per row

    @property
    def pii_columns(self) -> list[ColumnPii]:
        return [c for c in self.columns if c.cells > 0]

    @property
    def total_cells(self) -> int:
        return sum(c.cells for c in self.columns)

    def table(self) -> list[dict[str, Any]]:
        return [{"column": c.column, "types": ", ".join(f"{t}:{n}" for t, n in c.counts.items()),
                 "cells": c.cells, "rows": c.rows, "confidence": round(c.confidence, 3)}
                for c in self.pii_columns]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "total_cells": self.total_cells,
            "columns": {c.column: {"types": dict(c.counts), "cells": c.cells, "matches": c.matches,
                                   "confidence": round(c.confidence, 4), "name_hint": c.name_hint}
                        for c in self.columns},
            "pii_columns": [c.column for c in self.pii_columns],
            "quasi_identifiers": [{"columns": list(q.columns), "unique_rows": q.unique_rows, "k": q.k}
                                  for q in self.quasi_identifiers],
        }


def _scan_column(name: str, values: Any) -> tuple[ColumnPii, np.ndarray]:
    import pandas as pd

    s = pd.Series(values, dtype="object").astype(str)
    s = s.where(~pd.Series(values, dtype="object").isna(), "")
    # a cell that is one decimal number (1.5549350656335201, -3e-05) holds no card, phone or ID
    s = s.where(~s.str.fullmatch(_FLOAT_CELL), "")
    n = len(s)
    hint = next((t for t, rx in _NAME_HINTS.items() if rx.search(name)), None)
    col = ColumnPii(column=name, rows=n, name_hint=hint)
    any_mask = np.zeros(n, dtype=bool)
    nonempty = int((s.str.len() > 0).sum())
    if n == 0 or nonempty == 0:
        return col, any_mask
    # candidates per detector, vectorised with pandas; validation runs on the (sparse) candidates
    claimed: dict[int, list[tuple[int, int]]] = {}
    best_prec = 0.0
    for det in _DETECTORS:
        found = s.str.extractall(f"(?P<m>{det.pattern.pattern})") if s.str.contains(
            det.pattern, regex=True).any() else None
        if found is None or found.empty:
            continue
        hinted = hint == det.name
        rows_hit = np.zeros(n, dtype=bool)
        count = 0
        # spans to check overlaps with higher-priority detectors
        for (row, _k), text in found["m"].items():
            if not det.validate(text):
                continue
            cell = s.iat[row]
            start = cell.find(text)
            if det.context is not None and not hinted:
                if not det.context.search(cell[max(0, start - 40) : start]):
                    continue
            spans = claimed.setdefault(row, [])
            if any(a < start + len(text) and start < b for a, b in spans):
                continue
            spans.append((start, start + len(text)))
            rows_hit[row] = True
            count += 1
        if count:
            col.counts[det.name] = int(rows_hit.sum())
            col.matches += count
            any_mask |= rows_hit
            best_prec = max(best_prec, det.precision * (1.0 if not hinted else 1.05))
    # column-hint-only types: postcodes and names (no content validator can tell them apart)
    for tname, rx in (("postcode", _POSTCODE_RE), ("person_name", _NAME_RE)):
        if hint == tname:
            hit = s.str.match(rx).to_numpy(dtype=bool) & ~any_mask
            if hit.any():
                col.counts[tname] = int(hit.sum())
                col.matches += int(hit.sum())
                any_mask |= hit
                best_prec = max(best_prec, 0.7)
    col.cells = int(any_mask.sum())
    if col.cells:
        frac = col.cells / nonempty
        # mostly-PII columns are near-certain; a few hits in free text keep the detector's prior
        col.confidence = float(min(1.0, best_prec * (0.6 + 0.4 * min(1.0, frac * 2))
                                   + (0.1 if hint in col.counts else 0.0)))
    return col, any_mask


def _quasi_identifiers(frame: Any, *, pii_cols: set[str], max_cols: int = 8, max_size: int = 3,
                       min_unique_frac: float = 0.05) -> list[QuasiIdentifier]:
    """Column combinations (up to ``max_size``) whose k-anonymity is low, among columns named like
    quasi-identifiers or of moderate cardinality; direct identifiers are excluded."""
    n = len(frame)
    if n < 2:
        return []
    cands: list[tuple[int, str]] = []
    for c in frame.columns:
        if c in pii_cols:
            continue
        nun = frame[c].nunique(dropna=False)
        if nun <= 1 or nun >= 0.9 * n:  # constants and row IDs are not quasi-identifiers
            continue
        prio = 0 if _QI_HINT.search(str(c)) else 1
        cands.append((prio, str(c)))
    cands.sort()
    names = [c for _, c in cands[:max_cols]]
    found: list[QuasiIdentifier] = []
    seen_unique: list[frozenset[str]] = []
    for size in range(1, max_size + 1):
        for combo in itertools.combinations(names, size):
            if any(s <= frozenset(combo) for s in seen_unique):
                continue  # a subset already singles people out
            sizes = frame.groupby(list(combo), dropna=False, sort=False).size().to_numpy()
            unique = int(sizes[sizes == 1].sum())
            if unique >= max(1, min_unique_frac * n):
                found.append(QuasiIdentifier(columns=combo, unique_rows=unique, k=int(sizes.min())))
                seen_unique.append(frozenset(combo))
    found.sort(key=lambda q: (-q.unique_rows, len(q.columns)))
    return found[:10]


def scan_frame(frame: Any, *, quasi: bool = True, max_rows: int | None = None, seed: int = 0) -> PiiReport:
    """Scan every column of a pandas DataFrame (numbers are scanned as their text)."""
    if max_rows is not None and len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed)
    frame = frame.reset_index(drop=True)
    cols: list[ColumnPii] = []
    masks: dict[str, np.ndarray] = {}
    for c in frame.columns:
        col, mask = _scan_column(str(c), frame[c].to_numpy(dtype=object))
        cols.append(col)
        masks[str(c)] = mask
    qis = _quasi_identifiers(frame.set_axis([str(c) for c in frame.columns], axis=1),
                             pii_cols={c.column for c in cols if c.cells}) if quasi else []
    return PiiReport(rows=len(frame), columns=cols, quasi_identifiers=qis, cell_mask=masks)


def read_table(path: str | Path) -> Any:
    """Read a CSV or Parquet file with every column as text (leading zeros and IDs intact)."""
    from modelshield.data.loaders import read_table as _read

    return _read(path, as_text=True)


def scan_file(path: str | Path, *, quasi: bool = True, max_rows: int | None = None) -> PiiReport:
    """Scan a CSV or Parquet file."""
    return scan_frame(read_table(path), quasi=quasi, max_rows=max_rows)


def scan_dataset(ds: Any, *, columns: Sequence[str] | None = None, max_rows: int | None = 20000) -> PiiReport:
    """Scan a :class:`~modelshield.data.dataset.Dataset` (its feature columns)."""
    import pandas as pd

    X = np.asarray(ds.X)
    if X.ndim != 2:
        raise DataError("a PII scan needs a table (2-D features)")
    names = list(ds.feature_names or [f"x{j}" for j in range(X.shape[1])])
    frame = pd.DataFrame(X, columns=names)
    if columns is not None:
        frame = frame[list(columns)]
    return scan_frame(frame, max_rows=max_rows)
