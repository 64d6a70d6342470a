"""ReportTargets: where an audit's reports go (defaults, the demo's every-format plan), checked and written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelshield.errors import OutputError, UserError
from modelshield.findings import CheckResult, CheckStatus
from modelshield.policy import Policy
from modelshield.report.write import ReportTargets
from modelshield.runner import AuditReport, AuditRun

LABELS = ("--out", "--json", "--sarif")


def _report() -> AuditReport:
    policy = Policy.default()
    res = CheckResult(check="baseline", status=CheckStatus.PASSED, summary="ok")
    run = AuditRun(label="m", model={}, data=None, results=[res], gate=policy.evaluate([res]), seed=0, duration_s=0.0)
    return AuditReport(runs=[run], policy=policy)


def test_plan_defaults_and_named_paths(tmp_path):
    page = tmp_path / "r.html"
    t = ReportTargets.plan(None, None, None, default_html=page, labels=LABELS)
    assert t.paths == {"--out": (page, "html"), "--json": (None, "json"), "--sarif": (None, "sarif")}
    assert t.defaults == {page}
    named = ReportTargets.plan(tmp_path / "a.html", tmp_path / "a.json", None, default_html=page, labels=LABELS)
    assert named.defaults == frozenset() and named.paths["--json"] == (tmp_path / "a.json", "json")
    every = ReportTargets.plan(None, tmp_path / "mine.json", None, default_html=page, every_format=True, labels=LABELS)
    assert every.paths["--json"] == (tmp_path / "mine.json", "json")  # a named path wins
    assert every.paths["--sarif"] == (tmp_path / "r.sarif", "sarif")
    assert every.defaults == {page, tmp_path / "r.sarif", tmp_path / "r.json"}
    assert list(ReportTargets.plan(None, None, None, default_html=page).paths) == ["html", "json", "sarif"]


def test_check_refuses_inputs_and_foreign_files_and_write_replaces_only_earlier_reports(tmp_path):
    page = tmp_path / "r.html"
    t = ReportTargets.plan(None, None, None, default_html=page, every_format=True, labels=LABELS)
    data = tmp_path / "r.json"
    data.write_text("{}")  # not a modelshield report, at a default path
    with pytest.raises(OutputError, match="not a modelshield report") as ei:
        t.check([], force=False)
    assert "--json" in (ei.value.cli_hint or "")
    data.unlink()
    with pytest.raises(UserError, match="is also an input"):
        ReportTargets.plan(data, None, None, default_html=page, labels=LABELS).check([data], force=True)
    assert t.check([], force=False) is False
    written = t.write(_report(), [], force=False)
    assert written == [page, tmp_path / "r.json", tmp_path / "r.sarif"]
    assert json.loads((tmp_path / "r.json").read_text())["tool"]["name"] == "modelshield"
    assert t.check([], force=False) is True  # earlier reports at default paths: replaced without force
    assert t.write(_report(), [], force=False) == written
    named = ReportTargets.plan(Path(page), None, None, default_html=tmp_path / "x.html", labels=LABELS)
    with pytest.raises(OutputError, match="already exists"):  # a named path is never replaced without force
        named.check([], force=False)
