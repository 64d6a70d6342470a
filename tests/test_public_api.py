"""The public API is the curated ``__all__``; this test pins it (changing it is a deliberate act)."""

from __future__ import annotations

import subprocess
import sys

import modelshield

PINNED = [
    "Applies", "AuditContext", "AuditReport", "AuditRun", "Capability", "Check", "CheckResult", "Dataset",
    "Figure", "Finding", "Model", "ModelShieldError", "Policy", "ScanReport", "Series", "Severity", "TrustPolicy",
    "__version__", "audit", "available_checks", "load_dataset", "load_model", "load_policy", "scan",
]


def test_all_is_pinned_and_resolves():
    assert sorted(modelshield.__all__) == sorted(PINNED)
    for name in modelshield.__all__:
        assert getattr(modelshield, name) is not None


def test_unknown_attribute_is_an_attribute_error():
    try:
        modelshield.not_there
    except AttributeError as exc:
        assert "not_there" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_is_lazy():
    code = "import sys, modelshield; print('numpy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_py_typed_ships():
    from importlib import resources

    assert resources.files("modelshield").joinpath("py.typed").is_file()
