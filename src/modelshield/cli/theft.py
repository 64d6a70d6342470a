"""``modelshield theft ...``: extraction risk and watermark verification; the area also registers
``theft fingerprint ...`` (:mod:`modelshield.cli.fingerprint`) and ``harden watermark``
(:mod:`modelshield.cli.watermark`).

Exit codes: ``verify-watermark`` and ``fingerprint compare`` exit 0 when the evidence is found (the
watermark is verified / the suspect matches) and 1 when it is not; bad input exits 2; a watermark
proof that is refused (bad signature, wrong key, trigger set not the committed one) exits 3.
"""

from __future__ import annotations

from pathlib import Path

import typer

from modelshield._io import check_outputs
from modelshield.cli import fingerprint, watermark
from modelshield.cli._common import console, print_table, write_json
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.cli._theft_inputs import FEATURES_OPT, load_data, load_model
from modelshield.errors import UserError

__all__ = ["register"]

def register(app: typer.Typer, harden: typer.Typer) -> None:
    theft = typer.Typer(help="Model theft: extraction risk, watermark verification and fingerprints.",
                        no_args_is_help=True)
    app.add_typer(theft, name="theft")
    fingerprint.register(theft)
    watermark.register(harden)

    @theft.command("verify-watermark")
    def verify_watermark_cmd(
        model: str = typer.Argument(..., help="Suspect model file or http(s):// endpoint."),
        commitment: Path = typer.Option(..., "--commitment",
                                        help="The owner's signed commitment (JSON) from 'harden watermark'."),
        public_key: Path = typer.Option(..., "--public-key", help="The owner's public key (PEM)."),
        watermark_key: Path = typer.Option(..., "--watermark-key", help="The owner's secret watermark key file."),
        triggers: Path | None = typer.Option(None, "--triggers",
                                             help="Trigger-set NPZ; optional (the key re-derives it), must "
                                                  "be the committed one when given."),
        alpha: float = typer.Option(1e-6, "--alpha", help="Significance level of the binomial test."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the verdict as JSON here."),
        force: bool = typer.Option(False, "--force", help="Overwrite --json if it exists."),
        # --public-key here is the watermark owner's key: this command takes --trust but not the loader's
        # signature flags (a suspect model is someone else's file, with no signature of yours)
        trust: bool = typer.Option(False, "--trust", help="Load a pickle-based model you made yourself."),
    ) -> None:
        """Test whether MODEL carries your watermark: exit 0 if verified, 1 if not, 3 if the proof
        (signature, key, trigger set) is refused."""
        from modelshield.theft.watermark import open_claim  # lazy: keeps CLI start-up free of numpy/cryptography

        if not 0.0 < alpha < 1.0:
            raise UserError("--alpha must lie strictly between 0 and 1")
        check_outputs({"--json": json_out}, [model, commitment, public_key, watermark_key, triggers], force)
        claim = open_claim(commitment, public_key, watermark_key, triggers)  # refused (exit 3) before any loading
        v = claim.verify(load_model(model, LoadFlags(trust=trust), claim.input_shape), alpha=alpha)
        verdict = "[bold green]watermark verified[/]" if v.owned else "[bold yellow]watermark not detected[/]"
        console.print(f"commitment signed and opened (committed {v.created}); {verdict}: {v.matches}/{v.n} "
                      f"trigger labels reproduced (agreement {v.agreement:.1%}, chance {v.chance:.1%}), "
                      f"p = {v.p_value:.3g}, alpha = {alpha:g}")
        if json_out is not None:
            write_json(json_out, {"model": model, "commitment": str(commitment), **v.to_dict()}, force)
        raise typer.Exit(0 if v.owned else 1)

    @theft.command("extraction")
    @load_options
    def extraction_cmd(
        model: str = typer.Argument(..., help="Model file or http(s):// endpoint."),
        data: Path = typer.Option(..., "--data", help="Held-out data (CSV, Parquet or NPZ)."),
        target: str | None = typer.Option(None, "--target", help="Label column (enables accuracy)."),
        features: list[str] = FEATURES_OPT,
        budgets: str | None = typer.Option(None, "--budgets", help="Query budgets, e.g. 100,1000,10000."),
        quick: bool = typer.Option(False, "--quick", help="Small budgets (50,200,1000) and short training."),
        exposure: str = typer.Option("unspecified", "--exposure",
                                     help="What the deployment exposes: unspecified, public-unlimited, "
                                          "rate-limited (with --query-budget) or internal; sets the grade."),
        query_budget: int | None = typer.Option(None, "--query-budget",
                                                help="Most queries one attacker can send (rate-limited)."),
        serve_config: Path | None = typer.Option(None, "--serve-config",
                                                 help="The serve YAML the model runs behind: budget and outputs."),
        api_outputs: str | None = typer.Option(None, "--api-outputs",
                                               help="What the API returns: probabilities, top1 or rounded."),
        seed: int = typer.Option(0, "--seed"),
        json_out: Path | None = typer.Option(None, "--json", help="Write the check result as JSON here."),
        force: bool = typer.Option(False, "--force", help="Overwrite --json if it exists."),
        *,
        load: LoadFlags,
    ) -> None:
        """Simulate extraction attacks through the model's API; print fidelity vs. query budget."""
        # lazy: keeps CLI start-up free of the checks and the runner
        from modelshield.checks.theft import extraction_options
        from modelshield.runner import audit_check

        check_outputs({"--json": json_out}, [model, data, serve_config], force)
        opts = extraction_options(budgets=budgets, exposure=exposure, query_budget=query_budget,
                                  serve_config=serve_config, api_outputs=api_outputs)  # bad values: exit 2 now
        ds = load_data(data, target, features)
        res = audit_check(load_model(model, load, ds.X.shape[1:]), ds, "theft", options=opts, seed=seed, quick=quick,
                          what="extraction").runs[0].results[0]
        print_table("Surrogate fidelity (agreement with the model on held-out rows)",
                    ("strategy", "outputs", "queries", "fidelity", "accuracy"),
                    ((r["strategy"], r["output"], f"{r['queries']:,}", f"{r['fidelity']:.1%}",
                      "-" if r["accuracy"] is None else f"{r['accuracy']:.1%}") for r in res.tables["extraction"]),
                    right=("queries", "fidelity", "accuracy"))
        for f in res.findings:
            console.print(f"[bold]{f.severity.value.upper()}[/] {f.title}")
        console.print(res.summary)
        if json_out is not None:
            write_json(json_out, res.to_dict(), force)
