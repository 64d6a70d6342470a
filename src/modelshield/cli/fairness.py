"""``modelshield harden fairness`` (bias mitigation) and ``modelshield fairness metrics|proxies``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from modelshield._format import fmt_value
from modelshield.cli._common import check_output_path, console, err_console, print_table, split_list, write_json
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.errors import EXIT_OK

__all__ = ["register"]

_SHORT = {
    "demographic_parity_difference": "DP diff", "demographic_parity_ratio": "DP ratio",
    "equalized_odds_difference": "EO diff", "equal_opportunity_difference": "EOpp diff",
    "selection_rate": "selection", "true_positive_rate": "TPR", "false_positive_rate": "FPR",
    "groups_compared": "groups", "mutual_information": "MI (nats)", "normalized_mi": "MI / H",
}


_LEFT = ("method", "group", "attribute", "metric", "feature", "note")


def _print_table(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    print_table(title, [_SHORT.get(c, c) for c in columns], ([fmt_value(r.get(c, "")) for c in columns] for r in rows),
                right=[_SHORT.get(c, c) for c in columns if c not in _LEFT])


def register(app: typer.Typer, harden: typer.Typer) -> None:
    @harden.command("fairness")
    @load_options
    def harden_fairness(
        model: str = typer.Argument(..., help="Fitted scikit-learn classifier (pickle/joblib)."),
        data: Path = typer.Option(..., "--data", "-d", help="Labelled training data (CSV, Parquet or NPZ)."),
        target: str = typer.Option(None, "--target", "-t", help="Label column."),
        sensitive: list[str] = typer.Option(None, "--sensitive", "-s",
                                            help="Sensitive column (repeatable; several: their intersection)."),
        features: list[str] = typer.Option(None, "--features", help="Feature columns, comma-separated, in the "
                                                                    "model's order (may include sensitive ones)."),
        constraint: str = typer.Option("demographic_parity", "--constraint",
                                       help="demographic_parity or equalized_odds."),
        method: list[str] = typer.Option(None, "--method", "-m",
                                         help="reweighing, exponentiated_gradient, threshold_optimizer or all "
                                              "(repeatable; default all)."),
        eval_data: Path = typer.Option(None, "--eval-data", "--test", help="Held-out data for the before/after table "
                                                                 "(default: 30% of --data)."),
        output: Path = typer.Option(..., "--output", "--out", "-o", help="Folder to create: one <method>.joblib per "
                                                                "method and report.json."),
        pos_label: str = typer.Option(None, "--pos-label", help="Favourable class (default: the second class)."),
        eps: float = typer.Option(0.01, "--eps", help="Allowed constraint violation (ExponentiatedGradient)."),
        max_iter: int = typer.Option(50, "--max-iter", help="ExponentiatedGradient iterations."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        force: bool = typer.Option(False, "--force", "-f", help="Write into an existing --output folder."),
        json_only: bool = typer.Option(False, "--json", help="Print the report as JSON instead of a table."),
        *,
        load: LoadFlags,
    ) -> int:
        """Train bias-mitigated versions of MODEL and compare them (fairness and accuracy) with it."""
        from modelshield.harden.fairness import mitigate_to_folder  # lazy: scikit-learn/pandas off CLI start-up

        saved = mitigate_to_folder(model, data, output, sensitive=split_list(sensitive), target=target,
                                   features=split_list(features) or None, constraint=constraint,
                                   methods=split_list(method), eval_data=eval_data, pos_label=pos_label, eps=eps,
                                   max_iter=max_iter, seed=seed, force=force, load=load.load,
                                   note=lambda line: err_console.print(f"[dim]{line}[/]"))
        if json_only:
            typer.echo(json.dumps(saved.document, indent=2, default=str))
            return EXIT_OK
        _print_table(saved.report.table(), ["method", "accuracy", "demographic_parity_difference",
                                            "demographic_parity_ratio", "equalized_odds_difference", "saved"],
                     title=f"before/after on {saved.report.eval_rows} held-out rows ({constraint})")
        for o in saved.report.outcomes:
            if o.note:
                console.print(f"{o.method}: {o.note}")
        for meth, p in saved.files.items():
            console.print(f"wrote {p}  ({meth})")
        console.print(f"wrote {saved.report_path}")
        return EXIT_OK

    group = typer.Typer(help="Fairness metrics and proxy features without a model file.", no_args_is_help=True)

    @group.command("metrics")
    def metrics_cmd(
        data: Path = typer.Argument(..., help="CSV, Parquet or NPZ with labels, decisions and sensitive columns."),
        target: str = typer.Option(..., "--target", "-t", help="Label column."),
        prediction: str = typer.Option(..., "--prediction", "-p", help="Column with the decisions to audit."),
        sensitive: list[str] = typer.Option(..., "--sensitive", "-s", help="Sensitive column (repeatable)."),
        pos_label: str = typer.Option(None, "--pos-label", help="Favourable outcome (default: 1)."),
        bootstrap: int = typer.Option(200, "--bootstrap", help="Bootstrap resamples (0: no intervals)."),
        min_group_size: int = typer.Option(30, "--min-group-size", help="Smaller groups are not compared."),
        no_intersections: bool = typer.Option(False, "--no-intersections", help="Only single attributes."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        json_out: Path = typer.Option(None, "--json", help="Write the tables as JSON here."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite --json."),
    ) -> int:
        """Fairness metrics of recorded decisions (any system's), per group, with intervals."""
        from modelshield.fairness.files import decision_fairness  # lazy: numpy/pandas engines off CLI start-up

        if json_out is not None:
            check_output_path(json_out, force)
        res = decision_fairness(data, target=target, prediction=prediction, sensitive=split_list(sensitive),
                                pos_label=pos_label, n_boot=bootstrap, min_group_size=min_group_size,
                                intersections=not no_intersections, seed=seed)
        _print_table(res.groups, ["attribute", "group", "count", "selection_rate", "true_positive_rate",
                                  "false_positive_rate", "accuracy", "compared"], "per-group rates")
        _print_table(res.headline(), ["attribute", "metric", "value", "lo", "hi", "groups_compared"], "disparities")
        if json_out is not None:
            write_json(json_out, res.to_dict(), force=force)
            console.print(f"wrote {json_out}")
        return EXIT_OK

    @group.command("proxies")
    def proxies_cmd(
        data: Path = typer.Argument(..., help="CSV, Parquet or NPZ with numeric features."),
        sensitive: list[str] = typer.Option(..., "--sensitive", "-s", help="Sensitive column (repeatable)."),
        target: str = typer.Option(None, "--target", "-t", help="Label column (left out of the features)."),
        features: list[str] = typer.Option(None, "--features", help="Feature columns, comma-separated "
                                                                    "(default: all but target and sensitive)."),
        max_rows: int = typer.Option(10000, "--max-rows", help="Rows sampled for the measurement."),
        top: int = typer.Option(8, "--top", help="Features shown per attribute."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
    ) -> int:
        """Features that reveal a sensitive attribute (mutual information, single-feature AUC)."""
        from modelshield.fairness.files import proxies_in_file  # lazy: numpy/pandas engines off CLI start-up

        sens = split_list(sensitive)
        rep = proxies_in_file(data, sensitive=sens, target=target, features=split_list(features) or None,
                              max_rows=max_rows, seed=seed)
        for a in sens:
            rows = [s.to_row() for s in rep.scores if s.attribute == a][:top]
            comb = rep.combined_auc.get(a)
            _print_table(rows, ["feature", "normalized_mi", "mutual_information", "auc", "direct"],
                         f"proxies for {a}" + (f" (all features together: AUC {comb:.3f})" if comb else ""))
        return EXIT_OK

    app.add_typer(group, name="fairness")
