"""``modelshield audit`` (the main job), ``modelshield policy show|validate`` and ``modelshield checks``."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import typer
import yaml
from rich.markup import escape

from modelshield.checks import registry as check_registry
from modelshield.cli._common import (
    console,
    err_console,
    parse_headers,
    parse_options,
    parse_shape,
    print_table,
    split_list,
)
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.cli._progress import CheckProgress
from modelshield.errors import EXIT_OK, EXIT_POLICY_FAILED, UserError
from modelshield.policy import DEFAULT_POLICY_YAML, load_policy
from modelshield.report.terminal import demo_note, print_summary
from modelshield.report.write import ReportTargets
from modelshield.runner import AuditOptions, AuditReport, audit_sources, audit_targets, validate_policy

__all__ = ["demo_note", "register"]

DEFAULT_HTML = "modelshield-report.html"


def register(app: typer.Typer, harden: typer.Typer) -> None:
    @app.command("audit")
    @load_options
    def audit_cmd(
        model: str = typer.Argument(None, help="Model file (scikit-learn pickle/joblib, PyTorch, TorchScript, "
                                                "ONNX) or an http(s):// prediction endpoint."),
        data: Path = typer.Option(None, "--data", "-d", help="Held-out data: CSV, Parquet or NPZ."),
        train: Path = typer.Option(None, "--train", help="Training data (members), for privacy checks."),
        target: str = typer.Option(None, "--target", "-t", help="Label column."),
        sensitive: list[str] = typer.Option(None, "--sensitive", "-s", help="Sensitive column (repeatable)."),
        features: list[str] = typer.Option(None, "--features", help="Feature columns, comma-separated "
                                                                    "(default: all but target and sensitive)."),
        immutable: list[str] = typer.Option(None, "--immutable", help="Features an attacker cannot change."),
        checks: str = typer.Option(None, "--checks", "-c", help="Comma-separated checks to run (default: all)."),
        policy: Path = typer.Option(None, "--policy", "-p", help="Policy YAML (default: built-in)."),
        out: Path = typer.Option(None, "--out", "-o", help=f"HTML report path (default {DEFAULT_HTML})."),
        json_out: Path = typer.Option(None, "--json", help="Also write the JSON report here."),
        sarif_out: Path = typer.Option(None, "--sarif", help="Also write a SARIF 2.1.0 log here."),
        seed: int = typer.Option(0, "--seed", help="Random seed (every check is deterministic under it)."),
        option: list[str] = typer.Option(None, "--option", "-O", help="Check option CHECK.KEY=VALUE."),
        input_shape: str = typer.Option(None, "--input-shape", help="Shape of one sample, e.g. 1,8,8."),
        header: list[str] = typer.Option(None, "--header", "-H", help="HTTP header for an endpoint MODEL, "
                                                                      "e.g. 'Authorization: Bearer KEY' (repeatable)."),
        quick: bool = typer.Option(False, "--quick", help="Small budgets: fast, less thorough."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing report files."),
        demo: bool = typer.Option(False, "--demo", help="Audit bundled demo models on offline data."),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
        *,
        load: LoadFlags,
    ) -> int:
        """Run every applicable check on MODEL and write reports; exit 0 pass, 1 policy failed, 2 bad input."""
        targets = ReportTargets.plan(out, json_out, sarif_out, default_html=Path(DEFAULT_HTML), every_format=demo,
                                     labels=("--out", "--json", "--sarif"))
        inputs = [model, data, train, policy, *load.inputs]
        targets.check(inputs, force)  # fail before any work: writable, distinct, never one of the inputs
        names = split_list([checks]) if checks else None
        config = AuditOptions(checks=names, policy=load_policy(policy), seed=seed, quick=quick,
                              options=parse_options(option), target=target, sensitive=split_list(sensitive),
                              features=split_list(features) or None, immutable=split_list(immutable),
                              input_shape=parse_shape(input_shape), headers=parse_headers(header)).validate()
        if demo and (model is not None or data is not None):
            raise UserError("--demo takes no MODEL or --data")
        if not demo and model is None:
            raise UserError("give a MODEL to audit (or --demo)")
        t0 = time.perf_counter()
        with CheckProgress(not no_progress and err_console.is_terminal) as prog:
            config = config.with_(on_event=prog.on_event)
            report = (_run_demo(config, prog) if demo else
                      audit_sources(model, data, train=train, config=config, load=load.load, note=prog.note,
                                    on_run=prog.set_label))
        print_summary(report, console)
        for p in targets.write(report, inputs, force):  # checked again: the audit took a while
            console.print(f"wrote {p}")
        console.print(f"[dim]{time.perf_counter() - t0:.1f} s[/]")
        if demo:  # the demo shows findings on purpose; its job is to produce the reports (see demo_note)
            console.print(demo_note(report), soft_wrap=not console.is_terminal)
            return EXIT_OK
        return EXIT_OK if report.passed else EXIT_POLICY_FAILED

    policy_app = typer.Typer(help="Show or validate the audit policy (the CI gate).", no_args_is_help=True)

    @policy_app.command("show")
    def policy_show(
        policy: Path = typer.Argument(None, help="A policy file to show resolved (default: built-in)."),
    ) -> None:
        """Print the default policy (documented YAML), or a policy file resolved."""
        text = DEFAULT_POLICY_YAML if policy is None else yaml.safe_dump(load_policy(policy).to_dict(), sort_keys=False)
        typer.echo(text, nl=False)

    @policy_app.command("validate")
    def policy_validate(policy: Path = typer.Argument(..., help="Policy file.")) -> None:
        """Check a policy file: check names, option names and values, and every limit metric and threshold
        key against what the checks declare (did-you-mean for a typo). Exit 0 if valid, 2 with the reason."""
        p = load_policy(policy)
        for w in validate_policy(p, build_options=True):  # option names and values, as the audit builds them
            err_console.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
        typer.echo(f"{policy}: valid (fail_on {p.fail_on.value}, {len(p.limits)} limits, "
                   f"{len(p.thresholds)} thresholds)")

    app.add_typer(policy_app, name="policy")

    @app.command("checks")
    def list_checks(
        metrics: bool = typer.Option(False, "--metrics", help="List each check's metrics and policy thresholds "
                                                               "(the names a policy may use)."),
    ) -> None:
        """List the available checks (built-in and plug-ins) and what each needs."""
        found = check_registry.available_checks()
        if not metrics:
            print_table(None, ("check", "needs", "description"), ((name, ", ".join(check_registry.check_needs(cls)),
                                                                   cls.description) for name, cls in found.items()))
        for name, cls in found.items() if metrics else ():
            names, keys = check_registry.declared_metrics(name, cls), check_registry.declared_thresholds(name, cls)
            console.print(f"[bold]{escape(name)}[/]" + ("\n  (declares no metrics)" if names is None else ""))
            for kind, entries in (("limit     ", names or {}), ("threshold ", keys or {})):
                for m, what in entries.items():
                    console.print(f"  {kind} {escape(name)}.{escape(m)}  [dim]{escape(what)}[/]", soft_wrap=True)
        for name, err in ({} if metrics else check_registry.load_errors()).items():
            err_console.print(f"[red]plug-in {name} failed to load:[/] {err}")


def _run_demo(config: AuditOptions, prog: CheckProgress) -> AuditReport:
    from modelshield.demo import build_demo  # lazy: the demo trains with torch; only `audit --demo` needs it

    with tempfile.TemporaryDirectory(prefix="modelshield-demo-") as tmp:
        targets = build_demo(Path(tmp), seed=config.seed, progress=prog.note)
        return audit_targets(targets, config=config.with_(quick=True), title="modelshield demo audit",
                             on_run=prog.set_label)
