"""The audit runner: select applicable checks, run each in isolation, gate with the policy.

>>> report = audit(model, data)            # doctest: +SKIP
>>> report.passed, [r.check for r in report.runs[0].results]
"""

from __future__ import annotations

import datetime as _dt
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from modelshield._io import file_sha256
from modelshield._version import __version__
from modelshield.checks.base import AuditContext, Check, EventFn
from modelshield.checks.registry import available_checks, declarations, load_errors
from modelshield.data.dataset import Dataset
from modelshield.errors import DataError, UserError
from modelshield.findings import CheckResult, CheckStatus, Finding, Severity
from modelshield.models.base import BaseModel
from modelshield.models.wrap import wrap_object
from modelshield.policy import GateResult, Policy
from modelshield.protect.loader import load_model

__all__ = ["AuditOptions", "AuditReport", "AuditRun", "audit", "audit_check", "audit_sources", "audit_targets",
           "merge_options", "run_check", "select_checks", "validate_policy"]

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


@dataclass(frozen=True, kw_only=True)
class AuditOptions:
    """How to run an audit, as plain data (the CLI's flags, a service's JSON, a Python caller's keywords).

    ``checks`` (names; ``None``: every applicable one), ``policy`` (``None``: the built-in one), ``seed``,
    ``quick`` and ``options`` (per-check options, ``{"robustness": {"eps": [0.1]}}``, merged over the
    policy's) steer the run. ``target``, ``sensitive``, ``features`` and ``immutable`` say how
    :func:`audit_sources` reads data files; ``input_shape`` and ``headers`` how it loads a model file or
    an http(s) endpoint. ``on_event`` receives the checks' progress events."""

    checks: Sequence[str] | None = None
    policy: Policy | None = None
    seed: int = 0
    quick: bool = False
    options: Mapping[str, Mapping[str, Any]] | None = None
    target: str | None = None
    sensitive: Sequence[str] = ()
    features: Sequence[str] | None = None
    immutable: Sequence[str] = ()
    input_shape: tuple[int, ...] | None = None
    headers: Mapping[str, str] | None = None
    on_event: EventFn | None = None

    def with_(self, **changes: Any) -> AuditOptions:
        return replace(self, **changes)

    def validate(self) -> AuditOptions:
        """Fail now, before any work, where an audit with these options would: a policy naming an unknown
        check, metric or threshold (:func:`validate_policy`), an unknown check in ``checks``. Returns self."""
        if self.policy is not None:
            validate_policy(self.policy)
        if self.checks is not None:
            select_checks(self.checks, {})
        return self


def _merge_config(config: AuditOptions | None, keywords: dict[str, Any]) -> AuditOptions:
    """``config`` or the old keywords, never both (a keyword differing from its default next to ``config``
    would otherwise be silently ignored)."""
    defaults = {f.name: f.default for f in fields(AuditOptions)}
    given = {k: v for k, v in keywords.items() if v is not defaults[k] and v != defaults[k]}
    if config is None:
        return AuditOptions(**given)
    if given:
        raise UserError(f"give either config=AuditOptions(...) or the keyword arguments ({', '.join(given)}), "
                        "not both")
    return config


def environment() -> dict[str, Any]:
    """Python, platform and the numeric libraries' versions, from package metadata (nothing is imported:
    a cached re-audit never pays for torch or scikit-learn)."""
    env: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for key in ("numpy", "scikit-learn", "torch"):
        try:
            env[key] = version(key)
        except PackageNotFoundError:  # pragma: no cover - torch and scikit-learn are core dependencies
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


def validate_policy(policy: Policy, registry: Mapping[str, type[Check]] | None = None, *,
                    build_options: bool = False) -> list[str]:
    """Check a policy against the checks there are (default: :func:`available_checks`): every check it
    names exists, every limit's metric and every threshold key is one the check declares
    (:func:`modelshield.checks.registry.declarations`). Raises :class:`~modelshield.errors.PolicyError`
    (exit 2, one line, did-you-mean); returns warnings for names that cannot be checked (plug-ins that
    declare nothing). ``build_options``: also build each check the policy configures from its options, as
    an audit would (a bad option name or value raises now)."""
    found = available_checks() if registry is None else registry
    policy.check_names(set(found))
    warnings = policy.check_declared(*declarations(found))
    if build_options:
        for name, opts in policy.checks.items():
            found[name].from_options(opts)
    return warnings


