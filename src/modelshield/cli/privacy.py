"""``modelshield privacy ...`` (scan-pii, anonymize, membership) over :mod:`modelshield.privacy.recipes`, and
``modelshield harden dp`` (:mod:`._harden_dp`).

Exit codes: 0 clean, 1 findings (PII found / leakage at or above the policy gate), 2 bad input.
Outputs are never overwritten without ``--force``, and ``anonymize`` refuses to write over its input.
"""

from __future__ import annotations

from pathlib import Path

import typer

from modelshield._io import check_outputs
from modelshield.cli._common import console, print_table, split_list, write_json
from modelshield.cli._harden_dp import FEATURES_OPTION, register_harden_dp
from modelshield.cli._loading import LoadFlags, load_options

__all__ = ["register"]


def register(app: typer.Typer, harden: typer.Typer) -> None:
    privacy = typer.Typer(help="Privacy: personal data in tables, anonymization, membership inference.",
                          no_args_is_help=True)

    # ------------------------------------------------------------------------------------------
    @privacy.command("scan-pii")
    def scan_pii(
        data: Path = typer.Argument(..., help="CSV or Parquet file to scan."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the per-column report as JSON."),
        max_rows: int | None = typer.Option(None, "--max-rows", help="Scan a random sample of rows."),
        quasi: bool = typer.Option(True, "--quasi/--no-quasi", help="Look for quasi-identifier combinations."),
        force: bool = typer.Option(False, "--force", help="Overwrite the JSON output."),
    ) -> int:
        """Find e-mails, phones, cards, IBANs, SSNs, IPs, birth dates and addresses, per column.
        Values are never printed. Exit 1 when personal data is found."""
        from modelshield.privacy.recipes import scan_table  # lazy: keeps CLI start-up free of pandas

        check_outputs({"--json": json_out}, [data], force)
        rep = scan_table(data, quasi=quasi, max_rows=max_rows)
        if rep.pii_columns:
            print_table(f"PII in {data.name} ({rep.rows} rows)", ("column", "types (cells)", "cells", "confidence"),
                        ((c.column, ", ".join(f"{t} ({n})" for t, n in c.counts.items()), c.cells,
                          f"{c.confidence:.2f}") for c in rep.pii_columns))
        else:
            console.print(f"no personal data found in {data.name} ({rep.rows} rows, {len(rep.columns)} columns)")
        for q in rep.quasi_identifiers[:5]:
            console.print(f"quasi-identifier: {' + '.join(q.columns)} singles out {q.unique_rows} rows (k={q.k})")
        if json_out is not None:
            write_json(json_out, {"file": str(data), **rep.to_dict()}, force)
        return 1 if rep.pii_columns else 0

    # ------------------------------------------------------------------------------------------
    @privacy.command("anonymize")
    def anonymize(
        src: Path = typer.Argument(..., help="Input CSV or Parquet file (never modified)."),
        dst: Path = typer.Argument(..., help="Output file (.csv or .parquet)."),
        policy: Path = typer.Option(..., "--policy", help="Anonymization policy YAML."),
        key_file: Path | None = typer.Option(None, "--key-file", help="File holding the pseudonymization key."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the before/after report as JSON."),
        force: bool = typer.Option(False, "--force", help="Overwrite OUT (never the input)."),
    ) -> int:
        """Pseudonymize, mask, generalize, bucket or suppress columns by policy; report k-anonymity
        and l-diversity before and after."""
        from modelshield.privacy.recipes import anonymize_file, anonymized_lines, check_anonymize_paths  # lazy: pandas

        check_anonymize_paths(src, dst)
        check_outputs({"OUT": dst, "--json": json_out}, [src, policy, key_file], force)
        result = anonymize_file(src, dst, policy, key_file=key_file, force=force)
        for line in anonymized_lines(result, dst):
            console.print(line)
        if json_out is not None:
            write_json(json_out, {"input": str(src), "output": str(dst), **result.report.to_dict()}, force)
        return 0

    # ------------------------------------------------------------------------------------------
    @privacy.command("membership")
    @load_options
    def membership(
        model: str = typer.Argument(..., help="Model file (scikit-learn, PyTorch, ONNX)."),
        train: Path = typer.Option(..., "--train", help="Training data (the members)."),
        test: Path = typer.Option(..., "--test", help="Held-out data the model never saw (non-members)."),
        target: str = typer.Option(..., "--target", help="Label column."),
        features: list[str] | None = FEATURES_OPTION,
        attacks: list[str] | None = typer.Option(None, "--attack",
                                                 help="loss, lira_offline, lira_online, rmia (repeatable)."),
        shadows: int | None = typer.Option(None, "--shadows", help="Shadow models (default 16; 4 with --quick)."),
        budget: float | None = typer.Option(None, "--budget", help="Seconds for shadow training."),
        shadow_epochs: int | None = typer.Option(None, "--shadow-epochs", help="PyTorch shadow training epochs."),
        shadow_lr: float | None = typer.Option(None, "--shadow-lr", help="PyTorch shadow learning rate."),
        show_rows: bool = typer.Option(False, "--show-rows", help="Include the most exposed rows' values."),
        quick: bool = typer.Option(False, "--quick", help="Small budgets."),
        seed: int = typer.Option(0, "--seed"),
        json_out: Path | None = typer.Option(None, "--json", help="Write the result as JSON."),
        force: bool = typer.Option(False, "--force", help="Overwrite the JSON output."),
        *,
        load: LoadFlags,
    ) -> int:
        """Membership-inference audit: ROC AUC and TPR at 0.1 % / 1 % FPR, most exposed rows by index."""
        from modelshield.privacy import recipes  # lazy: the audit stack (numpy, sklearn, pandas) loads on use
        from modelshield.runner import audit_check

        check_outputs({"--json": json_out}, [model, train, test], force)
        recipes.check_held_out(train, test)
        m = load.load(model)
        cols = split_list(features)
        tr = recipes.load_labelled(train, target, cols, what="--train")
        te = recipes.load_labelled(test, target, cols, what="--test")
        opts = {k: v for k, v in {"attacks": list(attacks or []) or None, "n_shadows": shadows,
                                  "shadow_budget_s": budget, "shadow_epochs": shadow_epochs, "shadow_lr": shadow_lr,
                                  "show_rows": show_rows or None}.items() if v is not None}
        report = audit_check(m, te, "privacy", train=tr, options=opts, quick=quick, seed=seed, model_path=model,
                             what="membership inference")
        res = report.runs[0].results[0]
        print_table("Membership inference", ("attack", "AUC", "TPR@0.1%FPR", "TPR@1%FPR", "chosen"),
                    recipes.membership_rows(res.tables))
        for line in recipes.resolution_lines(res.tables):
            console.print(line, highlight=False)
        exposed = [r["train_row"] for r in res.tables.get("most_exposed_records", [])]
        console.print(f"most exposed training rows (indices): {exposed}")
        for f in res.findings:
            console.print(f"[{f.severity.value}] {f.title}: {f.detail}")
        if json_out is not None:
            write_json(json_out, report.to_dict(), force)
        return 0 if report.passed else 1

    app.add_typer(privacy, name="privacy")
    register_harden_dp(harden)
