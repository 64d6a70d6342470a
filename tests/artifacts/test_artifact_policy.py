"""The policy tables: every entry documented; exact (module, name) lookups; Python 2 names mapped."""

from __future__ import annotations

import _compat_pickle
import pickle
import sys

import pytest

from modelshield.artifacts import scan_bytes
from modelshield.artifacts.policy import ALLOW_EXACT, DENY_PREFIXES, classify_global, compat_name
from modelshield.artifacts.restricted import safe_load
from modelshield.errors import UnsafeModelError
from modelshield.findings import Severity

from .corpus import glob0


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


# ------------------------------------------------------------------ Python 2 names (issue 15.A.7)
def _py2_only(module: str) -> bool:
    return module.split(".")[0] not in sys.stdlib_module_names


_NAME_MAPPED = sorted(_compat_pickle.NAME_MAPPING.items())


@pytest.mark.parametrize(("raw", "mapped"), _NAME_MAPPED, ids=[f"{m}.{n}" for (m, n), _ in _NAME_MAPPED])
def test_every_python2_name_is_judged_as_the_unpickler_maps_it(raw, mapped):
    """The generated family: each (module, name) of _compat_pickle.NAME_MAPPING gets the verdict of the
    name the unpickler really imports (protocol 0-2); where the unmapped module exists in Python 3 too,
    the worse of both counts (protocol 3+ imports it unmapped)."""
    assert compat_name(*raw) == mapped
    got, target = classify_global(*raw), classify_global(*mapped)
    order = {"allow": 0, "unknown": 1, "deny": 2}
    if _py2_only(raw[0]):
        assert got.kind == target.kind, (raw, mapped, got)
    else:
        assert order[got.kind] >= order[target.kind]


@pytest.mark.parametrize("module", sorted(m for m in _compat_pickle.IMPORT_MAPPING if _py2_only(m))[:40])
def test_python2_module_names_map_to_their_python3_module(module):
    new = _compat_pickle.IMPORT_MAPPING[module]
    for name in ("Thing", "loads", "open"):
        if (module, name) in _compat_pickle.NAME_MAPPING:
            continue
        assert classify_global(module, name).kind == classify_global(new, name).kind


@pytest.mark.parametrize("protocol", [0, 1, 2])
@pytest.mark.parametrize("value", [range(5), range(2, 20, 3), [range(1)], {"r": range(0)}],
                         ids=["range", "range-step", "list-of-range", "dict-of-range"])
def test_range_pickles_of_protocols_0_to_2_are_clean_and_load(value, protocol):
    data = pickle.dumps(value, protocol=protocol)
    assert b"__builtin__" in data and b"xrange" in data  # the Python 2 spelling the issue reported
    report = scan_bytes(data).files[0]
    assert not [f for f in report.findings if f.severity >= Severity.MEDIUM], report.findings
    assert safe_load(data) == value


@pytest.mark.parametrize(("module", "name", "target"), [
    ("__builtin__", "xrange", "builtins.range"), ("__builtin__", "unicode", "builtins.str"),
    ("__builtin__", "long", "builtins.int"), ("__builtin__", "basestring", "builtins.str"),
    ("copy_reg", "_reconstructor", "copyreg._reconstructor"), ("__builtin__", "set", "builtins.set"),
])
def test_mapped_benign_names_are_allowed(module, name, target):
    verdict = classify_global(module, name)
    assert verdict.kind == "allow" and verdict.rule == target


@pytest.mark.parametrize(("module", "name"), [
    ("__builtin__", "raw_input"), ("__builtin__", "reduce"), ("__builtin__", "intern"), ("__builtin__", "execfile"),
    ("__builtin__", "apply"), ("itertools", "imap"), ("itertools", "ifilter"), ("cPickle", "loads"),
    ("commands", "getoutput"), ("urllib2", "urlopen"), ("UserDict", "UserDict"), ("exceptions", "Exception"),
])
def test_mapped_names_that_reach_a_denied_target_stay_denied(module, name):
    assert classify_global(module, name).kind == "deny"
    data = b"\x80\x02" + glob0(module, name) + b")R."  # module.name() through the Python 2 name
    worst = scan_bytes(data).files[0].max_severity
    assert worst is not None and worst >= Severity.HIGH
    with pytest.raises(UnsafeModelError):
        safe_load(data)


@pytest.mark.parametrize(("raw", "mapped"), [(("os", "xrange"), ("builtins", "range")),
                                             (("subprocess", "izip"), ("builtins", "range")),
                                             (("logging", "Thing"), ("collections", "OrderedDict"))])
def test_a_mapping_from_a_module_python3_also_has_keeps_the_worse_verdict(monkeypatch, raw, mapped):
    """If a mapped name's module also exists in Python 3, protocol 3+ pickles import it unmapped:
    the worse of both verdicts counts (synthetic entries: today's tables map such names only to
    denied targets, which this rule must keep safe if they change)."""
    from modelshield.artifacts import policy

    monkeypatch.setitem(_compat_pickle.NAME_MAPPING, raw, mapped)
    policy._classify_cached.cache_clear()
    try:
        assert classify_global(*mapped).kind == "allow"
        assert classify_global(*raw).kind == "deny"
    finally:
        monkeypatch.undo()
        policy._classify_cached.cache_clear()
