"""Registry audits: every model of a registry, each check on each model a unit of work handed to an
executor, unchanged units answered from the results cache, the results merged per model in a fixed order.

>>> from modelshield.scale import audit_registry, make_executor, write_outputs
>>> with make_executor("processes", workers=2) as ex:                          # doctest: +SKIP
...     result = audit_registry("models/", executor=ex, cache=ResultCache("cache.sqlite"))
>>> write_outputs(result, "audit-out")                                          # doctest: +SKIP

Determinism: a unit's result depends only on its inputs (the check seeds from the audit seed, and each unit
builds its own context), every result takes the same JSON round trip whether it came from this process, a
worker, Ray or the cache, and results are merged in registry order then check order. So the same seed gives
the same report whatever the executor and the number of workers (only timing fields differ).
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelshield._io import write_files_safely
from modelshield._version import __version__
from modelshield.checks.registry import available_checks
from modelshield.errors import OutputError
from modelshield.findings import CheckResult, CheckStatus, Finding, Severity
from modelshield.policy import Policy
from modelshield.report.write import report_sarif, write_reports
from modelshield.runner import AuditReport, AuditRun, environment, merge_options, select_checks, validate_policy
from modelshield.scale.cache import ResultCache
from modelshield.scale.executors import Executor, LocalExecutor, Outcome
from modelshield.scale.sources import RegistryModel, discover
from modelshield.scale.units import (
    UnitOutcome,
    WorkUnit,
    content_key,
    error_result,
    file_digest,
    result_from_dict,
    run_unit,
)

__all__ = ["ModelRow", "RegistryAudit", "SUMMARY_SCHEMA", "audit_registry", "unit_key", "write_outputs"]

SUMMARY_SCHEMA = "modelshield-registry-summary/1"
#: The check every registry audit runs, whatever --checks says: each model is scanned.
ALWAYS = "artifact"

ProgressFn = Callable[[int, int, str], None]


@dataclass
class ModelRow:
    """One model's line in the summary."""

    name: str
    path: str
    status: str  # pass | fail | error
    findings: int = 0
    max_severity: str | None = None
    cached: bool = False  # every result of this model came from the cache
    cached_checks: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    error: str | None = None
    note: str = ""
    report: str | None = None  # per-model HTML report, relative to the output folder

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "status": self.status, "findings": self.findings,
                "max_severity": self.max_severity, "cached": self.cached, "cached_checks": self.cached_checks,
                "reasons": self.reasons, "error": self.error, "note": self.note, "report": self.report}


@dataclass
class RegistryAudit:
    source: str
    rows: list[ModelRow]
    reports: list[AuditReport]
    policy: Policy
    executor: dict[str, Any]
    checks: list[str]
    seed: int
    wall_s: float = 0.0
    cache: dict[str, Any] | None = None
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))

    @property
    def passed(self) -> bool:
        """Every model passed the gate (an error row fails it when the policy's ``errors_fail`` is on)."""
        return all(r.status == "pass" or (r.status == "error" and not self.policy.errors_fail) for r in self.rows)

    def counts(self) -> dict[str, int]:
        out = {"models": len(self.rows), "pass": 0, "fail": 0, "error": 0, "cached": 0}
        for r in self.rows:
            out[r.status] += 1
            out["cached"] += int(r.cached)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SUMMARY_SCHEMA,
            "tool": {"name": "modelshield", "version": __version__},
            "created": self.created,
            "source": self.source,
            "policy": self.policy.source,
            "checks": self.checks,
            "seed": self.seed,
            "executor": self.executor,
            "cache": self.cache,
            "wall_s": round(self.wall_s, 3),
            "passed": self.passed,
            "counts": self.counts(),
            "models": [r.to_dict() for r in self.rows],
        }


def unit_key(unit: WorkUnit, digests: Mapping[str, str]) -> str:
    """The cache key of ``unit``: content of its files (``digests``: path -> SHA-256), the check and its options,
    the policy's thresholds and check options, seed, quick, trust and the modelshield version."""
    pol = unit.policy
    return content_key({
        "v": __version__,
        "check": unit.check,
        "files": [digests[p] for p in (unit.model_path, *unit.artifacts)],
        "paths": [unit.model_path, *unit.artifacts],  # results name their file: a moved model is new work
        "data": None if unit.data is None else {**unit.data.to_dict(), "data": digests[unit.data.data],
                                                "train": digests.get(unit.data.train or "")},
        "options": dict(unit.options.get(unit.check, {})),
        "policy_options": dict((pol.get("checks") or {}).get(unit.check, {})),
        "thresholds": dict(pol.get("thresholds") or {}),
        "seed": unit.seed, "quick": unit.quick, "trust": unit.trust, "load": unit.load_model,
        "loader": {k: str(v) for k, v in unit.loader.items()},
    })


