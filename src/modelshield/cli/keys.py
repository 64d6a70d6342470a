"""``modelshield keys``: the gateway's API keys (a translator over :mod:`modelshield.serve.auth`); the area also
registers ``modelshield audit-log`` (:mod:`modelshield.cli.audit_log`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from modelshield.cli import audit_log
from modelshield.cli._common import print_table
from modelshield.cli.serve import CONFIG_OPT, STATE_OPT, gateway_config
from modelshield.errors import UserError


def register(app: typer.Typer, harden: typer.Typer) -> None:
    keys = typer.Typer(help="Create, list and revoke API keys (stored only as salted hashes).",
                       no_args_is_help=True)

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
        from modelshield.serve.auth import KeyStore  # lazy: the gateway's modules only for these commands

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
        from modelshield.serve.auth import KeyStore  # lazy: the gateway's modules only for these commands

        cfg = gateway_config(config, state_dir)
        recs = KeyStore(cfg.state_dir).list()
        if as_json:
            typer.echo(json.dumps([r.public() for r in recs]))
        elif not recs:
            typer.echo(f"no keys in {cfg.state_dir} (create one with 'modelshield keys create')", err=True)
        else:
            print_table(None, ("id", "name", "scopes", "created", "state"),
                        ((r.id, r.name, ",".join(r.scopes), time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.created)),
                          "revoked" if r.revoked else "active") for r in recs))

    @keys.command("revoke")
    def keys_revoke(key_id: str = typer.Argument(..., help="Key id (see 'keys list')."),
                    config: Path | None = CONFIG_OPT, state_dir: Path | None = STATE_OPT) -> None:
        """Revoke a key; a running gateway refuses it within a second."""
        from modelshield.serve.auth import KeyStore  # lazy: the gateway's modules only for these commands

        rec = KeyStore(gateway_config(config, state_dir).state_dir).revoke(key_id)
        typer.echo(f"revoked key {rec.id} ({rec.name})", err=True)

    app.add_typer(keys, name="keys")
    audit_log.register(app)
