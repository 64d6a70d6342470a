"""Terminal summary with rich: one table per audited model and the gate verdict."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.segment import Segments
from rich.table import Table

from modelshield.findings import CheckStatus
from modelshield.runner import AuditReport

__all__ = ["demo_note", "print_summary"]

_UNBOUNDED = 10_000  # columns: measure a table's natural width

_SEV_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "blue",
              "info": "dim"}
_STATUS_STYLE = {CheckStatus.PASSED: "green", CheckStatus.FINDINGS: "yellow", CheckStatus.SKIPPED: "dim",
                 CheckStatus.ERROR: "bold red"}


def demo_note(report: AuditReport) -> str:
    """The line a demo audit ends with: how many of its audits failed the gate, and that the demo's exit
    code ignores the gate (0 when the reports were written) while an audit of your own model exits 1."""
    failed = [run.label for run in report.runs if not run.passed]
    verdict = (f"{len(failed)} of {len(report.runs)} demo audits failed the gate ({', '.join(failed)}); the demo "
               "plants findings on purpose (a malicious pickle, a model that memorises its training data)" if failed
               else f"all {len(report.runs)} demo audits passed the gate")
    return (f"demo: {verdict}. The demo's exit code ignores the gate: 0 means the reports were written. "
            "'modelshield audit MODEL' exits 1 when its gate fails.")


def _longest_word(texts: list[str]) -> int:
    return max((len(w) for t in texts for w in t.split()), default=0)


def print_summary(report: AuditReport, console: Console, *, max_findings: int = 12) -> None:
    """Print one table per audited model, its worst findings and the gate verdict.

    On a terminal the table fits the terminal's width. Piped or redirected (a CI log, ``| tee``), lines are
    never wrapped and the table takes the width it needs, so no word is split across lines
    (``demographic_parity_differ`` / ``ence``) and every line can be searched for whole."""
    piped = not console.is_terminal
    for run in report.runs:
        table = Table(title=f"{run.label}  ({run.model.get('framework', '?')})", title_justify="left",
                      show_lines=False)
        table.add_column("check")
        table.add_column("status")
        table.add_column("findings", justify="right")
        table.add_column("worst")
        summaries = [(r.skip_reason if r.status is CheckStatus.SKIPPED else r.summary) or "" for r in run.results]
        # wrap summaries on whitespace; piped, a word longer than the column widens it instead of being cut
        longest = _longest_word(summaries)
        table.add_column("summary", overflow="fold", max_width=max(70, longest) if piped else 70,
                         min_width=min(longest, 70) if piped else None)
        table.add_column("time", justify="right")
        for r, summary in zip(run.results, summaries, strict=True):
            worst = r.max_severity.value if r.max_severity else ""
            table.add_row(
                escape(r.check),
                f"[{_STATUS_STYLE[r.status]}]{r.status.value}[/]",
                str(len(r.findings)) if r.findings else "",
                f"[{_SEV_STYLE.get(worst, '')}]{worst}[/]" if worst else "",
                escape(summary),
                f"{r.duration_s:.1f}s",
            )
        if piped:  # as wide as the table needs (summaries still wrap at 70 columns, on whitespace)
            width = max(console.width, Measurement.get(console, console.options.update(width=_UNBOUNDED),
                                                       table).maximum)
            lines = console.render_lines(table, console.options.update(width=width), new_lines=True)
            console.print(Segments([seg for line in lines for seg in line]), crop=False, soft_wrap=True, end="")
        else:
            console.print(table)
        findings = sorted(run.findings, key=lambda f: -f.severity.rank)
        for f in findings[:max_findings]:
            where = f" [dim]{escape(f.location)}[/]" if f.location else ""
            _line(console, f"  [{_SEV_STYLE[f.severity.value]}]{f.severity.value:>8}[/] {escape(f.check)}: "
                           f"{escape(f.title)}{where}", piped)
        if len(findings) > max_findings:
            _line(console, f"  [dim]… {len(findings) - max_findings} more in the report[/]", piped)
        verdict = "[bold green]PASS[/]" if run.passed else "[bold red]FAIL[/]"
        _line(console, f"  gate: {verdict}" + ("" if run.passed else " — " + escape("; ".join(run.gate.reasons[:3]))),
              piped)
        for w in run.gate.warnings:
            _line(console, f"  [yellow]warning:[/] {escape(w)}", piped)
        console.print()


def _line(console: Console, markup: str, piped: bool) -> None:
    """One line of the summary: wrapped on whitespace on a terminal, never wrapped when piped."""
    console.print(markup, soft_wrap=piped)
