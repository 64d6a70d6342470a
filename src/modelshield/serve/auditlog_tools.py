"""Reading the gateway's audit log offline: open it from a gateway config, verify its chain against an
anchored (or given) head, query records by filter and export them as JSON lines.

These are the workflows of ``modelshield audit-log verify|show|export``, over the public API of
:mod:`modelshield.serve.auditlog`; a Python caller gets the same results without the CLI::

    cfg = load_config("serve.yaml")
    check = verify_audit_log(cfg)              # an IntegrityError names the first bad record
    rows = query_records(cfg, RecordFilter.parse(decision="rejected", since="2026-01-31"), limit=20)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelshield._io import AtomicOutput, check_output_path
from modelshield.errors import InputNotFoundError, IntegrityError, UserError
from modelshield.serve.auditlog import AuditLog, VerifyResult, load_or_create_key, read_anchor

if TYPE_CHECKING:  # the config module pulls in pydantic; only its type is needed here
    from modelshield.serve.config import ServeConfig

__all__ = [
    "TABLE_COLUMNS",
    "AuditLogCheck",
    "RecordFilter",
    "export_records",
    "format_time",
    "open_audit_log",
    "parse_head",
    "parse_time_us",
    "public_record",
    "query_records",
    "record_rows",
    "require_intact",
    "verify_audit_log",
]

#: The columns of :func:`record_rows` (what ``audit-log show`` prints).
TABLE_COLUMNS = ("seq", "time (UTC)", "kind", "key", "client", "status", "decision", "rows")


def format_time(t: float) -> str:
    """``YYYY-mm-dd HH:MM:SS`` in UTC of a Unix time in seconds."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def parse_time_us(value: str | None, what: str = "time") -> int | None:
    """A time written as ISO 8601 (naive means UTC) or Unix seconds, in microseconds; ``None`` stays ``None``.
    ``what`` names the value in the error message."""
    if value is None:
        return None
    v = value.strip()
    try:
        return int(float(v) * 1e6)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{what} {value!r}: give an ISO 8601 time (2026-01-31T12:00:00) or Unix seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1e6)


def parse_head(text: str) -> tuple[int, str]:
    """A chain head saved earlier, ``SEQ:HASH`` (64 hex digits), as ``(seq, hash)``."""
    s, _, h = text.partition(":")
    if not s.isdigit() or len(h) != 64 or any(c not in "0123456789abcdef" for c in h.lower()):
        raise UserError("the expected head must be SEQ:HASH (64 hex digits)", cli_hint="fix --expect-head")
    return int(s), h.lower()


