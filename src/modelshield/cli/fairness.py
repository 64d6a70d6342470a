"""``modelshield harden fairness`` (bias mitigation) and ``modelshield fairness metrics|proxies``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import typer

from modelshield._format import fmt_value
from modelshield.cli._common import (
    check_output_folder,
    check_output_path,
    console,
    err_console,
    print_table,
    split_list,
    write_bytes_safely,
    write_json,
)
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.errors import EXIT_OK, UserError

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
        import joblib

        from modelshield.data.loaders import check_model_width, load_dataset
        from modelshield.harden.fairness import CONSTRAINTS, mitigate, parse_methods, resolve_pos_label

        sens = split_list(sensitive)
        if not sens:
            raise UserError("give at least one --sensitive column")
        if constraint not in CONSTRAINTS:
            raise UserError(f"unknown --constraint {constraint!r}; choose demographic_parity or equalized_odds")
        methods = parse_methods(split_list(method), what="--method")
        check_output_folder(output, force)
        feats = split_list(features) or None
        train = load_dataset(data, target=target, sensitive=sens, features=feats)
        if train.y is None:
            raise UserError("--target is required: mitigation needs labels")
        held = load_dataset(eval_data, target=target, sensitive=sens, features=feats) if eval_data else None
        m = load.load(model)
        if getattr(m, "framework", "") != "sklearn":
            raise UserError(f"harden fairness needs a scikit-learn classifier; {model} is a {m.framework} model")
        for ds in (train, held):
            if ds is not None:
                check_model_width(ds, m)
        pos = resolve_pos_label(m, pos_label, what="--pos-label")
        err_console.print(f"[dim]mitigating for {' & '.join(sens)} under {constraint}: {', '.join(methods)}[/]")
        report = mitigate(m, train, sensitive=sens, constraint=constraint, methods=methods, eval_data=held,
                          pos_label=pos, eps=eps, max_iter=max_iter, seed=seed)
        output.mkdir(parents=False, exist_ok=True)
        files: dict[str, str] = {}
        for o in report.outcomes:
            if o.model is None:
                continue
            buf = io.BytesIO()
            joblib.dump(o.model, buf)
            p = write_bytes_safely(output / f"{o.method}.joblib", buf.getvalue(), force=force)
            files[o.method] = str(p)
        doc = report.to_dict() | {"model": str(model), "data": str(data), "files": files}
        write_json(output / "report.json", doc, force=force)
        if json_only:
            typer.echo(json.dumps(doc, indent=2, default=str))
        else:
            _print_table(report.table(), ["method", "accuracy", "demographic_parity_difference",
                                          "demographic_parity_ratio", "equalized_odds_difference", "saved"],
                         title=f"before/after on {report.eval_rows} held-out rows ({constraint})")
            for o in report.outcomes:
                if o.note:
                    console.print(f"{o.method}: {o.note}")
            for meth, p in files.items():
                console.print(f"wrote {p}  ({meth})")
            console.print(f"wrote {output / 'report.json'}")
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
        import numpy as np

        from modelshield.data.loaders import load_dataset
        from modelshield.fairness.metrics import encode_groups, fairness_metrics

        if json_out is not None:
            check_output_path(json_out, force)
        sens = split_list(sensitive)
        from modelshield.data.loaders import read_table, unknown_column

        columns = [str(c) for c in read_table(data).columns]
        if prediction not in columns:
            raise unknown_column(prediction, columns, "--prediction")
        ds = load_dataset(data, target=target, sensitive=sens, features=[prediction])
        assert ds.y is not None
        pred = ds.X[:, 0]
        y = ds.y
        pos: Any = None
        if pos_label is not None:
            pos = pos_label
            if np.issubdtype(np.asarray(y).dtype, np.number):
                try:
                    pos = type(np.asarray(y).flat[0].item())(pos_label)
                except ValueError:
                    raise UserError(f"--pos-label {pos_label!r} is not a value of {target}") from None
        if pred.dtype == object:
            pred = pred.astype(str)
            y = np.asarray(y).astype(str)
            pos = None if pos is None else str(pos)
        views = [[a] for a in sens] + ([sens] if len(sens) > 1 and not no_intersections else [])
        groups_rows: list[dict[str, Any]] = []
        disp_rows: list[dict[str, Any]] = []
        for v in views:
            r = fairness_metrics(y, pred, encode_groups(ds.sensitive, v), pos_label=pos, n_boot=bootstrap,
                                 min_group_size=min_group_size, seed=seed)
            groups_rows.extend(r.group_table())
            disp_rows.extend(r.disparity_table())
        _print_table(groups_rows, ["attribute", "group", "count", "selection_rate", "true_positive_rate",
                                   "false_positive_rate", "accuracy", "compared"], "per-group rates")
        shown = [r for r in disp_rows if r["metric"] in ("demographic_parity_difference", "demographic_parity_ratio",
                                                         "equalized_odds_difference", "equal_opportunity_difference")]
        _print_table(shown, ["attribute", "metric", "value", "lo", "hi", "groups_compared"], "disparities")
        if json_out is not None:
            write_json(json_out, {"groups": groups_rows, "disparities": disp_rows}, force=force)
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
        from modelshield.data.loaders import load_dataset
        from modelshield.fairness.proxies import find_proxies

        sens = split_list(sensitive)
        ds = load_dataset(data, target=target, sensitive=sens, features=split_list(features) or None)
        if not ds.is_numeric:
            raise UserError("proxy detection needs numeric features: encode categorical columns as codes or "
                            "choose numeric ones with --features")
        rep = find_proxies(ds.X, ds.sensitive, feature_names=ds.feature_names, feature_types=ds.feature_types,
                           max_rows=max_rows, seed=seed)
        for a in sens:
            rows = [s.to_row() for s in rep.scores if s.attribute == a][:top]
            comb = rep.combined_auc.get(a)
            _print_table(rows, ["feature", "normalized_mi", "mutual_information", "auc", "direct"],
                         f"proxies for {a}" + (f" (all features together: AUC {comb:.3f})" if comb else ""))
        return EXIT_OK

    app.add_typer(group, name="fairness")
