"""JSON report (schema: ``report/schemas/report-1.0.schema.json``, versioned by ``schema_version``)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from modelshield.runner import AuditReport

__all__ = ["report_schema", "to_json"]


def to_json(report: AuditReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str) + "\n"


def report_schema() -> dict[str, Any]:
    """The JSON Schema of the report format."""
    text = resources.files("modelshield.report").joinpath("schemas/report-1.0.schema.json").read_text()
    return json.loads(text)
