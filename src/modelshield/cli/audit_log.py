"""``modelshield audit-log verify|show|export``: the gateway's tamper-evident audit log, read offline
(translators over :mod:`modelshield.serve.auditlog_tools`); registered by the ``keys`` area.

Exit codes: ``verify`` exits 0 when the log is intact and 3 naming the first bad record (or the missing newest
records); bad input (a missing log or key, a malformed time or head) exits 2.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, TypeVar

import typer

from modelshield.cli.serve import CONFIG_OPT, STATE_OPT, gateway_config

__all__ = ["register"]

F = TypeVar("F", bound=Callable[..., Any])
URL_OPT = typer.Option(None, "--url", help="Database URL (default: from the config / state dir).")
#: the record filters of 'audit-log show' and 'export', defined once: name -> typer option
_FILTERS: dict[str, Any] = {
    "key": typer.Option(None, "--key", help="Only this key id (see 'keys list')."),
    "since": typer.Option(None, "--since", help="From this time on (ISO 8601, UTC unless it says; or Unix seconds)."),
    "until": typer.Option(None, "--until", help="Before this time (ISO 8601 or Unix seconds)."),
    "decision": typer.Option(None, "--decision",
                             help="ok, flagged, rejected (any rejected:<reason>), rejected:rate, ...; 'x*': prefix."),
    "kind": typer.Option(None, "--kind", help="request, auth, alert or admin."),
}


def _filter_options(func: F) -> F:
    """Put the record-filter flags where ``func`` declares ``filters``; it receives one parsed
    :class:`~modelshield.serve.auditlog_tools.RecordFilter` (a bad time exits 2 before any reading)."""
    sig = inspect.signature(func)
    params: list[inspect.Parameter] = []
    for p in sig.parameters.values():
        params += [inspect.Parameter(n, p.POSITIONAL_OR_KEYWORD, default=o, annotation=Optional[str])  # noqa: UP045
                   for n, o in _FILTERS.items()] if p.name == "filters" else [p]

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        from modelshield.serve.auditlog_tools import RecordFilter  # lazy: sqlalchemy only when a command runs

        return func(*args, filters=RecordFilter.parse(**{n: kwargs.pop(n) for n in _FILTERS}), **kwargs)

    command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {k: v for k, v in func.__annotations__.items() if k != "filters"}
    return command  # type: ignore[return-value]


def register(app: typer.Typer) -> None:
    audit_log = typer.Typer(help="Inspect the gateway's tamper-evident audit log.", no_args_is_help=True)
    app.add_typer(audit_log, name="audit-log")

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
        from modelshield.serve.auditlog_tools import require_intact, verify_audit_log  # lazy: sqlalchemy

        check = verify_audit_log(gateway_config(config, state_dir), url=url, key_file=key_file,
                                 expect_head=expect_head or None, expect_head_source="--expect-head",
                                 anchor_file=anchor_file, use_anchor=not no_anchor)
        if as_json:
            typer.echo(json.dumps(check.as_dict()))
        res = require_intact(check).result
        if not as_json:
            typer.echo(f"audit log intact: {res.n_records} records, head {res.head_seq}:{res.head_hash}")
            if check.head is not None:
                typer.echo(f"the head reaches record {check.head[0]} of {check.source}", err=True)
            else:
                typer.echo("warning: no anchored head to compare with: deleting the newest records would not be "
                           "detected (give --expect-head SEQ:HASH, or let the gateway write its anchor)", err=True)

    @audit_log.command("show")
    @_filter_options
    def show(
        config: Path | None = CONFIG_OPT,
        state_dir: Path | None = STATE_OPT,
        url: str | None = URL_OPT,
        filters: Any = None,
        limit: int = typer.Option(50, "--limit", "-n", help="Newest N matching records (0: all)."),
        as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
    ) -> None:
        """The newest matching records as a table (oldest of them first); no database tool needed."""
        # lazy: sqlalchemy only for audit-log commands
        from modelshield.serve.auditlog_tools import TABLE_COLUMNS, public_record, query_records, record_rows

        rows = query_records(gateway_config(config, state_dir), filters, url=url, limit=limit)
        if as_json:
            for r in rows:
                typer.echo(json.dumps(public_record(r)))
        elif not rows:
            typer.echo("no matching records", err=True)
        else:  # plain aligned columns: a value is never split or cropped, whatever the terminal
            table = [TABLE_COLUMNS, *record_rows(rows)]
            widths = [max(len(row[i]) for row in table) for i in range(len(TABLE_COLUMNS))]
            for row in table:
                typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())

    @audit_log.command("export")
    @_filter_options
    def export(
        config: Path | None = CONFIG_OPT,
        state_dir: Path | None = STATE_OPT,
        url: str | None = URL_OPT,
        filters: Any = None,
        output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
        force: bool = typer.Option(False, "--force", "-f", help="Replace --output if it exists."),
    ) -> None:
        """Every matching record as JSON lines (oldest first), with its chain fields."""
        from modelshield.serve.auditlog_tools import export_records  # lazy: sqlalchemy only for audit-log commands

        n = export_records(gateway_config(config, state_dir), filters, url=url, force=force,
                           output=output if output is not None else functools.partial(typer.echo, nl=False))
        if output is not None:
            typer.echo(f"wrote {n} records to {output}", err=True)
