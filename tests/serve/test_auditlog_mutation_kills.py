"""Exact behaviour of the audit log that operators and ``modelshield audit-log`` rely on.

Written against the mutants of ``scripts/mutation.sh auditlog`` that the other audit-log tests let survive:
the exact results of :meth:`AuditLog.verify` (counts, heads, reasons) including the ``expect_head`` check,
what is stored for each field, the anchor file's rules, the constructor's refusals, and the reading API
(chunks, limits, order, filters).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import hmac
import itertools
import json
import os
import sqlite3
import stat
import sys
import threading
import time

import pytest
import sqlalchemy as sa

import modelshield.serve.auditlog as al
from modelshield.errors import DataError, MissingExtraError, OutputError, UserError
from modelshield.serve.auditlog import (
    GENESIS,
    Anchor,
    AuditLog,
    AuditRecord,
    VerifyResult,
    compact_json,
    input_hash,
    load_or_create_key,
    read_anchor,
    write_anchor,
)

KEY = b"k" * 32


@pytest.fixture
def make_log(tmp_path):
    logs = []

    def make(name="audit.db", key=KEY, **kw):
        log = AuditLog(f"sqlite:///{tmp_path / name}", key, **kw)
        logs.append(log)
        return log

    yield make
    for log in logs:
        log.close()


def _fill(log, n):
    return [log.append(AuditRecord(kind="request", endpoint="/v1/predict", status=200, decision="ok",
                                   key_id="abc", request_id=f"r{i}", n_rows=1, ts_us=1000 + i,
                                   output={"predictions": [i % 2]})) for i in range(n)]


def _exec(log, sql, **params):
    with log.engine.begin() as c:
        c.execute(sa.text(sql.replace("{t}", f'"{log.table.name}"')), params)


# -- small helpers ---------------------------------------------------------------------------------


def test_input_hash_and_compact_json():
    assert input_hash(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert compact_json({"z": [1, 2.5], "a": "\u00e9"}) == json.dumps({"z": [1, 2.5], "a": "\u00e9"},
                                                                      separators=(",", ":"))


def test_is_busy_recognises_sqlite_lock_errors_only():
    assert al._is_busy(sqlite3.OperationalError("database is locked"))
    assert al._is_busy(sqlite3.OperationalError("database table is busy"))
    assert not al._is_busy(sqlite3.OperationalError("no such table: x"))
    assert not al._is_busy(ValueError("database is locked"))
    coded = sqlite3.OperationalError("some text")
    coded.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert al._is_busy(coded)
    coded.sqlite_errorcode = sqlite3.SQLITE_LOCKED
    assert al._is_busy(coded)
    coded.sqlite_errorcode = sqlite3.SQLITE_IOERR
    assert not al._is_busy(coded)


def test_result_and_anchor_dicts():
    assert VerifyResult(False, 3, 2, "h", first_bad=3, reason="r").as_dict() == {
        "ok": False, "n_records": 3, "head_seq": 2, "head_hash": "h", "first_bad": 3, "reason": "r"}
    assert VerifyResult(True, 0, 0, GENESIS).as_dict()["first_bad"] is None
    assert Anchor(4, "a" * 64, 1.5, "t").as_dict() == {"seq": 4, "hash": "a" * 64, "time": 1.5, "table": "t"}


# -- the key ----------------------------------------------------------------------------------------


def test_the_key_is_32_private_random_bytes_in_a_new_private_folder(tmp_path):
    p = tmp_path / "new" / "audit.key"
    k = load_or_create_key(p)
    assert len(k) == 32 and p.read_bytes() == k
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(p.parent).st_mode) == 0o700
    assert load_or_create_key(tmp_path / "new2" / "audit.key") != k


def test_a_key_file_shorter_than_16_bytes_is_refused(tmp_path):
    p = tmp_path / "audit.key"
    p.write_bytes(b"x" * 15)
    with pytest.raises(DataError) as info:
        load_or_create_key(p)
    assert str(info.value) == f"{p}: audit key is too short"
    p.write_bytes(b"x" * 16)
    assert load_or_create_key(p, create=False) == b"x" * 16
    with pytest.raises(UserError) as missing:
        load_or_create_key(tmp_path / "none.key", create=False)
    assert str(missing.value) == f"audit-log key not found: {tmp_path / 'none.key'}"
    assert missing.value.cli_hint == "pass --state-dir or --key-file"


# -- anchors ----------------------------------------------------------------------------------------


def test_anchor_file_contents_and_rules(tmp_path):
    p = tmp_path / "sub" / "audit.anchor"
    assert read_anchor(p) is None  # no file yet
    assert write_anchor(p, 3, "a" * 64, now=100.5)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert json.loads(p.read_text(encoding="utf-8")) == {
        "version": 1, "anchors": {"modelshield_audit": {"seq": 3, "hash": "a" * 64, "time": 100.5}}}
    assert read_anchor(p) == Anchor(3, "a" * 64, 100.5, "modelshield_audit")
    assert not write_anchor(p, 3, "b" * 64, now=200.0)  # the same seq does not move it
    assert write_anchor(p, 4, "c" * 64, table="other", now=300.0)
    assert write_anchor(p, 5, "d" * 64, now=400.0)
    assert read_anchor(p) == Anchor(5, "d" * 64, 400.0, "modelshield_audit")
    assert read_anchor(p, "other") == Anchor(4, "c" * 64, 300.0, "other")
    assert sorted(f.name for f in p.parent.iterdir()) == ["audit.anchor"]  # no temp file left


def test_an_anchor_without_a_time_gets_the_current_one(tmp_path, monkeypatch):
    monkeypatch.setattr(al.time, "time", lambda: 1234.0)
    p = tmp_path / "audit.anchor"
    assert write_anchor(p, 1, "a" * 64)
    assert read_anchor(p).time == 1234.0


def test_an_anchor_entry_without_a_seq_counts_as_seq_0(tmp_path):
    p = tmp_path / "audit.anchor"
    p.write_text(json.dumps({"version": 1, "anchors": {"modelshield_audit": {"hash": "a" * 64}}}))
    assert write_anchor(p, 1, "b" * 64, now=1.0)
    assert read_anchor(p).seq == 1


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "unreadable audit anchor file (JSONDecodeError)"),
    (b"\xff\xfe", "unreadable audit anchor file (UnicodeDecodeError)"),
    (b"[1]", "not an audit anchor file"),
    (b'{"anchors": [1]}', "not an audit anchor file"),
    (b'{"anchors": {"modelshield_audit": {"seq": 1, "hash": "' + b"a" * 64 + b'"}}}',
     "malformed anchor for table 'modelshield_audit'"),
    (b'{"anchors": {"modelshield_audit": {"seq": "x", "hash": "' + b"a" * 64 + b'", "time": 0}}}',
     "malformed anchor for table 'modelshield_audit'"),
    (b'{"anchors": {"modelshield_audit": [1, 2]}}', "malformed anchor for table 'modelshield_audit'"),
    (b'{"anchors": {"modelshield_audit": {"seq": -1, "hash": "' + b"a" * 64 + b'", "time": 0}}}',
     "malformed anchor for table 'modelshield_audit'"),
    (b'{"anchors": {"modelshield_audit": {"seq": 1, "hash": "' + b"a" * 63 + b'", "time": 0}}}',
     "malformed anchor for table 'modelshield_audit'"),
    (b'{"anchors": {"modelshield_audit": {"seq": 1, "hash": "' + b"a" * 65 + b'", "time": 0}}}',
     "malformed anchor for table 'modelshield_audit'"),
    (b'{"anchors": {"modelshield_audit": {"seq": 1, "hash": "' + b"A" * 64 + b'", "time": 0}}}',
     "malformed anchor for table 'modelshield_audit'"),
    (b'{"anchors": {"modelshield_audit": {"seq": 1, "hash": "' + b"X" * 64 + b'", "time": 0}}}',
     "malformed anchor for table 'modelshield_audit'"),
])
def test_bad_anchor_files_are_data_errors(tmp_path, body, message):
    p = tmp_path / "audit.anchor"
    p.write_bytes(body)
    with pytest.raises(DataError) as info:
        read_anchor(p)
    assert str(info.value) == f"{p}: {message}"


def test_good_anchor_edge_values(tmp_path):
    p = tmp_path / "audit.anchor"
    h = "0123456789abcdef" * 4
    p.write_text(json.dumps({"anchors": {"t": {"seq": 0, "hash": h, "time": "2.5"}}}))
    assert read_anchor(p, "t") == Anchor(0, h, 2.5, "t")
    assert read_anchor(p) is None  # another table


def test_an_anchor_path_that_is_a_directory_is_an_error_not_no_anchor(tmp_path):
    with pytest.raises(DataError, match="unreadable audit anchor file"):
        read_anchor(tmp_path)


# -- the constructor ------------------------------------------------------------------------------


def test_constructor_refusals(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with pytest.raises(UserError) as short:
        AuditLog(url, b"k" * 15)
    assert str(short.value) == "audit key must be at least 16 bytes"
    with pytest.raises(UserError) as commit:
        AuditLog(url, KEY, commit="later")
    assert str(commit.value) == "audit commit must be auto, loop or thread, not 'later'"
    for bad in ("1abc", "a-b", "a" * 64, "", "t;drop"):
        with pytest.raises(UserError) as name:
            AuditLog(url, KEY, table=bad)
        assert str(name.value) == f"bad audit table name {bad!r}"
    for mem in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true",
                "sqlite:///file:mode=memory"):
        with pytest.raises(UserError) as inmem:
            AuditLog(mem, KEY)
        assert str(inmem.value) == ("the audit log cannot be an in-memory SQLite database: it must outlive the process "
                                    "(use a file, sqlite:///path/audit.db, or a database server)")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(UserError) as isdir:
        AuditLog(f"sqlite:///{tmp_path / 'dir.db'}", KEY)
    assert str(isdir.value) == f"cannot open the audit log {tmp_path / 'dir.db'}: Is a directory"
    with pytest.raises(UserError) as loop:
        AuditLog(f"sqlite:///{tmp_path / 'q.db'}?timeout=5", KEY, commit="loop")
    assert str(loop.value) == ("audit commit 'loop' needs a plain SQLite file URL (sqlite:///path/audit.db): a database "
                               "server's round trips would stall the event loop; use 'thread' or 'auto'")


def test_table_names_up_to_63_characters(make_log):
    log = make_log(table="_" + "a" * 62)
    log.append(AuditRecord(kind="request"))
    assert log.verify().ok and log.table.name == "_" + "a" * 62


@pytest.mark.parametrize(("durability", "level"), [("full", 2), ("normal", 1)])
def test_durability_sets_the_sqlite_synchronous_level(make_log, durability, level):
    log = make_log(durability=durability)
    log.append(AuditRecord(kind="request"))
    assert log._raw.execute("PRAGMA synchronous").fetchone() == (level,)
    assert log._raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with log.engine.connect() as c:  # the SQLAlchemy connections too
        assert c.exec_driver_sql("PRAGMA synchronous").fetchone() == (level,)
        assert c.exec_driver_sql("PRAGMA journal_mode").fetchone() == ("wal",)


def test_commit_modes(make_log, tmp_path):
    assert make_log("a.db").commit_on_loop is True
    assert make_log("b.db", commit="loop").commit_on_loop is True
    assert make_log("c.db", commit="thread").commit_on_loop is False
    via_sa = AuditLog(f"sqlite:///{tmp_path / 'd.db'}?timeout=5", KEY)
    try:
        assert via_sa.commit_on_loop is False and via_sa._sqlite_path is None
        assert via_sa.append(AuditRecord(kind="request", client="1.2.3.4")) == 1
        assert via_sa.append(AuditRecord(kind="request")) == 2
        assert via_sa.verify().ok and via_sa.recent(1)[0]["seq"] == 2
        with via_sa.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA synchronous").fetchone() == (2,)
    finally:
        via_sa.close()


# -- what is stored ---------------------------------------------------------------------------------


def test_every_field_is_stored_as_given_within_its_length(make_log):
    log = make_log()
    seq = log.append(AuditRecord(kind="request", endpoint="/e" * 50, status=201, decision="d" * 50, key_id="kid",
                                 client="10.1.2.3", request_id="r" * 100, input_hash="f" * 64, n_rows=7,
                                 output={"z": 1, "a": [1, 2]}, scores={"b": 1.5, "a": 2}, ts_us=123456))
    assert seq == 1
    row = log.recent(1)[0]
    assert row == {"seq": 1, "ts_us": 123456, "kind": "request", "request_id": "r" * 64, "key_id": "kid",
                   "client": "10.1.2.3", "endpoint": ("/e" * 50)[:80], "status": 201, "decision": "d" * 40,
                   "input_hash": "f" * 64, "n_rows": 7, "output": '{"z":1,"a":[1,2]}',
                   "scores": '{"a":2,"b":1.5}', "prev_hash": GENESIS, "hash": row["hash"]}
    assert row["hash"] == al._chain_hash(KEY, row)
    assert log.verify() == VerifyResult(True, 1, 1, row["hash"])


def test_output_json_wins_and_none_stays_null(make_log):
    log = make_log()
    log.append(AuditRecord(kind="request", output={"a": 1}, output_json='{"exact": "bytes"}'))
    log.append(AuditRecord(kind="auth"))
    first, second = sorted(log.recent(2), key=lambda r: r["seq"])
    assert first["output"] == '{"exact": "bytes"}'
    assert (second["output"], second["scores"], second["client"], second["key_id"]) == (None, None, None, None)
    assert second["prev_hash"] == first["hash"]


def test_the_default_timestamp_is_now_in_microseconds(monkeypatch):
    monkeypatch.setattr(al.time, "time_ns", lambda: 1_700_000_000_123_456_789)
    assert AuditRecord(kind="request").ts_us == 1_700_000_000_123_456


# -- verify -----------------------------------------------------------------------------------------


def test_verify_results_are_exact(make_log):
    log = make_log()
    _fill(log, 20)
    hashes = {r["seq"]: r["hash"] for r in log.iter_records()}
    assert log.verify() == VerifyResult(True, 20, 20, hashes[20])
    _exec(log, "UPDATE {t} SET decision = 'flagged' WHERE seq = 7")
    assert log.verify() == VerifyResult(False, 6, 6, hashes[6], first_bad=7,
                                        reason="record 7: content does not match its hash (edited)")


def test_a_bad_first_record_may_mean_the_wrong_key(make_log):
    log = make_log()
    _fill(log, 3)
    assert make_log(key=b"x" * 32).verify() == VerifyResult(
        False, 0, 0, GENESIS, first_bad=1,
        reason="record 1: content does not match its hash (edited) -- or this is not the key the log was written with")


def test_verify_names_deleted_records(make_log):
    log = make_log()
    _fill(log, 20)
    hashes = {r["seq"]: r["hash"] for r in log.iter_records()}
    _exec(log, "DELETE FROM {t} WHERE seq IN (11, 12, 13)")
    assert log.verify() == VerifyResult(False, 10, 10, hashes[10], first_bad=14,
                                        reason="record 14: records 11..13 are missing (deleted)")
    _exec(log, "DELETE FROM {t} WHERE seq <= 2")
    assert log.verify() == VerifyResult(False, 0, 0, GENESIS, first_bad=3,
                                        reason="record 3: records 1..2 are missing (deleted)")


def test_verify_names_a_broken_link(make_log):
    log = make_log()
    _fill(log, 20)
    hashes = {r["seq"]: r["hash"] for r in log.iter_records()}
    _exec(log, "DELETE FROM {t} WHERE seq = 11")
    _exec(log, "UPDATE {t} SET seq = seq - 1 WHERE seq > 11")
    assert log.verify() == VerifyResult(False, 10, 10, hashes[10], first_bad=11,
                                        reason="record 11: does not link to record 10 (deleted, inserted or reordered)")


def test_a_value_that_cannot_be_hashed_is_an_edit_not_a_crash(make_log):
    log = make_log()
    _fill(log, 3)
    h1 = log.recent(3)[-1]["hash"]
    _exec(log, "UPDATE {t} SET n_rows = 1e999 WHERE seq = 2")  # +inf: not canonical JSON
    assert log.verify() == VerifyResult(False, 1, 1, h1, first_bad=2,
                                        reason="record 2: content does not match its hash (edited)")


def test_expect_head(make_log):
    log = make_log()
    assert log.verify(expect_head=(0, GENESIS)) == VerifyResult(True, 0, 0, GENESIS)
    assert log.verify(expect_head=(1, "a" * 64)) == VerifyResult(
        False, 0, 0, GENESIS, first_bad=1, reason="records after 0 are missing (the saved head is 1)")
    _fill(log, 10)
    hashes = {r["seq"]: r["hash"] for r in log.iter_records()}
    ok = VerifyResult(True, 10, 10, hashes[10])
    assert log.verify(expect_head=(10, hashes[10])) == ok
    assert log.verify(expect_head=(1, hashes[1])) == ok
    assert log.verify(expect_head=(0, "not even a hash")) == ok  # seq 0: nothing to compare
    assert log.verify(expect_head=(10, hashes[9])) == VerifyResult(
        False, 10, 10, hashes[10], first_bad=10, reason="record 10: does not match the saved head")
    assert log.verify(expect_head=(1, hashes[2])) == VerifyResult(
        False, 10, 10, hashes[10], first_bad=1, reason="record 1: does not match the saved head")
    assert log.verify(expect_head=(11, hashes[10])) == VerifyResult(
        False, 10, 10, hashes[10], first_bad=11, reason="records after 10 are missing (the saved head is 11)")
    _exec(log, "DELETE FROM {t} WHERE seq > 7")
    assert log.verify(expect_head=(10, hashes[10])) == VerifyResult(
        False, 7, 7, hashes[7], first_bad=8, reason="records after 7 are missing (the saved head is 10)")


# -- reading ----------------------------------------------------------------------------------------


def test_head_recent_and_request_ids(make_log):
    log = make_log()
    assert log.head() == (0, GENESIS) and log.recent() == [] and log.request_ids() == set()
    _fill(log, 5)
    log.append(AuditRecord(kind="auth", request_id="a1"))
    assert log.head() == (6, log._hash_at(6))
    assert [r["seq"] for r in log.recent(3)] == [6, 5, 4]
    assert len(log.recent()) == 6
    assert log.request_ids() == {f"r{i}" for i in range(5)}
    assert log._hash_at(7) is None


def test_the_default_recent_count_is_50(make_log):
    log = make_log()
    for _ in range(51):
        log.submit(AuditRecord(kind="request"))
    log.append(AuditRecord(kind="request"))
    assert [r["seq"] for r in log.recent()] == list(range(52, 2, -1))


@pytest.mark.parametrize("chunk", [1, 2, 3, 10, 2000])
def test_iter_records_walks_every_record_once_in_order(make_log, chunk):
    log = make_log()
    _fill(log, 7)
    assert [r["seq"] for r in log.iter_records(chunk=chunk)] == list(range(1, 8))
    assert [r["seq"] for r in log.iter_records(chunk=chunk, after=4)] == [5, 6, 7]
    assert list(log.iter_records(chunk=chunk, after=7)) == []


@pytest.mark.parametrize("chunk", [1, 2, 3, 2000])
def test_query_limits_order_and_chunks(make_log, chunk):
    log = make_log()
    _fill(log, 7)
    seqs = lambda **kw: [r["seq"] for r in log.query(chunk=chunk, **kw)]  # noqa: E731
    assert seqs() == list(range(1, 8))
    assert seqs(newest_first=True) == list(range(7, 0, -1))
    assert seqs(limit=5) == [1, 2, 3, 4, 5]
    assert seqs(limit=5, newest_first=True) == [7, 6, 5, 4, 3]
    assert seqs(limit=0) == []
    assert seqs(limit=100) == list(range(1, 8))
    assert seqs(since_us=1002, until_us=1005) == [3, 4, 5]  # ts_us 1000 + i: inclusive, exclusive
    assert seqs(since_us=1002, until_us=1005, newest_first=True, limit=2) == [5, 4]


def test_query_filters_escape_like_wildcards(make_log):
    log = make_log()
    for d in ("a%b", "axb", "a_b", "a\\b", "ok", "ok:x", "okay", "rejected:rate", "rejected"):
        log.append(AuditRecord(kind="request", decision=d, key_id="k" if d.startswith("a") else None))
    dec = lambda v: [r["decision"] for r in log.query(decision=v)]  # noqa: E731
    assert dec("a%b") == ["a%b"]
    assert dec("a_b") == ["a_b"]
    assert dec("a\\b") == ["a\\b"]
    assert dec("ok") == ["ok", "ok:x"]
    assert dec("rejected") == ["rejected:rate", "rejected"]
    assert dec("a%*") == ["a%b"]
    assert dec("ok*") == ["ok", "ok:x", "okay"]
    assert [r["seq"] for r in log.query(key_id="k")] == [1, 2, 3, 4]
    assert [r["seq"] for r in log.query(kind="request", key_id="k", decision="a_b")] == [3]
    assert list(log.query(kind="auth")) == []


# -- statistics and closing ---------------------------------------------------------------------------


def test_counts_and_batch_sizes(make_log):
    log = make_log(commit="thread")
    futs = [log.submit(AuditRecord(kind="request")) for _ in range(3)]
    assert sorted(f.result(30) for f in futs) == [1, 2, 3]
    assert log.n_written == 3 and log.n_failed == 0
    assert sum(n * c for n, c in log.batch_sizes().items()) == 3
    assert list(log.batch_sizes()) == sorted(log.batch_sizes())


def test_loop_commits_are_counted_one_record_per_transaction(make_log):
    log = make_log()

    async def go():
        return [await log.append_async(AuditRecord(kind="request")) for _ in range(3)]

    assert asyncio.run(go()) == [1, 2, 3]
    assert log.batch_sizes() == {1: 3} and log.n_written == 3 and log.n_handed_over == 0


def test_a_closed_log_refuses_records_and_keeps_its_last_head(make_log):
    log = make_log()
    _fill(log, 2)
    log.close()
    assert log.last_head == log.head() == (2, log._hash_at(2))
    log.close()  # again: nothing happens
    with pytest.raises(RuntimeError, match=r"^audit log is closed$"):
        log.submit(AuditRecord(kind="request"))
    with pytest.raises(RuntimeError, match=r"^audit log is closed$"):
        asyncio.run(log.append_async(AuditRecord(kind="request")))
    with pytest.raises(RuntimeError, match=r"^audit log is closed$"):
        log._commit([AuditRecord(kind="request")])
    assert log._raw is None


@pytest.mark.parametrize("value", ["1e999", "x'00ff'"])  # +inf (not JSON), a BLOB (not JSON either)
def test_an_unhashable_edit_with_an_empty_hash_is_still_an_edit(make_log, value):
    """Fail closed: content that cannot be hashed was never written by the log, whatever hash it carries.
    (An empty stored hash used to equal the empty digest given to such content, so the edited tail of
    the log verified.)"""
    log = make_log()
    _fill(log, 4)
    h2 = log._hash_at(2)
    _exec(log, "UPDATE {t} SET decision = 'ok', n_rows = " + value + ", hash = '' WHERE seq = 3")
    _exec(log, "UPDATE {t} SET n_rows = " + value + ", prev_hash = '', hash = '' WHERE seq = 4")
    assert log.verify() == VerifyResult(False, 2, 2, h2, first_bad=3,
                                        reason="record 3: content does not match its hash (edited)")


def test_like_wildcards_are_escaped_in_prefix_and_reason_filters(make_log):
    log = make_log()
    for d in ("a_b", "axb", "a_b:1", "axb:1", "a\\b", "a\\\\b", "ok", "okX"):
        log.append(AuditRecord(kind="request", decision=d))
    dec = lambda v: [r["decision"] for r in log.query(decision=v)]  # noqa: E731
    assert dec("a_*") == ["a_b", "a_b:1"]
    assert dec("a\\*") == ["a\\b", "a\\\\b"]
    assert dec("a_b") == ["a_b", "a_b:1"]
    assert dec("okX*") == ["okX"]


# -- the schema -------------------------------------------------------------------------------------


def test_the_table_schema(make_log):
    """The columns, types, lengths and keys every deployment's table has (PostgreSQL enforces the lengths the
    log truncates to; an older table must keep matching what the log writes)."""
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    t = make_log(table="t_schema").table
    ddl = {name: " ".join(str(CreateTable(t).compile(dialect=d)).split())
           for name, d in (("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect()))}
    cols = ("ts_us BIGINT NOT NULL, kind VARCHAR(16) NOT NULL, request_id VARCHAR(64) NOT NULL, key_id VARCHAR(80), "
            "client VARCHAR(80), endpoint VARCHAR(80) NOT NULL, status INTEGER NOT NULL, "
            "decision VARCHAR(40) NOT NULL, input_hash VARCHAR(64) NOT NULL, n_rows INTEGER NOT NULL, output TEXT, "
            "scores TEXT, prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL, PRIMARY KEY (seq) )")
    assert ddl == {"sqlite": "CREATE TABLE t_schema ( seq INTEGER NOT NULL, " + cols,
                   "postgresql": "CREATE TABLE t_schema ( seq BIGINT NOT NULL, " + cols}
    assert [str(CreateIndex(ix).compile(dialect=postgresql.dialect())) for ix in t.indexes] == [
        "CREATE INDEX ix_t_schema_request_id ON t_schema (request_id)"]
    assert make_log("d.db").table.name == "modelshield_audit"  # the default table


# -- the writer thread ------------------------------------------------------------------------------


def _chain(rows):
    """The chain recomputed from the stored rows by the documented formula (not the module's own helper)."""
    fields = ("seq", "ts_us", "kind", "request_id", "key_id", "client", "endpoint", "status", "decision",
              "input_hash", "n_rows", "output", "scores", "prev_hash")
    prev = GENESIS
    for r in rows:
        assert r["prev_hash"] == prev
        body = json.dumps([r[f] for f in fields], separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        prev = hmac.new(KEY, body.encode("ascii"), hashlib.sha256).hexdigest()
        assert r["hash"] == prev, r["seq"]
    return prev


def test_the_writer_commits_in_order_as_one_hash_chain(make_log):
    log = make_log(commit="thread")
    futs = [log.submit(AuditRecord(kind="request", request_id=f"r{i}", client=f"10.0.0.{i}", ts_us=i,
                                   output={"i": i}, scores={"z": i, "a": -i})) for i in range(60)]
    assert [f.result(30) for f in futs] == list(range(1, 61))  # each future gets its own record's seq
    rows = list(log.iter_records())
    assert [(r["seq"], r["request_id"], r["client"]) for r in rows] == [
        (i + 1, f"r{i}", f"10.0.0.{i}") for i in range(60)]
    assert rows[5]["scores"] == '{"a":-5,"z":5}' and rows[5]["output"] == '{"i":5}'
    assert log.head() == (60, _chain(rows))
    assert log._thread.name == "audit-writer" and log._thread.daemon  # never keeps a process alive
    assert log.n_written == 60 and sum(n * c for n, c in log.batch_sizes().items()) == 60


def test_appends_continue_the_chain_of_an_existing_log(make_log):
    make_log("a.db", commit="thread").append(AuditRecord(kind="request", request_id="first"))
    log = make_log("a.db", commit="thread")  # a second process on the same file
    assert log.append(AuditRecord(kind="request", request_id="second")) == 2
    _chain(list(log.iter_records()))


@pytest.mark.parametrize("client", ["", None, "c" * 81])
def test_the_client_address_is_stored_or_null(make_log, client):
    log = make_log()
    log.append(AuditRecord(kind="request", client=client))
    assert log.recent(1)[0]["client"] == (client[:80] if client else None)
    assert log.verify().ok


def _gate(log, monkeypatch):
    """Hold the writer's first transaction until ``go`` is set; ``inside`` is set once it is held."""
    inside, go = threading.Event(), threading.Event()
    real = log._write_batch
    calls = []

    def held(records, busy_ms=al._THREAD_BUSY_MS):
        calls.append(len(records))
        if len(calls) == 1:
            inside.set()
            assert go.wait(30)
        return real(records, busy_ms)

    monkeypatch.setattr(log, "_write_batch", held)
    return inside, go, calls


def _wait_for(cond, timeout=30.0):
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout
        time.sleep(0.005)


def test_close_commits_every_queued_record_and_stops_the_writer(make_log, monkeypatch):
    log = make_log(commit="thread")
    inside, go, calls = _gate(log, monkeypatch)
    first = log.submit(AuditRecord(kind="request", request_id="a"))
    assert inside.wait(30)  # the writer is inside the first transaction
    rest = [log.submit(AuditRecord(kind="request", request_id=f"b{i}")) for i in range(3)]
    closer = threading.Thread(target=log.close)
    closer.start()
    _wait_for(lambda: log._queue.qsize() == 4)  # three records and close()'s stop mark
    go.set()
    closer.join(30)
    assert not closer.is_alive() and not log._thread.is_alive()
    assert first.result(0) == 1 and [f.result(0) for f in rest] == [2, 3, 4]
    assert calls == [1, 3]  # the records queued before the stop mark: one transaction
    assert log.batch_sizes() == {1: 1, 3: 1}
    assert log.last_head == (4, _chain(list(log.iter_records())))
    with pytest.raises(RuntimeError, match=r"^audit log is closed$"):
        log.submit(AuditRecord(kind="request"))


def test_a_transaction_holds_at_most_max_batch_records(make_log, monkeypatch):
    log = make_log(commit="thread")
    assert log.max_batch == 512 and log.max_batch_wait_s == 0.0  # the defaults
    inside, go, _ = _gate(log, monkeypatch)
    log.submit(AuditRecord(kind="request"))
    assert inside.wait(30)
    futs = [log.submit(AuditRecord(kind="request")) for _ in range(1100)]
    go.set()
    assert futs[-1].result(60) == 1101
    assert log.batch_sizes() == {1: 1, 512: 2, 76: 1}
    small = make_log("small.db", commit="thread", max_batch=2)
    inside, go, _ = _gate(small, monkeypatch)
    small.submit(AuditRecord(kind="request"))
    assert inside.wait(30)
    futs = [small.submit(AuditRecord(kind="request")) for _ in range(5)]
    go.set()
    assert [f.result(30) for f in futs] == [2, 3, 4, 5, 6]
    assert small.batch_sizes() == {1: 2, 2: 2}


def test_the_writer_waits_max_batch_wait_s_to_gather_records(make_log, monkeypatch):
    log = make_log(commit="thread", max_batch_wait_s=0.25)
    sleeps = []
    late = []

    def sleep(s):  # while the writer "waits", another record arrives: it joins the same transaction
        sleeps.append(s)
        if not late:
            late.append(log.submit(AuditRecord(kind="request", request_id="late")))

    monkeypatch.setattr(al.time, "sleep", sleep)
    assert log.append(AuditRecord(kind="request", request_id="first")) == 1
    assert late[0].result(30) == 2
    assert sleeps == [0.25] and log.batch_sizes() == {2: 1}
    sleeps.clear()
    nowait = make_log("b.db", commit="thread")  # the default: no waiting
    nowait.append(AuditRecord(kind="request"))
    assert sleeps == []


def test_append_waits_30_seconds_by_default_then_gives_up(make_log, monkeypatch):
    log = make_log(commit="thread")
    waits = []

    class Fut:
        def result(self, timeout=None):
            waits.append(timeout)
            return 7

    monkeypatch.setattr(log, "submit", lambda record: Fut())
    assert log.append(AuditRecord(kind="request")) == 7
    assert log.append(AuditRecord(kind="request"), timeout=2.5) == 7
    assert waits == [30.0, 2.5]
    monkeypatch.undo()
    inside, go, _ = _gate(log, monkeypatch)
    log.submit(AuditRecord(kind="request"))
    assert inside.wait(30)
    release = threading.Timer(5.0, go.set)  # an append that ignored its timeout returns then, and fails the test
    release.start()
    with pytest.raises(concurrent.futures.TimeoutError):
        log.append(AuditRecord(kind="request"), timeout=0.05)
    go.set()
    release.cancel()


def test_a_failed_transaction_fails_every_waiter_and_writes_nothing(make_log, monkeypatch):
    log = make_log(commit="thread")
    inside, go, _ = _gate(log, monkeypatch)
    log.submit(AuditRecord(kind="request", request_id="ok"))
    assert inside.wait(30)
    real = log._write_batch  # the gate
    boom = sqlite3.OperationalError("database is locked")

    def failing(records, busy_ms=al._THREAD_BUSY_MS):
        if any(r.request_id.startswith("x") for r in records):
            raise boom
        return real(records, busy_ms)

    monkeypatch.setattr(log, "_write_batch", failing)
    bad = [log.submit(AuditRecord(kind="request", request_id=f"x{i}")) for i in range(3)]
    go.set()
    for f in bad:  # the error itself (not a "busy" hand-over: only loop commits hand over)
        assert f.exception(30) is boom
    assert log.append(AuditRecord(kind="request", request_id="after")) == 2  # the writer goes on
    assert log.submit(AuditRecord(kind="request", request_id="x-again")).exception(30) is boom
    assert log.n_failed == 4 and log.n_written == 2  # counted per record, over every failed transaction
    assert [r["request_id"] for r in log.iter_records()] == ["ok", "after"] and log.verify().ok


def test_failed_loop_records_fail_closed_on_their_loop(make_log, monkeypatch):
    log = make_log(commit="thread")
    err = OSError("disk full")

    def failing(records, busy_ms=al._THREAD_BUSY_MS):
        raise err

    monkeypatch.setattr(log, "_write_batch", failing)

    async def go():
        return await asyncio.gather(*(log.append_async(AuditRecord(kind="request")) for _ in range(3)),
                                    return_exceptions=True)

    assert asyncio.run(go()) == [err, err, err]
    assert log.n_failed == 3 and log.n_written == 0 and log.head() == (0, GENESIS)


def test_a_cancelled_waiter_does_not_keep_the_others_from_their_answer(make_log, monkeypatch):
    log = make_log(commit="thread")
    inside, go, _ = _gate(log, monkeypatch)
    log.submit(AuditRecord(kind="request", request_id="first"))
    assert inside.wait(30)

    async def run():
        tasks = [asyncio.ensure_future(log.append_async(AuditRecord(kind="request", request_id=f"t{i}")))
                 for i in range(3)]
        await asyncio.sleep(0)  # the three are appended ...
        await asyncio.sleep(0)  # ... and handed to the writer as one group
        tasks[0].cancel()  # that client went away
        go.set()
        return await asyncio.wait_for(asyncio.gather(*tasks[1:]), 30)

    assert asyncio.run(run()) == [3, 4]
    assert [r["request_id"] for r in log.iter_records()] == ["first", "t0", "t1", "t2"]  # logged anyway


def test_a_record_of_a_closed_loop_is_logged_and_the_writer_goes_on(make_log, monkeypatch):
    log = make_log(commit="thread")
    inside, go, _ = _gate(log, monkeypatch)
    log.submit(AuditRecord(kind="request", request_id="first"))
    assert inside.wait(30)
    loop = asyncio.new_event_loop()
    fut = loop.create_future()
    log._queue.put([(AuditRecord(kind="request", request_id="orphan"), fut, loop)])
    loop.close()  # its waiter is gone: nobody can be told
    go.set()
    assert log.append(AuditRecord(kind="request", request_id="next")) == 3
    assert [r["request_id"] for r in log.iter_records()] == ["first", "orphan", "next"]


def test_records_handed_over_after_close_fail_closed(make_log):
    log = make_log(commit="thread")
    log.close()
    loop = asyncio.new_event_loop()
    try:
        futs = [loop.create_future() for _ in range(2)]
        log._pending[loop] = [(AuditRecord(kind="request"), f, loop) for f in futs]
        log._flush_pending(loop)
        assert all(isinstance(f.exception(), RuntimeError) and str(f.exception()) == "audit log is closed"
                   for f in futs)
        assert log.n_failed == 2 and log._queue.qsize() == 0 and loop not in log._pending
        log._flush_pending(loop)  # nothing pending: nothing happens
        assert log.n_failed == 2
        log._pending[loop] = [(AuditRecord(kind="request"), loop.create_future(), loop)]
        log._flush_pending(loop)
        assert log.n_failed == 3  # counted, not reset
    finally:
        loop.close()


def test_close_waits_for_a_commit_in_progress_at_most_its_timeout(make_log):
    log = make_log()
    log.append(AuditRecord(kind="request"))
    raw = log._raw
    assert log._write_lock.acquire()  # a commit in progress on another thread
    try:
        t0 = time.monotonic()
        log.close(timeout=0.2)
        assert 0.15 < time.monotonic() - t0 < 10
        assert log._raw is raw  # not closed under a running commit
    finally:
        log._write_lock.release()
        raw.close()
    with pytest.raises(RuntimeError, match=r"^audit log is closed$"):  # and no commit starts after close
        log._commit([AuditRecord(kind="request")])


def test_close_without_a_readable_head_leaves_last_head_unset(make_log):
    log = make_log()
    log.append(AuditRecord(kind="request"))
    _exec(log, "DROP TABLE {t}")
    log.close()
    assert log.last_head is None and log._raw is None


# -- database servers (no server needed: what is configured before the first connection) ---------------


def test_a_server_log_pings_pooled_connections_and_reads_through_its_one_engine(tmp_path, monkeypatch):
    real = sa.create_engine
    calls = []

    def create_engine(url, **kw):  # a server URL, served by a SQLite file so that the constructor completes
        calls.append((str(url), kw))
        return real(f"sqlite:///{tmp_path / 'stand-in.db'}")

    monkeypatch.setattr(sa, "create_engine", create_engine)
    log = AuditLog("postgresql+psycopg://u@db.invalid/audit", KEY)
    try:
        assert calls == [("postgresql+psycopg://u@db.invalid/audit", {"pool_pre_ping": True})]
        assert log._reader is log.engine and not log.is_sqlite and log._sqlite_path is None
        assert log.commit_on_loop is False
    finally:
        log.close()


def test_server_log_errors_name_the_url_without_its_password(tmp_path, monkeypatch):
    with pytest.raises(UserError) as loop:
        AuditLog("postgresql+psycopg://u:s3cret@127.0.0.1:1/audit", KEY, commit="loop")
    assert str(loop.value).startswith("audit commit 'loop' needs a plain SQLite file URL")
    with pytest.raises(UserError) as down:  # nothing listens on port 1: refused at once
        AuditLog("postgresql+psycopg://u:s3cret@127.0.0.1:1/audit", KEY)
    assert str(down.value) == "cannot open the audit log at postgresql+psycopg://u:***@127.0.0.1:1/audit: OperationalError"

    def no_driver(url, **kw):
        raise ModuleNotFoundError("No module named 'psycopg'")

    monkeypatch.setattr(sa, "create_engine", no_driver)  # the driver is not installed
    with pytest.raises(MissingExtraError) as missing:
        AuditLog("postgresql+psycopg://u@127.0.0.1:1/audit", KEY)
    assert str(missing.value) == "psycopg is needed for PostgreSQL audit logs: pip install 'modelshield[serve]'"


def test_a_server_log_takes_the_advisory_lock_in_every_transaction(tmp_path, monkeypatch):
    """On PostgreSQL each transaction first takes one advisory lock (several processes share the chain),
    then reads the tail; a SQLite stand-in with a recording ``pg_advisory_xact_lock`` shows the calls."""
    real = sa.create_engine
    locks = []

    def create_engine(url, **kw):
        engine = real(f"sqlite:///{tmp_path / 'stand-in.db'}")

        @sa.event.listens_for(engine, "connect")
        def _fn(dbapi_conn, _rec):
            dbapi_conn.create_function("pg_advisory_xact_lock", 1, lambda k: locks.append(k) or 0)

        return engine

    monkeypatch.setattr(sa, "create_engine", create_engine)
    log = AuditLog("postgresql+psycopg://u@db.invalid/audit", KEY)
    try:
        assert [log.append(AuditRecord(kind="request", request_id=f"r{i}")) for i in range(3)] == [1, 2, 3]
        assert locks == [al._PG_LOCK_ID] * 3
        _chain(list(log.iter_records()))
    finally:
        log.close()


# -- more of the constructor and the connection ---------------------------------------------------------


def test_without_sqlalchemy_the_log_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # as if not installed
    with pytest.raises(MissingExtraError) as info:
        AuditLog(f"sqlite:///{tmp_path / 'a.db'}", KEY)
    assert str(info.value) == "sqlalchemy is needed for the audit log: pip install 'modelshield[serve]'"


def test_constructor_edge_values(make_log, tmp_path):
    log = make_log("a.db", key=b"k" * 16, table="Audit_T1")  # the shortest key; upper-case names
    assert log.last_head is None  # set by close() only
    log.append(AuditRecord(kind="request"))
    assert log.verify().ok and log._raw.execute("PRAGMA synchronous").fetchone() == (2,)  # default: full
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError) as info:  # a file where the log's folder should be
        AuditLog(f"sqlite:///{tmp_path / 'file' / 'audit.db'}", KEY)
    assert str(info.value) == f"cannot create the audit log directory {tmp_path / 'file'}: File exists"


def test_the_busy_timeout_follows_the_commit_path(make_log):
    log = make_log()
    log.append(AuditRecord(kind="request"))  # the writer thread: waits up to 30 s for another process
    assert log._raw.execute("PRAGMA busy_timeout").fetchone() == (30_000,)

    async def on_loop():
        return await log.append_async(AuditRecord(kind="request"))

    assert asyncio.run(on_loop()) == 2  # the loop: gives up after 20 ms
    assert log._raw.execute("PRAGMA busy_timeout").fetchone() == (20,)
    log.append(AuditRecord(kind="request"))
    assert log._raw.execute("PRAGMA busy_timeout").fetchone() == (30_000,)
    fresh = make_log("b.db")
    assert asyncio.run(fresh.append_async(AuditRecord(kind="request"))) == 1  # a connection opened on the loop
    assert fresh._raw.execute("PRAGMA busy_timeout").fetchone() == (20,)


def test_a_connection_left_in_a_transaction_is_replaced(make_log):
    log = make_log(commit="thread")
    log.append(AuditRecord(kind="request"))
    real = log._raw
    closed = []

    class Stuck:  # neither COMMIT nor ROLLBACK goes through
        in_transaction = True

        def execute(self, sql, *a):
            if sql in ("COMMIT", "ROLLBACK"):
                raise sqlite3.OperationalError("disk I/O error")
            return real.execute(sql, *a)

        def executemany(self, *a):
            return real.executemany(*a)

        def close(self):
            closed.append(True)
            real.close()

    log._raw = Stuck()
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        log.append(AuditRecord(kind="request"))
    assert closed == [True] and log._raw is None
    assert log.append(AuditRecord(kind="request")) == 2 and log._raw is not None  # a new connection
    assert log.verify().ok and log.n_failed == 1


def test_two_loop_commits_handed_over_are_both_counted(tmp_path):
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", KEY, commit="loop")
    log.append(AuditRecord(kind="request"))
    other = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def run():
        tasks = [asyncio.ensure_future(log.append_async(AuditRecord(kind="request"))) for _ in range(2)]
        t0 = time.monotonic()
        while log.n_handed_over < 2 and time.monotonic() - t0 < 30:
            await asyncio.sleep(0.01)
        other.execute("COMMIT")
        return sorted(await asyncio.wait_for(asyncio.gather(*tasks), 30))

    try:
        assert asyncio.run(run()) == [2, 3]
        assert log.n_handed_over == 2
    finally:
        other.close()
        log.close()


def test_close_waits_10_seconds_by_default(make_log):
    log = make_log(commit="thread")
    log.append(AuditRecord(kind="request"))
    thread, lock = log._thread, log._write_lock
    waits = []

    class Recorder:
        def __init__(self, inner):
            self.inner = inner

        def join(self, timeout=None):
            waits.append(("join", timeout))
            self.inner.join(30)

        def acquire(self, timeout=-1):
            waits.append(("acquire", timeout))
            return self.inner.acquire(timeout=30)

        def release(self):
            self.inner.release()

    log._thread, log._write_lock = Recorder(thread), Recorder(lock)
    log.close()
    assert waits == [("join", 10.0), ("acquire", 10.0)]
    assert not thread.is_alive() and log._raw is None


# -- reading in chunks --------------------------------------------------------------------------------


def _statements(log):
    seen = []

    @sa.event.listens_for(log._reader, "before_cursor_execute")
    def _rec(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((" ".join(statement.split()), parameters))

    return seen


def test_iter_records_reads_in_ordered_chunks(make_log):
    log = make_log()
    _fill(log, 7)
    seen = _statements(log)
    assert [r["seq"] for r in itertools.islice(log.iter_records(chunk=3), 20)] == list(range(1, 8))
    assert [p for _, p in seen] == [(0, 3, 0), (3, 3, 0), (6, 3, 0), (7, 3, 0)]  # (after, limit, offset)
    assert all(s.endswith("WHERE modelshield_audit.seq > ? ORDER BY modelshield_audit.seq LIMIT ? OFFSET ?")
               for s, _ in seen)
    seen.clear()
    assert len(list(log.iter_records())) == 7
    assert [p for _, p in seen] == [(0, 2000, 0), (7, 2000, 0)]  # the default chunk


def test_query_reads_in_ordered_chunks(make_log):
    log = make_log()
    _fill(log, 5)
    seen = _statements(log)
    # bounded: a cursor that does not move would repeat the first chunk for ever
    assert [r["seq"] for r in itertools.islice(log.query(chunk=2), 20)] == [1, 2, 3, 4, 5]
    assert [p for _, p in seen] == [(2, 0), (2, 2, 0), (4, 2, 0)]
    assert all("ORDER BY modelshield_audit.seq LIMIT ?" in s for s, _ in seen)
    seen.clear()
    assert [r["seq"] for r in log.query(chunk=2, newest_first=True, limit=3)] == [5, 4, 3]
    assert [p for _, p in seen] == [(2, 0), (4, 1, 0)]
    assert all("ORDER BY modelshield_audit.seq DESC LIMIT ?" in s for s, _ in seen)
    seen.clear()
    assert len(list(log.query())) == 5
    assert [p for _, p in seen] == [(2000, 0)]  # the default chunk: one short read ends the query


def test_a_record_pending_on_its_loop_at_close_is_committed(make_log):
    """commit="thread": a record waiting for its loop iteration's hand-over when the log closes is handed
    over by close() itself, committed, and its waiter answered."""
    log = make_log(commit="thread")

    async def race():
        task = asyncio.ensure_future(log.append_async(AuditRecord(kind="request", request_id="late")))
        await asyncio.sleep(0)  # the record waits in this loop's pending list; the hand-over has not run
        assert [r.request_id for r, _, _ in log._pending[asyncio.get_running_loop()]] == ["late"]
        log.close()
        return await asyncio.wait_for(task, 10)

    assert asyncio.run(race()) == 1
    assert log.last_head == (1, log._hash_at(1)) and log._pending == {} and log.n_written == 1


def test_a_failure_inside_the_transaction_rolls_back_and_keeps_the_connection(make_log):
    log = make_log(commit="thread")
    log.append(AuditRecord(kind="request"))
    conn = log._raw
    with pytest.raises(ValueError):  # raised while the rows are built, after BEGIN IMMEDIATE
        log.append(AuditRecord(kind="request", n_rows="many"))
    assert log._raw is conn and not conn.in_transaction  # rolled back, not replaced
    assert log.append(AuditRecord(kind="request")) == 2 and log.verify().ok


def test_sqlalchemy_connections_wait_30_seconds_for_a_lock(make_log, tmp_path):
    """The SQLAlchemy connections (readers, and the writer of a URL with parameters) wait up to 30 s for
    another process's write lock, as the writer thread does."""
    plain = make_log()
    with_params = AuditLog(f"sqlite:///{tmp_path / 'p.db'}?uri=true", KEY)
    try:
        for log in (plain, with_params):
            for engine in (log.engine, log._reader):
                with engine.connect() as c:
                    assert c.exec_driver_sql("PRAGMA busy_timeout").fetchone() == (30_000,)
    finally:
        with_params.close()
