"""``modelshield fl simulate``: federated training under attack with secure aggregation, robust aggregation
and client-level DP (thin over :mod:`modelshield.federated.recipes`).

Exit codes: 0 done; 2 bad input (every constraint is checked before the first round: a client left without
data, a SecAgg group larger than the federation, sigma < 0, an aggregator that cannot tolerate the declared
attackers, a missing ``fl`` extra for ``--backend flower``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from modelshield._io import check_outputs
from modelshield.cli._common import console, err_console, print_table, write_json, write_text_safely
from modelshield.errors import UserError

__all__ = ["register"]

_DEFAULT_GROUP = 5


def register(app: typer.Typer, harden: typer.Typer) -> None:
    fl = typer.Typer(help="Federated learning: simulate training under attack with secure aggregation, robust "
                          "aggregation and client-level differential privacy.", no_args_is_help=True)
    app.add_typer(fl, name="fl")

    @fl.command("simulate")
    def simulate_cmd(
        data: Path = typer.Option(..., "--data", "-d", help="Labelled data (CSV, Parquet or NPZ); 20% is held out."),
        target: str = typer.Option(..., "--target", "-t", help="Label column."),
        json_out: Path = typer.Option(..., "--json", help="Write the run (rounds, final accuracy, epsilon) here."),
        html_out: Path | None = typer.Option(None, "--html", help="Also write an HTML section with the figures."),
        model: str = typer.Option("logistic", "--model", help="logistic (softmax regression) or mlp."),
        clients: int = typer.Option(20, "--clients", help="Number of simulated clients N."),
        rounds: int = typer.Option(20, "--rounds", help="Number of rounds R."),
        fraction: float = typer.Option(1.0, "--fraction", help="Per-round participation probability q."),
        partition: str = typer.Option("iid", "--partition", help="iid or dirichlet:ALPHA (non-IID labels)."),
        aggregator: str = typer.Option("fedavg", "--aggregator",
                                       help="fedavg, median, trimmed-mean:BETA, krum, multikrum or bulyan."),
        secagg: bool = typer.Option(False, "--secagg",
                                    help=f"Secure aggregation in groups of {_DEFAULT_GROUP} (see --secagg-group)."),
        secagg_group: int | None = typer.Option(None, "--secagg-group",
                                                help="Secure aggregation in groups of K clients (implies --secagg)."),
        secagg_dropouts: int = typer.Option(0, "--secagg-dropouts", help="Dropouts t tolerated per group (t < K/2)."),
        dp_noise: float = typer.Option(0.0, "--dp-noise", help="Client-level DP noise sigma (needs --clip)."),
        clip: float | None = typer.Option(None, "--clip", help="Client update L2 clipping norm C."),
        delta: float = typer.Option(1e-5, "--delta", help="DP delta for the reported epsilon."),
        malicious: float = typer.Option(0.0, "--malicious", help="Fraction of malicious clients."),
        attack: str | None = typer.Option(None, "--attack",
                                          help="label-flip, sign-flip[:S], scale:LAMBDA or backdoor[:BOOST]."),
        backend: str = typer.Option("engine", "--backend",
                                    help="engine (in process, default) or flower (Flower simulation on Ray)."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite --json / --html."),
    ) -> None:
        """Simulate federated training on DATA and measure accuracy and backdoor success per round."""
        # lazy: numpy, pandas and the federated engine only when the command runs
        from modelshield.federated import FederatedConfig, recipes
        from modelshield.report.svg import render_svg

        check_outputs({"--json": json_out, "--html": html_out}, [data], force)
        recipes.check_backend(backend)
        if secagg_group is not None and secagg_group < 2:
            raise UserError(f"a secure aggregation group needs at least 2 clients, got {secagg_group}",
                            cli_hint="--secagg-group")
        k = secagg_group if secagg_group is not None else (_DEFAULT_GROUP if secagg else 1)
        cfg = FederatedConfig(clients=clients, rounds=rounds, fraction=fraction, partition=partition,
                              aggregator=aggregator, group_size=k, dropouts=secagg_dropouts, dp_noise=dp_noise,
                              clip=clip, delta=delta, malicious=malicious, attack=attack, model=model, seed=seed)
        plan = recipes.plan_from_file(data, target, cfg)  # validates everything before the first round
        err_console.print(f"[dim]{clients} clients, {rounds} rounds, {aggregator}"
                          f"{f', SecAgg k={k}' if k > 1 else ''} on the {backend} backend[/]")
        fr = recipes.run_plan(plan, backend)
        payload = recipes.fl_payload(fr)
        write_json(json_out, payload, force)
        if html_out is not None:
            svgs = [render_svg(f) for f in recipes.fl_figures(fr)]
            write_text_safely(html_out, recipes.render_section(payload, svgs), force)
        step = max(1, rounds // 10)
        shown = [r for r in payload["rounds"] if r["round"] % step == 0 or r["round"] in (1, rounds)]
        print_table(None, ["round", "accuracy", "backdoor success", "failures"],
                    [(r["round"], f"{r['accuracy']:.4f}", f"{r['backdoor_success']:.4f}", r["failures"])
                     for r in shown], right=("round", "accuracy", "backdoor success", "failures"))
        eps = payload["epsilon"]
        console.print(f"final accuracy {payload['final_accuracy']:.4f}, backdoor success "
                      f"{payload['final_backdoor_success']:.4f}, epsilon "
                      f"{'none' if eps is None else f'{eps:.3f} (delta {delta:g})'}; "
                      f"{payload['seconds_per_round']:.3f} s/round; JSON {json_out}"
                      + (f", HTML {html_out}" if html_out else ""))
