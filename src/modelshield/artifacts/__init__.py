"""The model-file scanner: find unsafe and malformed model artifacts without running them.

>>> from modelshield.artifacts import scan
>>> report = scan("model.pkl")          # doctest: +SKIP
>>> report.blocks("medium"), [f.rule_id for f in report.findings]   # doctest: +SKIP

See ``docs/scanner.md`` for formats, the severity model and the rule list.
"""

from __future__ import annotations

from modelshield.artifacts.report import RULES, SCHEMA_VERSION, FileReport, FileStatus, ScanReport
from modelshield.artifacts.scanner import detect_format, scan, scan_bytes, scan_file

__all__ = [
    "RULES",
    "SCHEMA_VERSION",
    "FileReport",
    "FileStatus",
    "ScanReport",
    "detect_format",
    "scan",
    "scan_bytes",
    "scan_file",
]
