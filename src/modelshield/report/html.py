"""Self-contained HTML report: inline CSS, plots as inline SVG, no scripts or external assets."""

from __future__ import annotations

import functools
from typing import Any

from modelshield._format import fmt_value
from modelshield._version import __version__
from modelshield.checks.registry import available_checks
from modelshield.findings import Severity
from modelshield.report.svg import render_svg
from modelshield.runner import AuditReport

__all__ = ["render_html"]


def _fmt(v: Any) -> str:
    return fmt_value(v, 4, trim=True)


def _isnum(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for row in rows[:200]:
        for k in row:
            if k not in cols:
                cols.append(k)
    return cols


@functools.lru_cache(maxsize=1)
def _template() -> Any:
    """The compiled page template, built once per process (a registry audit renders hundreds of reports)."""
    import jinja2  # lazy: only rendering HTML needs it

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("modelshield.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2")


def render_html(report: AuditReport) -> str:
    """Render the report as one HTML page."""
    titles = {name: cls.title or name for name, cls in available_checks().items()}
    all_findings = sorted(
        ((run.label, f) for run in report.runs for f in run.findings),
        key=lambda t: (-t[1].severity.rank, t[1].check),
    )
    counts = {s.value: 0 for s in sorted(Severity, reverse=True)}
    for _, f in all_findings:
        counts[f.severity.value] += 1
    return _template().render(
        report=report,
        tool_version=__version__,
        counts=counts,
        all_findings=all_findings,
        titles=titles,
        svg=render_svg,
        fmt=_fmt,
        isnum=_isnum,
        columns=_columns,
    )
