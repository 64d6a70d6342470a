"""Anonymize a table by policy: keyed pseudonyms, masking, generalization, bucketing, suppression,
free-text PII redaction; k-anonymity and l-diversity measured before and after.

A policy (YAML) names one action per column::

    key_env: MODELSHIELD_ANON_KEY        # where the pseudonymization key comes from (or --key-file)
    columns:
      email: pseudonymize                 # HMAC-SHA256(key, value): same input + key -> same token
      name: suppress                      # every value -> "*"
      ssn: drop                           # remove the column
      phone: {mask: {keep_last: 4}}       # "*******0199"
      zip: {generalize: {keep: 3}}        # "941**"
      birth_date: {generalize: {date: year}}   # "1985"
      age: {bucket: {width: 10}}          # "30-39"
      comment: redact                     # PII spans in free text -> "[EMAIL]", "[PHONE]", ...
    quasi_identifiers: [zip, age, sex]    # measured for k-anonymity
    sensitive: diagnosis                  # measured for l-diversity
    k: 5                                  # suppress rows whose quasi-identifier group is smaller

Pseudonyms are ``HMAC-SHA256(key, column-independent value)`` truncated to 16 hex characters, so the
same person links across files anonymized with the same key, and cannot be reversed without it
(unlike a plain hash, which a dictionary of e-mail addresses inverts).

References
----------
.. [1] L. Sweeney, "k-Anonymity: A Model for Protecting Privacy", IJUFKS 2002.
.. [2] A. Machanavajjhala et al., "l-Diversity: Privacy Beyond k-Anonymity", TKDD 2007.
.. [3] ENISA, "Pseudonymisation techniques and best practices", 2019.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelshield._yaml import load_yaml_file
from modelshield.data.loaders import unknown_column
from modelshield.errors import DataError, PolicyError

__all__ = [
    "ACTIONS",
    "AnonymizationPolicy",
    "AnonymizationReport",
    "ColumnRule",
    "anonymize_frame",
    "k_anonymity",
    "l_diversity",
    "load_anonymization_policy",
    "pseudonymize",
]

#: action -> the options it takes (with defaults).
ACTIONS: dict[str, dict[str, Any]] = {
    "pseudonymize": {"length": 16, "prefix": ""},
    "mask": {"keep_last": 4, "keep_first": 0, "char": "*"},
    "generalize": {"keep": None, "date": None, "char": "*"},
    "bucket": {"width": None, "edges": None},
    "suppress": {"value": "*"},
    "drop": {},
    "redact": {},
    "keep": {},
}
MIN_KEY_BYTES = 16


@dataclass(frozen=True, kw_only=True)
class ColumnRule:
    column: str
    action: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AnonymizationPolicy:
    rules: tuple[ColumnRule, ...] = ()
    quasi_identifiers: tuple[str, ...] = ()
    sensitive: str | None = None
    k: int | None = None
    key_env: str = "MODELSHIELD_ANON_KEY"

    @property
    def needs_key(self) -> bool:
        return any(r.action == "pseudonymize" for r in self.rules)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AnonymizationPolicy:
        if not isinstance(d, Mapping):
            raise PolicyError("an anonymization policy must be a mapping with a 'columns' section")
        unknown = sorted(set(d) - {"columns", "quasi_identifiers", "sensitive", "k", "key_env", "version"})
        if unknown:
            raise PolicyError(f"unknown key {unknown[0]!r} in the anonymization policy; known: columns, "
                              "quasi_identifiers, sensitive, k, key_env")
        cols = d.get("columns") or {}
        if not isinstance(cols, Mapping):
            raise PolicyError("'columns' must map column names to actions")
        rules = []
        for col, spec in cols.items():
            if isinstance(spec, str):
                action, opts = spec, {}
            elif isinstance(spec, Mapping) and len(spec) == 1:
                action, opts = next(iter(spec.items()))
                opts = dict(opts or {})
            else:
                raise PolicyError(f"column {col!r}: give one action, e.g. 'pseudonymize' or "
                                  "{mask: {keep_last: 4}}")
            if action not in ACTIONS:
                raise PolicyError(f"column {col!r}: unknown action {action!r}; expected one of "
                                  f"{', '.join(ACTIONS)}")
            bad = sorted(set(opts) - set(ACTIONS[action]))
            if bad:
                raise PolicyError(f"column {col!r}: unknown option {bad[0]!r} for {action}; known: "
                                  f"{', '.join(ACTIONS[action]) or '(none)'}")
            full = {**ACTIONS[action], **opts}
            _check_rule_options(str(col), str(action), full)
            rules.append(ColumnRule(column=str(col), action=str(action), options=full))
        k = d.get("k")
        if k is not None and (not isinstance(k, int) or k < 1):
            raise PolicyError(f"k must be a positive integer, got {k!r}")
        if not rules and k is None:  # a policy that changes nothing would copy every personal value through
            raise PolicyError("the anonymization policy changes nothing: give a 'columns' section (or k)")
        qis = d.get("quasi_identifiers") or []
        if isinstance(qis, str) or not isinstance(qis, Sequence):
            raise PolicyError("quasi_identifiers must be a list of column names")
        return cls(rules=tuple(rules), quasi_identifiers=tuple(map(str, qis)),
                   sensitive=None if d.get("sensitive") is None else str(d["sensitive"]), k=k,
                   key_env=str(d.get("key_env") or "MODELSHIELD_ANON_KEY"))


def _check_rule_options(col: str, action: str, o: Mapping[str, Any]) -> None:
    """Values that cannot mean anything (negative counts, a zero or NaN width, unsorted edges)."""
    def count(name: str, minimum: int) -> None:
        v = o.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < minimum):
            raise PolicyError(f"column {col!r}: {action}.{name} must be an integer >= {minimum}, got {v!r}")

    if action == "mask":
        count("keep_last", 0)
        count("keep_first", 0)
    elif action == "generalize":
        count("keep", 0)
    elif action == "pseudonymize":
        count("length", 4)
    elif action == "bucket":
        width, edges = o.get("width"), o.get("edges")
        if width is not None and (isinstance(width, bool) or not isinstance(width, (int, float))
                                  or not math.isfinite(width) or width <= 0):
            raise PolicyError(f"column {col!r}: bucket.width must be a positive number, got {width!r}")
        if edges is not None:
            if (not isinstance(edges, Sequence) or isinstance(edges, str) or len(edges) < 1
                    or not all(isinstance(e, (int, float)) and not isinstance(e, bool) and math.isfinite(e)
                               for e in edges)):
                raise PolicyError(f"column {col!r}: bucket.edges must be a list of numbers, got {edges!r}")
            if any(b <= a for a, b in itertools.pairwise(edges)):
                raise PolicyError(f"column {col!r}: bucket.edges must increase, got {list(edges)}")


def load_anonymization_policy(path: str | Path) -> AnonymizationPolicy:
    data = load_yaml_file(path, "policy file", error=PolicyError)
    return AnonymizationPolicy.from_dict(data or {})


def resolve_key(policy: AnonymizationPolicy, key: bytes | None = None) -> bytes | None:
    """The pseudonymization key: given, or from the environment variable the policy names."""
    if not policy.needs_key:
        return key
    if key is None:
        env = os.environ.get(policy.key_env)
        key = env.encode("utf-8") if env else None
    if key is None:
        raise DataError(f"pseudonymization needs a secret key: set {policy.key_env}", cli_hint="or pass --key-file")
    if len(key) < MIN_KEY_BYTES:
        raise DataError(f"the pseudonymization key is too short: use at least {MIN_KEY_BYTES} random bytes")
    return key


# --------------------------------------------------------------------------------------------
# transforms (vectorised over a column; Python only per *distinct* value where unavoidable)
# --------------------------------------------------------------------------------------------
def pseudonymize(values: Sequence[Any], key: bytes, *, length: int = 16, prefix: str = "") -> np.ndarray:
    """HMAC-SHA256 tokens; empty cells stay empty. Computed once per distinct value."""
    arr = np.asarray(values, dtype=object)
    uniq, inv = np.unique(arr.astype(str), return_inverse=True)
    tokens = np.array([prefix + hmac.new(key, u.encode("utf-8"), hashlib.sha256).hexdigest()[:length]
                       if u not in ("", "nan", "None") else u for u in uniq], dtype=object)
    return tokens[inv.reshape(-1)]


def _mask(s: Any, keep_last: int, keep_first: int, char: str) -> Any:
    def one(v: str) -> str:
        if not v:
            return v
        n = len(v)
        head = min(keep_first, n)
        tail = min(keep_last, n - head)
        return v[:head] + char * (n - head - tail) + (v[n - tail :] if tail else "")

    return s.map(one)


def _generalize(s: Any, keep: int | None, date: str | None, char: str) -> Any:
    if date is not None:
        import pandas as pd  # lazy: pandas is slow to import; only this path needs it

        if date not in ("year", "month", "decade"):
            raise PolicyError(f"generalize.date must be year, month or decade, got {date!r}")
        parsed = pd.to_datetime(s, errors="coerce", format="mixed")
        fmt = {"year": "%Y", "month": "%Y-%m", "decade": "%Y"}[date]
        out = parsed.dt.strftime(fmt)
        if date == "decade":
            out = out.map(lambda y: f"{y[:3]}0s" if isinstance(y, str) else y)
        return out.where(parsed.notna(), "")
    if keep is None:
        raise PolicyError("generalize needs 'keep' (characters to keep) or 'date' (year/month/decade)")
    k = int(keep)
    return s.map(lambda v: v[:k] + char * max(len(v) - k, 0) if v else v)


def _bucket(s: Any, width: float | None, edges: Sequence[float] | None) -> Any:
    import pandas as pd  # lazy: pandas is slow to import; only this path needs it

    x = pd.to_numeric(s, errors="coerce")
    if edges:
        e = np.asarray(sorted(float(v) for v in edges))
        idx = np.searchsorted(e, x.to_numpy(), side="right")
        labels = [f"<{e[0]:g}", *[f"{e[i]:g}-{e[i + 1]:g}" for i in range(len(e) - 1)], f">={e[-1]:g}"]
        out = pd.Series(np.asarray(labels, dtype=object)[idx], index=s.index)
    elif width:
        w = float(width)
        lo = np.floor(x / w) * w
        out = lo.map(lambda v: "" if np.isnan(v) else f"{v:g}-{v + w - (1 if w.is_integer() else 0):g}")
    else:
        raise PolicyError("bucket needs 'width' or 'edges'")
    return out.where(x.notna(), "")


def _redact(s: Any) -> Any:
    from modelshield.privacy.pii import (  # lazy: privacy.pii pulls in scikit-learn and phonenumbers
        find_pii,  # lazy: pulls in pandas, phonenumbers, rich, scipy, sklearn only when used
    )

    def one(v: str) -> str:
        if not v:
            return v
        ms = sorted(find_pii(v), key=lambda m: m.start, reverse=True)
        for m in ms:
            v = v[: m.start] + f"[{m.type.upper()}]" + v[m.end :]
        return v

    return s.map(one)


# --------------------------------------------------------------------------------------------
# measures
# --------------------------------------------------------------------------------------------
def k_anonymity(frame: Any, quasi_identifiers: Sequence[str]) -> int:
    """The size of the smallest group of rows sharing all quasi-identifier values (0 if empty)."""
    if len(frame) == 0 or not quasi_identifiers:
        return 0 if len(frame) == 0 else len(frame)
    return int(frame.groupby(list(quasi_identifiers), dropna=False, sort=False).size().min())


def l_diversity(frame: Any, quasi_identifiers: Sequence[str], sensitive: str) -> int:
    """The fewest distinct sensitive values in any quasi-identifier group (distinct l-diversity)."""
    if len(frame) == 0:
        return 0
    if not quasi_identifiers:
        return int(frame[sensitive].nunique(dropna=False))
    return int(frame.groupby(list(quasi_identifiers), dropna=False, sort=False)[sensitive]
               .nunique(dropna=False).min())


@dataclass(kw_only=True)
class AnonymizationReport:
    rows_in: int
    rows_out: int
    actions: dict[str, str]
    k_before: int | None = None
    k_after: int | None = None
    l_before: int | None = None
    l_after: int | None = None
    suppressed_rows: int = 0

    @property
    def suppressed_fraction(self) -> float:
        """Share of the input rows suppressed for k-anonymity (0 for an empty input)."""
        return self.suppressed_rows / self.rows_in if self.rows_in else 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def anonymize_frame(frame: Any, policy: AnonymizationPolicy, *, key: bytes | None = None
                    ) -> tuple[Any, AnonymizationReport]:
    """Apply ``policy`` to a copy of ``frame`` (all columns as text). Returns the new frame and a
    report with k-anonymity / l-diversity before and after."""
    cols = [str(c) for c in frame.columns]
    frame = frame.set_axis(cols, axis=1)
    for name in [r.column for r in policy.rules] + list(policy.quasi_identifiers) + (
            [policy.sensitive] if policy.sensitive else []):
        if name not in cols:
            raise unknown_column(name, cols, "policy")
    dropped = {r.column for r in policy.rules if r.action == "drop"}
    for name in policy.quasi_identifiers:
        if name in dropped:
            raise PolicyError(f"quasi-identifier {name!r} is dropped by the policy; remove it from "
                              "quasi_identifiers")
    key = resolve_key(policy, key)
    out = frame.copy().astype(object).fillna("").astype(str)
    report = AnonymizationReport(rows_in=len(frame), rows_out=len(frame),
                                 actions={r.column: r.action for r in policy.rules})
    qis = list(policy.quasi_identifiers)
    if qis:
        report.k_before = k_anonymity(out, qis)
        if policy.sensitive:
            report.l_before = l_diversity(out, qis, policy.sensitive)
    for rule in policy.rules:
        s = out[rule.column]
        o = rule.options
        if rule.action == "pseudonymize":
            assert key is not None
            out[rule.column] = pseudonymize(s.to_numpy(), key, length=int(o["length"]), prefix=str(o["prefix"]))
        elif rule.action == "mask":
            out[rule.column] = _mask(s, int(o["keep_last"]), int(o["keep_first"]), str(o["char"]))
        elif rule.action == "generalize":
            out[rule.column] = _generalize(s, o["keep"], o["date"], str(o["char"]))
        elif rule.action == "bucket":
            out[rule.column] = _bucket(s, o["width"], o["edges"])
        elif rule.action == "suppress":
            out[rule.column] = str(o["value"])
        elif rule.action == "redact":
            out[rule.column] = _redact(s)
    out = out.drop(columns=sorted(dropped))
    if policy.k and qis:
        sizes = out.groupby(qis, dropna=False, sort=False)[qis[0]].transform("size")
        keep = sizes.to_numpy() >= policy.k
        if len(out) and not keep.any():
            largest = int(sizes.max())
            raise DataError(
                f"the policy's k: {policy.k} suppresses all {len(out)} rows: the largest group sharing "
                f"the quasi-identifiers ({', '.join(qis)}) has {largest} row(s). Lower k to at most "
                f"{largest}, or generalize/bucket those columns so that more rows share values")
        report.suppressed_rows = int((~keep).sum())
        out = out[keep].reset_index(drop=True)
    report.rows_out = len(out)
    if qis:
        report.k_after = k_anonymity(out, qis)
        if policy.sensitive and policy.sensitive not in dropped:
            report.l_after = l_diversity(out, qis, policy.sensitive)
    return out, report

