"""The policy tables: every entry documented; lookups by full dotted path."""

from __future__ import annotations

import pytest

from modelshield.checks.artifact.policy import ALLOW_EXACT, DENY_PREFIXES, classify_global


def test_every_entry_has_a_reason():
    assert all(isinstance(v, str) and v.strip() for v in DENY_PREFIXES.values())
    assert all(isinstance(v, str) and v.strip() for v in ALLOW_EXACT.values())


@pytest.mark.parametrize(("module", "name"), [
    ("os", "system"), ("posix", "system"), ("asyncio.unix_events", "_UnixSubprocessTransport"),
    ("random", "_os.system"), ("numpy", "__builtins__"), ("numpy.testing._private.utils", "runstring"),
    ("builtins", "getattr"), ("__builtin__", "eval"), ("torch.utils.collect_env", "run"),
    ("pkgutil", "resolve_name"), ("sklearn.datasets", "fetch_openml"), ("numpy", "load"),
    ("torch", "load"), ("builtins", "print"),
])
def test_denied(module, name):
    assert classify_global(module, name).kind == "deny"


@pytest.mark.parametrize(("module", "name"), [
    ("sklearn.ensemble._forest", "RandomForestClassifier"), ("numpy._core.multiarray", "_reconstruct"),
    ("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"), ("torch", "FloatStorage"),
    ("__builtin__", "set"), ("_codecs", "encode"), ("numpy.random._pickle", "__bit_generator_ctor"),
    ("sklearn.ensemble._hist_gradient_boosting.binning", "_BinMapper"),
])
def test_allowed(module, name):
    assert classify_global(module, name).kind == "allow"


def test_unknown_is_neither():
    v = classify_global("somepkg.sub", "Thing")
    assert v.kind == "unknown" and v.reason
