"""Hash-chained audit log on SQLite and the real PostgreSQL: tamper detection, concurrency, fail closed."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from modelshield.errors import UserError
from modelshield.serve.auditlog import AuditLog, AuditRecord, load_or_create_key

KEY = b"k" * 32


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log_factory(request, tmp_path):
    if request.param == "sqlite":
        url, table = f"sqlite:///{tmp_path / 'audit.db'}", "modelshield_audit"
    else:
        url, table = request.getfixturevalue("pg_url")
    logs = []

    def make(key=KEY, **kw):
        log = AuditLog(url, key, table=table, **kw)
        logs.append(log)
        return log

    yield make
    for log in logs:
        log.close()


def _fill(log, n=20):
    for i in range(n):
        log.append(AuditRecord(kind="request", endpoint="/v1/predict", status=200, decision="ok",
                               key_id="abc", request_id=f"r{i}", input_hash="0" * 64, n_rows=1,
                               output={"predictions": [i % 2]}, scores={"ood_max": 0.1 * i}))


def _exec(log, sql, **params):
    with log.engine.begin() as c:
        c.execute(sa.text(sql.replace("{t}", f'"{log.table.name}"')), params)


def test_intact_log_verifies(log_factory):
    log = log_factory()
    _fill(log)
    res = log.verify()
    assert res.ok and res.n_records == 20 and res.head_seq == 20
    assert log.head() == (20, res.head_hash)
    assert len(log.request_ids()) == 20


def test_edit_is_detected_and_named(log_factory):
    log = log_factory()
    _fill(log)
    _exec(log, "UPDATE {t} SET output = '{\"predictions\":[1]}' WHERE seq = 7")
    res = log.verify()
    assert not res.ok and res.first_bad == 7 and "edited" in res.reason


def test_edit_with_recomputed_plain_hash_is_detected(log_factory):
    """An attacker without the chain key cannot re-seal an edited record."""
    import hashlib
    import json

    log = log_factory()
    _fill(log)
    rows = {r["seq"]: r for r in log.iter_records()}
    r = dict(rows[5])
    r["decision"] = "rejected:rate"
    fields = ("seq", "ts_us", "kind", "request_id", "key_id", "client", "endpoint", "status", "decision",
              "input_hash", "n_rows", "output", "scores", "prev_hash")
    forged = hashlib.sha256(json.dumps([r[f] for f in fields], separators=(",", ":")).encode()).hexdigest()
    _exec(log, "UPDATE {t} SET decision = 'rejected:rate', hash = :h WHERE seq = 5", h=forged)
    res = log.verify()
    assert not res.ok and res.first_bad == 5


def test_delete_is_detected(log_factory):
    log = log_factory()
    _fill(log)
    _exec(log, "DELETE FROM {t} WHERE seq = 11")
    res = log.verify()
    assert not res.ok and res.first_bad == 12 and "missing" in res.reason


def test_delete_and_renumber_is_detected(log_factory):
    log = log_factory()
    _fill(log)
    _exec(log, "DELETE FROM {t} WHERE seq = 11")
    _exec(log, "UPDATE {t} SET seq = seq - 1 WHERE seq > 11")
    res = log.verify()
    assert not res.ok and res.first_bad == 11


def test_reorder_is_detected(log_factory):
    log = log_factory()
    _fill(log)
    _exec(log, "UPDATE {t} SET seq = -1 WHERE seq = 4")
    _exec(log, "UPDATE {t} SET seq = 4 WHERE seq = 5")
    _exec(log, "UPDATE {t} SET seq = 5 WHERE seq = -1")
    res = log.verify()
    assert not res.ok and res.first_bad == 4


def test_truncation_is_detected_against_a_saved_head(log_factory):
    log = log_factory()
    _fill(log)
    head = log.head()
    _exec(log, "DELETE FROM {t} WHERE seq > 15")
    assert log.verify().ok  # a shorter, consistent chain...
    res = log.verify(expect_head=head)  # ...but not the one we saw
    assert not res.ok and res.first_bad == 16


def test_a_wrong_hash_at_the_saved_head_is_refused(log_factory):
    """``expect_head=(seq, hash)`` checks both: the seq must exist and carry exactly that hash."""
    log = log_factory()
    _fill(log)
    seq, h = log.head()
    assert log.verify(expect_head=(seq, h)).ok
    other = log._hash_at(seq - 1)
    flipped = h[:-1] + ("0" if h[-1] != "0" else "1")
    for es, eh in ((seq, flipped), (seq, "f" * 64), (seq, other), (seq - 5, h), (3, flipped), (1, other)):
        res = log.verify(expect_head=(es, eh))
        assert not res.ok and res.first_bad == es and "saved head" in res.reason, (es, eh)
    earlier = log._hash_at(7)
    assert log.verify(expect_head=(7, earlier)).ok  # an older, correct anchor still verifies
    res = log.verify(expect_head=(seq + 3, h))
    assert not res.ok and res.first_bad == seq + 1 and "missing" in res.reason


@pytest.mark.parametrize("client", ["10.0.0.7", "2001:db8::42", "testclient", "c" * 120])
def test_the_client_address_is_stored(log_factory, client):
    log = log_factory()
    for c in (client, "", None):
        log.append(AuditRecord(kind="auth", decision="rejected:auth_401", client=c, request_id=f"r{c}"))
    stored = [r["client"] for r in sorted(log.recent(3), key=lambda r: r["seq"])]
    assert stored == [client[:80], None, None]
    assert log.verify().ok


def test_the_gateway_stores_the_peer_address_of_every_request(make_gateway, breast_cancer):
    app, gw, keys = make_gateway()
    with TestClient(app) as c:
        c.post("/v1/predict", json={"inputs": breast_cancer[1][:1].tolist()}, headers={"Authorization": "Bearer x"})
        c.post("/v1/predict", json={"inputs": breast_cancer[1][:1].tolist()},
               headers={"Authorization": f"Bearer {keys['predict']}"})
        c.post("/admin/keys", json={"name": "n"}, headers={"Authorization": f"Bearer {keys['admin']}"})
    gw.audit.close()
    recs = gw.audit.recent(10)
    assert len(recs) == 3 and {r["client"] for r in recs} == {"testclient"}  # Starlette's test peer


def test_wrong_key_fails_verification(log_factory):
    log = log_factory()
    _fill(log, 3)
    other = log_factory(key=b"x" * 32)
    res = other.verify()
    assert not res.ok and res.first_bad == 1


def test_concurrent_writers_keep_one_chain(log_factory):
    """Two writers (as two replicas would be) appending at once: gap-free, valid chain."""
    a, b = log_factory(), log_factory()

    def work(log, tag):
        futs = [log.submit(AuditRecord(kind="request", request_id=f"{tag}{i}")) for i in range(100)]
        for f in futs:
            f.result(60)

    ts = [threading.Thread(target=work, args=(lg, t)) for lg, t in ((a, "a"), (b, "b"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    res = a.verify()
    assert res.ok and res.n_records == 200
    assert len(a.request_ids()) == 200


def test_key_file_is_private_and_stable(tmp_path):
    import os
    import stat

    k1 = load_or_create_key(tmp_path / "audit.key")
    assert stat.S_IMODE(os.stat(tmp_path / "audit.key").st_mode) == 0o600
    assert load_or_create_key(tmp_path / "audit.key") == k1
    with pytest.raises(UserError, match="audit-log key not found"):
        load_or_create_key(tmp_path / "nope.key", create=False)
    assert not (tmp_path / "nope.key").exists()


@pytest.mark.parametrize("commit", ["auto", "thread"])
def test_every_answer_is_logged_before_it_is_sent(make_gateway, breast_cancer, commit):
    app, gw, keys = make_gateway(audit={"commit": commit})
    assert gw.audit.commit_on_loop is (commit == "auto")  # auto: on the loop for a SQLite file
    X = breast_cancer[1]
    h = {"Authorization": f"Bearer {keys['predict']}"}
    with TestClient(app) as c:
        rids = []
        for i in range(5):
            r = c.post("/v1/predict", json={"inputs": X[i : i + 2].tolist()}, headers=h)
            assert r.status_code == 200
            rids.append(r.headers["x-request-id"])
            # already durable when the response arrives, read through a separate connection
            assert r.headers["x-request-id"] in gw.audit.request_ids()
        rec = {r["request_id"]: r for r in gw.audit.recent(10)}[rids[0]]
        assert rec["key_id"] == keys["predict"].split("_")[1] and rec["n_rows"] == 2
        assert '"predictions"' in rec["output"]


@pytest.mark.parametrize("commit", ["loop", "thread"])
def test_fail_closed_when_the_log_cannot_be_written(make_gateway, breast_cancer, monkeypatch, commit):
    app, gw, keys = make_gateway(audit={"commit": commit})

    def broken(records):
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(gw.audit, "_write_batch", broken)
    with TestClient(app) as c:
        r = c.post("/v1/predict", json={"inputs": breast_cancer[1][:2].tolist()},
                   headers={"Authorization": f"Bearer {keys['predict']}"})
    assert r.status_code == 503
    assert "predictions" not in r.text


def test_records_of_one_loop_iteration_share_one_commit(log_factory):
    """With the writer thread, append_async hands it the records of one loop iteration together: one transaction."""
    import asyncio

    log = log_factory(commit="thread")
    _fill(log, 3)  # three synchronous appends: three commits of one record

    async def burst():
        recs = [AuditRecord(kind="request", request_id=f"b{i}", output={"predictions": [i]}) for i in range(10)]
        return await asyncio.gather(*(log.append_async(r) for r in recs))

    seqs = asyncio.run(burst())
    assert seqs == list(range(4, 14))  # in order, gap-free, after the synchronous ones
    assert log.batch_sizes() == {1: 3, 10: 1}
    assert log.verify().ok


def test_serialised_output_is_stored_verbatim_and_verifies(log_factory):
    from modelshield.serve.auditlog import compact_json

    log = log_factory()
    out = {"predictions": [1], "probabilities": [[0.1235, 0.8765]], "classes": [0, 1]}
    body = compact_json(out)
    assert body == '{"predictions":[1],"probabilities":[[0.1235,0.8765]],"classes":[0,1]}'
    log.append(AuditRecord(kind="request", request_id="a", output_json=body))
    log.append(AuditRecord(kind="request", request_id="b", output=out))  # the same bytes either way
    rows = log.recent(2)
    assert rows[0]["output"] == rows[1]["output"] == body
    assert log.verify().ok


def test_a_record_pending_at_close_is_committed_not_lost(tmp_path):
    """A record still waiting for its loop iteration's hand-over when the log closes is committed by close()."""
    import asyncio

    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", KEY)

    async def race():
        task = asyncio.ensure_future(log.append_async(AuditRecord(kind="request", request_id="late")))
        await asyncio.sleep(0)  # the record is pending for this iteration's flush
        log.close()  # close hands pending records to the writer before it stops
        return await asyncio.wait_for(task, 10)

    seq = asyncio.run(race())
    assert seq == 1  # committed by close()'s flush, not dropped
    log2 = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", KEY)
    assert log2.request_ids() == {"late"} and log2.verify().ok
    log2.close()


