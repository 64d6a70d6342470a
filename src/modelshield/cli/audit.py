"""``modelshield audit`` (the main job), ``modelshield policy show|validate`` and ``modelshield checks``."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from modelshield.cli._common import console, err_console, parse_options, parse_shape, split_list
from modelshield.cli._loading import LoadFlags, load_options
from modelshield.errors import EXIT_OK, EXIT_POLICY_FAILED, UserError
from modelshield.report.write import check_report_outputs

__all__ = ["demo_note", "register"]

DEFAULT_HTML = "modelshield-report.html"


def _headers(items: list[str] | None) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise UserError(f"bad --header {item.split(':')[0]!r}...: expected 'Name: value'")
        out[name.strip()] = value.strip()
    return out or None




class _Progress:
    """Rich progress bar fed by the runner's events (one task per check)."""

    def __init__(self, enabled: bool) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.enabled = enabled
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[msg]}"), TimeElapsedColumn(), console=err_console,
                                 transient=True, disable=not enabled)
        self.tasks: dict[str, Any] = {}
        self.label = ""

    def __enter__(self) -> _Progress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def on_event(self, kind: str, check: str, payload: Any) -> None:
        key = f"{self.label}:{check}"
        if kind == "start":
            self.tasks[key] = self.progress.add_task(f"{self.label} · {check}", total=1.0, msg="")
        elif kind == "progress" and key in self.tasks:
            frac, msg = payload
            self.progress.update(self.tasks[key], completed=min(max(float(frac), 0.0), 1.0), msg=str(msg)[:40])
        elif kind == "end" and key in self.tasks:
            self.progress.update(self.tasks[key], completed=1.0, visible=False)

    def set_label(self, label: str) -> None:
        self.label = label

    def note(self, message: str) -> None:
        if self.enabled:
            err_console.print(f"[dim]{message}[/]")


#: how much of an existing file is read to recognise an earlier modelshield report


