"""TorchScript archives: torch's C++ unpickler helpers are fine there, payloads are not."""

from __future__ import annotations

import zipfile

import pytest

from modelshield.artifacts import scan
from modelshield.artifacts.policy import classify_global
from modelshield.demo import malicious_pickle_bytes
from modelshield.findings import Severity


@pytest.fixture
def torchscript_file(tmp_path):
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    path = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    return path


def test_ordinary_torchscript_is_not_flagged_above_low(torchscript_file):
    rep = scan(torchscript_file)
    assert rep.findings and max(f.severity for f in rep.findings) <= Severity.LOW


def test_helpers_are_allowed_only_in_torchscript_context():
    assert classify_global("torch.jit._pickle", "build_intlist", context="torchscript").kind == "allow"
    assert classify_global("torch.jit._pickle", "build_intlist").kind == "deny"
    assert classify_global("__torch__.torch.nn.modules.linear", "Linear", context="torchscript").kind == "allow"
    assert classify_global("__torch__.torch.nn.modules.linear", "Linear").kind != "allow"
    assert classify_global("os", "system", context="torchscript").kind == "deny"
    assert classify_global("torch.jit", "load", context="torchscript").kind == "deny"


@pytest.mark.parametrize("member", ["constants.pkl", "code/__torch__/torch/nn/modules/linear.py.debug_pkl"])
def test_payload_inside_a_torchscript_archive_is_critical(torchscript_file, tmp_path, member):
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(torchscript_file) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith(member):
                data = malicious_pickle_bytes("echo harmless")
            dst.writestr(info, data)
    rep = scan(evil)
    crit = [f for f in rep.findings if f.severity is Severity.CRITICAL]
    assert crit and any("os.system" in f.title for f in crit)