def test_auto_commits_on_the_loop_for_sqlite_files_and_on_a_thread_for_servers(log_factory, tmp_path, monkeypatch):
    log = log_factory()
    assert log.commit_on_loop is log.is_sqlite
    if not log.is_sqlite:  # a server's round trips must never run on the event loop
        with pytest.raises(UserError, match="needs a plain SQLite file"):
            log_factory(commit="loop")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
        with pytest.raises(UserError, match="in-memory"):  # not durable, and one database per thread
            AuditLog(url, KEY)
    assert list(cwd.iterdir()) == []  # no stray "sqlite:" or "file:" directories
    with pytest.raises(UserError, match="auto, loop or thread"):
        AuditLog(f"sqlite:///{tmp_path / 'x.db'}", KEY, commit="sometimes")


def _loop_log(tmp_path, **kw):
    return AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", KEY, commit="loop", **kw)


def test_loop_commits_are_durable_before_append_async_returns(tmp_path):
    """commit="loop": each record is its own transaction, committed on the loop, no writer thread."""
    import asyncio

    log = _loop_log(tmp_path)

    async def run():
        seqs = []
        for i in range(5):
            seqs.append(await log.append_async(AuditRecord(kind="request", request_id=f"l{i}")))
            assert f"l{i}" in log.request_ids()  # committed, read through another connection
        return seqs

    assert asyncio.run(run()) == [1, 2, 3, 4, 5]
    assert log._thread is None  # nothing was handed to a thread
    assert log.batch_sizes() == {1: 5} and log.verify().ok
    log.close()


