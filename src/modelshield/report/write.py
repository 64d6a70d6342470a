"""Write an :class:`~modelshield.runner.AuditReport` in the requested formats (atomically, no clobbering)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from modelshield._io import check_output_path, write_files_safely
from modelshield.report.html import render_html
from modelshield.report.json import to_json
from modelshield.report.sarif import sarif_log
from modelshield.runner import AuditReport

__all__ = ["report_sarif", "write_reports"]


def report_sarif(report: AuditReport) -> dict:
    """SARIF 2.1.0 for every finding of every run; findings without a file point at the run's model."""

    findings = []
    for run in report.runs:
        default = run.model.get("path")
        for f in run.findings:
            findings.append(f if f.location or not default else dataclasses.replace(f, location=default))
    errors = [r.summary for run in report.runs for r in run.results if r.status.value == "error"]
    return sarif_log(findings, invocation_ok=not errors, notifications=errors)


def write_reports(
    report: AuditReport,
    *,
    html: str | Path | None = None,
    json_path: str | Path | None = None,
    sarif: str | Path | None = None,
    force: bool = False,
) -> list[Path]:
    """Render and write each requested report; returns the paths written."""

    targets = [(p, kind) for p, kind in ((html, "html"), (json_path, "json"), (sarif, "sarif")) if p]
    for p, _ in targets:  # validate every path before rendering any
        check_output_path(p, force)
    files = []
    for p, kind in targets:
        if kind == "html":
            text = render_html(report)
        elif kind == "json":
            text = to_json(report)
        else:
            text = json.dumps(report_sarif(report), indent=2) + "\n"
        files.append((p, text.encode("utf-8")))
    return write_files_safely(files, force)  # all or nothing
