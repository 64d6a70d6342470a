"""``modelshield private plan | he-infer | mpc-infer``: translators over :mod:`modelshield.private_inference.recipes`
and the engine; the loopback service (``session-key``, ``he-serve``, ``he-client``) is in :mod:`._private_service`."""

from __future__ import annotations

from pathlib import Path

import typer

from modelshield._io import check_outputs
from modelshield.cli._common import write_json
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.cli._private_service import (
    DEGREE_OPTION,
    FORCE_OPTION,
    MODEL_ARGUMENT,
    read_model,
    register_service,
    say_line,
)
from modelshield.errors import UserError

__all__ = ["register"]

_TARGET = typer.Option(None, "--target", "-t", help="Label column (CSV/Parquet).")
_MAX_200 = typer.Option(200, "--max-samples", help="Run at most this many rows.")
_JSON = typer.Option(None, "--json", help="Write the results as JSON here.")
_NO_SECRECY = typer.Option(False, "--allow-no-secrecy", help="Allow --parties 2: mpyc's threshold is then 0, each "
                                                              "share is the secret itself (a functional run only).")


def register(app: typer.Typer, harden: typer.Typer) -> None:
    private = typer.Typer(help="Private inference: homomorphic encryption (CKKS) and multi-party computation.",
                          no_args_is_help=True)

    @private.command("plan")
    @load_options
    def plan_cmd(
        model: str = typer.Argument(..., help="Model: scikit-learn linear/MLP (pipeline with a scaler), "
                                              "PyTorch, TorchScript or ONNX MLP."),
        technique: str = typer.Option("he", "--technique", help="he or mpc."),
        data: Path = typer.Option(None, "--data", "-d", help="Rows to fit activation polynomials and check on."),
        target: str = _TARGET,
        degree: int = DEGREE_OPTION,
        parties: int = typer.Option(3, "--parties", help="MPC parties: 3 (2 hides nothing: needs --allow-no-secrecy)."),
        calibrate: bool = typer.Option(True, "--calibrate/--no-calibrate",
                                       help="Time the HE operations here first (a few seconds; default) or use "
                                            "the fixed cost table."),
        max_samples: int = typer.Option(2000, "--max-samples", help="Use at most this many rows."),
        json_out: Path = typer.Option(None, "--json", help="Write the plan as JSON here."),
        allow_no_secrecy: bool = _NO_SECRECY,
        force: bool = FORCE_OPTION,
        *,
        load: LoadFlags,
    ) -> None:
        """Say whether MODEL can run under HE or MPC, with which parameters, and what it costs."""
        from modelshield.private_inference import plan  # lazy: keeps CLI start-up free of the HE stack
        from modelshield.private_inference.recipes import check_degree, describe_plan

        check_outputs({"--json": json_out}, [model, data, *load.inputs], force)
        check_degree(degree)
        p = read_model(model, data, target, load, max_samples)
        result = plan(p.net, technique, p.X, p.y, degree=degree, parties=parties, calibrate_costs=calibrate,
                      allow_no_secrecy=allow_no_secrecy)
        for line in describe_plan(result):
            say_line(line)
        if json_out is not None:
            write_json(json_out, result, force)

    @private.command("he-infer")
    @load_options
    def he_infer(
        model: str = MODEL_ARGUMENT,
        data: Path = typer.Option(..., "--data", "-d", help="Labelled rows to run encrypted."),
        target: str = _TARGET,
        mode: str = typer.Option("batched", "--mode", help="batched (samples in slots) or per-sample."),
        degree: int = DEGREE_OPTION,
        max_samples: int = _MAX_200,
        json_out: Path = _JSON,
        force: bool = FORCE_OPTION,
        tamper_self_test: bool = typer.Option(False, "--tamper-self-test", hidden=True,
                                              help="Flip one byte of the request in transit (proves the refusal)."),
        *,
        load: LoadFlags,
    ) -> None:
        """Run MODEL on encrypted rows (client and server in this process) and compare with plaintext."""
        from modelshield.private_inference import evaluate_he  # lazy: keeps CLI start-up free of the HE stack
        from modelshield.private_inference.recipes import check_degree, describe_he, tamper_in_transit

        check_outputs({"--json": json_out}, [model, data, *load.inputs], force)
        if mode not in ("batched", "per-sample"):
            raise UserError(f"unknown --mode {mode!r}; expected batched or per-sample")
        check_degree(degree)
        p = read_model(model, data, target, load, max_samples)
        if tamper_self_test and mode != "batched":
            raise UserError("--tamper-self-test applies to the batched mode")
        r = evaluate_he(p.net, p.X, p.y, mode=mode, degree=degree,
                        transit=tamper_in_transit if tamper_self_test else None)
        say_line(describe_he(r))
        if json_out is not None:
            write_json(json_out, r, force)

    @private.command("mpc-infer")
    @load_options
    def mpc_infer(
        model: str = MODEL_ARGUMENT,
        data: Path = typer.Option(..., "--data", "-d", help="Labelled rows to run under MPC."),
        target: str = _TARGET,
        parties: int = typer.Option(3, "--parties", help="Parties, each a separate OS process: 3 (2 hides nothing)."),
        port: int = typer.Option(None, "--port", help="First loopback port (default: free ports)."),
        max_samples: int = _MAX_200,
        timeout: float = typer.Option(300.0, "--timeout", help="Seconds before the parties are stopped."),
        json_out: Path = _JSON,
        allow_no_secrecy: bool = _NO_SECRECY,
        force: bool = FORCE_OPTION,
        *,
        load: LoadFlags,
    ) -> None:
        """Run MODEL under mpyc secret sharing among PARTIES local processes and compare with plaintext."""
        from modelshield.private_inference.mpc import check_parties, evaluate_mpc  # lazy: CLI start-up without numpy
        from modelshield.private_inference.recipes import describe_mpc

        check_outputs({"--json": json_out}, [model, data, *load.inputs], force)
        check_parties(parties, allow_no_secrecy=allow_no_secrecy)  # before the model is loaded
        p = read_model(model, data, target, load, max_samples)
        r = evaluate_mpc(p.net, p.X, p.y, parties=parties, port=port, timeout=timeout,
                         allow_no_secrecy=allow_no_secrecy)
        say_line(describe_mpc(r))
        if json_out is not None:
            write_json(json_out, r, force)

    register_service(private)
    app.add_typer(private, name="private")