def test_loop_and_thread_commits_interleave_in_one_chain(tmp_path, monkeypatch):
    """A loop committing while another thread appends through the writer (alerts, admin events): one
    chain. Each transaction is slowed down so that the two paths really overlap."""
    import asyncio
    import time

    log = _loop_log(tmp_path)
    real = log._write_batch

    def slow(records, busy_ms=30_000):
        time.sleep(0.002)  # GIL released: the other thread runs meanwhile
        return real(records, busy_ms)

    monkeypatch.setattr(log, "_write_batch", slow)

    def other():
        for i in range(40):
            log.append(AuditRecord(kind="request", request_id=f"t{i}"), timeout=60)

    async def run():
        t = threading.Thread(target=other)
        t.start()
        for i in range(40):
            await log.append_async(AuditRecord(kind="request", request_id=f"l{i}"))
            await asyncio.sleep(0.001)
        await asyncio.to_thread(t.join, 60)

    asyncio.run(run())
    res = log.verify()
    assert res.ok and res.n_records == 80
    assert log.request_ids() == {f"{p}{i}" for p in "lt" for i in range(40)}
    assert log.n_handed_over > 0  # some loop commits met the writer thread and went through it
    assert log.n_written == 80 and log.n_failed == 0
    log.close()


def test_a_busy_log_never_blocks_the_loop(tmp_path):
    """Another process holding the database's write lock: the loop commit gives up after a few ms and
    waits for the writer thread instead; the loop keeps running meanwhile."""
    import asyncio
    import sqlite3
    import time

    log = _loop_log(tmp_path)
    log.append(AuditRecord(kind="request", request_id="first"))
    other = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # as another replica mid-transaction would

    async def run():
        task = asyncio.ensure_future(log.append_async(AuditRecord(kind="request", request_id="late")))
        t0 = time.monotonic()
        ticks = 0
        while time.monotonic() - t0 < 0.5:  # the loop is free while the record waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not task.done()
        other.execute("COMMIT")
        return ticks, await asyncio.wait_for(task, 30)

    ticks, seq = asyncio.run(run())
    # a blocked loop ticks at most once in the window; on a loaded machine a 10 ms sleep can take far longer,
    # so the bound is loose (it flaked at 17 of 50 ticks under load average 18)
    assert ticks >= 5 and seq == 2
    assert log.n_handed_over == 1 and "late" in log.request_ids() and log.verify().ok
    other.close()
    log.close()


