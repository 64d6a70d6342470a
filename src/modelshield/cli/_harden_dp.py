"""``modelshield harden dp``: retrain with DP-SGD (:func:`modelshield.harden.dp.harden_dp`), write the model
and report epsilon and the before/after comparison. Registered by the ``privacy`` area.

Exit codes: 0 written, 2 bad input. Outputs are never overwritten without ``--force``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from modelshield._format import fmt_value
from modelshield._io import check_outputs
from modelshield.cli._common import console, split_list, write_bytes_safely, write_json
from modelshield.cli._loading import LoadFlags, load_options

__all__ = ["FEATURES_OPTION", "register_harden_dp"]

#: ``--features``, shared with ``privacy membership``.
FEATURES_OPTION = typer.Option(None, "--features", help="Feature columns (repeatable or a,b).")


def register_harden_dp(harden: typer.Typer) -> None:
    @harden.command("dp")
    @load_options
    def harden_dp(
        model: str = typer.Argument(..., help="PyTorch model (MLP / any Opacus-supported module), a "
                                               "scikit-learn linear classifier, or a scikit-learn Pipeline of "
                                               "transformers ending in one (e.g. scaler + LogisticRegression; "
                                               "the fitted preprocessing is kept)."),
        train: Path = typer.Option(..., "--train", "--data", "-d", help="Training data."),
        target: str = typer.Option(..., "--target", "-t", help="Label column."),
        out: Path = typer.Option(..., "--out", "--output", "-o",
                                 help="Where to write the DP model: PyTorch (torch.save), "
                                 "ONNX when it ends in .onnx, or joblib for scikit-learn."),
        test: Path | None = typer.Option(None, "--test", help="Held-out data: before/after utility and leakage."),
        features: list[str] | None = FEATURES_OPTION,
        epsilon: float = typer.Option(..., "--epsilon", help="Target epsilon."),
        delta: float | None = typer.Option(None, "--delta", help="Target delta (default min(1e-5, 0.1/n))."),
        epochs: int = typer.Option(30, "--epochs"),
        batch_size: int = typer.Option(64, "--batch-size"),
        lr: float = typer.Option(0.01, "--lr"),
        max_grad_norm: float = typer.Option(1.0, "--max-grad-norm"),
        mode: str = typer.Option("auto", "--mode", help="auto | fast | hooks | ghost (PyTorch)."),
        accountant: str = typer.Option("rdp", "--accountant", help="rdp | pld"),
        seed: int = typer.Option(0, "--seed"),
        json_out: Path | None = typer.Option(None, "--json", help="Write the before/after report as JSON."),
        force: bool = typer.Option(False, "--force", help="Overwrite outputs."),
        *,
        load: LoadFlags,
    ) -> int:
        """Retrain a model with DP-SGD at a target (epsilon, delta); report epsilon and before/after
        accuracy and membership-inference TPR at low FPR."""
        from modelshield.harden.dp import DPConfig  # lazy: torch and the DP stack load on use
        from modelshield.harden.dp import harden_dp as run
        from modelshield.privacy.recipes import load_labelled

        check_outputs({"--out": out, "--json": json_out}, [model, train, test], force)
        m = load.load(model)
        cols = split_list(features)
        tr = load_labelled(train, target, cols, what="--train")
        te = load_labelled(test, target, cols, what="--test") if test is not None else None
        config = DPConfig(epsilon=epsilon, delta=delta, epochs=epochs, batch_size=batch_size, lr=lr,
                          max_grad_norm=max_grad_norm, mode=mode, accountant=accountant, seed=seed,
                          output_format="onnx" if out.suffix.lower() == ".onnx" else "native")
        result = run(m, tr, te, config=config)
        write_bytes_safely(out, result.model_bytes, force)
        r = result.dp
        console.print(f"wrote {out} ({result.model_format}); DP-SGD {r.mode}: epsilon {r.epsilon:.3f} "
                      f"(target {epsilon}), delta {r.delta:g}, noise {r.noise_multiplier:.3f}, "
                      f"{r.steps} steps at q={r.sample_rate:.4f} ({r.accountant} accountant)")
        for row in result.comparison:
            console.print(f"  {row['metric']}: before {fmt_value(row['before'])} -> after {fmt_value(row['after'])}")
        for note in result.notes:  # what the DP guarantee does not cover
            console.print(f"[yellow]note:[/] {escape(note)}")
        if json_out is not None:
            write_json(json_out, result.to_dict(), force)
        return 0


