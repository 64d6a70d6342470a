"""SARIF 2.1.0 output (what GitHub code scanning and most security tools read).

One ``run`` per report; one ``rule`` per distinct ``rule_id``; one ``result`` per finding. Severity
maps to SARIF ``level`` (critical/high -> error, medium -> warning, low/info -> note) and to the
``security-severity`` property GitHub uses to rank alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelshield._version import __version__
from modelshield.findings import Finding, Severity

__all__ = ["SARIF_SCHEMA", "SARIF_VERSION", "sarif_log"]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_INFO_URI = "https://github.com/modelshield/modelshield"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
_SCORE = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def _uri(location: str | None, default: str | None) -> str | None:
    loc = location or default
    if not loc:
        return None
    p = Path(loc)
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def sarif_log(
    findings: Sequence[Finding],
    *,
    tool_version: str | None = None,
    artifact: str | None = None,
    invocation_ok: bool = True,
    notifications: Sequence[str] = (),
) -> dict[str, Any]:
    """Build a SARIF 2.1.0 log (a dict ready for ``json.dump``).

    ``artifact`` is the default file the findings refer to (the audited model) when a finding has
    no ``location`` of its own.
    """
    if tool_version is None:
        tool_version = __version__
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for f in findings:
        if f.rule_id not in rules:
            rules[f.rule_id] = {
                "id": f.rule_id,
                "name": "".join(w.capitalize() for w in f.rule_id.replace("-", ".").split(".")),
                "shortDescription": {"text": f.title[:200]},
                "fullDescription": {"text": (f.detail or f.title)[:1000]},
                "help": {"text": f.remediation or f.title},
                "helpUri": (f.references[0] if f.references and f.references[0].startswith("http")
                            else _INFO_URI),
                "properties": {"tags": ["security", "ml", f.check], "security-severity": _SCORE[f.severity]},
                "defaultConfiguration": {"level": _LEVEL[f.severity]},
            }
        res: dict[str, Any] = {
            "ruleId": f.rule_id,
            "ruleIndex": list(rules).index(f.rule_id),
            "level": _LEVEL[f.severity],
            "message": {"text": f"{f.title}" + (f": {f.detail}" if f.detail else "")},
            "properties": {"severity": f.severity.value, "check": f.check},
        }
        uri = _uri(f.location, artifact)
        if uri:
            phys: dict[str, Any] = {"artifactLocation": {"uri": uri}}
            if f.offset is not None:
                phys["region"] = {"byteOffset": int(f.offset), "byteLength": 1}
            else:
                phys["region"] = {"startLine": 1}
            res["locations"] = [{"physicalLocation": phys}]
        results.append(res)
    invocation: dict[str, Any] = {"executionSuccessful": bool(invocation_ok)}
    if notifications:
        invocation["toolExecutionNotifications"] = [
            {"message": {"text": n}, "level": "error"} for n in notifications
        ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "modelshield",
                        "version": tool_version,
                        "informationUri": _INFO_URI,
                        "rules": list(rules.values()),
                    }
                },
                "invocations": [invocation],
                "results": results,
            }
        ],
    }
