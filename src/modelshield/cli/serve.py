"""CLI for the gateway: ``serve`` (the key and audit-log commands are in :mod:`modelshield.cli.keys`).

State (API-key hashes, the audit log and its chain key, monitor state) lives in one folder:
``--state-dir``, else ``state_dir`` from ``--config``, else ``$MODELSHIELD_STATE_DIR``, else
``$XDG_STATE_HOME/modelshield`` (``~/.local/state/modelshield``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from modelshield.cli._loading import LoadFlags, load_options
from modelshield.errors import InputNotFoundError, MissingExtraError, UserError

__all__ = ["register"]


def gateway_config(config: Path | None, state_dir: Path | None, **overrides: object):  # type: ignore[no-untyped-def]
    """The gateway's config from ``--config``/``--state-dir`` (the key and audit-log commands share it)."""
    from modelshield.serve.config import load_config  # lazy: pydantic and yaml only for gateway commands

    return load_config(config, state_dir=str(state_dir) if state_dir else None, **overrides)


CONFIG_OPT = typer.Option(None, "--config", "-c", help="Gateway config (YAML); see docs/serving.md.")
STATE_OPT = typer.Option(None, "--state-dir", help="Folder holding keys, audit log and monitor state.")


def register(app: typer.Typer, harden: typer.Typer) -> None:
    @app.command("serve")
    @load_options
    def serve(
        model: Path = typer.Argument(..., help="Model file (scikit-learn, PyTorch, ONNX); an encrypted "
                                               "container with --key-file/--key-env/--passphrase-env."),
        config: Path | None = CONFIG_OPT,
        host: str | None = typer.Option(None, "--host", help="Bind address (default 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", "-p", help="Port (default 8000)."),
        state_dir: Path | None = STATE_OPT,
        reference: Path | None = typer.Option(None, "--reference", help="Reference data (CSV/Parquet/NPZ)."),
        tls_cert: Path | None = typer.Option(None, "--tls-cert", help="PEM certificate (enables HTTPS)."),
        tls_key: Path | None = typer.Option(None, "--tls-key", help="PEM private key of --tls-cert."),
        tls_client_ca: Path | None = typer.Option(
            None, "--tls-client-ca", help="Require client certificates signed by this CA (mTLS)."),
        log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
        dev: bool = typer.Option(False, "--dev", help="Development: also serve /docs and /openapi.json (public)."),
        *,
        load: LoadFlags,
    ) -> None:
        """Serve MODEL behind authentication, limits, monitoring and an audit log (the model is loaded
        through the secure loader: verified with --public-key, decrypted with a key, scanned)."""
        import ssl  # lazy: ssl, uvicorn and FastAPI only when serving (CLI start-up)

        cfg = gateway_config(config, state_dir, host=host, port=port,
                      reference=str(reference) if reference else None, api_docs=True if dev else None)
        if (tls_cert is None) != (tls_key is None):
            raise UserError("give both --tls-cert and --tls-key")
        if tls_client_ca is not None and tls_cert is None:
            raise UserError("--tls-client-ca needs --tls-cert and --tls-key")
        for p in (tls_cert, tls_key, tls_client_ca):
            if p is not None and not p.is_file():
                raise InputNotFoundError(f"TLS file not found: {p}")
        try:
            import uvicorn
        except ImportError as exc:  # pragma: no cover - optional extra
            raise MissingExtraError("uvicorn", "serve", "modelshield serve") from exc
        from modelshield.serve.app import create_app, uvicorn_options

        m = load.load(model)
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
            server_header=False, **uvicorn_options(cfg),
        )


def _check_port_free(host: str, port: int) -> None:
    """Fail with a one-line usage error (exit 2) when the address cannot be bound, before announcing it."""
    import socket  # lazy: only `serve` binds a socket (CLI start-up)

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
