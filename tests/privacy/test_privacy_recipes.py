"""privacy.recipes without the CLI: the PII scan of a file, anonymizing a file into a new table, labelled
rows, held-out checks and the text renderings of the membership tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from modelshield._io import same_file
from modelshield.errors import DataError, InputNotFoundError, OutputError, UserError
from modelshield.privacy.recipes import (
    anonymize_file,
    anonymized_lines,
    check_anonymize_paths,
    check_held_out,
    load_labelled,
    membership_rows,
    resolution_lines,
    scan_table,
    write_table,
)

KEY = b"0123456789abcdef-secret"


@pytest.fixture
def people(tmp_path: Path) -> Path:
    p = tmp_path / "people.csv"
    pd.DataFrame({
        "email": [f"u{i}@example.com" for i in range(20)],
        "zip": [f"9410{i % 5}" for i in range(20)],
        "age": [str(20 + i) for i in range(20)],
        "sex": ["f", "m"] * 10,
    }).to_csv(p, index=False)
    return p


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text("columns:\n  email: pseudonymize\n  age: {bucket: {width: 10}}\n  zip: {generalize: {keep: 3}}\n"
                 "quasi_identifiers: [zip, age, sex]\nsensitive: email\nk: 2\n")
    return p


def test_scan_table_finds_the_column(people: Path) -> None:
    rep = scan_table(people)
    assert rep.rows == 20 and [c.column for c in rep.pii_columns] == ["email", "zip"]
    assert scan_table(people, max_rows=5, quasi=False).rows == 5


def test_scan_table_refuses_no_rows(tmp_path: Path, people: Path) -> None:
    (tmp_path / "header.csv").write_text("email,age\n")
    with pytest.raises(DataError, match="no data rows"):
        scan_table(tmp_path / "header.csv")
    with pytest.raises(UserError) as exc:
        scan_table(people, max_rows=0)
    assert exc.value.cli_hint == "--max-rows" and "--" not in str(exc.value)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".PQ"])
def test_write_table_by_suffix(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({"a": ["007", "x"], "b": ["1", "2"]})
    out = tmp_path / f"t{suffix}"
    write_table(frame, out)
    back = pd.read_csv(out, dtype=str) if suffix == ".csv" else pd.read_parquet(out)
    assert back.to_dict("list") == {"a": ["007", "x"], "b": ["1", "2"]}
    with pytest.raises(OutputError, match="already exists"):
        write_table(frame, out)
    write_table(frame, out, force=True)


def test_write_table_refuses_other_suffixes(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"\.csv or \.parquet"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.txt")
    assert not (tmp_path / "t.txt").exists()


def test_anonymize_file(tmp_path: Path, people: Path, policy: Path) -> None:
    (tmp_path / "key").write_bytes(KEY + b"\n")
    before = people.read_bytes()
    res = anonymize_file(people, tmp_path / "out.parquet", policy, key_file=tmp_path / "key")
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert not out["email"].str.contains("@").any() and set(out["zip"]) == {"941**"}
    assert res.report.rows_in == 20 and res.report.k_before == 1 and res.report.k_after >= 2
    assert res.policy.k == 2 and people.read_bytes() == before
    lines = anonymized_lines(res, "out.parquet")
    assert lines[0] == (f"wrote out.parquet ({res.report.rows_out} of 20 rows; {res.report.suppressed_rows} "
                        "suppressed for k-anonymity)")
    assert f"k-anonymity on zip, age, sex: 1 -> {res.report.k_after}" in lines
    assert any(line.startswith("l-diversity of email: ") for line in lines)


def test_anonymize_file_refusals(tmp_path: Path, people: Path, policy: Path) -> None:
    with pytest.raises(OutputError, match="never overwrites its input"):
        anonymize_file(people, people, policy, key_file=tmp_path / "key")
    with pytest.raises(UserError, match=r"\.csv or \.parquet"):
        check_anonymize_paths(people, tmp_path / "out.txt")
    with pytest.raises(InputNotFoundError, match="key file not found"):
        anonymize_file(people, tmp_path / "out.csv", policy, key_file=tmp_path / "nokey")
    assert not (tmp_path / "out.csv").exists()


def test_same_file_through_a_link(tmp_path: Path, people: Path) -> None:
    (tmp_path / "link.csv").symlink_to(people)
    assert same_file(people, tmp_path / "link.csv") and same_file(people, tmp_path / "." / "people.csv")
    assert not same_file(people, tmp_path / "other.csv")


@pytest.mark.parametrize(("singles", "warned"), [(12, True), (10, False)])
def test_warning_when_most_rows_are_suppressed(tmp_path: Path, singles: int, warned: bool) -> None:
    src = tmp_path / "g.csv"
    pd.DataFrame({"g": ["a"] * (20 - singles) + [f"u{i}" for i in range(singles)]}).to_csv(src, index=False)
    pol = tmp_path / "k.yaml"
    pol.write_text("columns: {}\nquasi_identifiers: [g]\nk: 2\n")
    res = anonymize_file(src, tmp_path / "o.csv", pol)
    assert res.report.suppressed_rows == singles
    warning = [line for line in anonymized_lines(res, "o.csv") if line.startswith("warning:")]
    assert warning == ([f"warning: k: 2 suppressed {singles / 20:.0%} of the rows; lower k or generalize/bucket the "
                        "quasi-identifiers to keep more data"] if warned else [])


def test_load_labelled(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "s": ["x", "y"], "y": [0, 1]}).to_csv(p, index=False)
    ds = load_labelled(p, "y", ["a", "b"], what="training data")
    assert ds.X.shape == (2, 2) and list(ds.y) == [0, 1]
    with pytest.raises(DataError) as exc:
        load_labelled(p, "y", None, what="training data")
    assert "training data d.csv" in str(exc.value) and "'s'" in str(exc.value)


def test_held_out_must_differ(tmp_path: Path, people: Path) -> None:
    check_held_out(people, tmp_path / "other.csv")
    with pytest.raises(DataError) as exc:
        check_held_out(people, people)
    assert "--" not in str(exc.value) and exc.value.cli_hint == "--train and --test must differ"


TABLES = {
    "membership_attacks": [
        {"attack": "loss", "auc": 0.61234, "tpr_at_0.1%_fpr": float("nan"), "tpr_at_1%_fpr": 0.05,
         "chosen_in_replicates": 0.25},
        {"attack": "rmia", "auc": 0.7, "tpr_at_0.1%_fpr": None, "tpr_at_1%_fpr": 0.123456},
    ],
    "membership_resolution": [
        {"fpr": 0.001, "resolvable": False, "nonmembers": 300, "min_resolvable_fpr": 1 / 300,
         "nonmembers_to_resolve": 1000},
        {"fpr": 0.01, "resolvable": True, "tpr": 0.1, "tpr_lower": 0.05, "tpr_upper": 0.2, "graded": False,
         "nonmembers_to_grade": 5000},
    ],
}


def test_membership_rows() -> None:
    assert membership_rows(TABLES) == [("loss", "0.612", "n/r", "0.050", "25%"),
                                       ("rmia", "0.700", "n/r", "0.123", "0%")]
    assert membership_rows({}) == []


def test_resolution_lines_highest_fpr_first() -> None:
    lines = resolution_lines(TABLES)
    assert lines == [
        "TPR@1.0%FPR (strongest attack): 0.100 [0.050-0.200] (not graded: 5,000 non-members needed for a lower bound)",
        "TPR@0.1%FPR: not resolved (n/r) — 300 non-members resolve FPRs down to 0.33%; 1,000 needed",
    ]
    graded = dict(TABLES["membership_resolution"][1], graded=True)
    assert resolution_lines({"membership_resolution": [graded]})[0].endswith("(graded)")