def test_a_failed_loop_commit_releases_the_log(tmp_path, monkeypatch):
    import asyncio

    log = _loop_log(tmp_path)
    real = log._write_batch_sqlite
    calls = {"n": 0}

    def flaky(records, busy_ms=30_000):
        calls["n"] += 1
        if calls["n"] == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return real(records, busy_ms)

    import sqlite3

    monkeypatch.setattr(log, "_write_batch_sqlite", flaky)

    async def run():
        with pytest.raises(sqlite3.OperationalError):
            await log.append_async(AuditRecord(kind="request", request_id="a"))
        return await log.append_async(AuditRecord(kind="request", request_id="b"))

    assert asyncio.run(run()) == 1
    assert log.n_failed == 1 and log.n_written == 1 and not log._write_lock.locked()
    log.close()
    with pytest.raises(RuntimeError, match="closed"):  # nothing reopens the connection after close()
        log._commit([AuditRecord(kind="request", request_id="c")])
    assert log._raw is None


def test_loop_commits_keep_the_wal_bounded(tmp_path):
    """Commits on the loop leave SQLite's automatic checkpoint on: the WAL is reused, not grown per commit
    (a WAL that only grows makes every fsync an append and fills the disk)."""
    import asyncio
    import os

    db = tmp_path / "audit.db"
    log = AuditLog(f"sqlite:///{db}", KEY, commit="loop", durability="normal")

    async def run():
        for i in range(3000):  # ~40 MB of WAL frames if nothing were checkpointed
            await log.append_async(AuditRecord(kind="request", request_id=f"w{i}", output={"p": [i] * 20}))

    asyncio.run(run())
    assert os.path.getsize(f"{db}-wal") < 8 << 20  # the default checkpoint: about 1000 pages of 4 KiB
    assert log.verify().ok
    log.close()


