"""Results as data: :class:`Severity`, :class:`Finding`, :class:`Figure` and :class:`CheckResult`.

Checks build these with keywords; report writers and the policy gate read them. Nothing here knows
about output formats.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["CheckResult", "CheckStatus", "Figure", "Finding", "Series", "Severity"]


class Severity(enum.Enum):
    """How bad a finding is. Ordered: ``INFO < LOW < MEDIUM < HIGH < CRITICAL``."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {value!r}; expected one of: {names}") from None


_RANK = {s: i for i, s in enumerate(Severity)}


def _jsonable(value: Any) -> Any:
    """Turn numpy scalars/arrays and tuples into plain JSON values; NaN/inf become None."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _jsonable(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One thing a check found.

    ``rule_id`` is a stable identifier (``artifact.pickle.dangerous-global``); ``location`` names the
    file (and optionally ``offset``/``line``) for SARIF.
    """

    check: str
    severity: Severity
    title: str
    detail: str = ""
    rule_id: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    remediation: str = ""
    references: tuple[str, ...] = ()
    location: str | None = None
    offset: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        object.__setattr__(self, "references", tuple(self.references))
        if not self.rule_id:
            slug = "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")
            object.__setattr__(self, "rule_id", f"{self.check}.{slug[:60]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "rule_id": self.rule_id,
            "severity": self.severity.value,
            "title": self.title,
            "detail": self.detail,
            "evidence": _jsonable(dict(self.evidence)),
            "remediation": self.remediation,
            "references": list(self.references),
            "location": self.location,
            "offset": self.offset,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        return cls(
            check=d["check"],
            severity=Severity.parse(d["severity"]),
            title=d["title"],
            detail=d.get("detail", ""),
            rule_id=d.get("rule_id", ""),
            evidence=dict(d.get("evidence") or {}),
            remediation=d.get("remediation", ""),
            references=tuple(d.get("references") or ()),
            location=d.get("location"),
            offset=d.get("offset"),
        )


@dataclass(frozen=True, kw_only=True)
class Series:
    """One line / set of bars in a figure. ``lo``/``hi`` are optional error bounds."""

    name: str
    x: Sequence[Any]
    y: Sequence[float]
    lo: Sequence[float] | None = None
    hi: Sequence[float] | None = None


@dataclass(frozen=True, kw_only=True)
class Figure:
    """A plot described as data; the HTML report renders it as inline SVG.

    ``kind`` is ``"line"`` (numeric x) or ``"bar"`` (categorical x). ``log_x``/``log_y`` give
    log axes (used for ROC curves at low false-positive rates).
    """

    title: str
    kind: str
    series: tuple[Series, ...]
    x_label: str = ""
    y_label: str = ""
    log_x: bool = False
    log_y: bool = False
    y_range: tuple[float, float] | None = None
    diagonal: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("line", "bar"):
            raise ValueError(f"unknown figure kind {self.kind!r}")
        object.__setattr__(self, "series", tuple(self.series))

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(
            {
                "title": self.title,
                "kind": self.kind,
                "x_label": self.x_label,
                "y_label": self.y_label,
                "log_x": self.log_x,
                "log_y": self.log_y,
                "y_range": self.y_range,
                "diagonal": self.diagonal,
                "series": [
                    {"name": s.name, "x": s.x, "y": s.y, "lo": s.lo, "hi": s.hi}
                    for s in self.series
                ],
            }
        )


class CheckStatus(enum.Enum):
    PASSED = "passed"  # ran, nothing at or above the gate
    FINDINGS = "findings"  # ran and produced findings
    SKIPPED = "skipped"  # did not apply (reason recorded)
    ERROR = "error"  # raised; recorded as an error finding, other checks still ran


@dataclass(kw_only=True)
class CheckResult:
    """What one check produced: findings, named metrics, figures and tables.

    ``metrics`` are flat ``name -> number`` (or small JSON values) so the policy can address them as
    ``<check>.<metric>``. ``tables`` are lists of row dicts shown in the HTML report.
    """

    check: str
    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    summary: str = ""
    status: CheckStatus = CheckStatus.PASSED
    skip_reason: str = ""
    duration_s: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def merge(self, other: CheckResult) -> CheckResult:
        """Combine two partial results of the same check (e.g. per-file scans)."""
        return CheckResult(
            check=self.check,
            findings=[*self.findings, *other.findings],
            metrics={**self.metrics, **other.metrics},
            figures=[*self.figures, *other.figures],
            tables={**self.tables, **other.tables},
            summary=" ".join(s for s in (self.summary, other.summary) if s),
            status=self.status,
            duration_s=self.duration_s + other.duration_s,
            params={**self.params, **other.params},
        )

    @property
    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def with_findings(self, findings: Iterable[Finding]) -> CheckResult:
        return replace(self, findings=list(findings))

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status.value,
            "skip_reason": self.skip_reason,
            "summary": self.summary,
            "duration_s": round(self.duration_s, 4),
            "params": _jsonable(self.params),
            "metrics": _jsonable(self.metrics),
            "findings": [f.to_dict() for f in self.findings],
            "figures": [f.to_dict() for f in self.figures],
            "tables": _jsonable(self.tables),
        }
