"""Privacy workflows over the engine: what ``modelshield privacy scan-pii | anonymize | membership`` and
``harden dp`` run around it (reading and writing tables, labelled rows, held-out checks), callable without
the CLI, plus text renderings of their results.

Errors carry neutral messages; the flag to fix rides in ``cli_hint``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelshield._io import same_file, write_bytes_safely
from modelshield.data.loaders import load_dataset
from modelshield.data.numeric import require_numeric
from modelshield.errors import DataError, InputNotFoundError, OutputError, UserError
from modelshield.privacy.anonymize import (
    AnonymizationPolicy,
    AnonymizationReport,
    anonymize_frame,
    load_anonymization_policy,
)
from modelshield.privacy.pii import PiiReport, read_table, scan_file

__all__ = ["TABLE_SUFFIXES", "Anonymized", "anonymize_file", "anonymized_lines", "check_anonymize_paths",
           "check_held_out", "load_labelled", "membership_rows", "resolution_lines", "scan_table",
           "write_table"]

#: The suffixes a table is written as: CSV, or Parquet.
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
#: A warning is due when k-anonymity suppressed more than this share of the rows.
SUPPRESSION_WARNING = 0.5


@dataclass(frozen=True)
class Anonymized:
    """What :func:`anonymize_file` did: the policy it applied and the before/after report."""

    policy: AnonymizationPolicy
    report: AnonymizationReport


def scan_table(path: str | Path, *, quasi: bool = True, max_rows: int | None = None) -> PiiReport:
    """PII scan of a CSV or Parquet file (a random sample of ``max_rows`` rows when given). A table with no
    data rows is an error: "no personal data found" would be a claim about data that was never read."""
    if max_rows is not None and max_rows < 1:
        raise UserError(f"the number of rows to scan must be at least 1, got {max_rows}", cli_hint="--max-rows")
    report = scan_file(path, quasi=quasi, max_rows=max_rows)
    if report.rows == 0:
        raise DataError(f"{path}: no data rows to scan (an empty table, or not a CSV/Parquet file)")
    return report


def write_table(frame: Any, path: str | Path, force: bool = False) -> None:
    """Write a pandas frame atomically as Parquet (``.parquet``/``.pq``) or CSV (``.csv``), without its index."""
    p = Path(path)
    if p.suffix.lower() not in TABLE_SUFFIXES:
        raise UserError(f"output {p} must end in .csv or .parquet (the format it is written in)")
    if p.suffix.lower() == ".csv":
        write_bytes_safely(p, frame.to_csv(index=False).encode("utf-8"), force)
        return
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    write_bytes_safely(p, buf.getvalue(), force)


def check_anonymize_paths(src: str | Path, dst: str | Path) -> None:
    """The output of an anonymization must be a new table (``.csv`` or ``.parquet``), never its input."""
    if same_file(src, dst):
        raise OutputError("the output is the input file; anonymization never overwrites its input")
    if Path(dst).suffix.lower() not in TABLE_SUFFIXES:
        raise UserError(f"output {dst} must end in .csv or .parquet (the format it is written in)")


def anonymize_file(src: str | Path, dst: str | Path, policy: str | Path, *, key_file: str | Path | None = None,
                   force: bool = False) -> Anonymized:
    """Anonymize the table ``src`` by the YAML ``policy`` into ``dst`` (``.csv`` or ``.parquet``; never
    ``src`` itself). ``key_file`` holds the pseudonymization key (else the policy's environment variable)."""
    check_anonymize_paths(src, dst)
    pol = load_anonymization_policy(policy)
    key = None
    if key_file is not None:
        if not Path(key_file).is_file():
            raise InputNotFoundError(f"key file not found: {key_file}")
        key = Path(key_file).read_bytes().strip()
    out, report = anonymize_frame(read_table(src), pol, key=key)
    write_table(out, dst, force)
    return Anonymized(pol, report)


def anonymized_lines(result: Anonymized, dst: str | Path) -> list[str]:
    """What an anonymization did, as text lines: rows kept, a warning when most were suppressed, and
    k-anonymity and l-diversity before and after."""
    rep, pol = result.report, result.policy
    lines = [f"wrote {dst} ({rep.rows_out} of {rep.rows_in} rows; {rep.suppressed_rows} suppressed for k-anonymity)"]
    if rep.suppressed_fraction > SUPPRESSION_WARNING:
        lines.append(f"warning: k: {pol.k} suppressed {rep.suppressed_fraction:.0%} of the rows; lower k "
                     "or generalize/bucket the quasi-identifiers to keep more data")
    if rep.k_before is not None:
        lines.append(f"k-anonymity on {', '.join(pol.quasi_identifiers)}: {rep.k_before} -> {rep.k_after}")
    if rep.l_before is not None:
        lines.append(f"l-diversity of {pol.sensitive}: {rep.l_before} -> {rep.l_after}")
    return lines


def load_labelled(path: str | Path, target: str, features: Sequence[str] | None = None, *, what: str) -> Any:
    """Labelled, numeric rows (DP training and membership inference need both); ``what`` names the rows in
    messages (e.g. ``"training data"``)."""
    ds = load_dataset(path, target=target, features=list(features or []) or None)
    if ds.y is None:
        raise DataError(f"{path}: no labels", cli_hint="pass --target COLUMN")
    require_numeric(ds, f"{what} {Path(path).name}")
    return ds


def check_held_out(train: str | Path, test: str | Path) -> None:
    """Membership inference needs held-out rows: the member and non-member files must differ."""
    if same_file(train, test):
        raise DataError("the training and held-out data are the same file; membership inference needs "
                        "held-out data", cli_hint="--train and --test must differ")


def _tpr(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/r"  # not resolved: fewer non-members than 1/FPR (explained by resolution_lines)
    return f"{value:.3f}"


def membership_rows(tables: Mapping[str, list[dict[str, Any]]]) -> list[tuple[str, ...]]:
    """The membership-attack table of a privacy check result as text cells: attack, AUC, TPR at 0.1 % and 1 %
    FPR (``n/r`` when the non-members cannot resolve it), share of replicates that chose the attack."""
    return [(r["attack"], f"{r['auc']:.3f}", _tpr(r["tpr_at_0.1%_fpr"]), _tpr(r["tpr_at_1%_fpr"]),
             f"{r.get('chosen_in_replicates', 0):.0%}") for r in tables.get("membership_attacks", [])]


def resolution_lines(tables: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """One line per FPR level of a privacy check result: the strongest attack's TPR with its interval, or
    why the non-members cannot resolve that level."""
    lines = []
    for r in sorted(tables.get("membership_resolution", []), key=lambda r: r["fpr"], reverse=True):
        level = r["fpr"]
        if not r["resolvable"]:
            lines.append(f"TPR@{level:.1%}FPR: not resolved (n/r) — {r['nonmembers']} non-members resolve FPRs "
                         f"down to {r['min_resolvable_fpr']:.2%}; {r['nonmembers_to_resolve']:,} needed")
            continue
        graded = "graded" if r["graded"] else (f"not graded: {r['nonmembers_to_grade']:,} non-members needed "
                                               "for a lower bound")
        lines.append(f"TPR@{level:.1%}FPR (strongest attack): {r['tpr']:.3f} "
                     f"[{r['tpr_lower']:.3f}-{r['tpr_upper']:.3f}] ({graded})")
    return lines
