"""PII scanner: validators, precision/recall on a generated labelled set, columns, quasi-identifiers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelshield.errors import FormatError, InputNotFoundError
from modelshield.privacy.pii import (
    find_pii,
    iban_valid,
    luhn_valid,
    scan_file,
    scan_frame,
    ssn_valid,
)


# -- generators -------------------------------------------------------------------------------
def _luhn_complete(prefix: str, length: int, rng) -> str:
    body = prefix + "".join(str(d) for d in rng.integers(0, 10, length - len(prefix) - 1))
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError


def _iban(country: str, bban: str) -> str:
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    return f"{country}{check:02d}{bban}"


def _group4(s: str) -> str:
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4))


def labelled_cells(n: int = 40, seed: int = 0) -> list[tuple[str, str | None]]:
    rng = np.random.default_rng(seed)
    out: list[tuple[str, str | None]] = []
    first = ["anna", "bob", "chen", "dana", "eli", "fatima", "goran", "hana"]
    for i in range(n):
        nm = first[i % len(first)]
        digits = lambda k: "".join(str(d) for d in rng.integers(0, 10, k))  # noqa: E731
        # positives
        out.append((f"contact {nm}.{i}@mail-{i}.example.com today", "email"))
        out.append((f"call ({rng.integers(201, 990)}) {rng.integers(200, 999)}-{digits(4)} after 5", "phone"))
        out.append((f"mobile +44 20 {digits(4)} {digits(4)}", "phone"))
        prefix = ["4", "51", "55", "37", "6011"][i % 5]
        length = 15 if prefix == "37" else 16
        card = _luhn_complete(prefix, length, rng)
        out.append((f"paid with {card if i % 2 else _group4(card)}", "credit_card"))
        bban = {"DE": digits(18), "GB": "NWBK" + digits(14), "FR": digits(23)}[["DE", "GB", "FR"][i % 3]]
        iban = _iban(["DE", "GB", "FR"][i % 3], bban)
        out.append((f"IBAN {_group4(iban) if i % 2 else iban}", "iban"))
        area = int(rng.choice([rng.integers(1, 666), rng.integers(667, 900)]))
        out.append((f"ssn {area:03d}-{rng.integers(1, 100):02d}-{rng.integers(1, 10000):04d}", "us_ssn"))
        out.append((f"login from {rng.integers(1, 256)}.{rng.integers(0, 256)}.{rng.integers(0, 256)}."
                    f"{rng.integers(1, 255)}", "ip_address"))
        y, m, d = rng.integers(1930, 2010), rng.integers(1, 13), rng.integers(1, 29)
        out.append((f"born {y}-{m:02d}-{d:02d}" if i % 2 else f"DOB: {d:02d}/{m:02d}/{y}", "date_of_birth"))
        street = ["Baker Street", "Elm Avenue", "Mill Road", "Oak Lane", "High Street"][i % 5]
        out.append((f"ship to {rng.integers(1, 9999)} {street}, Springfield", "postal_address"))
        # negatives that look alike
        bad_card = card[:-1] + str((int(card[-1]) + 1) % 10)
        out.append((f"order number {bad_card}", None))
        out.append((f"ref {iban[:2]}{(int(iban[2:4]) + 1) % 100:02d}{iban[4:]}", None))
        out.append((f"code {rng.choice(['000', '666', '900', '987'])}-{rng.integers(10, 99)}-{digits(4)}", None))
        out.append((f"version {rng.integers(256, 999)}.{rng.integers(0, 9)}.{rng.integers(0, 9)}.{rng.integers(0, 9)}", None))
        out.append((f"meeting on {y}-{m:02d}-{d:02d} at noon", None))  # a date, not a birth date
        out.append((f"born {y}-13-{d:02d}", None))  # not a calendar date
        out.append((f"total {rng.integers(1, 99999)}.{rng.integers(10, 99)} EUR for {rng.integers(1, 50)} items", None))
        out.append((f"write to {nm} at example dot com", "email"))  # obfuscated, still an address
        out.append((f"meet {nm} at 5 dot 30 at the station", None))
        out.append((f"user@localhost and {nm}@intranet", None))
        out.append((f"room {rng.integers(1, 500)} floor {rng.integers(1, 9)}", None))
        out.append((f"ticket #{digits(6)} priority {rng.integers(1, 5)}", None))
    return out


def test_precision_and_recall_per_type_on_a_labelled_set():
    cells = labelled_cells()
    types = sorted({t for _, t in cells if t})
    tp = dict.fromkeys(types, 0)
    fp = dict.fromkeys(types, 0)
    fn = dict.fromkeys(types, 0)
    for text, label in cells:
        found = {m.type for m in find_pii(text)}
        for t in types:
            if t in found and t == label:
                tp[t] += 1
            elif t in found:
                fp[t] += 1
            elif t == label:
                fn[t] += 1
    for t in types:
        precision = tp[t] / max(tp[t] + fp[t], 1)
        recall = tp[t] / max(tp[t] + fn[t], 1)
        assert precision >= 0.95, (t, precision, fp[t])
        assert recall >= 0.95, (t, recall, fn[t])


@pytest.mark.parametrize(("value", "ok"), [
    ("4111 1111 1111 1111", True), ("4111 1111 1111 1112", False), ("378282246310005", True),
])
def test_luhn(value, ok):
    assert luhn_valid(value) is ok


def test_iban_and_ssn_rules():
    assert iban_valid("DE89 3704 0044 0532 0130 00")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("GB83WEST12345698765432")  # checksum
    assert not iban_valid("DE89 3704 0044 0532 0130")  # wrong length for DE
    assert ssn_valid("123-45-6780")
    for bad in ("000-12-3456", "666-12-3456", "912-12-3456", "123-00-4567", "123-45-0000"):
        assert not ssn_valid(bad), bad


def test_scan_frame_columns_counts_confidence_and_quasi_identifiers():
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({
        "customer_email": [f"p{i}@shop.example.net" for i in range(n)],
        "comment": [("reach me on +1 415 555 0199" if i % 4 == 0 else "fine") for i in range(n)],
        "zip": rng.integers(10000, 10100, n).astype(str),
        "age": rng.integers(18, 90, n).astype(str),
        "sex": rng.choice(["f", "m"], n),
        "plan": rng.choice(["basic", "pro"], n),
        "amount": rng.integers(1, 100, n).astype(str),
    })
    rep = scan_frame(frame)
    cols = {c.column: c for c in rep.columns}
    assert cols["customer_email"].counts == {"email": n}
    assert cols["customer_email"].confidence > 0.9
    assert cols["comment"].counts == {"phone": n // 4}
    assert 0.3 < cols["comment"].confidence < cols["customer_email"].confidence
    assert {c.column for c in rep.pii_columns} == {"customer_email", "comment", "zip"}  # zip: by name
    assert not cols["amount"].cells and not cols["plan"].cells
    qi = {frozenset(q.columns) for q in rep.quasi_identifiers}
    assert frozenset({"age", "sex"}) in qi or any({"age", "sex"} <= q for q in qi)
    assert all("customer_email" not in q for q in qi)
    d = rep.to_dict()
    assert "shop.example.net" not in str(d)


def test_scan_file_csv_and_errors(tmp_path):
    p = tmp_path / "people.csv"
    pd.DataFrame({"id": ["007", "008"], "ssn": ["123-45-6780", "219-09-9999"]}).to_csv(p, index=False)
    rep = scan_file(p)
    cols = {c.column: c for c in rep.columns}
    assert cols["ssn"].counts == {"us_ssn": 1}  # 219-09-9999 is the famous invalid advertising SSN
    with pytest.raises(InputNotFoundError):
        scan_file(tmp_path / "nope.csv")
    bad = tmp_path / "bin.csv"
    bad.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(FormatError):
        scan_file(bad)


def test_scan_file_parquet_keeps_text(tmp_path):
    p = tmp_path / "people.parquet"
    pd.DataFrame({"contact": ["x@example.com", "none"], "zip": ["02134", "10001"]}).to_parquet(p)
    rep = scan_file(p, quasi=False)
    cols = {c.column: c for c in rep.columns}
    assert cols["contact"].counts == {"email": 1}
    assert cols["zip"].counts == {"postcode": 2}  # leading zero intact, detected by the column name


def test_decimal_numbers_are_never_cards_phones_or_ids(tmp_path):
    # regression: standardised float features written by pandas were reported as credit_card
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.standard_normal((400, 3)), columns=["score", "z1", "z2"])
    frame["tiny"] = rng.standard_normal(400) * 1e-7  # scientific notation: 1.23e-08
    frame["signed"] = ["+1.514840417", "-1.5549350656335201", "0.25", "5549350656335201.0"] * 100
    p = tmp_path / "floats.csv"
    frame.to_csv(p, index=False)
    rep = scan_file(p, quasi=False)
    assert rep.pii_columns == [], rep.table()
    # Luhn-valid Mastercard digits after a decimal point, in free text
    assert find_pii("score -1.5549350656335201 and 1.5148404170572487") == []
    assert find_pii("total 5549350656335201.5 or 5549350656335201e-3") == []
    # real card numbers and E.164 phones are still found, also next to punctuation
    assert [m.type for m in find_pii("card 5549350656335201, thanks")] == ["credit_card"]
    assert [m.type for m in find_pii("pay with 4111 1111 1111 1111.")] == ["credit_card"]
    assert [m.type for m in find_pii("call +15148404170")] == ["phone"]
    cards = scan_frame(pd.DataFrame({"cc": ["4111111111111111", "5549350656335201"]}), quasi=False)
    assert cards.pii_columns[0].counts == {"credit_card": 2}