def merge_options(policy: Policy, options: Mapping[str, Mapping[str, Any]] | None,
                  registry: Mapping[str, type[Check]]) -> dict[str, dict[str, Any]]:
    """The policy's per-check options with ``options`` over them (key by key). Options for a check that is
    not in ``registry`` are a :class:`~modelshield.errors.UserError`: a typo is never silently ignored."""
    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in policy.checks.items()}
    for k, v in (options or {}).items():
        if k not in registry:
            raise UserError(f"option {k}.{next(iter(v), 'KEY')} is for an unknown check {k!r}; available: "
                            f"{', '.join(registry)}", cli_hint="--option takes CHECK.KEY=VALUE")
        merged.setdefault(k, {}).update(v)
    return merged


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
    config: AuditOptions | None = None,
) -> AuditReport:
    """Audit one model: run every applicable check (or those named) and gate with ``policy``.

    ``model`` may be an adapter or any object :func:`modelshield.load_model` wraps. The run's settings come
    from the keywords or from one :class:`AuditOptions` (``config=``), not both.
    """
    cfg = _merge_config(config, {"checks": checks, "policy": policy, "seed": seed, "quick": quick,
                                 "options": options, "on_event": on_event})
    run = audit_run(model, data, train=train, config=cfg, model_path=model_path, artifacts=artifacts, label=label)
    return AuditReport(runs=[run], policy=cfg.policy or Policy.default(), environment=environment())


def _is_url(source: Any) -> bool:
    return isinstance(source, str) and source.startswith(("http://", "https://"))


def audit_sources(
    model: str | Path | BaseModel | Any | None,
    data: str | Path | Dataset | None = None,
    *,
    train: str | Path | Dataset | None = None,
    config: AuditOptions | None = None,
    load: Callable[..., BaseModel] | None = None,
    note: Callable[[str], None] | None = None,
    on_run: Callable[[str], None] | None = None,
) -> AuditReport:
    """Audit a model given by path, http(s) URL or object, on data given by path or :class:`Dataset`.

    Data files are read with ``config``'s ``target``/``sensitive``/``features``/``immutable`` columns; a
    model file or endpoint is loaded with ``load`` (default :func:`modelshield.load_model`: verify ->
    decrypt -> scan -> load; the CLI passes its loading flags' loader), with ``config.input_shape`` and,
    for an endpoint, ``config.headers``; an endpoint is probed once on the data so that a wrong URL or
    missing credentials fail before any check. ``note`` receives one-line progress messages, ``on_run``
    the run's label before the checks start.
    """
    # lazy: keeps data.loaders off CLI start-up (the CLI imports this module)
    from modelshield.data.loaders import load_dataset

    cfg = config or AuditOptions()
    if data is None and (cfg.target or cfg.sensitive or cfg.features):
        raise UserError("label, sensitive and feature columns need a data set",
                        cli_hint="--target/--sensitive/--features need --data")

    def read(src: str | Path | Dataset | None) -> Dataset | None:
        if src is None or isinstance(src, Dataset):
            return src
        return load_dataset(Path(src), target=cfg.target, sensitive=list(cfg.sensitive),
                            features=list(cfg.features) if cfg.features else None, immutable=list(cfg.immutable))

    ds, tr = read(data), read(train)
    remote = _is_url(model)
    if cfg.headers and not remote:
        raise UserError("HTTP headers apply to http(s):// endpoints only",
                        cli_hint="--header applies to http(s):// endpoints only")
    path: Path | None = None
    if isinstance(model, (str, Path)):
        if note is not None:
            note(f"loading {model}")
        loader = load or load_model
        if remote:
            width = ds.n_features if ds is not None else None
            m = loader(model, headers=dict(cfg.headers or {}) or None,
                     input_shape=cfg.input_shape or ((width,) if width else None))
            if ds is not None:
                m.predict_proba(ds.X[:1])  # fail fast on a wrong URL or missing credentials
        else:
            path = Path(model)
            m = loader(model, input_shape=cfg.input_shape)
        label = path.name if path is not None else str(model)
    else:
        m, label = model, None
    if on_run is not None and label is not None:
        on_run(label)
    run = audit_run(m, ds, train=tr, config=cfg, model_path=path, label=label)
    return AuditReport(runs=[run], policy=cfg.policy or Policy.default(), environment=environment())


