"""A tamper-evident, durable audit log: one hash-chained table in SQLite (default) or PostgreSQL.

Each record carries ``prev_hash`` and ``hash = HMAC-SHA256(key, prev_hash || canonical(record))``,
numbered by a gap-free ``seq``. :meth:`AuditLog.verify` walks the chain and names the first record
that was edited (hash mismatch), deleted (gap in ``seq`` / broken link) or reordered (link broken).
The chain key (``audit.key``, 32 random bytes, mode 0600) keeps someone with write access to the
database but not to the key from re-computing the chain after an edit. Removing records from the
*end* of the log is only visible against a head saved elsewhere (``verify(expect_head=...)``): the
gateway anchors the head outside the database (:func:`write_anchor`, a file in its state dir, every
``audit.anchor_every_s`` and at shutdown; also ``/metrics`` and the webhook), and ``modelshield
audit-log verify`` compares with the newest anchor by default. Threat model of the anchor file:
someone who can write the database but not the gateway's state dir (a database administrator, a
restored backup); someone who can write both can roll both back, and only a copy of the head held
by another system (the webhook's receiver, a metrics store) detects that.

Write-ahead: the gateway appends a request's record and waits until its transaction is committed
(SQLite ``synchronous=FULL`` in WAL mode; PostgreSQL's default durable commit) *before* it sends
the response, so an acknowledged response is never missing after a crash. Where an event loop's
records are committed is ``commit``: ``"loop"`` commits each one on the event loop itself, as it
is appended (a local SQLite file: a commit costs less than handing the record to a thread, waking
the loop again and having that thread compete with the loop for the GIL); ``"thread"`` hands the
records of one loop iteration to a writer thread that group-commits them (one transaction, one
fsync, many records: a database over the network, whose round trips must not stall the loop, or a
disk whose fsync is slow); ``"auto"`` (default) picks ``loop`` for a plain SQLite file and ``thread``
for anything else (``loop`` is refused there). A loop commit never waits for the log: when the writer
thread holds it, or another process holds the SQLite write lock for more than ``_LOOP_BUSY_MS``, the
record goes to the writer thread instead. In-memory SQLite URLs are refused (not durable).
:meth:`AuditLog.batch_sizes` counts the records per transaction. Synchronous callers
(:meth:`AuditLog.append`, :meth:`AuditLog.submit`) always use the writer thread; one lock
serialises the two paths' transactions. Several processes
may share one log: the chain tail is read under a lock (``BEGIN IMMEDIATE`` in SQLite, an advisory
transaction lock in PostgreSQL).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import hmac
import json
import os
import queue
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelshield._io import private_dir
from modelshield.errors import DataError, MissingExtraError, UserError

__all__ = ["Anchor", "AuditLog", "AuditRecord", "VerifyResult", "input_hash", "load_or_create_key", "read_anchor",
           "write_anchor"]

GENESIS = "0" * 64
_FIELDS = ("seq", "ts_us", "kind", "request_id", "key_id", "client", "endpoint", "status",
           "decision", "input_hash", "n_rows", "output", "scores", "prev_hash")
_PG_LOCK_ID = 0x6D73_6869_656C_64  # "mshield"
_THREAD_BUSY_MS = 30_000  # how long the writer thread waits for another process's write lock
_LOOP_BUSY_MS = 20  # ... and a commit on the event loop, before it hands the record to the writer thread


class _Busy(Exception):
    """A loop commit found the log busy; nothing was written."""


def _is_busy(exc: BaseException) -> bool:
    import sqlite3  # lazy: sqlite3 only for a SQLite log (the URL may name PostgreSQL)

    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
        or "locked" in str(exc) or "busy" in str(exc))


# prebuilt encoders (json.dumps with non-default options builds a new encoder per call); the output is
# byte-identical to ``json.dumps(..., <same options>)``
_CANON_ENC = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode
_COMPACT_ENC = json.JSONEncoder(separators=(",", ":")).encode
_SORTED_ENC = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def compact_json(obj: Any) -> str:
    """``json.dumps(obj, separators=(",", ":"))``: how the log stores ``output`` (and the gateway's body)."""
    return _COMPACT_ENC(obj)


def input_hash(data: bytes) -> str:
    """SHA-256 of the request's input bytes (hex)."""
    return hashlib.sha256(data).hexdigest()


def load_or_create_key(path: str | Path, *, create: bool = True) -> bytes:
    """Read the chain's HMAC key, creating 32 random bytes (mode 0600) when ``create``."""
    p = Path(path)
    if p.is_file():
        key = p.read_bytes()
        if len(key) < 16:
            raise DataError(f"{p}: audit key is too short")
        return key
    if not create:
        raise UserError(f"audit-log key not found: {p}", cli_hint="pass --state-dir or --key-file")
    private_dir(p.parent)
    key = secrets.token_bytes(32)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())
    return key


