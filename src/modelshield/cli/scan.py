"""``modelshield scan PATH...``: static scan of model files and directories.

Exit codes (a contract): 0 nothing at or above ``--fail-on``; 1 findings at or above ``--fail-on``
(the default, ``medium``, catches every dangerous file, every suspicious global, every file that
could not be fully parsed and every model-like or encrypted file that could not be inspected);
2 usage error (missing path, bad option, existing output without ``--force``).

:func:`scan_command` is the implementation; the typer command (``register``) and the lean path
(``modelshield.cli._fast_scan``, argparse) only parse options and call it. This module imports
typer only inside ``register``, so the lean path can import it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modelshield._io import check_outputs
from modelshield.cli._lean import say, write_json
from modelshield.errors import UserError
from modelshield.findings import Severity

if TYPE_CHECKING:  # pragma: no cover
    import typer

    from modelshield.artifacts.report import ScanReport

__all__ = ["DEFAULT_FAIL_ON", "DEFAULT_TIMEOUT", "register", "scan_command"]

DEFAULT_FAIL_ON = "medium"
DEFAULT_TIMEOUT = 300.0

_STYLE = {"clean": "green", "suspicious": "yellow", "dangerous": "bold red", "malformed": "magenta",
          "inconclusive": "magenta"}


def scan_command(paths: Sequence[Path], *, json_out: Path | None = None, sarif_out: Path | None = None,
                 fail_on: str = DEFAULT_FAIL_ON, force: bool = False, hash_files: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, quiet: bool = False) -> int:
    """Scan ``paths``, print one line per file (and its findings) and a summary, write the JSON /
    SARIF reports; returns the exit code (0 pass, 1 findings at or above ``fail_on``)."""
    from modelshield.artifacts import scan  # lazy: `scan --help` and usage errors (typer path) skip the scanner

    try:
        gate = Severity.parse(fail_on)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not (timeout > 0 and math.isfinite(timeout)):
        raise UserError("--timeout must be a positive number of seconds")
    check_outputs({"--json": json_out, "--sarif": sarif_out}, list(paths), force)
    report = scan(list(paths), timeout=timeout, hash=hash_files)
    if not report.files:  # a gate that scanned nothing must not pass (a wrong or empty folder)
        raise UserError(f"nothing to scan: no files in {', '.join(str(p) for p in paths)}")
    for fr in report.files:
        status = fr.status.value
        if quiet and status == "clean":
            continue
        say((f"{status:12}", _STYLE[status]), f" {fr.path}  ({fr.format})")
        for f in fr.findings:
            if quiet and f.severity < Severity.MEDIUM:
                continue
            at = f" @ {f.offset}" if f.offset is not None else ""
            say(f"    {f.severity.value:8} {f.rule_id}: {f.title}{at}")
    c = report.counts()
    blocked = report.blocks(gate)
    say(f"{len(report.files)} file(s): {c['clean']} clean, {c['suspicious']} suspicious, "
        f"{c['dangerous']} dangerous, {c['malformed']} malformed, {c['inconclusive']} inconclusive -> "
        + ("FAIL" if blocked else "PASS") + f" (--fail-on {gate.value})")
    if json_out is not None:
        write_json(json_out, report.to_dict(), force)
    if sarif_out is not None:
        _write_sarif(report, str(paths[0]), sarif_out, force)
    return 1 if blocked else 0


def _write_sarif(report: ScanReport, artifact: str, out: Path, force: bool) -> None:
    from modelshield.report.sarif import sarif_log  # lazy: the SARIF writer only with --sarif (scan start-up)

    write_json(out, sarif_log(report.findings, artifact=artifact, notifications=report.errors), force)


def register(app: typer.Typer, harden: typer.Typer) -> None:
    import typer  # lazy: the lean path (cli/_fast_scan.py) imports this module and never typer

    @app.command("scan")
    def scan_cmd(
        paths: list[Path] = typer.Argument(..., help="Model files or directories (scanned recursively)."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the JSON report here."),
        sarif_out: Path | None = typer.Option(None, "--sarif", help="Write a SARIF 2.1.0 log here."),
        fail_on: str = typer.Option(DEFAULT_FAIL_ON, "--fail-on",
                                    help="Exit 1 when a finding is at or above this severity "
                                         "(info, low, medium, high, critical)."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing report files."),
        hash_files: bool = typer.Option(False, "--hash", help="Record each file's SHA-256."),
        timeout: float = typer.Option(DEFAULT_TIMEOUT, "--timeout", help="Per-file time bound in seconds."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print problem files and the summary."),
    ) -> int:
        """Scan model files for code execution and malformed structure, without loading them."""
        return scan_command(paths, json_out=json_out, sarif_out=sarif_out, fail_on=fail_on, force=force,
                            hash_files=hash_files, timeout=timeout, quiet=quiet)