def demo_note(report: Any) -> str:
    """The line ``audit --demo`` ends with: how many of its audits failed the gate, and that the demo's exit
    code ignores the gate (0 when the reports were written) while an audit of your own model exits 1."""
    failed = [run.label for run in report.runs if not run.passed]
    verdict = (f"{len(failed)} of {len(report.runs)} demo audits failed the gate ({', '.join(failed)}); the demo "
               "plants findings on purpose (a malicious pickle, a model that memorises its training data)" if failed
               else f"all {len(report.runs)} demo audits passed the gate")
    return (f"demo: {verdict}. The demo's exit code ignores the gate: 0 means the reports were written. "
            "'modelshield audit MODEL' exits 1 when its gate fails.")


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
        from modelshield.policy import load_policy
        from modelshield.report.terminal import print_summary
        from modelshield.report.write import write_reports
        from modelshield.runner import AuditOptions, select_checks, validate_policy

        html = out or Path(DEFAULT_HTML)
        defaults = {html} if out is None else set()  # outputs the user did not name
        if demo:
            defaults |= {p for p in (html.with_suffix(".json"), html.with_suffix(".sarif"))
                         if p not in (json_out, sarif_out)}
            json_out = json_out or html.with_suffix(".json")
            sarif_out = sarif_out or html.with_suffix(".sarif")
        # fail before any work: writable, distinct, and never one of the inputs. An output the user did not
        # name may replace the report of an earlier run (recognised by its content), never any other file.
        outputs = {"--out": (html, "html"), "--json": (json_out, "json"), "--sarif": (sarif_out, "sarif")}
        inputs = [model, data, train, policy, *load.inputs]
        check_report_outputs(outputs, defaults, inputs, force)
        pol = load_policy(policy)
        validate_policy(pol)  # a misspelled metric or threshold fails now (exit 2); warnings go in the gate
        opts = parse_options(option)
        check_names = split_list([checks]) if checks else None
        if check_names is not None:
            select_checks(check_names, {})  # unknown names fail now, not after loading
        show = not no_progress and err_console.is_terminal
        t0 = time.perf_counter()
        with _Progress(show) as prog:
            config = AuditOptions(checks=check_names, policy=pol, seed=seed, quick=quick, options=opts,
                                  target=target, sensitive=split_list(sensitive), features=split_list(features) or None,
                                  immutable=split_list(immutable), input_shape=parse_shape(input_shape),
                                  headers=_headers(header), on_event=prog.on_event)
            if demo:
                if model is not None or data is not None:
                    raise UserError("--demo takes no MODEL or --data")
                report = _run_demo(pol, config=config, prog=prog)
            else:
                report = _run_user(model, data=data, train=train, config=config, prog=prog, load=load)
        print_summary(report, console)
        replace = check_report_outputs(outputs, defaults, inputs, force)  # again: the audit took a while
        written = write_reports(report, html=html, json_path=json_out, sarif=sarif_out, force=replace)
        for p in written:
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
        from modelshield.policy import DEFAULT_POLICY_YAML, load_policy

        if policy is None:
            typer.echo(DEFAULT_POLICY_YAML, nl=False)
            return
        import yaml

        typer.echo(yaml.safe_dump(load_policy(policy).to_dict(), sort_keys=False), nl=False)

    @policy_app.command("validate")
    def policy_validate(policy: Path = typer.Argument(..., help="Policy file.")) -> None:
        """Check a policy file: check names, option names and values, and every limit metric and threshold
        key against what the checks declare (did-you-mean for a typo). Exit 0 if valid, 2 with the reason."""
        from modelshield.policy import load_policy
        from modelshield.runner import validate_policy

        p = load_policy(policy)
        warnings = validate_policy(p, build_options=True)  # option names and values, as the audit builds them
        for w in warnings:
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
        from rich.table import Table

        from modelshield.checks.registry import available_checks, declared_metrics, declared_thresholds, load_errors

        if metrics:
            for name, cls in available_checks().items():
                names, keys = declared_metrics(name, cls), declared_thresholds(name, cls)
                console.print(f"[bold]{escape(name)}[/]")
                if names is None:
                    console.print("  (declares no metrics)")
                for m, what in (names or {}).items():
                    console.print(f"  limit      {escape(name)}.{escape(m)}  [dim]{escape(what)}[/]", soft_wrap=True)
                for k, what in (keys or {}).items():
                    console.print(f"  threshold  {escape(name)}.{escape(k)}  [dim]{escape(what)}[/]", soft_wrap=True)
            return
        table = Table("check", "needs", "description")
        for name, cls in available_checks().items():
            needs = [c.value for c in sorted(cls.requires, key=lambda c: c.value)]
            needs += [w for w, flag in (("data", cls.needs_data), ("labels", cls.needs_labels),
                                        ("train", cls.needs_train), ("sensitive", cls.needs_sensitive)) if flag]
            table.add_row(name, ", ".join(needs), cls.description)
        console.print(table)
        for name, err in load_errors().items():
            err_console.print(f"[red]plug-in {name} failed to load:[/] {err}")


def _run_user(model_src: str | None, *, data: Path | None, train: Path | None, config: Any, prog: _Progress,
              load: LoadFlags) -> Any:
    from modelshield.runner import audit_sources

    if model_src is None:
        raise UserError("give a MODEL to audit (or --demo)")
    return audit_sources(model_src, data, train=train, config=config, load=load.load, note=prog.note,
                         on_run=prog.set_label)


def _run_demo(policy: Any, *, config: Any, prog: _Progress) -> Any:
    from modelshield.demo import build_demo
    from modelshield.runner import audit_targets

    with tempfile.TemporaryDirectory(prefix="modelshield-demo-") as tmp:
        targets = build_demo(Path(tmp), seed=config.seed, progress=prog.note)
        return audit_targets(targets, config=config.with_(policy=policy, quick=True), title="modelshield demo audit",
                             on_run=prog.set_label)
