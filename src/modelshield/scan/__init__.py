"""The model-file scanner: find unsafe and malformed model artifacts without running them.

>>> from modelshield.scan import scan
>>> report = scan("model.pkl")          # doctest: +SKIP
>>> report.blocks("medium"), [f.rule_id for f in report.findings]   # doctest: +SKIP

See ``docs/scanner.md`` for formats, the severity model and the rule list.
"""

from __future__ import annotations

from modelshield.scan.report import RULES, SCHEMA_VERSION, FileReport, FileStatus, ScanReport
from modelshield.scan.scanner import detect_format, scan, scan_bytes, scan_file

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
