"""CLI area ``attack``: ``modelshield attack`` and ``modelshield harden adversarial``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import typer

from modelshield._format import fmt_value
from modelshield._io import check_outputs
from modelshield.cli._common import console, err_console, parse_shape, split_list, write_bytes_safely, write_json
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.errors import ModelShieldError, UserError

__all__ = ["register"]

_ATTACK_NAMES = ("fgsm", "pgd", "apgd", "apgd-ce", "apgd-dlr", "apgd-t", "square", "hsj")
_AUTO = "auto"


def _fmt4(v: Any) -> str:
    return fmt_value(v, 4)


def _load(model: str, data: Path, *, target: str | None, features: list[str] | None,
          immutable: list[str] | None, load: LoadFlags, input_shape: str | None) -> tuple[Any, Any]:
    from modelshield.data.loaders import check_model_width, load_dataset

    ds = load_dataset(data, target=target, features=split_list(features) or None,
                      immutable=split_list(immutable))
    if ds.y is None:
        raise UserError(f"{data}: no labels; name the label column with --target")
    m = load.load(model, input_shape=parse_shape(input_shape))
    check_model_width(ds, m)  # and labels outside the classes, missing values the model cannot take
    try:  # one row first: a model that cannot run on these rows is a usage error, not a crash mid-attack
        m.predict_proba(np.asarray(ds.X[:1]))
    except ModelShieldError:
        raise
    except Exception as exc:  # TorchScript and ONNX errors span many lines: name the cause, not the trace
        shape = m.input_spec.shape or tuple(np.asarray(ds.X).shape[1:])
        raise UserError(f"the model cannot run on {data}'s rows as shape {tuple(shape)} ({type(exc).__name__}); "
                        "check --input-shape and --features") from None
    return m, ds


def _check_bounds_flag(bounds: str | None) -> None:
    """``--bounds LO,HI`` must parse before any work (one line, exit 2)."""
    if bounds is None:
        return
    from modelshield.attacks.threat import parse_box

    try:
        parse_box(bounds)
    except UserError as exc:
        raise UserError(f"--bounds: {exc}") from None


def register(app: typer.Typer, harden: typer.Typer) -> None:
    @app.command("attack")
    @load_options
    def attack(
        model: str = typer.Argument(..., help="Model: TorchScript, ONNX, PyTorch or scikit-learn file."),
        data: Path = typer.Option(..., "--data", "-d", help="Labelled data to attack: CSV, Parquet or NPZ."),
        target: str = typer.Option(None, "--target", "-t", help="Label column (CSV/Parquet)."),
        attack_name: str = typer.Option(_AUTO, "--attack", "-a", help=f"One of: {', '.join(_ATTACK_NAMES)}; "
                                        "auto: pgd for PyTorch models, else square (scores) or hsj."),
        eps: float = typer.Option(0.1, "--eps", help="Perturbation budget (raw units when every feature has one "
                                                     "box, e.g. [0,1] images; else per-feature std; see --units)."),
        norm: str = typer.Option("inf", "--norm", help="inf or 2."),
        steps: int = typer.Option(20, "--steps", help="Iterations of the white-box attacks."),
        step_size: float = typer.Option(None, "--step-size", help="PGD step (default 2.5*eps/steps)."),
        queries: int = typer.Option(1000, "--queries", help="Query budget per sample (square, hsj)."),
        units: str = typer.Option("auto", "--units", help="eps units: auto, std or raw."),
        bounds: str = typer.Option(None, "--bounds", help="LO,HI: one valid box for every feature (overrides "
                                                          "--bounds-file; default: inferred, see docs)."),
        bounds_file: Path = typer.Option(None, "--bounds-file", help="JSON/YAML schema of per-feature bounds "
                                                                     "(lo, hi, type, mutable)."),
        train: Path = typer.Option(None, "--train", help="Training data: its range widens the inferred bounds."),
        features: list[str] = typer.Option(None, "--features", help="Model input columns, comma list or repeated "
                                                                    "(default: all but the target)."),
        immutable: list[str] = typer.Option(None, "--immutable", help="Features an attacker cannot change "
                                                                      "(comma list or repeated)."),
        max_samples: int = typer.Option(1000, "--max-samples", help="Attack at most this many rows."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        input_shape: str = typer.Option(None, "--input-shape", help="Shape of one sample, e.g. 1,8,8."),
        json_out: Path = typer.Option(None, "--json", help="Write the results as JSON here."),
        adv_out: Path = typer.Option(None, "--save-adv", help="Write the adversarial inputs (NPZ) here."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing output files."),
        *,
        load: LoadFlags,
    ) -> None:
        """Attack a model on labelled data; report clean vs robust accuracy, success rate, queries."""
        from modelshield.attacks import make_attack
        from modelshield.attacks.evaluate import default_attack
        from modelshield.attacks.threat import ThreatModel
        from modelshield.data.loaders import load_dataset

        if attack_name != _AUTO and attack_name not in _ATTACK_NAMES:
            raise UserError(f"unknown --attack {attack_name!r}; expected auto or one of: {', '.join(_ATTACK_NAMES)}")
        if max_samples < 1:
            raise UserError("--max-samples must be >= 1")
        _check_bounds_flag(bounds)
        check_outputs({"--json": json_out, "--save-adv": adv_out}, [model, data, train, bounds_file], force)
        m, ds = _load(model, data, target=target, features=features, immutable=immutable, load=load,
                      input_shape=input_shape)
        train_ds = None
        if train is not None:
            train_ds = load_dataset(train, target=target, features=split_list(features) or None,
                                    immutable=split_list(immutable))
        sample = ds.sample(max_samples, seed=seed)
        threat = ThreatModel.for_dataset(ds, units=units, bounds=bounds, bounds_file=bounds_file, train=train_ds,
                                         norm=norm, eps=eps, steps=steps, step_size=step_size,
                                         query_budget=queries)
        threat.check_eps(ds.n_features, what="--eps")
        chosen = default_attack(m, threat.norm) if attack_name == _AUTO else attack_name
        import torch

        torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
        res = make_attack(chosen, threat, seed=seed).generate(m, sample.X, sample.y)
        summary = res.summary() | {"attack": chosen, **({"attack_chosen_by": "auto"} if attack_name == _AUTO else {}),
                                   "model": model, "data": str(data), "seed": seed,
                                   "threat_model": threat.describe(), "warnings": [m for _, m in threat.warnings]}
        auto = " (auto)" if attack_name == _AUTO else ""
        console.print(f"[bold]{chosen}[/]{auto} on {summary['samples']} samples", highlight=False)
        console.print(f"  threat model: {summary['threat_model']}", highlight=False, markup=False, soft_wrap=True)
        for msg in summary["warnings"]:
            err_console.print(f"warning: {msg}", highlight=False, markup=False, soft_wrap=True)
        for k in ("clean_accuracy", "robust_accuracy", "attack_success_rate", "median_perturbation",
                  "queries_total", "queries_mean", "seconds"):
            console.print(f"  {k:22s} {_fmt4(summary[k])}")
        if json_out is not None:
            write_json(json_out, summary, force)
            console.print(f"wrote {json_out}")
        if adv_out is not None:
            buf = io.BytesIO()
            np.savez_compressed(buf, X=res.x_adv, y=np.asarray(sample.y), success=res.success)
            write_bytes_safely(adv_out, buf.getvalue(), force)
            console.print(f"wrote {adv_out}")

    @harden.command("adversarial")
    @load_options
    def harden_adversarial_cmd(
        model: str = typer.Argument(..., help="PyTorch model: TorchScript file (or a trusted checkpoint)."),
        data: Path = typer.Option(..., "--data", "-d", help="Training data: CSV, Parquet or NPZ."),
        test: Path = typer.Option(None, "--test", help="Held-out data for the before/after report."),
        target: str = typer.Option(None, "--target", "-t", help="Label column (CSV/Parquet)."),
        out: Path = typer.Option(..., "--out", "--output", "-o",
                                help="Where to write the hardened model (TorchScript)."),
        report: Path = typer.Option(None, "--report", "--json", help="Write the before/after report (JSON) here."),
        method: str = typer.Option("pgd", "--method", help="pgd (Madry) or trades."),
        eps: float = typer.Option(0.1, "--eps", help="Training perturbation budget (see --units)."),
        norm: str = typer.Option("inf", "--norm", help="inf or 2."),
        units: str = typer.Option("auto", "--units", help="eps units: auto, std or raw."),
        epochs: int = typer.Option(20, "--epochs", help="Training epochs."),
        batch_size: int = typer.Option(128, "--batch-size", help="Batch size."),
        lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
        beta: float = typer.Option(6.0, "--beta", help="TRADES robustness weight."),
        attack_steps: int = typer.Option(7, "--attack-steps", help="PGD steps per training batch."),
        from_scratch: bool = typer.Option(False, "--from-scratch", help="Re-initialise instead of fine-tuning."),
        bounds: str = typer.Option(None, "--bounds", help="LO,HI: one valid box for every feature (overrides "
                                                          "--bounds-file; default: inferred, see docs)."),
        bounds_file: Path = typer.Option(None, "--bounds-file", help="JSON/YAML schema of per-feature bounds "
                                                                     "(lo/hi, type, mutable by name or index)."),
        features: list[str] = typer.Option(None, "--features", help="Model input columns, comma list or repeated "
                                                                    "(default: all but the target)."),
        immutable: list[str] = typer.Option(None, "--immutable", help="Features an attacker cannot change "
                                                                      "(comma list or repeated)."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        input_shape: str = typer.Option(None, "--input-shape", help="Shape of one sample, e.g. 1,8,8."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing output files."),
        *,
        load: LoadFlags,
    ) -> None:
        """Adversarially train a PyTorch model (PGD or TRADES); write it and a before/after report."""
        from modelshield.data.loaders import check_model_width, load_dataset
        from modelshield.harden.adversarial import (
            METHODS,
            AdversarialTrainingConfig,
            harden_adversarial,
            torchscript_bytes,
        )

        if method not in METHODS:
            raise UserError(f"unknown --method {method!r}; expected pgd or trades")
        _check_bounds_flag(bounds)
        check_outputs({"--out": out, "--report": report}, [model, data, test, bounds_file], force)
        m, train = _load(model, data, target=target, features=features, immutable=immutable, load=load,
                         input_shape=input_shape)
        test_ds = None
        if test is not None:
            test_ds = load_dataset(test, target=target, features=split_list(features) or None,
                                   immutable=split_list(immutable))
            check_model_width(test_ds, m)
        config = AdversarialTrainingConfig(method=method, eps=eps, norm=norm, units=units, epochs=epochs,
                                           batch_size=batch_size, lr=lr, beta=beta, attack_steps=attack_steps,
                                           from_scratch=from_scratch, seed=seed, bounds=bounds, bounds_file=bounds_file)
        module, rep = harden_adversarial(m, train, test_ds, config=config)
        write_bytes_safely(out, torchscript_bytes(module, train.X, m.input_spec.shape), force)
        b, a = rep.before, rep.after
        console.print(f"[bold]harden adversarial[/] ({method}, eps={eps:g}, {epochs} epochs, "
                      f"{rep.train_seconds:.1f} s) evaluated with PGD-20 on {rep.samples} {rep.evaluated_on} rows")
        console.print(f"  threat model     {rep.threat.get('description', '')}", highlight=False, markup=False)
        console.print(f"  clean accuracy   {b['clean_accuracy']:.4f} -> {a['clean_accuracy']:.4f}")
        console.print(f"  robust accuracy  {b['robust_accuracy']:.4f} -> {a['robust_accuracy']:.4f}")
        console.print(f"wrote {out}")
        if report is not None:
            write_json(report, {**rep.to_dict(), "model": model, "output": str(out)}, force)
            console.print(f"wrote {report}")
