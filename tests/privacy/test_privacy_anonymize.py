"""Anonymization: each action, keyed pseudonyms, k-anonymity / l-diversity, bad policies."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd
import pytest

from modelshield.errors import DataError, PolicyError
from modelshield.privacy.anonymize import (
    AnonymizationPolicy,
    anonymize_frame,
    k_anonymity,
    l_diversity,
    load_anonymization_policy,
    pseudonymize,
)

KEY = b"k" * 16 + b"-test-key"


@pytest.fixture
def people():
    rng = np.random.default_rng(0)
    n = 120
    return pd.DataFrame({
        "email": [f"u{i % 40}@example.com" for i in range(n)],
        "phone": [f"415-555-{i:04d}" for i in range(n)],
        "zip": rng.choice(["94107", "94110", "94117", "10001", "10002"], n),
        "age": rng.integers(18, 80, n).astype(str),
        "sex": rng.choice(["f", "m"], n),
        "dx": rng.choice(["flu", "cold", "asthma"], n),
        "note": [f"write to u{i}@example.com" if i % 2 else "nothing" for i in range(n)],
        "ssn": ["123-45-6780"] * n,
    })


POLICY = {
    "columns": {"email": "pseudonymize", "phone": {"mask": {"keep_last": 4}}, "zip": {"generalize": {"keep": 3}},
                "age": {"bucket": {"width": 20}}, "note": "redact", "ssn": "drop"},
    "quasi_identifiers": ["zip", "age", "sex"], "sensitive": "dx", "k": 3,
}


def test_policy_applies_every_action_and_improves_k(people):
    out, rep = anonymize_frame(people, AnonymizationPolicy.from_dict(POLICY), key=KEY)
    assert "ssn" not in out.columns
    assert out["phone"].str.match(r"^\*{8}\d{4}$").all()
    assert set(out["zip"]) <= {"941**", "100**"}
    assert set(out["age"]) <= {"0-19", "20-39", "40-59", "60-79"}
    assert not out["note"].str.contains("@").any() and out["note"].str.contains(r"\[EMAIL\]").any()
    assert not out["email"].str.contains("@").any()
    assert rep.k_before == 1 and rep.k_after >= 3
    assert rep.l_after is not None and rep.l_after >= 1
    assert rep.rows_out == rep.rows_in - rep.suppressed_rows
    assert k_anonymity(out, ["zip", "age", "sex"]) == rep.k_after
    assert people["email"].iloc[0] == "u0@example.com"  # the input frame is untouched


def test_pseudonyms_are_keyed_consistent_and_not_plain_hashes(people):
    a = pseudonymize(people["email"].to_numpy(), KEY)
    b = pseudonymize(people["email"].to_numpy()[::-1], KEY)[::-1]
    assert (a == b).all()  # same value + key -> same token, in any file or order
    assert len(set(a)) == 40
    other = pseudonymize(people["email"].to_numpy(), b"another-key-of-16+bytes")
    assert not (a == other).any()
    plain = hashlib.sha256(b"u0@example.com").hexdigest()[:16]
    assert a[0] != plain
    assert a[0] == hmac.new(KEY, b"u0@example.com", hashlib.sha256).hexdigest()[:16]


def test_key_is_required_long_and_read_from_env(people, monkeypatch):
    pol = AnonymizationPolicy.from_dict({"columns": {"email": "pseudonymize"}, "key_env": "MY_KEY"})
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(DataError, match="MY_KEY"):
        anonymize_frame(people, pol)
    with pytest.raises(DataError, match="too short"):
        anonymize_frame(people, pol, key=b"short")
    monkeypatch.setenv("MY_KEY", KEY.decode())
    out, _ = anonymize_frame(people, pol)
    assert out["email"].iloc[0] == pseudonymize(["u0@example.com"], KEY)[0]


def test_date_generalization_and_l_diversity():
    df = pd.DataFrame({"dob": ["1985-03-12", "12/01/1990", "bad"], "g": ["a", "a", "b"], "s": ["x", "y", "x"]})
    out, _ = anonymize_frame(df, AnonymizationPolicy.from_dict({"columns": {"dob": {"generalize": {"date": "decade"}}}}))
    assert out["dob"].tolist() == ["1980s", "1990s", ""]
    assert l_diversity(df, ["g"], "s") == 1 and l_diversity(df, [], "s") == 2


@pytest.mark.parametrize(("policy", "match"), [
    ({"columns": {"email": "encrypt"}}, "unknown action"),
    ({"columns": {"email": {"mask": {"keep": 2}}}}, "unknown option"),
    ({"columns": {"email": "keep"}, "extra": 1}, "unknown key"),
    ({"columns": {"email": "keep"}, "k": 0}, "positive integer"),
    ({"columns": ["email"]}, "map column"),
])
def test_bad_policies(policy, match):
    with pytest.raises(PolicyError, match=match):
        AnonymizationPolicy.from_dict(policy)


def test_unknown_column_and_policy_file(people, tmp_path):
    with pytest.raises(DataError, match="not in the data"):
        anonymize_frame(people, AnonymizationPolicy.from_dict({"columns": {"nope": "drop"}}))
    p = tmp_path / "p.yaml"
    p.write_text("columns: {email: [unclosed\n")
    with pytest.raises(PolicyError, match="YAML"):
        load_anonymization_policy(p)


def test_k_that_suppresses_every_row_is_an_error(people):
    # regression: k above every group size used to return an empty table without complaint
    pol = AnonymizationPolicy.from_dict({"columns": {"ssn": "drop"}, "quasi_identifiers": ["zip", "age", "sex"],
                                         "k": 500})
    with pytest.raises(DataError, match=r"k: 500 suppresses all 120 rows.*zip, age, sex.*Lower k"):
        anonymize_frame(people, pol)
    # a k that keeps some rows reports the suppressed share
    pol = AnonymizationPolicy.from_dict({"columns": {"ssn": "drop"}, "quasi_identifiers": ["zip", "sex"], "k": 13})
    out, rep = anonymize_frame(people, pol)
    assert 0 < len(out) < len(people)
    assert rep.suppressed_fraction == pytest.approx(rep.suppressed_rows / 120) and rep.suppressed_rows > 0


@pytest.mark.parametrize("n_cols", [3, 25, 60])
def test_unknown_policy_column_lists_every_column_or_says_how_many_more(n_cols):
    import pandas as pd

    from modelshield.errors import DataError
    from modelshield.privacy.anonymize import AnonymizationPolicy, anonymize_frame

    frame = pd.DataFrame({f"col{i}": ["a", "b"] for i in range(n_cols)})
    pol = AnonymizationPolicy.from_dict({"columns": {"col1x": "redact"}})
    with pytest.raises(DataError) as info:
        anonymize_frame(frame, pol)
    msg = str(info.value)
    assert "col1x" in msg and "did you mean" in msg and "\n" not in msg
    if n_cols > 40:
        assert f"and {n_cols - 40} more" in msg
    else:
        assert f"col{n_cols - 1}" in msg and "more" not in msg
