"""The policy gate: severity threshold plus per-metric limits, read from YAML.

Default policy (``modelshield policy show`` prints it)::

    version: 1
    fail_on: high              # any finding at or above this severity fails the gate
    errors_fail: true          # a check that crashed fails the gate (fail closed)
    missing_metrics: warn      # a limit whose metric was not computed: warn | fail
    limits: []                 # e.g. "robustness.robust_accuracy >= 0.5"
    thresholds: {}             # grading thresholds checks read, e.g.
                               #   fairness.demographic_parity_difference.high: 0.2
    checks: {}                 # per-check options, e.g. robustness: {eps: [0.05, 0.1]}
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelshield.errors import InputNotFoundError, PolicyError
from modelshield.findings import CheckStatus, Severity

__all__ = ["DEFAULT_POLICY_YAML", "GateResult", "Limit", "LimitOutcome", "Policy", "did_you_mean", "load_policy",
           "matches_declared"]

DEFAULT_POLICY_YAML = """\
# modelshield default policy
version: 1
# Any finding at or above this severity fails the gate (critical, high, medium, low, info).
fail_on: high
# A check that crashed fails the gate: an audit that could not look is not a pass.
errors_fail: true
# A limit whose metric was not computed (check skipped): warn or fail.
missing_metrics: warn
# Per-metric limits, "<check>.<metric> <op> <number>", op one of >= > <= < == !=.
limits: []
# Grading thresholds the checks read (defaults live in each check; override here).
thresholds: {}
# Per-check options, e.g.  robustness: {eps: [0.05, 0.1]}
checks: {}
"""

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_LIMIT_RE = re.compile(r"^\s*([A-Za-z_][\w]*)\.([\w.\-]+)\s*(>=|<=|==|!=|>|<)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Limit:
    check: str
    metric: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Limit:
        m = _LIMIT_RE.match(str(text))
        if not m:
            raise PolicyError(
                f"bad limit {text!r}: expected '<check>.<metric> <op> <number>', "
                "e.g. 'robustness.robust_accuracy >= 0.5'"
            )
        try:
            value = float(m.group(4))
        except ValueError:
            raise PolicyError(f"bad number in limit {text!r}") from None
        return cls(m.group(1), m.group(2), m.group(3), value)

    def __str__(self) -> str:
        return f"{self.check}.{self.metric} {self.op} {self.value:g}"

    def holds(self, actual: float) -> bool:
        return _OPS[self.op](actual, self.value)


@dataclass(frozen=True)
class LimitOutcome:
    limit: Limit
    actual: float | None
    passed: bool | None  # None: metric not computed

    def to_dict(self) -> dict[str, Any]:
        return {"limit": str(self.limit), "actual": self.actual, "passed": self.passed}


@dataclass
class GateResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    limits: list[LimitOutcome] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "warnings": self.warnings,
            "limits": [o.to_dict() for o in self.limits],
        }


@dataclass(frozen=True, kw_only=True)
class Policy:
    fail_on: Severity = Severity.HIGH
    errors_fail: bool = True
    missing_metrics: str = "warn"
    limits: tuple[Limit, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)
    checks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "default"

    @classmethod
    def default(cls) -> Policy:
        return cls.from_mapping(_yaml_load(DEFAULT_POLICY_YAML, "default"), source="default")

    @classmethod
    def from_mapping(cls, doc: Any, source: str = "<mapping>") -> Policy:
        if doc is None:
            doc = {}
        if not isinstance(doc, Mapping):
            raise PolicyError(f"policy {source}: expected a mapping at the top level")
        known = {"version", "fail_on", "errors_fail", "missing_metrics", "limits", "thresholds", "checks"}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise PolicyError(f"policy {source}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        if doc.get("version", 1) != 1:
            raise PolicyError(f"policy {source}: unsupported version {doc.get('version')!r} (expected 1)")
        try:
            fail_on = Severity.parse(doc.get("fail_on", "high"))
        except ValueError as exc:
            raise PolicyError(f"policy {source}: fail_on: {exc}") from None
        missing = doc.get("missing_metrics", "warn")
        if missing not in ("warn", "fail"):
            raise PolicyError(f"policy {source}: missing_metrics must be 'warn' or 'fail'")
        limits_raw = doc.get("limits") or []
        if not isinstance(limits_raw, list):
            raise PolicyError(f"policy {source}: limits must be a list of strings")
        thresholds = doc.get("thresholds") or {}
        if not isinstance(thresholds, Mapping) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in thresholds.values()
        ):
            raise PolicyError(f"policy {source}: thresholds must map names to numbers")
        checks = doc.get("checks") or {}
        if not isinstance(checks, Mapping) or not all(isinstance(v, Mapping) for v in checks.values()):
            raise PolicyError(f"policy {source}: checks must map check names to option mappings")
        errors_fail = doc.get("errors_fail", True)
        if not isinstance(errors_fail, bool):
            raise PolicyError(f"policy {source}: errors_fail must be true or false")
        return cls(
            fail_on=fail_on,
            errors_fail=errors_fail,
            missing_metrics=missing,
            limits=tuple(Limit.parse(x) for x in limits_raw),
            thresholds={str(k): float(v) for k, v in thresholds.items()},
            checks={str(k): dict(v) for k, v in checks.items()},
            source=source,
        )

    def check_names(self, known: set[str] | frozenset[str]) -> None:
        """Raise :class:`PolicyError` when a limit or ``checks:`` entry names a check that does not exist."""
        for name in [*(lim.check for lim in self.limits), *self.checks]:
            if name not in known:
                raise PolicyError(f"policy {self.source}: unknown check {name!r}{did_you_mean(name, known)} "
                                  f"(available: {', '.join(sorted(known))})")

    def check_declared(self, metrics: Mapping[str, Collection[str] | None],
                       thresholds: Mapping[str, Collection[str] | None]) -> list[str]:
        """Check every limit's metric and every threshold key against what the checks declare (check name ->
        declared names, ``{placeholder}`` patterns allowed; ``None``: the check declares none). A name no
        check declares is a :class:`PolicyError` (one line, with a did-you-mean): a typo must not silently
        disable a gate. Returns warnings for names that cannot be checked (a check without declarations)."""
        warnings: list[str] = []
        for lim in self.limits:
            declared = metrics.get(lim.check)
            if declared is None:
                warnings.append(f"check {lim.check!r} does not declare its metrics: limit '{lim}' is not checked "
                                "for typos")
            elif not matches_declared(lim.metric, declared):
                raise PolicyError(f"policy {self.source}: limit '{lim}': check {lim.check!r} has no metric "
                                  f"{lim.metric!r}{did_you_mean(lim.metric, declared)}; its metrics are: "
                                  f"{_listing(declared)}")
        for key in self.thresholds:
            check, dot, rest = key.partition(".")
            if check not in thresholds:
                raise PolicyError(f"policy {self.source}: threshold {key!r}: unknown check {check!r}"
                                  f"{did_you_mean(check, thresholds)} (expected '<check>.<metric>.<level>')")
            declared = thresholds[check]
            if declared is None:
                warnings.append(f"check {check!r} does not declare its thresholds: threshold {key!r} is not "
                                "checked for typos")
            elif not dot or not matches_declared(rest, declared):
                known = ", ".join(f"{check}.{d}" for d in declared) or "(none)"
                raise PolicyError(f"policy {self.source}: unknown threshold {key!r}"
                                  f"{did_you_mean(rest, declared, prefix=check + '.')}; check {check!r} reads: "
                                  f"{known}")
        return warnings

    def threshold(self, key: str, default: float) -> float:
        return float(self.thresholds.get(key, default))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "fail_on": self.fail_on.value,
            "errors_fail": self.errors_fail,
            "missing_metrics": self.missing_metrics,
            "limits": [str(x) for x in self.limits],
            "thresholds": dict(self.thresholds),
            "checks": {k: dict(v) for k, v in self.checks.items()},
            "source": self.source,
        }

    def evaluate(self, results: list[Any]) -> GateResult:
        """Decide pass/fail from a list of :class:`~modelshield.findings.CheckResult`."""

        gate = GateResult(passed=True)
        for r in results:
            if r.status is CheckStatus.ERROR and self.errors_fail:
                gate.reasons.append(f"check {r.check} failed to run")
            for f in r.findings:
                if f.severity >= self.fail_on and not f.rule_id.endswith(".error"):
                    gate.reasons.append(f"{f.severity.value} finding in {r.check}: {f.title}")
        metrics = {(r.check, k): v for r in results for k, v in r.metrics.items()}
        ran = {r.check: r for r in results if r.status in (CheckStatus.PASSED, CheckStatus.FINDINGS)}
        for lim in self.limits:
            actual = metrics.get((lim.check, lim.metric))
            if lim.check in ran and (lim.check, lim.metric) not in metrics:
                emitted = ran[lim.check].metrics
                gate.limits.append(LimitOutcome(lim, None, False))
                gate.reasons.append(f"limit names unknown metric {lim.check}.{lim.metric}"
                                    f"{did_you_mean(lim.metric, emitted)} (the check ran; its metrics are: "
                                    f"{_listing(emitted)})")
                continue
            if isinstance(actual, (int, float)) and not isinstance(actual, bool):
                ok = lim.holds(float(actual))
                gate.limits.append(LimitOutcome(lim, float(actual), ok))
                if not ok:
                    gate.reasons.append(f"limit failed: {lim} (actual {float(actual):.4g})")
            else:
                gate.limits.append(LimitOutcome(lim, None, None))
                msg = f"limit not evaluated: {lim} (metric not computed)"
                (gate.reasons if self.missing_metrics == "fail" else gate.warnings).append(msg)
        gate.passed = not gate.reasons
        return gate


_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def _pattern(declared: str) -> re.Pattern[str]:
    """A declared name as a regex: literal text, each ``{placeholder}`` any non-empty text."""
    parts = _PLACEHOLDER.split(declared)
    return re.compile("".join(re.escape(p) + ("(.+)" if i < len(parts) - 1 else "") for i, p in enumerate(parts)))


def matches_declared(name: str, declared: Collection[str]) -> bool:
    """Whether ``name`` is one of the ``declared`` names (``{placeholder}`` matching any non-empty text)."""
    return any(_pattern(d).fullmatch(name) for d in declared)


def _instances(name: str, declared: Collection[str]) -> list[str]:
    """Each declared name as it could be spelled for ``name``: a placeholder segment between dots takes the
    text ``name`` has there (``{attribute}.x`` -> ``sex.x`` for ``sex.y``), so a misspelled metric of a
    sensitive attribute is compared with the right spelling, not with the pattern."""
    got = name.split(".")
    out: list[str] = []
    for d in declared:
        segs = d.split(".")
        if _PLACEHOLDER.search(d) and len(segs) == len(got):
            out.append(".".join(g if _PLACEHOLDER.fullmatch(s) else s for s, g in zip(segs, got, strict=True)))
        else:
            out.append(d)
    return out


def did_you_mean(name: str, declared: Collection[str], prefix: str = "") -> str:
    """`` (did you mean 'x'?)`` for the declared names closest to ``name``, or ``""``."""
    spelled = _instances(name, declared)
    # same letters in another order or case (a swap in a short name: 'r2' -> '2r'), then the closest by ratio
    close = [c for c in spelled if sorted(c.lower()) == sorted(name.lower())][:1]
    close += [c for c in difflib.get_close_matches(name, spelled, n=2, cutoff=0.6) if c not in close]
    close = close[:2]
    return f" (did you mean {' or '.join(repr(prefix + c) for c in close)}?)" if close else ""


def _listing(names: Collection[str], limit: int = 40) -> str:
    shown = sorted(names)
    rest = f", … and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + rest


def _yaml_load(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).replace("\n", " ")
        raise PolicyError(f"policy {source} is not valid YAML: {first}") from None


def load_policy(path: str | Path | None) -> Policy:
    """Read a policy file (``None`` gives the default)."""
    if path is None:
        return Policy.default()
    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"policy file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy {p}: {exc}") from None
    return Policy.from_mapping(_yaml_load(text, str(p)), source=str(p))
