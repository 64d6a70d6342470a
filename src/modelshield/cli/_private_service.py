"""``modelshield private session-key | he-serve | he-client``: the HE service on loopback TCP, over
:mod:`modelshield.private_inference.recipes` (session key, serving, the client's round trip). Registered by
the ``private`` area (:mod:`.private`), which shares its options, model reading and printing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from modelshield._io import check_outputs, write_bytes_safely
from modelshield.cli._common import console, write_json
from modelshield.cli._loading import LoadFlags, load_options

__all__ = ["DEGREE_OPTION", "FORCE_OPTION", "MODEL_ARGUMENT", "register_service"]

#: Options shared by the ``private`` commands.
MODEL_ARGUMENT = typer.Argument(..., help="Model file (see 'private plan').")
DEGREE_OPTION = typer.Option(None, "--degree", help="Degree of the activation polynomials (1-4).")
FORCE_OPTION = typer.Option(False, "--force", "-f", help="Overwrite an existing --json file.")


def say_line(line: str) -> None:
    """Print one line as it is (no markup)."""
    console.print(line, markup=False)


def read_model(model: str, data: Path | None, target: str | None, load: LoadFlags, max_samples: int) -> Any:
    """Load ``model`` with the loading flags and read its layer chain and up to ``max_samples`` rows of ``data``."""
    from modelshield.private_inference.recipes import prepare  # lazy: keeps CLI start-up free of the HE stack

    return prepare(load.load(model), model, data, target=target, max_samples=max_samples, protected=load.protected)


def register_service(private: typer.Typer) -> None:
    """Add ``session-key``, ``he-serve`` and ``he-client`` to the ``private`` area."""

    @private.command("session-key")
    def session_key(
        out: Path = typer.Argument(..., help="Where to write a new 32-byte session key (mode 0600)."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing file."),
    ) -> None:
        """Make the session key he-serve and he-client authenticate their messages with."""
        from modelshield.private_inference.channel import new_session_key  # lazy: the engine package imports numpy

        write_bytes_safely(out, new_session_key(), force, private=True)
        console.print(f"wrote {out} (give it to the client and the server over a trusted channel)")

    @private.command("he-serve")
    @load_options
    def he_serve(
        model: str = MODEL_ARGUMENT,
        session_key_file: Path = typer.Option(..., "--session-key-file", help="Shared session key "
                                                                               "('private session-key')."),
        port: int = typer.Option(..., "--port", help="Loopback port to listen on."),
        data: Path = typer.Option(None, "--data", "-d", help="Rows to fit activation polynomials and bound values."),
        target: str = typer.Option(None, "--target", "-t", help="Label column of --data."),
        degree: int = DEGREE_OPTION,
        forever: bool = typer.Option(False, "--forever", help="Keep serving (default: answer one client)."),
        *,
        load: LoadFlags,
    ) -> None:
        """Serve MODEL on encrypted inputs (CKKS) on 127.0.0.1:PORT; never receives a secret key."""
        from modelshield.private_inference.recipes import read_session_key, serve_model  # lazy: the HE stack

        key = read_session_key(session_key_file)
        p = read_model(model, data, target, load, 10_000)
        n = serve_model(p.net, key, port, rows=p.X, degree=degree, forever=forever, on_listening=lambda q: say_line(
            f"serving on 127.0.0.1:{port} (N={q.poly_modulus_degree}, coeff {list(q.coeff_mod_bit_sizes)})"))
        console.print(f"served {n} client(s)")

    @private.command("he-client")
    def he_client(
        server: str = typer.Option(..., "--server", help="HOST:PORT of 'private he-serve'."),
        session_key_file: Path = typer.Option(..., "--session-key-file", help="Shared session key."),
        data: Path = typer.Option(..., "--data", "-d", help="Rows to classify (stay encrypted in transit)."),
        target: str = typer.Option(None, "--target", "-t", help="Label column (for accuracy)."),
        max_samples: int = typer.Option(200, "--max-samples", help="Send at most this many rows."),
        json_out: Path = typer.Option(None, "--json", help="Write predictions and figures as JSON here."),
        force: bool = FORCE_OPTION,
    ) -> None:
        """Encrypt rows, have he-serve classify them, decrypt (the secret key stays here)."""
        from modelshield.private_inference.recipes import classify_remote, read_session_key  # lazy: the HE stack

        check_outputs({"--json": json_out}, [data, session_key_file], force)
        out = classify_remote(server, read_session_key(session_key_file), data, target=target,
                              max_samples=max_samples)
        say_line(f"HE client: {out['samples']} rows classified, {out['ms_per_sample']} ms/sample")
        if json_out is not None:
            write_json(json_out, out, force)
