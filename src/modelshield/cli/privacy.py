"""``modelshield privacy ...`` (scan-pii, anonymize, membership) and ``modelshield harden dp``.

Exit codes: 0 clean, 1 findings (PII found / leakage at or above the policy gate), 2 bad input.
Outputs are never overwritten without ``--force``, and ``anonymize`` refuses to write over its input.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from modelshield._format import fmt_value
from modelshield._io import check_outputs
from modelshield.cli._common import console, print_table, split_list, write_bytes_safely, write_json
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.errors import DataError, OutputError, UserError

__all__ = ["register"]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.exists() and a.samefile(b))
    except OSError:
        return False


def _load_xy(path: Path, target: str, features: list[str] | None, flag: str) -> Any:
    """Labelled, numeric rows (DP training and membership inference need both)."""
    from modelshield.data.loaders import load_dataset
    from modelshield.data.numeric import require_numeric

    ds = load_dataset(path, target=target, features=split_list(features) or None)
    if ds.y is None:
        raise DataError(f"{path}: no labels; pass --target COLUMN")
    require_numeric(ds, f"{flag} {path.name}")
    return ds


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
        from modelshield.privacy.pii import scan_file

        if max_rows is not None and max_rows < 1:
            raise UserError("--max-rows must be at least 1")
        check_outputs({"--json": json_out}, [data], force)
        rep = scan_file(data, quasi=quasi, max_rows=max_rows)
        if rep.rows == 0:  # "no personal data found" would be a claim about data that was never read
            raise DataError(f"{data}: no data rows to scan (an empty table, or not a CSV/Parquet file)")
        from rich.table import Table

        table = Table(title=f"PII in {data.name} ({rep.rows} rows)")
        for col in ("column", "types (cells)", "cells", "confidence"):
            table.add_column(col)
        for c in rep.pii_columns:
            table.add_row(c.column, ", ".join(f"{t} ({n})" for t, n in c.counts.items()), str(c.cells),
                          f"{c.confidence:.2f}")
        if rep.pii_columns:
            console.print(table)
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
        from modelshield.privacy.anonymize import anonymize_frame, load_anonymization_policy
        from modelshield.privacy.pii import read_table

        if _same_file(src, dst):
            raise OutputError("OUT is the input file; anonymize never overwrites its input")
        if dst.suffix.lower() not in (".csv", ".parquet", ".pq"):
            raise UserError(f"OUT {dst} must end in .csv or .parquet (the format it is written in)")
        check_outputs({"OUT": dst, "--json": json_out}, [src, policy, key_file], force)
        pol = load_anonymization_policy(policy)
        key = None
        if key_file is not None:
            if not key_file.is_file():
                raise UserError(f"key file not found: {key_file}")
            key = key_file.read_bytes().strip()
        frame = read_table(src)
        out, rep = anonymize_frame(frame, pol, key=key)
        if dst.suffix.lower() in (".parquet", ".pq"):
            buf = io.BytesIO()
            out.to_parquet(buf, index=False)
            write_bytes_safely(dst, buf.getvalue(), force)
        else:
            write_bytes_safely(dst, out.to_csv(index=False).encode("utf-8"), force)
        console.print(f"wrote {dst} ({rep.rows_out} of {rep.rows_in} rows; "
                      f"{rep.suppressed_rows} suppressed for k-anonymity)")
        if rep.suppressed_fraction > 0.5:
            console.print(f"warning: k: {pol.k} suppressed {rep.suppressed_fraction:.0%} of the rows; lower k "
                          "or generalize/bucket the quasi-identifiers to keep more data")
        if rep.k_before is not None:
            console.print(f"k-anonymity on {', '.join(pol.quasi_identifiers)}: {rep.k_before} -> {rep.k_after}")
        if rep.l_before is not None:
            console.print(f"l-diversity of {pol.sensitive}: {rep.l_before} -> {rep.l_after}")
        if json_out is not None:
            write_json(json_out, {"input": str(src), "output": str(dst), **rep.to_dict()}, force)
        return 0

    # ------------------------------------------------------------------------------------------
    @privacy.command("membership")
    @load_options
    def membership(
        model: str = typer.Argument(..., help="Model file (scikit-learn, PyTorch, ONNX)."),
        train: Path = typer.Option(..., "--train", help="Training data (the members)."),
        test: Path = typer.Option(..., "--test", help="Held-out data the model never saw (non-members)."),
        target: str = typer.Option(..., "--target", help="Label column."),
        features: list[str] | None = typer.Option(None, "--features", help="Feature columns (repeatable or a,b)."),
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
        from modelshield.runner import audit_check

        check_outputs({"--json": json_out}, [model, train, test], force)
        if _same_file(train, test):
            raise DataError("--train and --test are the same file; membership inference needs held-out data")
        m = load.load(model)
        tr, te = _load_xy(train, target, features, "--train"), _load_xy(test, target, features, "--test")
        opts = {k: v for k, v in {"attacks": list(attacks or []) or None, "n_shadows": shadows,
                                  "shadow_budget_s": budget, "shadow_epochs": shadow_epochs, "shadow_lr": shadow_lr,
                                  "show_rows": show_rows or None}.items() if v is not None}
        report = audit_check(m, te, "privacy", train=tr, options=opts, quick=quick, seed=seed, model_path=model,
                             what="membership inference")
        res = report.runs[0].results[0]

        def tpr_cell(value: Any) -> str:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return "n/r"  # not resolved: fewer non-members than 1/FPR (explained below the table)
            return f"{value:.3f}"

        print_table("Membership inference", ("attack", "AUC", "TPR@0.1%FPR", "TPR@1%FPR", "chosen"),
                    ((r["attack"], f"{r['auc']:.3f}", tpr_cell(r["tpr_at_0.1%_fpr"]), tpr_cell(r["tpr_at_1%_fpr"]),
                      f"{r.get('chosen_in_replicates', 0):.0%}") for r in res.tables.get("membership_attacks", [])))
        resolution = {r["fpr"]: r for r in res.tables.get("membership_resolution", [])}
        for level, r in sorted(resolution.items(), reverse=True):
            if not r["resolvable"]:
                console.print(f"TPR@{level:.1%}FPR: not resolved (n/r) — {r['nonmembers']} non-members resolve FPRs "
                              f"down to {r['min_resolvable_fpr']:.2%}; {r['nonmembers_to_resolve']:,} needed",
                              highlight=False)
            else:
                graded = "graded" if r["graded"] else (f"not graded: {r['nonmembers_to_grade']:,} non-members needed "
                                                       "for a lower bound")
                console.print(f"TPR@{level:.1%}FPR (strongest attack): {r['tpr']:.3f} "
                              f"[{r['tpr_lower']:.3f}-{r['tpr_upper']:.3f}] ({graded})", highlight=False)
        exposed = [r["train_row"] for r in res.tables.get("most_exposed_records", [])]
        console.print(f"most exposed training rows (indices): {exposed}")
        for f in res.findings:
            console.print(f"[{f.severity.value}] {f.title}: {f.detail}")
        if json_out is not None:
            write_json(json_out, report.to_dict(), force)
        return 0 if report.passed else 1

    app.add_typer(privacy, name="privacy")

    # ------------------------------------------------------------------------------------------
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
        features: list[str] | None = typer.Option(None, "--features", help="Feature columns (repeatable or a,b)."),
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
        from modelshield.harden.dp import DPConfig
        from modelshield.harden.dp import harden_dp as run

        check_outputs({"--out": out, "--json": json_out}, [model, train, test], force)
        m = load.load(model)
        tr = _load_xy(train, target, features, "--train")
        te = _load_xy(test, target, features, "--test") if test is not None else None
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


