"""The offline audit-log workflows (``serve.auditlog_tools``) called without the CLI: time and head
parsing, filters, verification against an expected or anchored head, queries and exports."""

from __future__ import annotations

import json

import pytest

from modelshield.errors import InputNotFoundError, IntegrityError, UserError
from modelshield.serve.auditlog import AuditLog, AuditRecord, load_or_create_key, write_anchor
from modelshield.serve.auditlog_tools import (
    TABLE_COLUMNS,
    RecordFilter,
    export_records,
    format_time,
    open_audit_log,
    parse_head,
    parse_time_us,
    public_record,
    query_records,
    record_rows,
    require_intact,
    verify_audit_log,
)
from modelshield.serve.config import load_config

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds


@pytest.fixture()
def cfg(tmp_path):
    """A gateway config over a state dir whose audit log holds 6 records, one hour apart."""
    sd = tmp_path / "state"
    c = load_config(None, state_dir=str(sd))
    log = AuditLog(c.audit_url, load_or_create_key(c.audit_key_file), table=c.audit.table)
    for i in range(6):
        log.append(AuditRecord(kind="admin" if i == 5 else "request", endpoint="/predict", status=200,
                               decision=["ok", "rejected:rate", "flagged"][i % 3], key_id=f"k{i % 2}",
                               client=None if i == 0 else "10.0.0.1", n_rows=i, output={"p": [i]},
                               scores={"s": i / 10}, ts_us=T0 + i * 3_600_000_000))
    log.close()
    return c


@pytest.mark.parametrize("text,expect", [
    (None, None), ("1767225600", T0), (" 1767225600.5 ", T0 + 500_000), ("2026-01-01T00:00:00", T0),
    ("2026-01-01T01:00:00Z", T0 + 3_600_000_000), ("2026-01-01T02:00:00+01:00", T0 + 3_600_000_000),
])
def test_parse_time_us(text, expect):
    assert parse_time_us(text) == expect


def test_bad_times_and_heads_are_neutral_one_line_errors():
    with pytest.raises(UserError, match=r"^since 'yesterday': give an ISO 8601 time") as info:
        RecordFilter.parse(since="yesterday")
    assert info.value.cli_hint == "fix --since"
    with pytest.raises(UserError, match=r"^until ") as info:
        RecordFilter.parse(until="2026-13-01")
    assert info.value.cli_hint == "fix --until"
    assert parse_head("7:" + "AB" * 32) == (7, "ab" * 32)
    for bad in ("x", "7:abc", "-1:" + "a" * 64, "7:" + "g" * 64):
        with pytest.raises(UserError, match="SEQ:HASH") as info:
            parse_head(bad)
        assert "--" not in str(info.value) and info.value.cli_hint == "fix --expect-head"


def test_record_filter_parse_and_query_kwargs():
    f = RecordFilter.parse(key="k1", since="1767225600", decision="rej*", kind="request")
    assert f.query_kwargs() == {"key_id": "k1", "since_us": T0, "until_us": None, "decision": "rej*",
                                "kind": "request"}
    assert RecordFilter.parse() == RecordFilter()


def test_query_records_newest_first_then_reversed(cfg):
    assert [r["seq"] for r in query_records(cfg)] == [1, 2, 3, 4, 5, 6]
    assert [r["seq"] for r in query_records(cfg, limit=2)] == [5, 6]
    assert [r["seq"] for r in query_records(cfg, RecordFilter(key_id="k1"), limit=0)] == [2, 4, 6]
    f = RecordFilter.parse(decision="rejected", until="2026-01-01T04:00:00Z")
    assert [r["seq"] for r in query_records(cfg, f)] == [2]
    with pytest.raises(UserError, match="0 \\(all\\) or positive"):
        query_records(cfg, limit=-1)


def test_public_record_and_table_rows(cfg):
    rows = query_records(cfg, limit=2)
    pub = public_record(rows[0])
    assert pub["output"] == {"p": [4]} and pub["scores"] == {"s": 0.4}
    assert pub["time"] == "2026-01-01T04:00:00+00:00" and pub["hash"] == rows[0]["hash"]
    assert public_record({**rows[0], "output": "not json"})["output"] == "not json"
    assert len(TABLE_COLUMNS) == 8
    assert record_rows(rows) == [("5", "2026-01-01 04:00:00", "request", "k0", "10.0.0.1", "200", "rejected:rate",
                                  "4"), ("6", "2026-01-01 05:00:00", "admin", "k1", "10.0.0.1", "200", "flagged", "5")]
    assert record_rows(query_records(cfg, RecordFilter(key_id="k0"), limit=3)[:1])[0][4] == "-"  # no client
    assert format_time(0) == "1970-01-01 00:00:00"


def test_export_to_a_file_or_a_function(cfg, tmp_path):
    lines: list[str] = []
    assert export_records(cfg, RecordFilter(kind="admin"), output=lines.append) == 1
    assert json.loads(lines[0])["seq"] == 6 and lines[0].endswith("\n")
    out = tmp_path / "a.jsonl"
    assert export_records(cfg, output=out) == 6
    assert [json.loads(x)["seq"] for x in out.read_text().splitlines()] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(UserError, match="already exists"):
        export_records(cfg, output=out)
    assert export_records(cfg, RecordFilter(key_id="k0"), output=out, force=True) == 3


def test_verify_against_given_and_anchored_heads(cfg, tmp_path):
    check = require_intact(verify_audit_log(cfg))
    assert check.result.ok and check.result.n_records == 6 and check.head is None and check.source == ""
    assert check.as_dict()["checked_head"] is None
    head = (check.result.head_seq, check.result.head_hash)
    given = verify_audit_log(cfg, expect_head=f"{head[0]}:{head[1]}", expect_head_source="saved")
    assert given.result.ok and given.head == head and given.as_dict()["checked_head"]["source"] == "saved"
    write_anchor(cfg.audit_anchor_file, 6, head[1], table=cfg.audit.table, now=0)
    anchored = verify_audit_log(cfg)
    assert anchored.head == head and anchored.source.startswith("anchor ") and "(1970-01-01 00:00:00)" in anchored.source
    assert verify_audit_log(cfg, use_anchor=False).head is None
    # a head beyond the log: the newest records were deleted
    longer = verify_audit_log(cfg, expect_head=(9, head[1]))
    assert not longer.result.ok
    with pytest.raises(IntegrityError, match="NOT intact"):
        require_intact(longer)
    with pytest.raises(InputNotFoundError, match="anchor file not found"):
        verify_audit_log(cfg, anchor_file=tmp_path / "none")


def test_open_audit_log_needs_the_file_and_for_verification_the_key(cfg, tmp_path):
    with pytest.raises(InputNotFoundError, match="no audit log at"):
        open_audit_log(cfg, f"sqlite:///{tmp_path / 'missing.db'}")
    cfg.audit_key_file.unlink()
    open_audit_log(cfg, need_key=False).close()  # reading needs no key
    with pytest.raises(UserError, match="key"):
        verify_audit_log(cfg)
