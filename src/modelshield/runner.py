"""The audit runner: select applicable checks, run each in isolation, gate with the policy.

>>> report = audit(model, data)            # doctest: +SKIP
>>> report.passed, [r.check for r in report.runs[0].results]
"""

from __future__ import annotations

import datetime as _dt
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelshield._io import file_sha256
from modelshield._version import __version__
from modelshield.checks.base import AuditContext, Check, EventFn
from modelshield.checks.registry import available_checks, declarations, load_errors
from modelshield.data.dataset import Dataset
from modelshield.errors import UserError
from modelshield.findings import CheckResult, CheckStatus, Finding, Severity
from modelshield.models.base import BaseModel
from modelshield.policy import GateResult, Policy

__all__ = ["AuditReport", "AuditRun", "audit", "run_check", "select_checks", "validate_policy"]

REPORT_SCHEMA_VERSION = "1.0"


@dataclass
class AuditRun:
    """The results for one model (a report may hold several, e.g. the demo)."""

    label: str
    model: dict[str, Any]
    data: dict[str, Any] | None
    results: list[CheckResult]
    gate: GateResult
    seed: int
    duration_s: float

    @property
    def passed(self) -> bool:
        return self.gate.passed

    def result(self, check: str) -> CheckResult | None:
        return next((r for r in self.results if r.check == check), None)

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "model": self.model,
            "data": self.data,
            "seed": self.seed,
            "duration_s": round(self.duration_s, 3),
            "passed": self.passed,
            "gate": self.gate.to_dict(),
            "results": [r.to_dict() for r in self.results],
        }


@dataclass
class AuditReport:
    runs: list[AuditRun]
    policy: Policy
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    environment: dict[str, Any] = field(default_factory=dict)
    title: str = "modelshield audit"

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.runs)

    @property
    def findings(self) -> list[Finding]:
        return [f for run in self.runs for f in run.findings]

    def severity_counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in reversed(Severity)}
        for f in self.findings:
            counts[f.severity.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "title": self.title,
            "created": self.created,
            "tool": {"name": "modelshield", "version": __version__},
            "environment": self.environment,
            "policy": self.policy.to_dict(),
            "passed": self.passed,
            "summary": {"severity_counts": self.severity_counts(), "runs": len(self.runs)},
            "runs": [r.to_dict() for r in self.runs],
        }


