"""Write an :class:`~modelshield.runner.AuditReport` in the requested formats (atomically, no clobbering)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path

from modelshield._io import check_output_path, check_outputs, write_files_safely
from modelshield.errors import OutputError
from modelshield.report.html import render_html
from modelshield.report.json import to_json
from modelshield.report.sarif import sarif_log
from modelshield.runner import AuditReport

__all__ = ["ReportTargets", "check_report_outputs", "is_previous_report", "report_sarif", "write_reports"]

_SNIFF_BYTES = 64 * 1024
_MAX_JSON_REPORT = 256 * 1024 * 1024
_GENERATOR_RE = re.compile(r'<meta\s+name="generator"\s+content="modelshield[ "]', re.IGNORECASE)


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


def is_previous_report(path: Path, kind: str) -> bool:
    """Whether ``path`` is a report modelshield wrote (``kind``: html, json or sarif), judged by content:
    the HTML report's ``<meta name="generator" content="modelshield …">`` in its head, the JSON report's
    ``tool.name``, the SARIF log's ``runs[].tool.driver.name``. A symbolic link, a folder, an unreadable file
    or anything else is not (so it is never replaced without ``--force``)."""
    try:
        if path.is_symlink() or not path.is_file():
            return False
        if kind == "html":
            with path.open("rb") as fh:
                head = fh.read(_SNIFF_BYTES).decode("utf-8", "replace")
            start = head.lstrip().lower()
            return start.startswith("<!doctype html") and _GENERATOR_RE.search(head.split("</head>")[0]) is not None
        if path.stat().st_size > _MAX_JSON_REPORT:
            return False
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(doc, dict):
        return False
    if kind == "json":
        tool = doc.get("tool")
        return isinstance(tool, dict) and tool.get("name") == "modelshield" and "schema_version" in doc
    runs = doc.get("runs")
    return (isinstance(runs, list) and bool(runs) and str(doc.get("version")) == "2.1.0"
            and all(isinstance(r, dict) and isinstance(r.get("tool"), dict)
                    and isinstance(r["tool"].get("driver"), dict) and r["tool"]["driver"].get("name") == "modelshield"
                    for r in runs))


def check_report_outputs(outputs: dict[str, tuple[Path | None, str]], defaults: set[Path], inputs: list[object],
                         force: bool) -> bool:
    """Validate the audit's report paths (``flag -> (path, kind)``): writable, distinct, never an input
    (:func:`modelshield._io.check_outputs`). An existing file is replaced only with ``force``, or when the
    path is a default (in ``defaults``: not named on the command line) and the file is a report modelshield
    wrote (:func:`is_previous_report`); otherwise one line and exit 2. Returns whether writing must replace
    files (the ``force`` to write with)."""
    replace = force
    for flag, (p, kind) in outputs.items():
        if p is None:
            continue
        earlier = not force and p in defaults and p.exists() and is_previous_report(p, kind)
        if not force and p in defaults and p.exists() and not earlier:
            raise OutputError(f"output {p} already exists and is not a modelshield report",
                              cli_hint=f"pass --force to overwrite it, or choose another path with {flag}")
        check_outputs({flag: p}, inputs, force or earlier)
        replace = replace or earlier
    check_outputs({f: p for f, (p, _) in outputs.items()}, [], force=True)  # no two the same file
    return replace


@dataclasses.dataclass(frozen=True)
class ReportTargets:
    """Where an audit's reports go: ``paths`` maps each output's label (the CLI uses its flags) to ``(path,
    kind)`` for the HTML report, the JSON report and the SARIF log, in that order; ``defaults`` are the paths
    nobody named (an earlier modelshield report there may be replaced, see :func:`check_report_outputs`)."""

    paths: dict[str, tuple[Path | None, str]]
    defaults: frozenset[Path]

    @classmethod
    def plan(cls, html: Path | None, json_path: Path | None, sarif: Path | None, *, default_html: Path,
             every_format: bool = False, labels: Sequence[str] = ("html", "json", "sarif")) -> ReportTargets:
        """The HTML report at ``html`` or ``default_html``; ``every_format``: also the JSON report and the
        SARIF log, by default beside the HTML report (``.json``, ``.sarif``)."""
        page = html or default_html
        defaults = {page} if html is None else set()
        if every_format:
            beside = (page.with_suffix(".json"), page.with_suffix(".sarif"))
            defaults |= {p for p in beside if p not in (json_path, sarif)}
            json_path = json_path or page.with_suffix(".json")
            sarif = sarif or page.with_suffix(".sarif")
        kinds = dict(zip(labels, ((page, "html"), (json_path, "json"), (sarif, "sarif")), strict=True))
        return cls(kinds, frozenset(defaults))

    def check(self, inputs: list[object], force: bool) -> bool:
        """:func:`check_report_outputs` on these paths: fails before any work; returns the ``force`` to write
        with."""
        return check_report_outputs(self.paths, set(self.defaults), inputs, force)

    def write(self, report: AuditReport, inputs: list[object], force: bool) -> list[Path]:
        """Check again (an audit takes a while: a file may have appeared) and write every report."""
        replace = self.check(inputs, force)
        (html, _), (json_path, _), (sarif, _) = self.paths.values()
        return write_reports(report, html=html, json_path=json_path, sarif=sarif, force=replace)