def audit_targets(
    targets: Iterable[Any],
    *,
    config: AuditOptions | None = None,
    title: str = "modelshield audit",
    on_run: Callable[[str], None] | None = None,
) -> AuditReport:
    """Audit several prepared targets (e.g. :func:`modelshield.demo.build_demo`'s) into one report.

    Each target has ``model``, ``data``, ``train``, ``checks`` (its own selection; ``None``: all),
    ``model_path``, ``artifacts`` and ``label``. ``config.checks`` narrows every target's selection; a
    target none of whose checks is named is left out."""
    cfg = config or AuditOptions()
    runs = []
    for t in targets:
        wanted = t.checks if cfg.checks is None else [c for c in cfg.checks if t.checks is None or c in t.checks]
        if wanted is not None and not wanted:
            continue  # the selection names none of this target's checks
        if on_run is not None:
            on_run(t.label)
        runs.append(audit_run(t.model, t.data, train=t.train, config=cfg.with_(checks=wanted),
                              model_path=t.model_path, artifacts=t.artifacts, label=t.label))
    return AuditReport(runs=runs, policy=cfg.policy or Policy.default(), environment=environment(), title=title)


def audit_check(
    model: BaseModel | Any,
    data: Dataset | None,
    check: str,
    *,
    train: Dataset | None = None,
    options: Mapping[str, Any] | None = None,
    seed: int = 0,
    quick: bool = False,
    model_path: str | Path | None = None,
    what: str | None = None,
) -> AuditReport:
    """Run the one check named ``check`` (with ``options``) as an audit would (default policy), for a command
    that shows the check's tables itself: ``report.runs[0].results[0]``. A check that failed raises its
    error's message as a one-line :class:`~modelshield.errors.DataError`; one that does not apply raises
    ``"<what> does not apply: <reason>"`` (``what`` defaults to the check's name)."""
    run = audit_run(model, data, train=train, model_path=model_path,
                    config=AuditOptions(checks=[check], seed=seed, quick=quick, options={check: dict(options or {})}))
    res = run.result(check)
    assert res is not None  # audit_run returns one result per selected check
    if res.status is CheckStatus.ERROR:
        detail = res.findings[0].detail if res.findings else res.summary
        raise DataError(detail.split(": ", 1)[1] if detail.startswith(("DataError", "UserError")) else detail)
    if res.status is CheckStatus.SKIPPED:
        raise DataError(f"{what or check} does not apply: {res.skip_reason}")
    return AuditReport(runs=[run], policy=Policy.default(), environment=environment())


def audit_run(
    model: BaseModel | Any | None,
    data: Dataset | None = None,
    *,
    train: Dataset | None = None,
    config: AuditOptions | None = None,
    model_path: str | Path | None = None,
    artifacts: Sequence[str | Path] = (),
    label: str | None = None,
) -> AuditRun:
    """One model's run under ``config`` (checks, policy, seed, quick, options, on_event; see
    :class:`AuditOptions`): what :func:`audit`, :func:`audit_sources`, :func:`audit_targets` and a registry
    audit's units share. ``model_path``/``artifacts`` are the files the artifact check scans."""
    # lazy: keeps data.loaders off CLI start-up (the CLI imports this module)
    from modelshield.data.loaders import check_model_width
    cfg = config or AuditOptions()
    checks, seed, quick, options, on_event = cfg.checks, cfg.seed, cfg.quick, cfg.options, cfg.on_event
    policy = cfg.policy or Policy.default()
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
    merged = merge_options(policy, options, registry)
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