@dataclass(frozen=True)
class Anchor:
    """A chain head saved outside the database: record ``seq`` had ``hash`` at ``time``."""

    seq: int
    hash: str
    time: float
    table: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "time": self.time, "table": self.table}


def _read_anchor_file(p: Path) -> dict[str, Any]:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: unreadable audit anchor file ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("anchors", {}), dict):
        raise DataError(f"{p}: not an audit anchor file")
    return data


def read_anchor(path: str | Path, table: str = "modelshield_audit") -> Anchor | None:
    """The newest anchor of ``table`` in the anchor file, ``None`` when there is none."""
    p = Path(path)
    a = _read_anchor_file(p).get("anchors", {}).get(table)
    if a is None:
        return None
    try:
        seq, h, t = int(a["seq"]), str(a["hash"]), float(a["time"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{p}: malformed anchor for table {table!r}") from None
    if seq < 0 or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
        raise DataError(f"{p}: malformed anchor for table {table!r}")
    return Anchor(seq, h, t, table)


def write_anchor(path: str | Path, seq: int, hash_: str, *, table: str = "modelshield_audit",
                 now: float | None = None) -> bool:
    """Record ``(seq, hash_)`` as ``table``'s newest anchor (atomic, fsynced, mode 0600).

    Anchors only move forward: an older ``seq`` than the one stored is not written (returns ``False``),
    so a truncated database cannot pull its own anchor back.
    """
    p = Path(path)
    private_dir(p.parent)
    data = _read_anchor_file(p)
    anchors = dict(data.get("anchors", {}))
    old = anchors.get(table)
    if old is not None and int(old.get("seq", 0)) >= seq:
        return False
    anchors[table] = {"seq": int(seq), "hash": hash_, "time": time.time() if now is None else now}
    body = json.dumps({"version": 1, "anchors": anchors}, indent=1)
    tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


@dataclass
class AuditRecord:
    """One logged event. ``kind`` is ``request``, ``auth``, ``alert`` or ``admin``.

    ``output_json``, when set, is ``output`` already serialised with :func:`compact_json` (the gateway
    passes the response body it sends, so the log stores exactly those bytes); it takes precedence.
    """

    kind: str
    endpoint: str = ""
    status: int = 0
    decision: str = ""
    key_id: str | None = None
    client: str | None = None
    request_id: str = ""
    input_hash: str = ""
    n_rows: int = 0
    output: Any = None
    scores: Mapping[str, Any] | None = None
    ts_us: int = field(default_factory=lambda: time.time_ns() // 1000)
    output_json: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    n_records: int
    head_seq: int
    head_hash: str
    first_bad: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "n_records": self.n_records, "head_seq": self.head_seq,
                "head_hash": self.head_hash, "first_bad": self.first_bad, "reason": self.reason}


def _canonical(row: Mapping[str, Any]) -> bytes:
    return _CANON_ENC([row[f] for f in _FIELDS]).encode("ascii")


def _chain_hash(key: bytes, row: Mapping[str, Any]) -> str:
    return hmac.new(key, _canonical(row), hashlib.sha256).hexdigest()


def _check_chunk(chunk: int) -> None:
    """Reads go in chunks of at least one row (a chunk of 0 or less would read nothing or ignore ``limit``)."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise UserError(f"audit log reads need a chunk of at least 1 row, not {chunk!r}")


def _table(metadata: Any, name: str) -> Any:
    from sqlalchemy import BigInteger, Column, Integer, String, Table, Text  # lazy: the serve extra

    return Table(
        name, metadata,
        # SQLite: exactly INTEGER makes ``seq`` the rowid (no separate primary-key index to update on every
        # commit: about 20 us less per durable append); 64-bit there as everywhere
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
        Column("ts_us", BigInteger, nullable=False),
        Column("kind", String(16), nullable=False),
        Column("request_id", String(64), nullable=False, index=True),
        Column("key_id", String(80)),
        Column("client", String(80)),
        Column("endpoint", String(80), nullable=False),
        Column("status", Integer, nullable=False),
        Column("decision", String(40), nullable=False),
        Column("input_hash", String(64), nullable=False),
        Column("n_rows", Integer, nullable=False),
        Column("output", Text),
        Column("scores", Text),
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False),
    )


_Item = tuple[AuditRecord, Any, "asyncio.AbstractEventLoop | None"]


class AuditLog:
    """Hash-chained audit log over SQLAlchemy.

    Parameters
    ----------
    url : SQLAlchemy URL, ``sqlite:///path/audit.db`` or ``postgresql+psycopg://user@host/db``.
    key : HMAC key of the chain (see :func:`load_or_create_key`).
    durability : ``full`` fsyncs every commit (SQLite ``synchronous=FULL``); ``normal`` survives a
        process crash but maybe not a power loss.
    table : table name (tests use distinct names on a shared PostgreSQL).
    commit : where :meth:`append_async` commits: ``"loop"``, ``"thread"`` or ``"auto"`` (``loop`` for a
        SQLite file, ``thread`` otherwise); see the module docstring.
    max_batch_wait_s : the writer thread waits this long before each commit to gather more records
        (thread commits only).
    """

    def __init__(self, url: str, key: bytes, *, durability: str = "full", table: str = "modelshield_audit",
                 max_batch: int = 512, max_batch_wait_s: float = 0.0, commit: str = "auto") -> None:
        try:
            import sqlalchemy as sa  # lazy: SQLAlchemy comes with the serve extra
        except ImportError as exc:  # pragma: no cover - optional extra
            raise MissingExtraError("sqlalchemy", "serve", "the audit log") from exc
        if len(key) < 16:
            raise UserError("audit key must be at least 16 bytes")
        if commit not in ("auto", "loop", "thread"):
            raise UserError(f"audit commit must be auto, loop or thread, not {commit!r}")
        import re

        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", table):
            raise UserError(f"bad audit table name {table!r}")
        self.url = url
        self._key = key
        self._sa = sa
        self.max_batch = max_batch
        self.max_batch_wait_s = max_batch_wait_s
        self.is_sqlite = url.startswith("sqlite")
        self._raw: Any = None  # plain sqlite3 connection of both commit paths (SQLite files only; under _write_lock)
        self._sqlite_path: str | None = None
        self._sync = "FULL" if durability == "full" else "NORMAL"
        if self.is_sqlite:
            u = sa.engine.make_url(url)
            path = u.database or ""
            if not path or path == ":memory:" or "mode=memory" in path or u.query.get("mode") == "memory":
                raise UserError("the audit log cannot be an in-memory SQLite database: it must outlive the "
                                "process (use a file, sqlite:///path/audit.db, or a database server)")
            if not u.query:  # a plain file (URL parameters such as ``?uri=true`` go through SQLAlchemy)
                self._sqlite_path = path
                private_dir(Path(path).parent, "audit log directory")
                try:  # a new log is private (0600): SQLite gives its -wal and -shm files the same mode
                    os.close(os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600))
                except OSError as exc:
                    raise UserError(f"cannot open the audit log {path}: {exc.strerror or type(exc).__name__}") from None
            self.engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            sync = self._sync

            @sa.event.listens_for(self.engine, "connect")
            def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA synchronous={sync}")
                cur.close()

            @sa.event.listens_for(self.engine, "begin")
            def _on_begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            # readers: autocommit statements, never the write lock (WAL lets them run beside the writer)
            self._reader = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

            @sa.event.listens_for(self._reader, "connect")
            def _on_connect_reader(dbapi_conn: Any, _rec: Any) -> None:
                dbapi_conn.isolation_level = None
        else:
            try:
                self.engine = sa.create_engine(url, pool_pre_ping=True)
            except ImportError as exc:
                raise MissingExtraError("psycopg", "serve", "PostgreSQL audit logs") from exc
            self._reader = self.engine
        if commit == "loop" and self._sqlite_path is None:
            raise UserError("audit commit 'loop' needs a plain SQLite file URL (sqlite:///path/audit.db): a database "
                            "server's round trips would stall the event loop; use 'thread' or 'auto'")
        self.commit_on_loop = commit != "thread" and self._sqlite_path is not None
        self._write_lock = threading.Lock()  # loop commits and writer-thread commits share one connection
        self._busy_ms = _THREAD_BUSY_MS  # the shared connection's busy timeout now (changed under the lock)
        self._shut = False  # close() has closed the connection: nothing reopens it
        self.n_handed_over = 0  # loop commits that found the log busy and went to the writer thread
        self.metadata = sa.MetaData()
        self.table = _table(self.metadata, table)
        try:
            self.metadata.create_all(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise UserError(f"cannot open the audit log at {self._safe_url()}: {type(exc).__name__}") from exc
        # items: lists of (record, future, loop): a concurrent future (``loop`` None) or an asyncio future
        # of ``loop``; an event loop puts the records of one loop iteration as one list
        self._queue: queue.SimpleQueue[list[_Item] | None] = queue.SimpleQueue()
        self._pending: dict[asyncio.AbstractEventLoop, list[_Item]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        self._start_lock = threading.Lock()
        self.n_written = 0
        self.n_failed = 0
        self.last_head: tuple[int, str] | None = None  # set by close()
        self._batch_sizes: Counter[int] = Counter()  # records per committed transaction -> count

    def _safe_url(self) -> str:
        try:
            return self._sa.engine.make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return "<url>"

    # -- writing ----------------------------------------------------------------------------
    def _ensure_writer(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._writer, name="audit-writer", daemon=True)
                    self._thread.start()

    def submit(self, record: AuditRecord) -> concurrent.futures.Future[int]:
        """Queue a record; the future resolves to its ``seq`` once committed (or raises)."""
        if self._closed:
            raise RuntimeError("audit log is closed")
        self._ensure_writer()
        fut: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._queue.put([(record, fut, None)])
        return fut

    def append(self, record: AuditRecord, timeout: float | None = 30.0) -> int:
        """Append and wait until durable; returns the record's ``seq``."""
        return self.submit(record).result(timeout=timeout)

    async def append_async(self, record: AuditRecord) -> int:
        """Append and wait (without blocking the event loop) until durable; returns the record's ``seq``.

        With ``commit="loop"`` the record is committed right here, on the loop (its own transaction:
        waiting for the rest of the loop iteration to form a group would hold this response back
        behind every other request's screening). Otherwise the waiter is an asyncio future of the
        running loop; records appended during one iteration of the loop go to the writer thread
        together (one transaction), which wakes the loop once per committed group.
        """
        if self._closed:
            raise RuntimeError("audit log is closed")
        if self.commit_on_loop:
            try:
                return self._commit([record], on_loop=True)[0]
            except _Busy:  # the writer thread or another process holds the log: wait without blocking the loop
                self.n_handed_over += 1
        self._ensure_writer()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush_pending, loop)
        pending.append((record, fut, loop))
        return await fut

    def _flush_pending(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand this loop's records of the last iteration to the writer (runs on that loop)."""
        items = self._pending.pop(loop, None)
        if not items:
            return
        if self._closed:  # close() already handed over what it found: fail closed, nobody commits these
            exc = RuntimeError("audit log is closed")
            self.n_failed += len(items)
            self._settle([(fut, None, exc) for _, fut, _ in items])
            return
        self._queue.put(items)

    def _commit(self, records: list[AuditRecord], *, on_loop: bool = False) -> list[int]:
        """One transaction for ``records`` (either path), counted in the statistics.

        ``on_loop``: never wait for the log. If the writer thread holds the connection, or another
        process holds the database's write lock for longer than ``_LOOP_BUSY_MS``, raise
        :class:`_Busy` (nothing was written) and let the caller hand the record to the writer thread.
        """
        lock = self._write_lock
        if not lock.acquire(blocking=not on_loop):
            raise _Busy
        try:
            if self._shut:
                raise RuntimeError("audit log is closed")
            try:
                seqs = self._write_batch(records, busy_ms=_LOOP_BUSY_MS if on_loop else _THREAD_BUSY_MS)
            except Exception as exc:
                if on_loop and _is_busy(exc):
                    raise _Busy from None
                self.n_failed += len(records)
                raise
            self._batch_sizes[len(records)] += 1  # under the lock: both paths count
            self.n_written += len(records)
            return seqs
        finally:
            lock.release()

    def batch_sizes(self) -> dict[int, int]:
        """How many transactions committed how many records (``{records: transactions}``)."""
        snap = dict(self._batch_sizes)  # one C-level copy: the writer thread may be adding a size
        return dict(sorted(snap.items()))

    @staticmethod
    def _settle(done: list[tuple[asyncio.Future[int], int | None, BaseException | None]]) -> None:
        for fut, seq, exc in done:
            if fut.done():  # the waiter was cancelled (client went away): the record is logged anyway
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(seq)  # type: ignore[arg-type]

    def _resolve(self, batch: list[_Item], seqs: list[int] | None, exc: BaseException | None) -> None:
        per_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, int | None, BaseException | None]]] = {}
        for i, (_, fut, loop) in enumerate(batch):
            seq = None if seqs is None else seqs[i]
            if loop is None:
                if exc is not None:
                    fut.set_exception(exc)
                else:
                    fut.set_result(seq)
            else:
                per_loop.setdefault(loop, []).append((fut, seq, exc))
        for loop, done in per_loop.items():
            try:
                loop.call_soon_threadsafe(self._settle, done)  # one wake-up of the loop per group
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass

    def _writer(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = list(item)
            if self.max_batch_wait_s:
                time.sleep(self.max_batch_wait_s)
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch += nxt
            try:
                seqs = self._commit([r for r, _, _ in batch])
            except Exception as exc:  # fail closed: every waiter gets the error
                self._resolve(batch, None, exc)
            else:
                self._resolve(batch, seqs, None)
            if stop:
                return

    def _rows(self, records: list[AuditRecord], tail: Any) -> list[dict[str, Any]]:
        seq, prev = (int(tail[0]), str(tail[1])) if tail else (0, GENESIS)
        rows = []
        for r in records:
            seq += 1
            row = {
                "seq": seq, "ts_us": int(r.ts_us), "kind": r.kind, "request_id": r.request_id[:64],
                "key_id": r.key_id, "client": (r.client or None) and r.client[:80],
                "endpoint": r.endpoint[:80], "status": int(r.status), "decision": r.decision[:40],
                "input_hash": r.input_hash, "n_rows": int(r.n_rows),
                "output": (r.output_json if r.output_json is not None
                           else None if r.output is None else _COMPACT_ENC(r.output)),
                "scores": None if r.scores is None else _SORTED_ENC(dict(r.scores)),
                "prev_hash": prev,
            }
            row["hash"] = prev = _chain_hash(self._key, row)
            rows.append(row)
        return rows

    def _write_batch(self, records: list[AuditRecord], busy_ms: int = _THREAD_BUSY_MS) -> list[int]:
        if self._sqlite_path is not None:
            return self._write_batch_sqlite(records, busy_ms)
        sa = self._sa
        t = self.table
        with self.engine.begin() as conn:
            if not self.is_sqlite:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_ID})
            tail = conn.execute(sa.select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1)).first()
            rows = self._rows(records, tail)
            conn.execute(t.insert(), rows)
        return [r["seq"] for r in rows]

    def _write_batch_sqlite(self, records: list[AuditRecord], busy_ms: int = _THREAD_BUSY_MS) -> list[int]:
        """The same transaction on a plain sqlite3 connection (a third of SQLAlchemy's per-commit cost).

        Called under ``_write_lock``. ``busy_ms``: how long to wait for another process's write lock.
        """
        import sqlite3  # lazy: sqlite3 only for a SQLite log (the URL may name PostgreSQL)

        if self._raw is None:
            c = sqlite3.connect(self._sqlite_path, timeout=busy_ms / 1000, isolation_level=None,  # type: ignore[arg-type]
                                check_same_thread=False)
            try:
                c.execute("PRAGMA journal_mode=WAL")
                c.execute(f"PRAGMA synchronous={self._sync}")
            except BaseException:
                c.close()
                raise
            self._raw, self._busy_ms = c, busy_ms
        c = self._raw
        if self._busy_ms != busy_ms:
            c.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
            self._busy_ms = busy_ms
        name = self.table.name
        c.execute("BEGIN IMMEDIATE")
        try:
            tail = c.execute(f'SELECT seq, hash FROM "{name}" ORDER BY seq DESC LIMIT 1').fetchone()  # noqa: S608
            rows = self._rows(records, tail)
            cols = (*_FIELDS, "hash")
            c.executemany(f'INSERT INTO "{name}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})',  # noqa: S608
                          [tuple(r[k] for k in cols) for r in rows])
            c.execute("COMMIT")
        except BaseException:
            try:
                c.execute("ROLLBACK")
            except sqlite3.Error:
                if c.in_transaction:  # neither COMMIT nor ROLLBACK went through: start over with a new connection
                    self._raw = None
                    c.close()
            raise
        return [r["seq"] for r in rows]

    def close(self, timeout: float = 10.0) -> None:
        """Flush queued records and stop the writer."""
        if self._closed:
            return
        self._closed = True
        for loop in list(self._pending):  # records of an iteration not yet handed over: flush them first
            items = self._pending.pop(loop, None)
            if items:
                self._ensure_writer()
                self._queue.put(items)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
        try:  # the final head, for an anchor outside the database
            self.last_head = self.head()
        except Exception:
            self.last_head = None
        self._shut = True  # checked under the lock: no commit starts after this, even if the lock is not won below
        if self._write_lock.acquire(timeout=timeout):  # a commit in progress on another thread finishes first
            try:
                if self._raw is not None:
                    self._raw.close()
                    self._raw = None
            finally:
                self._write_lock.release()
        self.engine.dispose()
        self._reader.dispose()

    # -- reading ----------------------------------------------------------------------------
    def iter_records(self, chunk: int = 2000, after: int = 0) -> Iterator[dict[str, Any]]:
        _check_chunk(chunk)
        sa = self._sa
        t = self.table
        last = after
        while True:
            with self._reader.connect() as conn:
                rows = conn.execute(sa.select(t).where(t.c.seq > last).order_by(t.c.seq).limit(chunk)).mappings().all()
            if not rows:
                return
            for r in rows:
                yield dict(r)
            last = int(rows[-1]["seq"])

    def recent(self, n: int = 50) -> list[dict[str, Any]]:
        sa = self._sa
        t = self.table
        with self._reader.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.seq.desc()).limit(n)).mappings().all()
        return [dict(r) for r in rows]

    def query(self, *, key_id: str | None = None, since_us: int | None = None, until_us: int | None = None,
              decision: str | None = None, kind: str | None = None, limit: int | None = None,
              newest_first: bool = False, chunk: int = 2000) -> Iterator[dict[str, Any]]:
        """Records matching every filter given, oldest first (or newest first), streamed in chunks.

        ``decision``: ``ok`` matches ``ok``; ``rejected`` matches ``rejected`` and every ``rejected:<reason>``;
        a value ending in ``*`` matches that prefix. ``since_us``/``until_us``: timestamps in microseconds
        (inclusive / exclusive).
        """
        _check_chunk(chunk)
        sa = self._sa
        t = self.table
        conds = []
        if key_id is not None:
            conds.append(t.c.key_id == key_id)
        if since_us is not None:
            conds.append(t.c.ts_us >= int(since_us))
        if until_us is not None:
            conds.append(t.c.ts_us < int(until_us))
        if kind is not None:
            conds.append(t.c.kind == kind)
        if decision is not None:
            esc = decision.rstrip("*").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            if decision.endswith("*"):
                conds.append(t.c.decision.like(esc + "%", escape="\\"))
            else:
                conds.append(sa.or_(t.c.decision == decision, t.c.decision.like(esc + ":%", escape="\\")))
        left = limit
        cursor: int | None = None
        while left is None or left > 0:
            n = chunk if left is None else min(chunk, left)
            q = sa.select(t).where(*conds)
            if cursor is not None:
                q = q.where(t.c.seq < cursor if newest_first else t.c.seq > cursor)
            q = q.order_by(t.c.seq.desc() if newest_first else t.c.seq).limit(n)
            with self._reader.connect() as conn:
                rows = conn.execute(q).mappings().all()
            if not rows:
                return
            for r in rows:
                yield dict(r)
            cursor = int(rows[-1]["seq"])
            if left is not None:
                left -= len(rows)
            if len(rows) < n:
                return

    def head(self) -> tuple[int, str]:
        sa = self._sa
        t = self.table
        with self._reader.connect() as conn:
            row = conn.execute(sa.select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1)).first()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def request_ids(self) -> set[str]:
        sa = self._sa
        t = self.table
        with self._reader.connect() as conn:
            ids = {str(r[0]) for r in conn.execute(sa.select(t.c.request_id).where(t.c.kind == "request"))}
        return ids

    def verify(self, *, expect_head: tuple[int, str] | None = None) -> VerifyResult:
        """Walk the whole chain; report the first edited, deleted or reordered record."""
        expected_seq, prev, n = 1, GENESIS, 0
        for row in self.iter_records():
            seq = int(row["seq"])
            if seq != expected_seq:
                return VerifyResult(False, n, expected_seq - 1, prev, first_bad=seq,
                                    reason=f"record {seq}: records {expected_seq}..{seq - 1} are missing (deleted)")
            if row["prev_hash"] != prev:
                return VerifyResult(False, n, seq - 1, prev, first_bad=seq,
                                    reason=f"record {seq}: does not link to record {seq - 1} "
                                           "(deleted, inserted or reordered)")
            body = {f: row[f] for f in _FIELDS}
            try:
                want: str | None = _chain_hash(self._key, body)
            except (TypeError, ValueError):  # the log never writes content it cannot hash: edited, whatever the hash
                want = None
            if want is None or not hmac.compare_digest(want, str(row["hash"])):
                hint = " -- or this is not the key the log was written with" if n == 0 else ""
                return VerifyResult(False, n, seq - 1, prev, first_bad=seq,
                                    reason=f"record {seq}: content does not match its hash (edited){hint}")
            prev = str(row["hash"])
            expected_seq += 1
            n += 1
        head_seq = expected_seq - 1
        if expect_head is not None:
            es, eh = expect_head
            if head_seq < es:
                return VerifyResult(False, n, head_seq, prev, first_bad=head_seq + 1,
                                    reason=f"records after {head_seq} are missing (the saved head is {es})")
            if head_seq >= es > 0:
                got = self._hash_at(es)
                if got is None or not hmac.compare_digest(got, eh):
                    return VerifyResult(False, n, head_seq, prev, first_bad=es,
                                        reason=f"record {es}: does not match the saved head")
        return VerifyResult(True, n, head_seq, prev)

    def _hash_at(self, seq: int) -> str | None:
        sa = self._sa
        t = self.table
        with self._reader.connect() as conn:
            row = conn.execute(sa.select(t.c.hash).where(t.c.seq == seq)).first()
        return None if row is None else str(row[0])

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
