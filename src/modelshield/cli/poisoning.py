"""``modelshield harden backdoor``: drop poisoned training rows and retrain, or fine-prune (thin over
:mod:`modelshield.harden.backdoor`)."""

from __future__ import annotations

from pathlib import Path

import typer

from modelshield._io import check_outputs
from modelshield.cli._common import console, err_console, print_table, write_bytes_safely, write_json
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.errors import EXIT_OK, UserError

__all__ = ["register"]


def register(app: typer.Typer, harden: typer.Typer) -> None:
    @harden.command("backdoor")
    @load_options
    def harden_backdoor(
        model: str = typer.Argument(..., help="scikit-learn (pickle/joblib) or PyTorch/TorchScript classifier."),
        train: Path = typer.Option(..., "--train", help="The training data the model was fitted on (labelled)."),
        data: Path = typer.Option(..., "--data", "-d", help="Clean held-out data (labelled): STRIP calibration, "
                                                            "fine-pruning rows and the accuracy column."),
        target: str = typer.Option(..., "--target", "-t", help="Label column (in --train, --data, --triggered)."),
        output: Path = typer.Option(..., "--output", "--out", "-o", help="Where to write the repaired model "
                                                                         "(joblib or TorchScript)."),
        method: str = typer.Option(None, "--method", "-m", help="retrain (drop flagged rows; default) or "
                                                                 "fine-prune (PyTorch)."),
        triggered: Path = typer.Option(None, "--triggered", help="Rows carrying the suspected trigger, labelled "
                                                                 "with the attacker's target: adds attack success."),
        epochs: int = typer.Option(40, "--epochs", help="PyTorch retraining epochs."),
        lr: float = typer.Option(3e-3, "--lr", help="PyTorch retraining learning rate."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        json_out: Path = typer.Option(None, "--json", help="Also write the report as JSON here."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite --output / --json."),
        *,
        load: LoadFlags,
    ) -> int:
        """Find poisoned training rows (label issues, activation clustering, STRIP), drop them and retrain
        MODEL, or fine-prune it; prints a before/after table."""
        # lazy: numpy, pandas and the detectors only when the command runs
        from modelshield.data.loaders import check_model_width, load_dataset
        from modelshield.harden.backdoor import remove_backdoor

        check_outputs({"--output": output, "--json": json_out}, [model, train, data, triggered], force)
        if epochs < 1 or not (lr > 0):
            raise UserError("--epochs must be at least 1 and --lr positive")
        tr, held = load_dataset(train, target=target), load_dataset(data, target=target)
        trig = load_dataset(triggered, target=target) if triggered is not None else None
        m = load.load(model)
        for ds in (tr, held, trig):
            if ds is not None:
                check_model_width(ds, m)
        err_console.print("[dim]looking for poisoned rows, then removing their effect[/]")
        rep = remove_backdoor(m, tr, held, method=method, triggered=trig, epochs=epochs, lr=lr, seed=seed)
        write_bytes_safely(output, rep.model_bytes(), force)
        if json_out is not None:
            write_json(json_out, rep.to_dict() | {"model": str(model), "output": str(output)}, force=force)
        cols = list(rep.rows[0])
        print_table(f"harden backdoor ({rep.method}): before/after on {len(held)} held-out rows", cols,
                    ([r[c] for c in cols] for r in rep.rows), right=[c for c in cols if c != "model"])
        console.print("flagged: " + ", ".join(f"{k} {v}" for k, v in rep.flagged_by.items())
                      + f"; dropped {len(rep.dropped_rows)} training rows"
                      + (f", relabelled {len(rep.relabelled_rows)}" if rep.relabelled_rows else ""))
        for n in rep.notes:
            console.print(f"[dim]{n}[/]")
        console.print(f"wrote {output}")
        if json_out is not None:
            console.print(f"wrote {json_out}")
        return EXIT_OK
