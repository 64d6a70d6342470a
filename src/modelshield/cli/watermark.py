"""``modelshield harden watermark``: embed a trigger-set watermark (a translator over
:func:`modelshield.harden.watermark.harden_watermark`); registered by the ``theft`` area."""

from __future__ import annotations

from pathlib import Path

import typer

from modelshield._io import check_outputs
from modelshield.cli._common import console, print_table
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.cli._theft_inputs import FEATURES_OPT, load_data, load_model
from modelshield.errors import UserError

__all__ = ["register"]


def register(harden: typer.Typer) -> None:
    @harden.command("watermark")
    @load_options
    def harden_watermark(
        model: str = typer.Argument(..., help="PyTorch model file (TorchScript or a saved nn.Module)."),
        data: Path = typer.Option(..., "--data", "-d", help="Training data (CSV, Parquet or NPZ)."),
        target: str | None = typer.Option(None, "--target", "-t", help="Label column (NPZ: the y array)."),
        features: list[str] = FEATURES_OPT,
        out: Path = typer.Option(..., "--out", "--output", "-o", help="Watermarked model file to write (same format)."),
        triggers_out: Path = typer.Option(..., "--triggers-out", help="Secret trigger-set NPZ to write."),
        signing_key: Path = typer.Option(..., "--signing-key",
                                         help="Your private signing key (PEM, from 'modelshield protect keygen "
                                              "KEY --type ed25519'): signs the commitment."),
        commitment_out: Path = typer.Option(..., "--commitment-out",
                                            help="Signed, timestamped commitment (JSON) to write and publish."),
        key_out: Path | None = typer.Option(None, "--key-out",
                                            help="Write a fresh secret watermark key here (mode 0600)."),
        watermark_key: Path | None = typer.Option(None, "--watermark-key",
                                                  help="Use this existing watermark key instead of --key-out."),
        n_triggers: int = typer.Option(100, "--n-triggers", help="Number of trigger inputs."),
        trigger_batch: int = typer.Option(16, "--trigger-batch",
                                          help="Trigger samples mixed into every training batch (more: harder "
                                               "to fine-tune away, see benchmarks/theft)."),
        trigger_jitter: float = typer.Option(0.0, "--trigger-jitter",
                                             help="Gaussian noise (std) added to trigger samples in training, "
                                                  "e.g. 0.5: resists fine-tuning and pruning."),
        epochs: int = typer.Option(20, "--epochs",
                                   help="Passes over the training data; see --max-extra-epochs."),
        max_extra_epochs: int = typer.Option(
            40, "--max-extra-epochs",
            help="If the trigger labels are not all learned after --epochs, keep training for up to this "
                 "many more epochs (0: train exactly --epochs)."),
        alpha: float = typer.Option(1e-6, "--alpha",
                                    help="Significance level the watermarked model must pass in "
                                         "'theft verify-watermark'; if it does not, nothing is written "
                                         "and the command exits 1."),
        lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate (fine-tuning)."),
        reinit: bool = typer.Option(False, "--reinit", help="Re-initialise the weights: train from scratch."),
        robustness: bool = typer.Option(False, "--robustness",
                                        help="Also measure fine-tuning/pruning/distillation robustness."),
        seed: int = typer.Option(0, "--seed"),
        force: bool = typer.Option(False, "--force", help="Overwrite outputs that exist."),
        *,
        load: LoadFlags,
    ) -> None:
        """Embed a trigger-set watermark into a PyTorch classifier while fine-tuning (or training) it."""
        from modelshield.harden.watermark import WatermarkConfig, harden_watermark  # lazy: numpy, torch

        if (key_out is None) == (watermark_key is None):
            raise UserError("give exactly one of --key-out (make a fresh watermark key) or --watermark-key")
        outs = {"--out": out, "--triggers-out": triggers_out, "--commitment-out": commitment_out, "--key-out": key_out}
        check_outputs(outs, [model, data, signing_key, watermark_key], force)
        config = WatermarkConfig(n_triggers=n_triggers, trigger_batch=trigger_batch, trigger_jitter=trigger_jitter,
                                 epochs=epochs, max_extra_epochs=max_extra_epochs, alpha=alpha, lr=lr, reinit=reinit,
                                 robustness=robustness, seed=seed)
        config.validate()  # bad values: exit 2 before any loading
        ds = load_data(data, target, features)
        res = harden_watermark(load_model(model, load, ds.X.shape[1:]), ds, signing_key=signing_key, key=watermark_key,
                               config=config)
        v, extra = res.verdict, res.extra_epochs
        trained = (f"{res.embed.epochs} epochs" if not extra else
                   f"{res.embed.epochs} epochs (--epochs {epochs}, then {extra} more until the trigger "
                   f"labels were learned, at most --max-extra-epochs {max_extra_epochs})")
        console.print(f"trigger agreement {v.agreement:.1%} (p = {v.p_value:.3g}, alpha = {alpha:g}); "
                      f"training accuracy {res.embed.train_accuracy:.1%} after {trained}")
        if not res.owned:
            typer.echo(
                f"error: the watermark did not embed: {v.matches}/{v.n} trigger labels reproduced "
                f"(p = {v.p_value:.3g} is not below --alpha {alpha:g}); nothing was written. "
                "Train longer (--epochs, --max-extra-epochs), use a larger --lr or more --n-triggers.", err=True)
            raise typer.Exit(1)
        res.save(out, triggers_out, commitment_out, key_out, force=force)
        secret = f"{triggers_out}" + (f" and {key_out}" if key_out is not None else "")
        console.print(f"wrote {out}, {secret} (secret: keep them with your signing key) and {commitment_out} "
                      f"(publish it now: its signed timestamp {res.commitment.created} dates your claim); "
                      "watermark verified")
        if (rob := res.robustness) is not None:
            print_table("Watermark robustness (25% of the data held out for testing)",
                        ("attack", "test accuracy", "trigger agreement", "p-value", "verified"),
                        ((r.attack, f"{r.test_accuracy:.1%}", f"{r.trigger_agreement:.1%}", f"{r.p_value:.3g}",
                          "yes" if r.owned else "NO") for r in rob.rows))
            console.print(f"  false-claim rate on {len(rob.independent_agreement)} independent models: "
                          f"{rob.false_claim_rate:.0%}")
