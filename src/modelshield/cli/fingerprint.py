"""``modelshield theft fingerprint create|compare``: boundary fingerprints of models you cannot retrain
(translators over :func:`modelshield.harden.watermark.fingerprint_model` and
:meth:`modelshield.theft.fingerprint.Fingerprint.compare`); registered by the ``theft`` area.

Exit codes: ``compare`` exits 0 when the suspect matches (a derived copy), 1 when it does not, 2 on bad input.
"""

from __future__ import annotations

from pathlib import Path

import typer

from modelshield._io import check_outputs
from modelshield.cli._common import console, write_json
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.cli._theft_inputs import FEATURES_OPT, load_data, load_model
from modelshield.errors import UserError

__all__ = ["register"]


def register(theft: typer.Typer) -> None:
    fp_app = typer.Typer(help="Boundary fingerprints of models you cannot retrain.", no_args_is_help=True)
    theft.add_typer(fp_app, name="fingerprint")

    @fp_app.command("create")
    @load_options
    def fingerprint_create(
        model: str = typer.Argument(..., help="Your model file."),
        data: Path = typer.Option(..., "--data", help="Rows from the model's input distribution."),
        out: Path = typer.Option(..., "--out", help="Fingerprint NPZ to write."),
        target: str | None = typer.Option(None, "--target",
                                          help="Label column (required): trains the independent reference "
                                               "models (scikit-learn, PyTorch) that calibrate the threshold."),
        features: list[str] = FEATURES_OPT,
        points: int = typer.Option(200, "--points", help="Number of fingerprint points."),
        references: int = typer.Option(8, "--references",
                                       help="Independent references to train (other seeds; half on the same rows, "
                                            "half on a random half), at least 5."),
        false_match_rate: float = typer.Option(0.01, "--false-match-rate",
                                               help="Target false-match rate of the threshold (at 95% confidence)."),
        independent_models: list[str] = typer.Option(
            [], "--independent",
            help="A model trained without yours (repeatable): an independent reference, e.g. for frameworks "
                 "whose references cannot be trained here (with --target, added to the trained ones)."),
        seed: int = typer.Option(0, "--seed"),
        force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
        *,
        load: LoadFlags,
    ) -> None:
        """Create a boundary fingerprint of MODEL (query-only), calibrated on independently trained
        reference models (trained here for scikit-learn and PyTorch with --target, or given with --independent)."""
        from modelshield.harden.watermark import FingerprintConfig, fingerprint_model  # lazy: numpy, torch

        check_outputs({"--out": out}, [model, data, *independent_models], force)
        if target is None and not independent_models:
            raise UserError("fingerprint create needs --target (labelled rows train the independent reference models "
                            "that calibrate the threshold) or --independent models; without them any independent "
                            "model may match")
        config = FingerprintConfig(points=points, references=references if target is not None else 0,
                                   false_match_rate=false_match_rate, seed=seed)
        config.validate()  # bad values: exit 2 before any loading
        ds = load_data(data, target, features)
        fp = fingerprint_model(load_model(model, load, ds.X.shape[1:]), ds, config=config, progress=console.print,
                               independent=[load_model(p, load, ds.X.shape[1:]) for p in independent_models])
        fp.save(out, overwrite=force)
        console.print(f"wrote {out}: {fp.describe()}")
        if missed := fp.undetected_derived:
            console.print(f"[yellow]warning[/]: {missed} of {len(fp.meta['calibration']['derived_scores'])} derived "
                          "reference copies score below the threshold: copies modified that much may go undetected")

    @fp_app.command("compare")
    @load_options
    def fingerprint_compare(
        fingerprint: Path = typer.Argument(..., help="Fingerprint NPZ from 'theft fingerprint create'."),
        model: str = typer.Argument(..., help="Suspect model file or http(s):// endpoint."),
        threshold: float | None = typer.Option(None, "--threshold", help="Override the stored threshold."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the result as JSON here."),
        force: bool = typer.Option(False, "--force", help="Overwrite --json if it exists."),
        *,
        load: LoadFlags,
    ) -> None:
        """Score a suspect against a fingerprint: exit 0 if it matches (derived copy), 1 if not."""
        from modelshield.theft.fingerprint import Fingerprint  # lazy: keeps CLI start-up free of numpy

        if threshold is not None and not 0.0 < threshold <= 1.0:
            raise UserError("--threshold must lie in (0, 1]")
        check_outputs({"--json": json_out}, [fingerprint, model], force)
        fp = Fingerprint.load(fingerprint)
        match = fp.compare(load_model(model, load, fp.X.shape[1:]), threshold=threshold)
        verdict = "[bold green]match[/]" if match.derived else "[bold yellow]no match[/]"
        console.print(f"{verdict}: {match.matches}/{match.n} points agree; {match.describe()}")
        if json_out is not None:
            write_json(json_out, {"model": model, "fingerprint": str(fingerprint), **match.to_dict()}, force)
        raise typer.Exit(0 if match.derived else 1)
