"""``modelshield theft ...`` (extraction risk, watermark verification, fingerprints) and
``modelshield harden watermark``.

Exit codes: ``verify-watermark`` and ``fingerprint compare`` exit 0 when the evidence is found (the
watermark is verified / the suspect matches) and 1 when it is not; bad input exits 2; a watermark
proof that is refused (bad signature, wrong key, trigger set not the committed one) exits 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from modelshield._io import check_outputs
from modelshield.cli._common import console, print_table, split_list, write_bytes_safely, write_json
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.errors import UserError

__all__ = ["register"]


def _load_model(path: str, load: LoadFlags, shape: tuple[int, ...] | None = None) -> Any:
    """Load a model; ``shape`` (one input row) is a fallback for models whose width is unknown.

    The model's own width (e.g. an MLP's first ``Linear`` layer) wins over ``shape``, so that data of
    the wrong width is reported by :func:`~modelshield.data.loaders.check_model_width` instead of
    being forced onto the model.
    """

    if shape and str(path).startswith(("http://", "https://")):
        return load.load(path, input_shape=tuple(shape))
    m = load.load(path)
    if shape and getattr(getattr(m, "input_spec", None), "shape", None) is None:
        m = load.load(path, input_shape=tuple(shape))  # e.g. convolutional models
    return m


def _load_data(path: Path, target: str | None, features: list[str] | None) -> Any:
    from modelshield.data.loaders import load_dataset

    return load_dataset(path, target=target, features=features or None)


def _parse_budgets(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        out = [int(t.replace("_", "")) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UserError(f"bad --budgets {text!r}: expected integers like 100,1000,10000") from None
    if not out or min(out) < 1:
        raise UserError("--budgets must be positive integers")
    return out


def _print_robustness(rob: Any) -> None:
    print_table("Watermark robustness (25% of the data held out for testing)",
                ("attack", "test accuracy", "trigger agreement", "p-value", "verified"),
                ((r.attack, f"{r.test_accuracy:.1%}", f"{r.trigger_agreement:.1%}", f"{r.p_value:.3g}",
                  "yes" if r.owned else "NO") for r in rob.rows))
    console.print(f"  false-claim rate on {len(rob.independent_agreement)} independent models: "
                  f"{rob.false_claim_rate:.0%}")


def register(app: typer.Typer, harden: typer.Typer) -> None:
    theft = typer.Typer(help="Model theft: extraction risk, watermark verification and fingerprints.",
                        no_args_is_help=True)
    fp_app = typer.Typer(help="Boundary fingerprints of models you cannot retrain.", no_args_is_help=True)
    theft.add_typer(fp_app, name="fingerprint")
    app.add_typer(theft, name="theft")

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
        from modelshield.protect.keys import load_key_file, load_public_key
        from modelshield.theft.watermark import Commitment, TriggerSet, verify_watermark

        if not 0.0 < alpha < 1.0:
            raise UserError("--alpha must lie strictly between 0 and 1")
        inputs: list[Any] = [model, commitment, public_key, watermark_key]
        check_outputs({"--json": json_out}, [*inputs, *([triggers] if triggers else [])], force)
        com = Commitment.load(commitment)
        pub = load_public_key(public_key)
        key = load_key_file(watermark_key)
        ts = TriggerSet.load(triggers) if triggers is not None else None
        derived = com.open(pub, key, ts)  # refuses (exit 3) before the model is even loaded
        m = _load_model(model, LoadFlags(trust=trust), derived.X.shape[1:])
        v = verify_watermark(m, commitment=com, public_key=pub, key=key, triggers=ts, alpha=alpha)
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
        features: list[str] = typer.Option([], "--features", help="Model input columns (comma list or repeated)."),
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
        from modelshield.checks.theft import TheftCheck
        from modelshield.runner import audit_check

        check_outputs({"--json": json_out}, [model, data, *([serve_config] if serve_config else [])], force)
        opts = {k: v for k, v in {"budgets": _parse_budgets(budgets), "exposure": exposure,
                                  "query_budget": query_budget, "serve_config": str(serve_config) if serve_config
                                  else None, "api_outputs": api_outputs}.items() if v is not None}
        TheftCheck.from_options(opts)  # bad values: exit 2 now, before any loading
        ds = _load_data(data, target, split_list(features))
        res = audit_check(_load_model(model, load, ds.X.shape[1:]), ds, "theft", options=opts, seed=seed, quick=quick,
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

    @fp_app.command("create")
    @load_options
    def fingerprint_create(
        model: str = typer.Argument(..., help="Your model file."),
        data: Path = typer.Option(..., "--data", help="Rows from the model's input distribution."),
        out: Path = typer.Option(..., "--out", help="Fingerprint NPZ to write."),
        target: str | None = typer.Option(None, "--target",
                                          help="Label column (required): trains the independent reference "
                                               "models (scikit-learn, PyTorch) that calibrate the threshold."),
        features: list[str] = typer.Option([], "--features", help="Model input columns (comma list or repeated)."),
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
        from modelshield.harden.watermark import FingerprintConfig, fingerprint_model

        check_outputs({"--out": out}, [model, data, *independent_models], force)
        if target is None and not independent_models:
            raise UserError("fingerprint create needs --target (labelled rows train the independent reference models "
                            "that calibrate the threshold) or --independent models; without them any independent "
                            "model may match")
        config = FingerprintConfig(points=points, references=references if target is not None else 0,
                                   false_match_rate=false_match_rate, seed=seed)
        config.validate()  # bad values: exit 2 before any loading
        ds = _load_data(data, target, split_list(features))
        m = _load_model(model, load, ds.X.shape[1:])
        indep = [_load_model(p, load, ds.X.shape[1:]) for p in independent_models]
        fp = fingerprint_model(m, ds, independent=indep, config=config, progress=console.print)
        write_bytes_safely(out, fp.to_bytes(), force)
        cal = fp.meta["calibration"]
        ind, der = cal["independent_scores"], cal["derived_scores"]
        console.print(
            f"wrote {out}: {len(fp)} boundary points, threshold {fp.threshold:.2f}; {len(ind)} independent "
            f"references scored {min(ind):.2f}-{max(ind):.2f}, {len(der)} derived copies (extracted through the "
            f"API, fine-tuned, pruned) {min(der):.2f}-{max(der):.2f}; false-match rate <= "
            f"{cal['false_match_rate']:.1e} at {cal['confidence']:.0%} confidence (normal model of the "
            "references' scores)")
        if cal["derived_detected"] is not None and cal["derived_detected"] < len(der):
            console.print(f"[yellow]warning[/]: {len(der) - cal['derived_detected']} of {len(der)} derived reference "
                          "copies score below the threshold: copies modified that much may go undetected")

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
        from modelshield.theft.fingerprint import Fingerprint

        if threshold is not None and not 0.0 < threshold <= 1.0:
            raise UserError("--threshold must lie in (0, 1]")
        check_outputs({"--json": json_out}, [fingerprint, model], force)
        fp = Fingerprint.load(fingerprint)
        match = fp.compare(_load_model(model, load, fp.X.shape[1:]), threshold=threshold)
        verdict = "[bold green]match[/]" if match.derived else "[bold yellow]no match[/]"
        console.print(f"{verdict}: {match.matches}/{match.n} points agree; {match.describe()}")
        if json_out is not None:
            write_json(json_out, {"model": model, "fingerprint": str(fingerprint), **match.to_dict()}, force)
        raise typer.Exit(0 if match.derived else 1)

    @harden.command("watermark")
    @load_options
    def harden_watermark(
        model: str = typer.Argument(..., help="PyTorch model file (TorchScript or a saved nn.Module)."),
        data: Path = typer.Option(..., "--data", "-d", help="Training data (CSV, Parquet or NPZ)."),
        target: str | None = typer.Option(None, "--target", "-t", help="Label column (NPZ: the y array)."),
        features: list[str] = typer.Option([], "--features", help="Model input columns (comma list or repeated)."),
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
        from modelshield.harden.watermark import WatermarkConfig, harden_watermark
        from modelshield.protect.keys import key_to_text, load_key_file, load_private_key

        if (key_out is None) == (watermark_key is None):
            raise UserError("give exactly one of --key-out (make a fresh watermark key) or --watermark-key")
        outs = {"--out": out, "--triggers-out": triggers_out, "--commitment-out": commitment_out}
        if key_out is not None:
            outs["--key-out"] = key_out
        check_outputs(outs, [model, data, signing_key, *([watermark_key] if watermark_key else [])], force)
        config = WatermarkConfig(n_triggers=n_triggers, trigger_batch=trigger_batch, trigger_jitter=trigger_jitter,
                                 epochs=epochs, max_extra_epochs=max_extra_epochs, alpha=alpha, lr=lr, reinit=reinit,
                                 robustness=robustness, seed=seed)
        config.validate()  # bad values: exit 2 before any loading
        sk = load_private_key(signing_key)
        wm_key = load_key_file(watermark_key) if watermark_key is not None else None
        ds = _load_data(data, target, split_list(features))
        m = _load_model(model, load, ds.X.shape[1:])
        res = harden_watermark(m, ds, signing_key=sk, key=wm_key, config=config)
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
        write_bytes_safely(out, res.model_bytes, force)
        write_bytes_safely(triggers_out, res.triggers.to_bytes(), force, private=True)  # the trigger set is a secret
        if key_out is not None:
            write_bytes_safely(key_out, (key_to_text(res.key) + "\n").encode("ascii"), force, private=True)
        write_bytes_safely(commitment_out, res.commitment.to_bytes(), force)
        secret = f"{triggers_out}" + (f" and {key_out}" if key_out is not None else "")
        console.print(f"wrote {out}, {secret} (secret: keep them with your signing key) and {commitment_out} "
                      f"(publish it now: its signed timestamp {res.commitment.created} dates your claim); "
                      "watermark verified")
        if res.robustness is not None:
            _print_robustness(res.robustness)
