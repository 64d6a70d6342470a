"""``modelshield keys`` and ``modelshield audit-log``: the gateway's API keys and its tamper-evident audit log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import typer

from modelshield._io import AtomicOutput, check_output_path
from modelshield.cli._common import console
from modelshield.cli.serve import CONFIG_OPT, STATE_OPT, gateway_config
from modelshield.errors import IntegrityError, UserError

URL_OPT = typer.Option(None, "--url", help="Database URL (default: from the config / state dir).")
KEYID_OPT = typer.Option(None, "--key", help="Only this key id (see 'keys list').")
SINCE_OPT = typer.Option(None, "--since", help="From this time on (ISO 8601, UTC unless it says; or Unix seconds).")
UNTIL_OPT = typer.Option(None, "--until", help="Before this time (ISO 8601 or Unix seconds).")
DECISION_OPT = typer.Option(None, "--decision",
                            help="ok, flagged, rejected (any rejected:<reason>), rejected:rate, ...; 'x*': prefix.")
KIND_OPT = typer.Option(None, "--kind", help="request, auth, alert or admin.")


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def _time_us(value: str | None, flag: str) -> int | None:
    """``--since``/``--until``: ISO 8601 (naive means UTC) or Unix seconds, as microseconds."""
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
        raise UserError(f"{flag} {value!r}: give an ISO 8601 time (2026-01-31T12:00:00) or Unix seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1e6)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A record as exported: every column, ``output``/``scores`` as JSON values, plus an ISO time."""
    out = dict(row)
    for f in ("output", "scores"):
        if isinstance(out.get(f), str):
            try:
                out[f] = json.loads(out[f])
            except ValueError:
                pass
    out["time"] = datetime.fromtimestamp(int(row["ts_us"]) / 1e6, tz=timezone.utc).isoformat()
    return out


def _open_log(cfg: Any, url: str | None, key_file: Path | None, *, need_key: bool = True) -> Any:
    """The gateway's audit log, read-only use. ``need_key``: verification needs the chain key."""
    from modelshield.serve.auditlog import AuditLog, load_or_create_key

    db = url or cfg.audit_url
    if db.startswith("sqlite:///") and not Path(db.split("///", 1)[1]).is_file():
        from modelshield.errors import InputNotFoundError

        raise InputNotFoundError(f"no audit log at {db.split('///', 1)[1]}")
    kpath = key_file or cfg.audit_key_file
    if need_key:
        key = load_or_create_key(kpath, create=False)
    else:  # reading needs no key; a placeholder one never writes (nothing is appended)
        key = b"\0" * 32
    return AuditLog(db, key, table=cfg.audit.table)


def _emit(lines: Iterator[str], output: Path | None, force: bool) -> int:
    """Echo ``lines`` or write them to ``output`` atomically (:class:`~modelshield._io.AtomicOutput`)."""
    n = 0
    if output is None:
        for line in lines:
            typer.echo(line, nl=False)
            n += 1
        return n
    with AtomicOutput(output, force) as fh:
        for line in lines:
            fh.write(line.encode("utf-8"))
            n += 1
    return n


