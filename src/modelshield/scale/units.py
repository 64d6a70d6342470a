"""The unit of work of a registry audit: one check on one model, as plain picklable data.

A :class:`WorkUnit` names files, not objects: the worker (a local call, a pool process or a Ray task) loads
the model through the secure loader (:func:`modelshield.protect.loader.load_model`) and the data through
:func:`modelshield.data.loaders.load_dataset`, runs the one check with :func:`modelshield.runner.audit_run`
and returns a :class:`UnitOutcome` whose result is the check's JSON form (``CheckResult.to_dict()``). Every
executor and the cache hand back the same JSON, and :func:`result_from_dict` rebuilds the result from it, so a
report is the same whichever path a result took.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelshield._io import file_sha256
from modelshield.data.loaders import load_dataset
from modelshield.errors import ModelShieldError, SecurityError
from modelshield.findings import CheckResult, CheckStatus, Figure, Finding, Series, Severity
from modelshield.policy import Policy
from modelshield.protect.loader import load_model
from modelshield.runner import AuditOptions, audit_run

__all__ = ["DataSpec", "UnitOutcome", "WorkUnit", "error_result", "result_from_dict", "run_unit"]


@dataclass(frozen=True, kw_only=True)
class DataSpec:
    """The data a registry records for a model: held-out ``data`` (and ``train``) files and their columns."""

    data: str
    train: str | None = None
    target: str | None = None
    sensitive: tuple[str, ...] = ()
    features: tuple[str, ...] | None = None

    def files(self) -> list[str]:
        return [p for p in (self.data, self.train) if p]

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "train": self.train, "target": self.target, "sensitive": list(self.sensitive),
                "features": list(self.features) if self.features is not None else None}


@dataclass(frozen=True, kw_only=True)
class WorkUnit:
    """One check on one model. Only strings, numbers and plain containers: it crosses process boundaries."""

    label: str
    check: str
    model_path: str
    artifacts: tuple[str, ...] = ()
    data: DataSpec | None = None
    policy: Mapping[str, Any] = field(default_factory=dict)  # Policy.to_dict()
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # --option overrides
    seed: int = 0
    quick: bool = False
    trust: bool = False
    loader: Mapping[str, Any] = field(default_factory=dict)  # more load_model keywords (keys, signatures)
    load_model: bool = True  # False: the check needs no model (or the format is scanned, not loaded)


@dataclass(kw_only=True)
class UnitOutcome:
    """What a worker hands back: the check's result as JSON, what it knew of the model and data, and
    ``load_refused`` when the secure loader refused the model for a security reason."""

    result: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] | None = None
    load_refused: str | None = None
    error: str | None = None  # a fault outside the check (unreadable model, bad data, timeout, crash)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UnitOutcome:
        return cls(result=dict(d["result"]), model=dict(d.get("model") or {}), data=d.get("data"),
                   load_refused=d.get("load_refused"), error=d.get("error"))


def error_result(check: str, message: str, *, rule: str = "error", detail: str = "") -> dict[str, Any]:
    """The JSON of an ``error`` result for a fault outside the check's own step (it never ran, or was killed)."""
    finding = Finding(check=check, severity=Severity.HIGH, rule_id=f"{check}.{rule}",
                      title=f"Check {check!r} could not complete", detail=message,
                      evidence={"traceback": detail} if detail else {},
                      remediation="Fix the model or data file, or allow each check more time; the rest of the registry "
                                  "was audited.")
    return CheckResult(check=check, status=CheckStatus.ERROR, summary=message, findings=[finding]).to_dict()


def run_unit(unit: WorkUnit) -> UnitOutcome:
    """Run ``unit`` in this process. Never raises for a fault of the model, the data or the check: each
    becomes an error outcome. (:class:`KeyboardInterrupt` still propagates.)"""
    model = None
    refused = None
    try:
        if unit.load_model:
            try:
                model = load_model(unit.model_path, **{**dict(unit.loader), "trust": unit.trust})
            except SecurityError as exc:  # fail closed: the model is not loaded; the refusal fails its gate
                refused = f"{type(exc).__name__}: {exc}"
        ds = tr = None
        if unit.data is not None:
            kw = {"target": unit.data.target, "sensitive": list(unit.data.sensitive),
                  "features": list(unit.data.features) if unit.data.features is not None else None}
            ds = load_dataset(unit.data.data, **kw)
            tr = load_dataset(unit.data.train, **kw) if unit.data.train else None
        policy = Policy.from_mapping({k: v for k, v in unit.policy.items() if k != "source"},
                                     source=str(unit.policy.get("source", "<mapping>")))
        config = AuditOptions(checks=[unit.check], policy=policy, seed=unit.seed, quick=unit.quick,
                              options={k: dict(v) for k, v in unit.options.items()})
        run = audit_run(model, ds, train=tr, config=config, model_path=unit.model_path, artifacts=list(unit.artifacts),
                        label=unit.label)
    except (ModelShieldError, OSError, ValueError) as exc:  # unreadable model or data: this unit is an error row
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return UnitOutcome(result=error_result(unit.check, msg, rule="unreadable"), error=msg,
                           load_refused=refused)
    except Exception as exc:  # a fault outside the check's step (the step's own errors are captured by Check.run)
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return UnitOutcome(result=error_result(unit.check, msg, detail=traceback.format_exc(limit=20)), error=msg,
                           load_refused=refused)
    result = next(r for r in run.results if r.check == unit.check)
    return UnitOutcome(result=json.loads(json.dumps(result.to_dict(), default=str)), model=_plain(run.model),
                       data=_plain(run.data) if run.data is not None else None, load_refused=refused)


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def result_from_dict(d: Mapping[str, Any]) -> CheckResult:
    """Rebuild a :class:`CheckResult` from its :meth:`~CheckResult.to_dict` JSON (round trip: same JSON)."""
    figures = [Figure(title=f["title"], kind=f["kind"], x_label=f.get("x_label", ""), y_label=f.get("y_label", ""),
                      log_x=bool(f.get("log_x")), log_y=bool(f.get("log_y")),
                      y_range=tuple(f["y_range"]) if f.get("y_range") else None, diagonal=bool(f.get("diagonal")),
                      series=tuple(Series(name=s["name"], x=s["x"], y=s["y"], lo=s.get("lo"), hi=s.get("hi"))
                                   for s in f.get("series", ())))
               for f in d.get("figures", ())]
    return CheckResult(check=d["check"], status=CheckStatus(d["status"]), skip_reason=d.get("skip_reason", ""),
                       summary=d.get("summary", ""), duration_s=float(d.get("duration_s", 0.0)),
                       params=dict(d.get("params") or {}), metrics=dict(d.get("metrics") or {}),
                       findings=[Finding.from_dict(f) for f in d.get("findings", ())], figures=figures,
                       tables=dict(d.get("tables") or {}))


def content_key(parts: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``parts`` (the cache key of a unit)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_digest(path: str | Path) -> str:
    return file_sha256(Path(path))
