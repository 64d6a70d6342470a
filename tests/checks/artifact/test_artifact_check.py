"""The ``artifact`` audit check."""

from __future__ import annotations

import pickle

from modelshield.checks.artifact.check import ArtifactCheck
from modelshield.checks.base import AuditContext
from modelshield.checks.registry import get_check
from modelshield.findings import CheckStatus, Severity

from .corpus import call4


def test_registered_and_applies_only_with_files(tmp_path):
    assert get_check("artifact") is ArtifactCheck
    assert not ArtifactCheck().applies(AuditContext())
    p = tmp_path / "m.pkl"
    p.write_bytes(pickle.dumps({"w": [1.0]}))
    assert ArtifactCheck().applies(AuditContext(model_path=p))


def test_reports_findings_metrics_and_table(tmp_path):
    good = tmp_path / "m.pkl"
    good.write_bytes(pickle.dumps({"w": [1.0]}))
    bad = tmp_path / "extra" / "evil.bin"
    bad.parent.mkdir()
    bad.write_bytes(call4("os", "system", "x"))
    seen = []
    ctx = AuditContext(model_path=good, artifacts=[bad.parent], progress=lambda f, m: seen.append(f))
    res = ArtifactCheck().run(ctx)
    assert res.status is CheckStatus.FINDINGS
    assert res.metrics["files"] == 2 and res.metrics["files_dangerous"] == 1
    assert res.max_severity is Severity.CRITICAL
    assert {r["status"] for r in res.tables["files"]} == {"clean", "dangerous"}
    assert all(f.location and f.check == "artifact" for f in res.findings)
    assert seen[-1] == 1.0
    clean = ArtifactCheck(hash=False).run(AuditContext(model_path=good))
    assert clean.status is CheckStatus.PASSED and not clean.findings
