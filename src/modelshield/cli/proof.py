"""``modelshield proof setup|prove|verify``: zero-knowledge proofs of inference (ezkl, the ``proofs`` extra).

Exit codes: 0 done / proof valid; 2 bad input (a model ezkl cannot compile, an input of the wrong shape, an
output that exists without ``--force``); 3 a proof refused (invalid, altered, or bound to another model) or a
setup folder whose files are not the ones its manifest names.
"""

from __future__ import annotations

from pathlib import Path

import typer

from modelshield._io import check_outputs
from modelshield.cli._common import console, err_console, write_json
from modelshield.errors import UserError

__all__ = ["register"]


def _warn_insecure() -> None:
    from modelshield.proofs import INSECURE_SRS_WARNING  # lazy: the proofs engine pulls in numpy

    err_console.print(f"{INSECURE_SRS_WARNING} (--srs)", highlight=False, markup=False, soft_wrap=True)


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def register(app: typer.Typer, harden: typer.Typer) -> None:
    proof = typer.Typer(help="Zero-knowledge proofs that a committed ONNX model produced an output (ezkl).",
                        no_args_is_help=True)
    app.add_typer(proof, name="proof")

    @proof.command("setup")
    def setup_cmd(
        model: Path = typer.Argument(..., help="ONNX model (one input, one output, fixed shapes)."),
        data: Path = typer.Option(..., "--data", help="Calibration rows (NPZ with X, CSV or Parquet)."),
        out: Path = typer.Option(..., "--out", help="Setup folder to create (circuit, keys, manifest.json)."),
        srs: Path | None = typer.Option(None, "--srs",
                                        help="KZG SRS file from a public ceremony; without it an insecure "
                                             "test SRS is generated here."),
        input_visibility: str = typer.Option("private", "--input-visibility",
                                             help="private (default), public or hashed."),
        output_visibility: str = typer.Option("public", "--output-visibility",
                                              help="public (the proof carries the output it vouches for)."),
        weights_visibility: str = typer.Option("fixed", "--weights-visibility",
                                               help="fixed (committed in the verifying key, default) or hashed "
                                                    "(a public Poseidon hash in every proof)."),
        force: bool = typer.Option(False, "--force", help="Replace an existing setup folder."),
    ) -> None:
        """Build the circuit and keys of MODEL in --out, bound to the model's SHA-256 (file and weights)."""
        from modelshield.proofs import Visibility, setup  # lazy: the proofs engine pulls in numpy

        vis = Visibility(input=input_visibility, output=output_visibility, weights=weights_visibility).validate()
        r = setup(model, data, out, srs=srs, visibility=vis, force=force)
        m = r.manifest
        if m.insecure_srs:
            _warn_insecure()
        console.print(f"setup written to {r.path}: 2^{m.logrows} rows, model sha256 {m.model_sha256}, weights "
                      f"sha256 {m.weights_sha256}, vk sha256 {m.vk_sha256}, srs: {m.srs} "
                      f"({sum(r.timings.values()):.1f} s)", soft_wrap=True)

    @proof.command("prove")
    def prove_cmd(
        setup_dir: Path = typer.Argument(..., help="Setup folder from 'modelshield proof setup'."),
        input_path: Path = typer.Option(..., "--input", help="One example as a .npy array (the private input)."),
        out: Path = typer.Option(..., "--out", help="Proof file to write (JSON)."),
        force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    ) -> None:
        """Prove that the setup's model produced its output on --input; the proof carries the output."""
        from modelshield.proofs import load_manifest, prove  # lazy: the proofs engine pulls in numpy

        if load_manifest(setup_dir, ()).insecure_srs:
            _warn_insecure()
        r = prove(setup_dir, input_path, out, force=force)
        console.print(f"proof written to {r.path} ({r.size} bytes, {sum(r.timings.values()):.1f} s): predicted "
                      f"class {r.predicted_class}, output {_fmt(r.output)}", soft_wrap=True)

    @proof.command("verify")
    def verify_cmd(
        proof_path: Path = typer.Argument(..., help="Proof file from 'modelshield proof prove'."),
        setup_dir: Path = typer.Option(..., "--setup", help="The setup folder (settings, vk, srs, manifest)."),
        model_hash: str | None = typer.Option(None, "--model-hash",
                                              help="SHA-256 of the ONNX model you expect the proof to be for."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the verdict as JSON here."),
        force: bool = typer.Option(False, "--force", help="Overwrite --json if it exists."),
    ) -> None:
        """Verify a proof: exit 0 valid, 3 invalid or bound to another model."""
        from modelshield.proofs import load_manifest, verify  # lazy: the proofs engine pulls in numpy

        check_outputs({"--json": json_out}, [proof_path, setup_dir], force)
        if load_manifest(setup_dir, ()).insecure_srs:
            _warn_insecure()
        if model_hash is not None and not model_hash.strip():
            raise UserError("--model-hash is empty")
        v = verify(proof_path, setup_dir, model_hash=model_hash)
        console.print(f"proof valid: model sha256 {v.model_sha256} produced output {_fmt(v.output)} "
                      f"(class {v.predicted_class}); srs: {v.srs}", soft_wrap=True)
        if json_out is not None:
            write_json(json_out, {"proof": str(proof_path), **v.to_dict()}, force)
