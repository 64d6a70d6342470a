"""CLI for the gateway: ``serve``, ``keys create|list|revoke`` and ``audit-log verify``.

State (API-key hashes, the audit log and its chain key, monitor state) lives in one folder:
``--state-dir``, else ``state_dir`` from ``--config``, else ``$MODELSHIELD_STATE_DIR``, else
``$XDG_STATE_HOME/modelshield`` (``~/.local/state/modelshield``).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from modelshield.cli._common import console
from modelshield.errors import IntegrityError, UserError

__all__ = ["register"]


def _config(config: Path | None, state_dir: Path | None, **overrides: object):  # type: ignore[no-untyped-def]
    from modelshield.serve.config import load_config

    return load_config(config, state_dir=str(state_dir) if state_dir else None, **overrides)


CONFIG_OPT = typer.Option(None, "--config", "-c", help="Gateway config (YAML); see docs/serving.md.")
STATE_OPT = typer.Option(None, "--state-dir", help="Folder holding keys, audit log and monitor state.")


def register(app: typer.Typer, harden: typer.Typer) -> None:
    keys = typer.Typer(help="Create, list and revoke API keys (stored only as salted hashes).",
                       no_args_is_help=True)
    audit_log = typer.Typer(help="Inspect the gateway's tamper-evident audit log.", no_args_is_help=True)

    @app.command("serve")
    def serve(
        model: Path = typer.Argument(..., help="Model file (scikit-learn, PyTorch, ONNX)."),
        config: Path | None = CONFIG_OPT,
        host: str | None = typer.Option(None, "--host", help="Bind address (default 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", "-p", help="Port (default 8000)."),
        state_dir: Path | None = STATE_OPT,
        reference: Path | None = typer.Option(None, "--reference", help="Reference data (CSV/Parquet/NPZ)."),
        trust: bool = typer.Option(False, "--trust", help="Load a pickle-based model you made yourself."),
        tls_cert: Path | None = typer.Option(None, "--tls-cert", help="PEM certificate (enables HTTPS)."),
        tls_key: Path | None = typer.Option(None, "--tls-key", help="PEM private key of --tls-cert."),
        tls_client_ca: Path | None = typer.Option(
            None, "--tls-client-ca", help="Require client certificates signed by this CA (mTLS)."),
        log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
    ) -> None:
        """Serve MODEL behind authentication, limits, monitoring and an audit log."""
        import ssl

        cfg = _config(config, state_dir, host=host, port=port,
                      reference=str(reference) if reference else None)
        if (tls_cert is None) != (tls_key is None):
            raise UserError("give both --tls-cert and --tls-key")
        if tls_client_ca is not None and tls_cert is None:
            raise UserError("--tls-client-ca needs --tls-cert and --tls-key")
        for p in (tls_cert, tls_key, tls_client_ca):
            if p is not None and not p.is_file():
                from modelshield.errors import InputNotFoundError

                raise InputNotFoundError(f"TLS file not found: {p}")
        try:
            import uvicorn
        except ImportError as exc:  # pragma: no cover - optional extra
            from modelshield.errors import MissingExtraError

            raise MissingExtraError("uvicorn", "serve", "modelshield serve") from exc
        from modelshield.models.load import load_model
        from modelshield.serve.app import create_app

        m = load_model(model, trust=trust)
        app_ = create_app(m, cfg)
        if tls_cert is None and cfg.host not in ("127.0.0.1", "::1", "localhost"):
            typer.echo("warning: serving on a non-loopback address without TLS; "
                       "API keys travel in clear text (use --tls-cert/--tls-key)", err=True)
        _check_port_free(cfg.host, cfg.port)
        scheme = "https" if tls_cert else "http"
        typer.echo(f"modelshield gateway on {scheme}://{cfg.host}:{cfg.port} (state in {cfg.state_dir})", err=True)
        uvicorn.run(
            app_, host=cfg.host, port=cfg.port, log_level=log_level, access_log=False,
            ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None,
            ssl_ca_certs=str(tls_client_ca) if tls_client_ca else None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if tls_client_ca else ssl.CERT_NONE,
            server_header=False,
        )

    @keys.command("create")
    def keys_create(
        name: str = typer.Option(..., "--name", help="Who or what uses the key."),
        scope: list[str] = typer.Option(["predict"], "--scope", "-s", help="predict, monitor or admin (repeat)."),
        rate: float | None = typer.Option(None, "--rate", help="Requests/s for this key (default from config)."),
        daily_rows: int | None = typer.Option(None, "--daily-rows", help="Daily row budget for this key."),
        config: Path | None = CONFIG_OPT,
        state_dir: Path | None = STATE_OPT,
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Create a key and print it once (only its hash is stored)."""
        from modelshield.serve.auth import KeyStore

        cfg = _config(config, state_dir)
        if rate is not None and rate <= 0:
            raise UserError("--rate must be positive")
        if daily_rows is not None and daily_rows <= 0:
            raise UserError("--daily-rows must be positive")
        rec, token = KeyStore(cfg.state_dir).create(name, scope, rate_per_s=rate, daily_rows=daily_rows)
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

        cfg = _config(config, state_dir)
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

        cfg = _config(config, state_dir)
        rec = KeyStore(cfg.state_dir).revoke(key_id)
        typer.echo(f"revoked key {rec.id} ({rec.name})", err=True)

    @audit_log.command("verify")
    def verify(
        config: Path | None = CONFIG_OPT,
        state_dir: Path | None = STATE_OPT,
        url: str | None = typer.Option(None, "--url", help="Database URL (default: from the config / state dir)."),
        key_file: Path | None = typer.Option(None, "--key-file", help="Chain key (default <state-dir>/audit.key)."),
        expect_head: str | None = typer.Option(None, "--expect-head",
                                               help="SEQ:HASH saved earlier (detects truncation)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Check every record's hash and link; exit 0 when intact, 3 naming the first bad record."""
        from modelshield.serve.auditlog import AuditLog, load_or_create_key

        cfg = _config(config, state_dir)
        db = url or cfg.audit_url
        if db.startswith("sqlite:///") and not Path(db.split("///", 1)[1]).is_file():
            from modelshield.errors import InputNotFoundError

            raise InputNotFoundError(f"no audit log at {db.split('///', 1)[1]}")
        head = None
        if expect_head:
            s, _, h = expect_head.partition(":")
            if not s.isdigit() or len(h) != 64:
                raise UserError("--expect-head must be SEQ:HASH (64 hex digits)")
            head = (int(s), h)
        key = load_or_create_key(key_file or cfg.audit_key_file, create=False)
        log = AuditLog(db, key, table=cfg.audit.table)
        try:
            res = log.verify(expect_head=head)
        finally:
            log.close()
        if as_json:
            typer.echo(json.dumps(res.as_dict()))
        if not res.ok:
            raise IntegrityError(f"audit log is NOT intact: {res.reason}")
        if not as_json:
            typer.echo(f"audit log intact: {res.n_records} records, head {res.head_seq}:{res.head_hash}")

    app.add_typer(keys, name="keys")
    app.add_typer(audit_log, name="audit-log")


def _check_port_free(host: str, port: int) -> None:
    """Fail with a one-line usage error (exit 2) when the address cannot be bound, before announcing it."""
    import socket

    from modelshield.errors import UserError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