def register(app: typer.Typer, harden: typer.Typer) -> None:
    keys = typer.Typer(help="Create, list and revoke API keys (stored only as salted hashes).",
                       no_args_is_help=True)
    audit_log = typer.Typer(help="Inspect the gateway's tamper-evident audit log.", no_args_is_help=True)

    @keys.command("create")
    def keys_create(
        name: str = typer.Option(..., "--name", help="Who or what uses the key."),
        scope: list[str] = typer.Option(["predict"], "--scope", "-s", help="predict, monitor or admin (repeat)."),
        rate: float | None = typer.Option(None, "--rate", help="Requests/s for this key (default from config)."),
        daily_rows: int | None = typer.Option(None, "--daily-rows", help="Daily row budget for this key."),
        rows_per_s: float | None = typer.Option(None, "--rows-per-s",
                                                help="Rows/s for this key (default from config)."),
        owner: str | None = typer.Option(None, "--owner", help="Person, team or tenant the key belongs to: keys of "
                                                               "one owner are watched together for extraction."),
        config: Path | None = CONFIG_OPT,
        state_dir: Path | None = STATE_OPT,
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Create a key and print it once (only its hash is stored)."""
        from modelshield.serve.auth import KeyStore

        cfg = gateway_config(config, state_dir)
        for flag, value in (("--rate", rate), ("--daily-rows", daily_rows), ("--rows-per-s", rows_per_s)):
            if value is not None and value <= 0:
                raise UserError(f"{flag} must be positive")
        rec, token = KeyStore(cfg.state_dir).create(name, scope, rate_per_s=rate, daily_rows=daily_rows,
                                                    rows_per_s=rows_per_s, owner=owner)
        if as_json:
            typer.echo(json.dumps({"key": token, **rec.public()}))
            return
        typer.echo(token)
        typer.echo(f"created key {rec.id} ({', '.join(rec.scopes)}) for {rec.name!r}; "
                   "store it now: it cannot be shown again", err=True)

    @keys.command("list")
    def keys_list(config: Path | None = CONFIG_OPT, state_dir: Path | None = STATE_OPT,
                  as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List keys (ids, names, scopes, state); never the secrets."""
        import time

        from modelshield.serve.auth import KeyStore

        cfg = gateway_config(config, state_dir)
        recs = KeyStore(cfg.state_dir).list()
        if as_json:
            typer.echo(json.dumps([r.public() for r in recs]))
            return
        if not recs:
            typer.echo(f"no keys in {cfg.state_dir} (create one with 'modelshield keys create')", err=True)
            return
        from rich.table import Table

        t = Table("id", "name", "scopes", "created", "state")
        for r in recs:
            t.add_row(r.id, r.name, ",".join(r.scopes), time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.created)),
                      "revoked" if r.revoked else "active")
        console.print(t)

    @keys.command("revoke")
    def keys_revoke(key_id: str = typer.Argument(..., help="Key id (see 'keys list')."),
                    config: Path | None = CONFIG_OPT, state_dir: Path | None = STATE_OPT) -> None:
        """Revoke a key; a running gateway refuses it within a second."""
        from modelshield.serve.auth import KeyStore

        cfg = gateway_config(config, state_dir)
        rec = KeyStore(cfg.state_dir).revoke(key_id)
        typer.echo(f"revoked key {rec.id} ({rec.name})", err=True)

    @audit_log.command("verify")
    def verify(
        config: Path | None = CONFIG_OPT,
        state_dir: Path | None = STATE_OPT,
        url: str | None = URL_OPT,
        key_file: Path | None = typer.Option(None, "--key-file", help="Chain key (default <state-dir>/audit.key)."),
        expect_head: str | None = typer.Option(None, "--expect-head",
                                               help="SEQ:HASH saved earlier (instead of the anchor file)."),
        anchor_file: Path | None = typer.Option(None, "--anchor",
                                                help="Anchor file (default <state-dir>/audit.anchor)."),
        no_anchor: bool = typer.Option(False, "--no-anchor", help="Do not compare with the anchored head."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Check every record's hash and link, and the head against the newest anchor; exit 0 when intact,
        3 naming the first bad record (or the missing newest records)."""
        from modelshield.serve.auditlog import read_anchor

        cfg = gateway_config(config, state_dir)
        head = None
        source = ""
        if expect_head:
            s, _, h = expect_head.partition(":")
            if not s.isdigit() or len(h) != 64 or any(c not in "0123456789abcdef" for c in h.lower()):
                raise UserError("--expect-head must be SEQ:HASH (64 hex digits)")
            head, source = (int(s), h.lower()), "--expect-head"
        elif not no_anchor:
            apath = anchor_file or cfg.audit_anchor_file
            if anchor_file is not None and not anchor_file.is_file():
                from modelshield.errors import InputNotFoundError

                raise InputNotFoundError(f"anchor file not found: {anchor_file}")
            anchor = read_anchor(apath, cfg.audit.table)
            if anchor is not None:
                head, source = (anchor.seq, anchor.hash), f"anchor {apath} ({_when(anchor.time)})"
        log = _open_log(cfg, url, key_file)
        try:
            res = log.verify(expect_head=head)
        finally:
            log.close()
        if as_json:
            typer.echo(json.dumps({**res.as_dict(), "checked_head": None if head is None else
                                   {"seq": head[0], "hash": head[1], "source": source}}))
        if not res.ok:
            raise IntegrityError(f"audit log is NOT intact: {res.reason}")
        if not as_json:
            typer.echo(f"audit log intact: {res.n_records} records, head {res.head_seq}:{res.head_hash}")
            if head is not None:
                typer.echo(f"the head reaches record {head[0]} of {source}", err=True)
            else:
                typer.echo("warning: no anchored head to compare with: deleting the newest records would not be "
                           "detected (give --expect-head SEQ:HASH, or let the gateway write its anchor)", err=True)

    @audit_log.command("show")
    def show(
        config: Path | None = CONFIG_OPT,
        state_dir: Path | None = STATE_OPT,
        url: str | None = URL_OPT,
        key: str | None = KEYID_OPT,
        since: str | None = SINCE_OPT,
        until: str | None = UNTIL_OPT,
        decision: str | None = DECISION_OPT,
        kind: str | None = KIND_OPT,
        limit: int = typer.Option(50, "--limit", "-n", help="Newest N matching records (0: all)."),
        as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
    ) -> None:
        """The newest matching records as a table (oldest of them first); no database tool needed."""
        cfg = gateway_config(config, state_dir)
        if limit < 0:
            raise UserError("--limit must be 0 (all) or positive")
        log = _open_log(cfg, url, None, need_key=False)
        try:
            rows = list(log.query(key_id=key, since_us=_time_us(since, "--since"), until_us=_time_us(until, "--until"),
                                  decision=decision, kind=kind, limit=limit or None, newest_first=True))
        finally:
            log.close()
        rows.reverse()
        if as_json:
            for r in rows:
                typer.echo(json.dumps(_public(r)))
            return
        if not rows:
            typer.echo("no matching records", err=True)
            return
        # plain aligned columns: a value is never split or cropped, whatever the terminal (endpoint, scores and
        # the chain fields are in --json / export)
        head = ("seq", "time (UTC)", "kind", "key", "client", "status", "decision", "rows")
        table = [head] + [(str(r["seq"]), _when(r["ts_us"] / 1e6), r["kind"], r["key_id"] or "-", r["client"] or "-",
                           str(r["status"]), r["decision"], str(r["n_rows"])) for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        for row in table:
            typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())

    @audit_log.command("export")
    def export(
        config: Path | None = CONFIG_OPT,
        state_dir: Path | None = STATE_OPT,
        url: str | None = URL_OPT,
        key: str | None = KEYID_OPT,
        since: str | None = SINCE_OPT,
        until: str | None = UNTIL_OPT,
        decision: str | None = DECISION_OPT,
        kind: str | None = KIND_OPT,
        output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
        force: bool = typer.Option(False, "--force", "-f", help="Replace --output if it exists."),
    ) -> None:
        """Every matching record as JSON lines (oldest first), with its chain fields."""
        cfg = gateway_config(config, state_dir)
        s_us, u_us = _time_us(since, "--since"), _time_us(until, "--until")
        if output is not None:
            check_output_path(output, force)  # before the database is opened: nothing is read for nothing
        log = _open_log(cfg, url, None, need_key=False)
        try:
            lines = (json.dumps(_public(r)) + "\n" for r in log.query(
                key_id=key, since_us=s_us, until_us=u_us, decision=decision, kind=kind))
            n = _emit(lines, output, force)
        finally:
            log.close()
        if output is not None:
            typer.echo(f"wrote {n} records to {output}", err=True)

    app.add_typer(keys, name="keys")
    app.add_typer(audit_log, name="audit-log")