def environment() -> dict[str, Any]:
    import sklearn

    env = {"python": platform.python_version(), "platform": platform.platform(), "numpy": np.__version__,
           "scikit-learn": sklearn.__version__}
    try:
        import torch

        env["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        pass
    return env


def select_checks(
    names: Sequence[str] | None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    registry: Mapping[str, type[Check]] | None = None,
) -> list[Check]:
    """Instantiate the named checks (all available ones when ``names`` is ``None``)."""
    registry = available_checks() if registry is None else registry
    wanted = list(registry) if names is None else list(names)
    checks: list[Check] = []
    for name in wanted:
        if name not in registry:
            err = load_errors().get(name)
            extra = f" (it failed to load: {err})" if err else ""
            raise UserError(f"unknown check {name!r}{extra}; available: {', '.join(registry)}")
        checks.append(registry[name].from_options((options or {}).get(name, {})))
    return checks


def validate_policy(policy: Policy, registry: Mapping[str, type[Check]] | None = None) -> list[str]:
    """Check a policy against the checks there are (default: :func:`available_checks`): every check it
    names exists, every limit's metric and every threshold key is one the check declares
    (:func:`modelshield.checks.registry.declarations`). Raises :class:`~modelshield.errors.PolicyError`
    (exit 2, one line, did-you-mean); returns warnings for names that cannot be checked (plug-ins that
    declare nothing)."""
    found = available_checks() if registry is None else registry
    policy.check_names(set(found))
    return policy.check_declared(*declarations(found))


def run_check(check: Check, ctx: AuditContext, on_event: EventFn | None = None) -> CheckResult:
    """Run one check with timing, seeding and error capture. Never raises for a check's failure.

    A thin call of :meth:`Check.run <modelshield.checks.base.Check.run>`, which owns that workflow (so
    calling ``check.run(ctx)`` directly behaves the same)."""
    return check.run(ctx, on_event=on_event)


def audit(
    model: BaseModel | Any | None,
    data: Dataset | None = None,
    *,
    train: Dataset | None = None,
    checks: Sequence[str] | None = None,
    policy: Policy | None = None,
    seed: int = 0,
    quick: bool = False,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    model_path: str | Path | None = None,
    artifacts: Sequence[str | Path] = (),
    label: str | None = None,
    on_event: EventFn | None = None,
) -> AuditReport:
    """Audit one model: run every applicable check (or those named) and gate with ``policy``.

    ``model`` may be an adapter or any object :func:`modelshield.load_model` wraps.
    """
    run = audit_run(model, data, train=train, checks=checks, policy=policy, seed=seed, quick=quick,
                    options=options, model_path=model_path, artifacts=artifacts, label=label, on_event=on_event)
    return AuditReport(runs=[run], policy=policy or Policy.default(), environment=environment())


def audit_run(
    model: BaseModel | Any | None,
    data: Dataset | None = None,
    *,
    train: Dataset | None = None,
    checks: Sequence[str] | None = None,
    policy: Policy | None = None,
    seed: int = 0,
    quick: bool = False,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    model_path: str | Path | None = None,
    artifacts: Sequence[str | Path] = (),
    label: str | None = None,
    on_event: EventFn | None = None,
) -> AuditRun:
    from modelshield.data.loaders import check_model_width
    from modelshield.models.wrap import wrap_object

    policy = policy or Policy.default()
    registry = available_checks()
    policy_warnings = validate_policy(policy, registry)
    if isinstance(checks, str):  # checks="baseline,fairness": names, not characters
        checks = [c.strip() for c in checks.split(",") if c.strip()]
    if isinstance(model, (str, Path)):
        raise UserError(f"audit() takes a loaded model, not the path {str(model)!r}: call "
                        "modelshield.load_model(path) first (it scans and verifies the file)")
    for name, ds in (("data", data), ("train", train)):
        if ds is not None and not isinstance(ds, Dataset):
            raise UserError(f"audit() takes a Dataset as {name}, not {type(ds).__name__}: call "
                            "modelshield.load_dataset(path, target=...) or build one with Dataset(X=..., y=...)")
    if model is not None and not isinstance(model, BaseModel):
        model = wrap_object(model)
    for ds in (data, train):
        if ds is not None and model is not None:
            check_model_width(ds, model)
    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in policy.checks.items()}
    for k, v in (options or {}).items():
        if k not in registry:  # a typo in --option CHECK.KEY=VALUE must not be silently ignored
            raise UserError(f"--option {k}.{next(iter(v), 'KEY')}: unknown check {k!r}; available: "
                            f"{', '.join(registry)}")
        merged.setdefault(k, {}).update(v)
    selected = select_checks(checks, merged, registry)
    path = Path(model_path) if model_path else None
    arts = [Path(a) for a in artifacts] or ([path] if path else [])
    ctx = AuditContext(model=model, data=data, train=train, model_path=path, artifacts=arts, seed=seed,
                       quick=quick, policy=policy, options=merged)
    t0 = time.perf_counter()
    results = [run_check(c, ctx, on_event) for c in selected]
    for name, err in load_errors().items():
        if checks is None or name in checks:
            results.append(CheckResult(
                check=name, status=CheckStatus.ERROR, summary=f"plug-in failed to load: {err}",
                findings=[Finding(check=name, severity=Severity.MEDIUM, rule_id=f"{name}.load-error",
                                  title=f"Check plug-in {name!r} failed to load", detail=err)]))
    model_info: dict[str, Any] = model.describe() if model is not None else {}
    if path is not None and path.is_file():
        model_info["sha256"] = file_sha256(path)
        model_info["path"] = str(path)
    data_info = None
    if data is not None:
        data_info = data.describe() | {"sha256": data.sha256()}
        if train is not None:
            data_info["train"] = train.describe() | {"sha256": train.sha256()}
    gate = policy.evaluate(results)
    gate.warnings[:0] = policy_warnings
    return AuditRun(
        label=label or (path.name if path else model_info.get("adapter", "model")),
        model=model_info,
        data=data_info,
        results=results,
        gate=gate,
        seed=seed,
        duration_s=time.perf_counter() - t0,
    )