def audit_registry(
    source: str | Path,
    *,
    policy: Policy | None = None,
    checks: Sequence[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    quick: bool = False,
    trust: bool = False,
    loader_options: Mapping[str, Any] | None = None,
    executor: Executor | None = None,
    cache: ResultCache | None = None,
    models: Sequence[RegistryModel] | None = None,
    unit_fn: Callable[[WorkUnit], Any] = run_unit,
    on_progress: ProgressFn | None = None,
) -> RegistryAudit:
    """Audit every model of ``source`` (see :mod:`modelshield.scale.sources`); ``models`` skips discovery.

    Never raises for one model's fault: an unreadable model, a check that crashes, a unit that hangs past the
    executor's timeout or kills its worker is an ``error`` row, and the rest of the registry is audited.
    Bad input that concerns the whole run (a missing registry, an unknown check, a bad policy) raises
    :class:`~modelshield.errors.UserError` before any work.
    """
    t0 = time.perf_counter()
    policy = policy or Policy.default()
    registry = available_checks()
    validate_policy(policy, registry)
    names = list(registry) if checks is None else list(dict.fromkeys(checks))
    if ALWAYS in registry and ALWAYS not in names:
        names.insert(0, ALWAYS)
    merged = merge_options(policy, options, registry)
    select_checks(names, merged, registry)  # unknown names and bad option values fail now (exit 2)
    needs_model = {n: bool(registry[n].needs_model) for n in names}
    found = list(models) if models is not None else discover(str(source))
    executor = executor or LocalExecutor()
    pol_doc = policy.to_dict()
    opts = {k: dict(v) for k, v in (options or {}).items()}

    # plan: units per model, the faults found before any work, and which units the cache answers
    plans: list[dict[str, Any]] = []
    units: list[WorkUnit] = []
    owners: list[tuple[int, int]] = []  # unit -> (model index, check index)
    keys: list[str | None] = []
    for mi, m in enumerate(found):
        plan: dict[str, Any] = {"model": m, "outcomes": [None] * len(names), "cached": [False] * len(names),
                                "unit": [False] * len(names), "error": m.error or None}
        plans.append(plan)
        if plan["error"]:
            continue
        digests: dict[str, str] = {}
        try:
            for p in [*m.files, m.path, *(m.data.files() if m.data else [])]:
                if p not in digests:
                    digests[p] = file_digest(p)
        except OSError as exc:
            plan["error"] = f"unreadable: {Path(exc.filename or m.path).name}: {exc.strerror or type(exc).__name__}"
            continue
        for ci, name in enumerate(names):
            if m.scan_only and needs_model[name]:
                plan["outcomes"][ci] = UnitOutcome(result=CheckResult(
                    check=name, status=CheckStatus.SKIPPED, skip_reason=m.note).to_dict())
                continue
            unit = WorkUnit(label=m.name, check=name, model_path=m.path,
                            artifacts=tuple(f for f in m.files if f != m.path), data=m.data, policy=pol_doc,
                            options=opts, seed=seed, quick=quick, trust=trust, loader=dict(loader_options or {}),
                            load_model=needs_model[name] and not m.scan_only)
            units.append(unit)
            owners.append((mi, ci))
            plan["unit"][ci] = True
            keys.append(unit_key(unit, digests) if cache is not None else None)

    hits = cache.get_many([k for k in keys if k]) if cache is not None else {}
    todo = [u for u, k in enumerate(keys) if not (k and k in hits)]
    remaining = [sum(1 for (mi2, _) in owners if mi2 == mi) for mi in range(len(found))]
    done_models = 0
    total = len(found)

    def model_done(mi: int) -> None:
        nonlocal done_models
        remaining[mi] -= 1
        if remaining[mi] == 0:
            done_models += 1
            if on_progress is not None:
                on_progress(done_models, total, found[mi].name)

    for mi, plan in enumerate(plans):  # models with nothing to run are done already
        if remaining[mi] == 0:
            done_models += 1
            if on_progress is not None:
                on_progress(done_models, total, plan["model"].name)
    for u, k in enumerate(keys):
        if k and k in hits:
            mi, ci = owners[u]
            plans[mi]["outcomes"][ci] = UnitOutcome.from_dict(hits[k])
            plans[mi]["cached"][ci] = True
            model_done(mi)

    def on_done(j: int, o: Outcome) -> None:
        u = todo[j]
        mi, ci = owners[u]
        out = _unit_outcome(units[u], o)
        plans[mi]["outcomes"][ci] = out
        if cache is not None and keys[u] and out.error is None and out.result.get("status") != "error":
            cache.put(keys[u], check=units[u].check, model=units[u].label, version=__version__,  # type: ignore[arg-type]
                      outcome=out.to_dict())
        model_done(mi)

    if todo:
        executor.run(unit_fn, [units[u] for u in todo], on_done)

    env = environment()  # after the work: versions from package metadata, nothing heavy imported
    rows: list[ModelRow] = []
    reports: list[AuditReport] = []
    for plan in plans:
        row, run = _merge(plan, names, policy, seed)
        rows.append(row)
        reports.append(AuditReport(runs=[run], policy=policy, environment=env,
                                   title=f"modelshield audit: {plan['model'].name}"))
    return RegistryAudit(
        source=str(source), rows=rows, reports=reports, policy=policy, executor=executor.describe(), checks=names,
        seed=seed, wall_s=time.perf_counter() - t0,
        cache=None if cache is None else {"url": cache.safe_url, "hits": len(hits), "computed": len(todo)})


def _unit_outcome(unit: WorkUnit, o: Outcome) -> UnitOutcome:
    if o.ok:
        v = o.value
        return v if isinstance(v, UnitOutcome) else UnitOutcome.from_dict(v)
    msg = f"{o.status}: {o.message}"
    rule = {"timeout": "timeout", "crashed": "worker-died"}.get(o.status, "error")
    return UnitOutcome(result=error_result(unit.check, msg, rule=rule), error=msg)


def _merge(plan: dict[str, Any], names: list[str], policy: Policy, seed: int) -> tuple[ModelRow, AuditRun]:
    m: RegistryModel = plan["model"]
    outcomes: list[UnitOutcome | None] = plan["outcomes"]
    error = plan["error"]
    if error:  # nothing ran: one error result stands for the model
        results = [result_from_dict(error_result("registry", error, rule="unreadable"))]
    else:
        results = [result_from_dict(o.result) if o is not None else
                   result_from_dict(error_result(n, "not run", rule="error"))
                   for n, o in zip(names, outcomes)]
        refused = next((o.load_refused for o in outcomes if o is not None and o.load_refused), None)
        if refused:  # fail closed: the secure loader refused the model, whatever the scan said
            results.append(CheckResult(check="loader", status=CheckStatus.FINDINGS, summary=refused, findings=[
                Finding(check="loader", severity=Severity.HIGH, rule_id="loader.refused",
                        title="The secure loader refused to load the model", detail=refused,
                        remediation="See the artifact scan; load only models you can verify.")]))
        faults = [o.error for o in outcomes if o is not None and o.error]
        error = faults[0] if faults else None
    model_info: dict[str, Any] = next((dict(o.model) for o in outcomes if o is not None and o.model), {})
    model_info.setdefault("path", m.path)
    data_info = next((o.data for o in outcomes if o is not None and o.data), None)
    gate = policy.evaluate(results)
    run = AuditRun(label=m.name, model=model_info, data=data_info, results=results, gate=gate, seed=seed,
                   duration_s=sum(r.duration_s for r in results))
    if error is None and any(r.status is CheckStatus.ERROR for r in results):
        error = next(r.summary for r in results if r.status is CheckStatus.ERROR)
    status = "error" if error else ("pass" if gate.passed else "fail")
    findings = [f for r in results for f in r.findings]
    cached = [n for n, c in zip(names, plan["cached"]) if c]
    unit_checks = [n for n, u in zip(names, plan["unit"]) if u]
    top = max((f.severity for f in findings), default=None)
    row = ModelRow(name=m.name, path=m.path, status=status, findings=len(findings),
                   max_severity=top.value if top is not None else None,
                   cached=bool(unit_checks) and len(cached) == len(unit_checks), cached_checks=cached,
                   reasons=list(gate.reasons), error=error, note=m.note)
    return row, run


_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(name: str, i: int) -> str:
    return f"{i:04d}-{_SLUG.sub('_', name).strip('_.')[:80] or 'model'}"


def _previous_output(out: Path) -> bool:
    try:
        doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("schema") == SUMMARY_SCHEMA


def check_out_dir(out: str | Path, force: bool = False) -> tuple[Path, bool]:
    """Validate the output folder before any work: new, empty, an earlier registry audit's output (replaced),
    or anything with ``force``. Returns the folder and whether files in it may be replaced."""
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise OutputError(f"output folder {p} is a file; give a folder")
    if not p.exists():
        if not p.parent.is_dir():
            raise OutputError(f"output folder {p}: the folder {p.parent} does not exist")
        return p, force
    if force or not any(p.iterdir()):
        return p, force
    if _previous_output(p):
        return p, True
    raise OutputError(f"output folder {p} exists and holds other files",
                      cli_hint="pass --force or choose a new folder with --out")


def write_outputs(result: RegistryAudit, out: str | Path, *, force: bool = False) -> list[Path]:
    """Write ``summary.json``, ``summary.html``, ``summary.sarif`` and one report per model (HTML, JSON,
    SARIF under ``models/``) into ``out``; returns the summary paths."""
    folder, replace = check_out_dir(out, force)
    (folder / "models").mkdir(parents=True, exist_ok=True)
    for i, (row, report) in enumerate(zip(result.rows, result.reports)):
        stem = _slug(row.name, i)
        base = folder / "models"
        row.report = f"models/{stem}.html"
        if replace and _unchanged(base, stem, report.to_dict()):
            continue  # an earlier run wrote this very report (a cached model): rendering HTML costs ~0.3 s each
        write_reports(report, html=base / f"{stem}.html", json_path=base / f"{stem}.json",
                      sarif=base / f"{stem}.sarif", force=replace)
    combined = AuditReport(runs=[r.runs[0] for r in result.reports], policy=result.policy,
                           environment=result.reports[0].environment if result.reports else {},
                           title="modelshield registry audit")
    files = [
        (folder / "summary.json", (json.dumps(result.to_dict(), indent=2, default=str) + "\n").encode()),
        (folder / "summary.html", summary_html(result).encode()),
        (folder / "summary.sarif", (json.dumps(report_sarif(combined), indent=2) + "\n").encode()),
    ]
    return write_files_safely(files, replace)


def _unchanged(base: Path, stem: str, doc: dict[str, Any]) -> bool:
    """Whether the reports ``base/stem.{html,json,sarif}`` exist and the JSON one says what ``doc`` (a report's
    ``to_dict()``) says, apart from when it was written (``created``) and how long it took (``duration_s``,
    ``seconds``)."""
    if not all((base / f"{stem}.{ext}").is_file() for ext in ("html", "json", "sarif")):
        return False
    try:
        old = json.loads((base / f"{stem}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    # compact dumps use the C encoder (the report writer's indented JSON does not: 4x slower)
    return _untimed(old) == _untimed(json.loads(json.dumps(doc, default=str)))


def _untimed(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k not in ("created", "duration_s", "seconds")}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


_STATUS_STYLE = {"pass": "#1a7f37", "fail": "#cf222e", "error": "#9a6700"}


def summary_html(result: RegistryAudit) -> str:
    """A self-contained HTML summary: one row per model, linking to its report."""
    e = html.escape
    c = result.counts()
    rows = []
    for r in result.rows:
        link = f'<a href="{e(r.report)}">{e(r.name)}</a>' if r.report else e(r.name)
        why = e(r.error) if r.error else "<br>".join(e(x) for x in r.reasons[:5])
        cached = "yes" if r.cached else (f"{len(r.cached_checks)} checks" if r.cached_checks else "no")
        rows.append(f'<tr><td>{link}</td><td style="color:{_STATUS_STYLE[r.status]};font-weight:bold">'
                    f"{e(r.status)}</td><td>{r.findings}</td><td>{e(r.max_severity or '')}</td><td>{cached}</td>"
                    f"<td>{why}</td><td>{e(r.note)}</td></tr>")
    cache = result.cache or {}
    cache_line = (f"cache: {cache.get('hits', 0)} results reused, {cache.get('computed', 0)} computed"
                  if result.cache else "cache: off")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="generator" content="modelshield {e(__version__)}">
<title>modelshield registry audit: {e(result.source)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}th{{background:#f6f8fa}}</style>
</head><body>
<h1>Registry audit: {e(result.source)}</h1>
<p>{"PASSED" if result.passed else "FAILED"} &middot; {c['models']} models: {c['pass']} pass, {c['fail']} fail,
{c['error']} error &middot; {cache_line} &middot; policy {e(result.policy.source)} &middot; checks
{e(", ".join(result.checks))} &middot; seed {result.seed} &middot; executor {e(str(result.executor.get('name')))}
({result.executor.get('workers')} workers) &middot; {result.wall_s:.1f} s &middot; {e(result.created)}</p>
<table><thead><tr><th>model</th><th>status</th><th>findings</th><th>max severity</th><th>cached</th>
<th>reasons</th><th>note</th></tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