@pytest.mark.parametrize("failure", ["raises", "nan"])
def test_a_failing_model_is_answered_500_and_logged(make_gateway, breast_cancer, monkeypatch, failure):
    """A model that raises, or returns NaN, gets no prediction out: a JSON 500 (no traceback, no NaN) that
    the audit log records like any refusal."""
    import numpy as np

    app, gw, keys = make_gateway()

    def broken(X):
        if failure == "raises":
            raise ValueError("secret internal detail")
        return np.full((len(X), 2), np.nan)

    monkeypatch.setattr(gw.model, "predict_proba", broken)
    with TestClient(app) as c:
        r = c.post("/v1/predict", json={"inputs": breast_cancer[1][:2].tolist()},
                   headers={"Authorization": f"Bearer {keys['predict']}"})
    assert r.status_code == 500
    assert "secret" not in r.text and "NaN" not in r.text and "predictions" not in r.text
    rec = {x["request_id"]: x for x in gw.audit.recent(5)}[r.headers["x-request-id"]]
    reason = "internal_error" if failure == "raises" else "model_error"
    assert rec["status"] == 500 and rec["decision"] == f"rejected:{reason}"
    assert gw.audit.verify().ok


def test_sqlite_seq_is_the_rowid_and_older_logs_still_append(tmp_path):
    """A new SQLite log keys its rows by ``seq`` itself (INTEGER PRIMARY KEY: no second index to update per
    commit); a log created with the older BIGINT key keeps working: appends link to its chain and verify."""
    import sqlite3

    log = AuditLog(f"sqlite:///{tmp_path / 'new.db'}", KEY)
    _fill(log, 3)
    log.close()
    c = sqlite3.connect(tmp_path / "new.db")
    assert [r[1] for r in c.execute("PRAGMA index_list(modelshield_audit)")] == ["ix_modelshield_audit_request_id"]
    assert c.execute("SELECT max(rowid) = max(seq) FROM modelshield_audit").fetchone()[0] == 1
    c.close()

    old = tmp_path / "old.db"
    c = sqlite3.connect(old)
    c.execute(  # the table older versions created: a BIGINT primary key (a separate autoindex in SQLite)
        "CREATE TABLE modelshield_audit (seq BIGINT NOT NULL, ts_us BIGINT NOT NULL, kind VARCHAR(16) NOT NULL, "
        "request_id VARCHAR(64) NOT NULL, key_id VARCHAR(80), client VARCHAR(80), endpoint VARCHAR(80) NOT NULL, "
        "status INTEGER NOT NULL, decision VARCHAR(40) NOT NULL, input_hash VARCHAR(64) NOT NULL, "
        "n_rows INTEGER NOT NULL, output TEXT, scores TEXT, prev_hash VARCHAR(64) NOT NULL, "
        "hash VARCHAR(64) NOT NULL, PRIMARY KEY (seq))")
    c.execute("CREATE INDEX ix_modelshield_audit_request_id ON modelshield_audit (request_id)")
    c.close()
    log = AuditLog(f"sqlite:///{old}", KEY)
    _fill(log, 5)
    assert log.verify().ok and log.head()[0] == 5
    log.close()
    c = sqlite3.connect(old)
    assert any(r[1].startswith("sqlite_autoindex") for r in c.execute("PRAGMA index_list(modelshield_audit)"))
    c.close()


def test_a_new_sqlite_log_and_its_wal_are_private(tmp_path):
    import os
    import stat

    db = tmp_path / "logs" / "audit.db"
    log = AuditLog(f"sqlite:///{db}", KEY)
    _fill(log, 2)
    for p in (db, db.with_name("audit.db-wal")):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
    assert stat.S_IMODE(os.stat(db.parent).st_mode) == 0o700
    log.close()
