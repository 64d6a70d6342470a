"""CLI area ``attack``: ``modelshield attack`` and ``modelshield harden adversarial`` (translators over
:mod:`modelshield.attacks.recipes` and :func:`modelshield.harden.adversarial.harden_adversarial`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from modelshield._format import fmt_value
from modelshield._io import check_outputs
from modelshield.cli._common import console, err_console, parse_shape, split_list, write_bytes_safely, write_json
from modelshield.cli._loading import LoadFlags, load_options

__all__ = ["register"]

_ATTACK_NAMES = ("fgsm", "pgd", "apgd", "apgd-ce", "apgd-dlr", "apgd-t", "square", "hsj")  # attacks.recipes'
TARGET_OPT = typer.Option(None, "--target", "-t", help="Label column (CSV/Parquet).")
NORM_OPT = typer.Option("inf", "--norm", help="inf or 2.")
UNITS_OPT = typer.Option("auto", "--units", help="eps units: auto, std or raw.")
BOUNDS_OPT = typer.Option(None, "--bounds", help="LO,HI: one valid box for every feature (overrides "
                                                 "--bounds-file; default: inferred, see docs).")
FEATURES_OPT = typer.Option(None, "--features", help="Model input columns, comma list or repeated "
                                                     "(default: all but the target).")
IMMUTABLE_OPT = typer.Option(None, "--immutable", help="Features an attacker cannot change (comma list or repeated).")
SEED_OPT = typer.Option(0, "--seed", help="Random seed.")
SHAPE_OPT = typer.Option(None, "--input-shape", help="Shape of one sample, e.g. 1,8,8.")
FORCE_OPT = typer.Option(False, "--force", "-f", help="Overwrite existing output files.")


def _inputs(model: str, data: Path, extra: Path | None, *, target: str | None, features: list[str] | None,
            immutable: list[str] | None, input_shape: str | None, load: LoadFlags,
            check_extra: bool = False) -> tuple[Any, Any, Any]:
    """The model, the labelled rows at ``data`` and the ``extra`` rows (``check_extra``: the model runs on them)."""
    from modelshield.attacks.recipes import check_model_runs, load_attack_data  # lazy: numpy, torch, pandas

    cols = {"target": target, "features": split_list(features) or None, "immutable": split_list(immutable)}
    ds = load_attack_data(data, **cols)
    m = load.load(model, input_shape=parse_shape(input_shape))
    check_model_runs(m, ds, data)  # and labels outside the classes, missing values the model cannot take
    extra_ds = None if extra is None else load_attack_data(extra, **cols, labelled=False)
    if extra_ds is not None and check_extra:
        check_model_runs(m, extra_ds, extra)
    return m, ds, extra_ds


def register(app: typer.Typer, harden: typer.Typer) -> None:
    @app.command("attack")
    @load_options
    def attack(
        model: str = typer.Argument(..., help="Model: TorchScript, ONNX, PyTorch or scikit-learn file."),
        data: Path = typer.Option(..., "--data", "-d", help="Labelled data to attack: CSV, Parquet or NPZ."),
        target: str = TARGET_OPT,
        attack_name: str = typer.Option("auto", "--attack", "-a", help=f"One of: {', '.join(_ATTACK_NAMES)}; "
                                        "auto: pgd for PyTorch models, else square (scores) or hsj."),
        eps: float = typer.Option(0.1, "--eps", help="Perturbation budget (raw units when every feature has one "
                                                     "box, e.g. [0,1] images; else per-feature std; see --units)."),
        norm: str = NORM_OPT,
        steps: int = typer.Option(20, "--steps", help="Iterations of the white-box attacks."),
        step_size: float = typer.Option(None, "--step-size", help="PGD step (default 2.5*eps/steps)."),
        queries: int = typer.Option(1000, "--queries", help="Query budget per sample (square, hsj)."),
        units: str = UNITS_OPT,
        bounds: str = BOUNDS_OPT,
        bounds_file: Path = typer.Option(None, "--bounds-file", help="JSON/YAML schema of per-feature bounds "
                                                                     "(lo, hi, type, mutable)."),
        train: Path = typer.Option(None, "--train", help="Training data: its range widens the inferred bounds."),
        features: list[str] = FEATURES_OPT,
        immutable: list[str] = IMMUTABLE_OPT,
        max_samples: int = typer.Option(1000, "--max-samples", help="Attack at most this many rows."),
        seed: int = SEED_OPT,
        input_shape: str = SHAPE_OPT,
        json_out: Path = typer.Option(None, "--json", help="Write the results as JSON here."),
        adv_out: Path = typer.Option(None, "--save-adv", help="Write the adversarial inputs (NPZ) here."),
        force: bool = FORCE_OPT,
        *,
        load: LoadFlags,
    ) -> None:
        """Attack a model on labelled data; report clean vs robust accuracy, success rate, queries."""
        from modelshield.attacks.recipes import check_attack_options, run_attack  # lazy: numpy, torch

        check_attack_options(attack_name, bounds, max_samples)
        check_outputs({"--json": json_out, "--save-adv": adv_out}, [model, data, train, bounds_file], force)
        m, ds, train_ds = _inputs(model, data, train, target=target, features=features, immutable=immutable,
                                  input_shape=input_shape, load=load)
        run = run_attack(m, ds, attack=attack_name, eps=eps, norm=norm, steps=steps, step_size=step_size,
                         queries=queries, units=units, bounds=bounds, bounds_file=bounds_file, train=train_ds,
                         max_samples=max_samples, seed=seed)
        summary = run.summary(model=model, data=str(data))
        console.print(f"[bold]{run.attack}[/]{' (auto)' if run.auto else ''} on {summary['samples']} samples",
                      highlight=False)
        console.print(f"  threat model: {summary['threat_model']}", highlight=False, markup=False, soft_wrap=True)
        for msg in summary["warnings"]:
            err_console.print(f"warning: {msg}", highlight=False, markup=False, soft_wrap=True)
        for k in ("clean_accuracy", "robust_accuracy", "attack_success_rate", "median_perturbation",
                  "queries_total", "queries_mean", "seconds"):
            console.print(f"  {k:22s} {fmt_value(summary[k], 4)}")
        for path, write in ((json_out, lambda p: write_json(p, summary, force)),
                            (adv_out, lambda p: write_bytes_safely(p, run.adversarial_npz(), force))):
            if path is not None:
                write(path)
                console.print(f"wrote {path}")

    @harden.command("adversarial")
    @load_options
    def harden_adversarial_cmd(
        model: str = typer.Argument(..., help="PyTorch model: TorchScript file (or a trusted checkpoint)."),
        data: Path = typer.Option(..., "--data", "-d", help="Training data: CSV, Parquet or NPZ."),
        test: Path = typer.Option(None, "--test", help="Held-out data for the before/after report."),
        target: str = TARGET_OPT,
        out: Path = typer.Option(..., "--out", "--output", "-o",
                                help="Where to write the hardened model (TorchScript)."),
        report: Path = typer.Option(None, "--report", "--json", help="Write the before/after report (JSON) here."),
        method: str = typer.Option("pgd", "--method", help="pgd (Madry) or trades."),
        eps: float = typer.Option(0.1, "--eps", help="Training perturbation budget (see --units)."),
        norm: str = NORM_OPT,
        units: str = UNITS_OPT,
        epochs: int = typer.Option(20, "--epochs", help="Training epochs."),
        batch_size: int = typer.Option(128, "--batch-size", help="Batch size."),
        lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
        beta: float = typer.Option(6.0, "--beta", help="TRADES robustness weight."),
        attack_steps: int = typer.Option(7, "--attack-steps", help="PGD steps per training batch."),
        from_scratch: bool = typer.Option(False, "--from-scratch", help="Re-initialise instead of fine-tuning."),
        bounds: str = BOUNDS_OPT,
        bounds_file: Path = typer.Option(None, "--bounds-file", help="JSON/YAML schema of per-feature bounds "
                                                                     "(lo/hi, type, mutable by name or index)."),
        features: list[str] = FEATURES_OPT,
        immutable: list[str] = IMMUTABLE_OPT,
        seed: int = SEED_OPT,
        input_shape: str = SHAPE_OPT,
        force: bool = FORCE_OPT,
        *,
        load: LoadFlags,
    ) -> None:
        """Adversarially train a PyTorch model (PGD or TRADES); write it and a before/after report."""
        from modelshield.harden import adversarial as adv  # lazy: numpy and torch only when the command runs

        config = adv.AdversarialTrainingConfig(method=method, eps=eps, norm=norm, units=units, epochs=epochs,
                                               batch_size=batch_size, lr=lr, beta=beta, attack_steps=attack_steps,
                                               from_scratch=from_scratch, seed=seed, bounds=bounds,
                                               bounds_file=bounds_file).validate()  # exit 2 before any loading
        check_outputs({"--out": out, "--report": report}, [model, data, test, bounds_file], force)
        m, train, test_ds = _inputs(model, data, test, target=target, features=features, immutable=immutable,
                                    input_shape=input_shape, load=load, check_extra=True)
        module, rep = adv.harden_adversarial(m, train, test_ds, config=config)
        write_bytes_safely(out, adv.torchscript_bytes(module, train.X, m.input_spec.shape), force)
        console.print(f"[bold]harden adversarial[/] ({method}, eps={eps:g}, {epochs} epochs, "
                      f"{rep.train_seconds:.1f} s) evaluated with PGD-20 on {rep.samples} {rep.evaluated_on} rows")
        console.print(f"  threat model     {rep.threat.get('description', '')}", highlight=False, markup=False)
        for k in ("clean_accuracy", "robust_accuracy"):
            console.print(f"  {k.replace('_', ' '):17s}{rep.before[k]:.4f} -> {rep.after[k]:.4f}")
        console.print(f"wrote {out}")
        if report is not None:
            write_json(report, {**rep.to_dict(), "model": model, "output": str(out)}, force)
            console.print(f"wrote {report}")