@dataclass(frozen=True)
class RecordFilter:
    """Which records to read: a key id, a time window (microseconds; ``until`` exclusive), a decision
    (``rejected`` also matches every ``rejected:<reason>``; ``x*`` is a prefix) and a kind."""

    key_id: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    decision: str | None = None
    kind: str | None = None

    @classmethod
    def parse(cls, *, key: str | None = None, since: str | None = None, until: str | None = None,
              decision: str | None = None, kind: str | None = None) -> RecordFilter:
        """The filter from text values (times as ISO 8601 or Unix seconds, :func:`parse_time_us`)."""
        def when(value: str | None, name: str) -> int | None:
            try:
                return parse_time_us(value, name)
            except UserError as exc:
                raise UserError(str(exc), cli_hint=f"fix --{name}") from None

        return cls(key_id=key, since_us=when(since, "since"), until_us=when(until, "until"), decision=decision,
                   kind=kind)

    def query_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`AuditLog.query`."""
        return {"key_id": self.key_id, "since_us": self.since_us, "until_us": self.until_us,
                "decision": self.decision, "kind": self.kind}


def open_audit_log(cfg: ServeConfig, url: str | None = None, key_file: Path | None = None, *,
                   need_key: bool = True) -> AuditLog:
    """The audit log ``cfg`` names (or the database ``url``), opened for reading: a missing SQLite file is
    an :class:`InputNotFoundError` (nothing is created). ``need_key``: verification needs the chain key
    (``key_file``, default the config's); reading records does not."""
    db = url or cfg.audit_url
    if db.startswith("sqlite:///") and not Path(db.split("///", 1)[1]).is_file():
        raise InputNotFoundError(f"no audit log at {db.split('///', 1)[1]}")
    if need_key:
        key = load_or_create_key(key_file or cfg.audit_key_file, create=False)
    else:  # reading needs no key; a placeholder one never writes (nothing is appended)
        key = b"\0" * 32
    return AuditLog(db, key, table=cfg.audit.table)


@dataclass(frozen=True)
class AuditLogCheck:
    """What :func:`verify_audit_log` checked: the chain walk and the head it was compared with
    (``head``: ``(seq, hash)`` and ``source`` saying where it came from; ``None`` when there was none)."""

    result: VerifyResult
    head: tuple[int, str] | None = None
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        checked = None if self.head is None else {"seq": self.head[0], "hash": self.head[1], "source": self.source}
        return {**self.result.as_dict(), "checked_head": checked}


def verify_audit_log(cfg: ServeConfig, *, url: str | None = None, key_file: Path | None = None,
                     expect_head: str | tuple[int, str] | None = None, expect_head_source: str = "expected head",
                     anchor_file: Path | None = None, use_anchor: bool = True) -> AuditLogCheck:
    """Check every record's hash and link, and the head against ``expect_head`` (``SEQ:HASH`` or a pair,
    described as ``expect_head_source``) or else, with ``use_anchor``, the newest anchor (``anchor_file``,
    default the config's). The check is returned whether or not the log is intact (``result.ok``);
    :func:`require_intact` raises."""
    head: tuple[int, str] | None = None
    source = ""
    if expect_head is not None:
        head = parse_head(expect_head) if isinstance(expect_head, str) else expect_head
        source = expect_head_source
    elif use_anchor:
        if anchor_file is not None and not anchor_file.is_file():
            raise InputNotFoundError(f"anchor file not found: {anchor_file}")
        apath = anchor_file or cfg.audit_anchor_file
        anchor = read_anchor(apath, cfg.audit.table)
        if anchor is not None:
            head, source = (anchor.seq, anchor.hash), f"anchor {apath} ({format_time(anchor.time)})"
    log = open_audit_log(cfg, url, key_file)
    try:
        res = log.verify(expect_head=head)
    finally:
        log.close()
    return AuditLogCheck(result=res, head=head, source=source)


def require_intact(check: AuditLogCheck) -> AuditLogCheck:
    """``check`` itself when the log is intact; :class:`IntegrityError` naming the first bad record otherwise."""
    if not check.result.ok:
        raise IntegrityError(f"audit log is NOT intact: {check.result.reason}")
    return check


def public_record(row: dict[str, Any]) -> dict[str, Any]:
    """A record as exported: every column, ``output``/``scores`` as JSON values, plus an ISO ``time``."""
    out = dict(row)
    for f in ("output", "scores"):
        if isinstance(out.get(f), str):
            try:
                out[f] = json.loads(out[f])
            except ValueError:
                pass
    out["time"] = datetime.fromtimestamp(int(row["ts_us"]) / 1e6, tz=timezone.utc).isoformat()
    return out


def query_records(cfg: ServeConfig, filters: RecordFilter | None = None, *, url: str | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` matching records (all with ``None`` or 0), oldest of them first."""
    if limit is not None and limit < 0:
        raise UserError("the record limit must be 0 (all) or positive", cli_hint="fix --limit")
    log = open_audit_log(cfg, url, need_key=False)
    try:
        rows = list(log.query(**(filters or RecordFilter()).query_kwargs(), limit=limit or None, newest_first=True))
    finally:
        log.close()
    rows.reverse()
    return rows


def record_rows(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """The cells of the records' table (:data:`TABLE_COLUMNS`) as text."""
    return [(str(r["seq"]), format_time(r["ts_us"] / 1e6), r["kind"], r["key_id"] or "-", r["client"] or "-",
             str(r["status"]), r["decision"], str(r["n_rows"])) for r in rows]


def export_records(cfg: ServeConfig, filters: RecordFilter | None = None, *, url: str | None = None,
                   output: Path | Callable[[str], object], force: bool = False) -> int:
    """Write every matching record as a JSON line (oldest first, with its chain fields) to ``output``: a
    file path (written atomically, replaced only with ``force``; checked before the log is opened) or a
    function called with each line. Returns the number of records written."""
    if isinstance(output, (str, Path)):
        check_output_path(output, force)  # nothing is read for nothing
    log = open_audit_log(cfg, url, need_key=False)
    n = 0
    try:
        lines = (json.dumps(public_record(r)) + "\n" for r in log.query(**(filters or RecordFilter()).query_kwargs()))
        if isinstance(output, (str, Path)):
            with AtomicOutput(output, force) as fh:
                for line in lines:
                    fh.write(line.encode("utf-8"))
                    n += 1
        else:
            for line in lines:
                output(line)
                n += 1
    finally:
        log.close()
    return n
