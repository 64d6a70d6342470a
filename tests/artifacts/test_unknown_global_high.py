"""A global from a package nobody reviewed is at least HIGH (issue 15 A.1: 'anything else is at least
high'): it blocks the default scan gate and the secure loader, and the file is 'suspicious', not 'dangerous'."""

from __future__ import annotations

import pytest

from modelshield.artifacts import scan_bytes
from modelshield.artifacts.report import FileStatus
from modelshield.errors import UnsafeModelError
from modelshield.findings import Severity

NAMES = [("mypkg", "Model"), ("acme_ml.models", "Net"), ("__main__", "Classifier"), ("xgb_custom.core", "Booster"),
         ("contoso", "Pipeline")]


def _p0(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n(tR.".encode()


def _p4(module: str, name: str) -> bytes:
    def su(s: str) -> bytes:
        b = s.encode()
        return b"\x8c" + bytes([len(b)]) + b
    return b"\x80\x04" + su(module) + su(name) + b"\x93)\x81."


@pytest.mark.parametrize(("module", "name"), NAMES)
@pytest.mark.parametrize("build", [_p0, _p4])
def test_unreviewed_globals_are_high_and_suspicious(module, name, build):
    rep = scan_bytes(build(module, name), "model.pkl")
    (f,) = [f for f in rep.findings if f.rule_id == "artifact.pickle.unknown-global"]
    assert f.severity == Severity.HIGH
    assert rep.files[0].status == FileStatus.SUSPICIOUS
    assert rep.blocks("high")


@pytest.mark.parametrize(("module", "name"), NAMES)
def test_the_secure_loader_refuses_them(tmp_path, module, name):
    import modelshield as ms

    p = tmp_path / "model.pkl"
    p.write_bytes(_p4(module, name))
    with pytest.raises(UnsafeModelError, match=r"not on the allowlist|refusing to load"):
        ms.load_model(p)


def test_a_dangerous_global_beside_it_still_makes_the_file_dangerous():
    data = b"\x80\x02cmypkg\nModel\n)\x81cos\nsystem\n(S'true'\ntR."
    rep = scan_bytes(data, "model.pkl")
    assert rep.files[0].status == FileStatus.DANGEROUS
