"""TorchScript is code torch.jit.load compiles and runs: the secure loader loads it only when the scan
is clean at the strict level (nothing at or above MEDIUM), whatever ``block_at`` says (issue 15 A.4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import modelshield.protect.loader as loader_mod
from modelshield.errors import UnsafeModelError
from modelshield.findings import Finding, Severity
from modelshield.protect.loader import TrustPolicy, secure_load


class _Report:
    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        self.errors: list[str] = []
        self.files: list[Any] = []

    def blocks(self, at: Severity) -> bool:
        return any(f.severity >= at for f in self.findings)


@pytest.fixture(scope="module")
def ts_file(tmp_path_factory) -> Path:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)).eval()
    p = tmp_path_factory.mktemp("ts") / "net.pt"
    torch.jit.save(torch.jit.script(net), str(p))
    return p


def _with_findings(monkeypatch, severities: list[Severity]) -> None:
    findings = [Finding(check="artifact", severity=s, title=f"finding at {s.value}") for s in severities]
    real_scan, real_safe = loader_mod._scanner()

    def scan_bytes(data: bytes, name: str) -> Any:
        rep = real_scan(data, name)
        rep = _Report([*rep.findings, *findings]) if findings else rep
        return rep

    monkeypatch.setattr(loader_mod, "_scanner", lambda: (scan_bytes, real_safe))


@pytest.mark.parametrize("sev", [Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL])
@pytest.mark.parametrize("block_at", ["high", "critical"])
def test_torchscript_with_a_medium_or_worse_finding_is_refused(monkeypatch, ts_file, sev, block_at):
    _with_findings(monkeypatch, [sev])
    with pytest.raises(UnsafeModelError, match="refusing to load"):
        secure_load(ts_file, policy=TrustPolicy(block_at=block_at))


@pytest.mark.parametrize("sev", [Severity.INFO, Severity.LOW])
def test_torchscript_clean_at_the_strict_level_loads(monkeypatch, ts_file, sev):
    _with_findings(monkeypatch, [sev])
    m = secure_load(ts_file)
    assert m.framework == "pytorch" and m.format == "torchscript"


def test_a_real_torchscript_scan_is_clean_at_the_strict_level(ts_file):
    scan_bytes, _ = loader_mod._scanner()
    rep = scan_bytes(ts_file.read_bytes(), ts_file.name)
    assert not rep.blocks(Severity.MEDIUM), [(f.severity, f.title) for f in rep.findings]
    assert secure_load(ts_file).format == "torchscript"
