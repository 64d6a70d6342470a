"""Terminal summary with rich: one table per audited model and the gate verdict."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from modelshield.findings import CheckStatus
from modelshield.runner import AuditReport

__all__ = ["print_summary"]

_SEV_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "blue",
              "info": "dim"}
_STATUS_STYLE = {CheckStatus.PASSED: "green", CheckStatus.FINDINGS: "yellow", CheckStatus.SKIPPED: "dim",
                 CheckStatus.ERROR: "bold red"}


def print_summary(report: AuditReport, console: Console, *, max_findings: int = 12) -> None:
    for run in report.runs:
        table = Table(title=f"{run.label}  ({run.model.get('framework', '?')})", title_justify="left",
                      show_lines=False)
        table.add_column("check")
        table.add_column("status")
        table.add_column("findings", justify="right")
        table.add_column("worst")
        table.add_column("summary", overflow="fold", max_width=70)
        table.add_column("time", justify="right")
        for r in run.results:
            worst = r.max_severity.value if r.max_severity else ""
            table.add_row(
                r.check,
                f"[{_STATUS_STYLE[r.status]}]{r.status.value}[/]",
                str(len(r.findings)) if r.findings else "",
                f"[{_SEV_STYLE.get(worst, '')}]{worst}[/]" if worst else "",
                r.skip_reason if r.status is CheckStatus.SKIPPED else r.summary,
                f"{r.duration_s:.1f}s",
            )
        console.print(table)
        findings = sorted(run.findings, key=lambda f: -f.severity.rank)
        for f in findings[:max_findings]:
            where = f" [dim]{f.location}[/]" if f.location else ""
            console.print(f"  [{_SEV_STYLE[f.severity.value]}]{f.severity.value:>8}[/] {f.check}: {f.title}{where}")
        if len(findings) > max_findings:
            console.print(f"  [dim]… {len(findings) - max_findings} more in the report[/]")
        verdict = "[bold green]PASS[/]" if run.passed else "[bold red]FAIL[/]"
        console.print(f"  gate: {verdict}" + ("" if run.passed else " — " + "; ".join(run.gate.reasons[:3])))
        for w in run.gate.warnings:
            console.print(f"  [yellow]warning:[/] {w}")
        console.print()
