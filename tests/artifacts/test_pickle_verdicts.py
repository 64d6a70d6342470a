"""The pickle scanner's verdicts, finding by finding (issue 23: mutants of pickle_scan.py that survived).

Each pickle is built opcode by opcode and only scanned (``scan_bytes``), never loaded. The tests pin the
severity and rule id of each finding: indirect calls (a persistent object, a call result, a constant),
nested ``pickle.loads`` on a computed argument and past the nesting bound, EXT opcodes, and global
names that are too long or not identifiers.
"""

from __future__ import annotations

import struct

import pytest

from modelshield.artifacts import scan_bytes
from modelshield.artifacts.pickle_scan import MAX_NEST
from modelshield.findings import Severity

from .corpus import glob0, s8, sglob

P4 = b"\x80\x04"


def _findings(data: bytes) -> list[tuple[str, Severity]]:
    return [(f.rule_id, f.severity) for f in scan_bytes(data).files[0].findings]


def _binbytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"\x8d" + struct.pack("<Q", len(raw)) + raw  # BINUNICODE8: any length


# ------------------------------------------------------------------ indirect calls
OD = sglob("collections", "OrderedDict")

INDIRECT = {
    "persistent-object (BINPERSID)": P4 + s8("storage") + b"Q" + b")R.",
    "persistent-object (PERSID)": b"Pstorage\n)R.",
    "persistent-object (NEWOBJ)": P4 + s8("x") + b"Q" + b")\x81.",
    "call-result (REDUCE)": P4 + OD + b")R" + b")R.",
    "call-result (NEWOBJ)": P4 + OD + b")R" + b")\x81.",
    "call-of-a-call-of-an-EXT-global": b"\x80\x02\x82\x01)R)R.",
    "constant str": P4 + s8("abc") + b")R.",
    "constant int": P4 + b"K\x05)R.",
    "constant list": P4 + b"])R.",
    "constant dict": P4 + b"})R.",
}


@pytest.mark.parametrize("data", INDIRECT.values(), ids=INDIRECT.keys())
def test_calling_anything_but_a_resolved_global_is_an_indirect_call_high(data):
    found = _findings(data)
    assert ("artifact.pickle.indirect-call", Severity.HIGH) in found, found


@pytest.mark.parametrize("data", [b"\x80\x02\x82\x01)R.", b"\x80\x02\x83\x01\x00)R.", P4 + OD + b")R."],
                         ids=["EXT1 global called", "EXT2 global called", "allowlisted global called"])
def test_calling_a_global_is_not_an_indirect_call(data):
    assert "artifact.pickle.indirect-call" not in {r for r, _ in _findings(data)}


# ------------------------------------------------------------------ nested pickle.loads
LOADERS = [("pickle", "loads"), ("_pickle", "loads"), ("torch", "load"), ("joblib", "load")]


@pytest.mark.parametrize(("module", "name"), LOADERS)
@pytest.mark.parametrize("argument", [OD + b")R", s8("text"), b"K\x07", b"N"],
                         ids=["call result", "str", "int", "None"])
def test_a_loader_on_a_computed_argument_is_uninspectable_high(module, name, argument):
    data = P4 + sglob(module, name) + argument + b"\x85R."
    found = _findings(data)
    assert ("artifact.pickle.nested-uninspectable", Severity.HIGH) in found, found


def _nest(levels: int, inner: bytes) -> bytes:
    data = inner
    for _ in range(levels):
        data = P4 + sglob("pickle", "loads") + _binbytes(data) + b"\x85R."
    return data


@pytest.mark.parametrize("inner", [P4 + OD + b")R.", P4 + sglob("os", "system") + s8("x") + b"\x85R."],
                         ids=["benign inner", "malicious inner"])
def test_nesting_is_followed_up_to_max_nest_and_uninspectable_past_it(inner):
    within = _findings(_nest(MAX_NEST, inner))
    past = _findings(_nest(MAX_NEST + 1, inner))
    assert ("artifact.pickle.nested-uninspectable", Severity.HIGH) not in within, within
    assert ("artifact.pickle.nested-uninspectable", Severity.HIGH) in past, past
    nested_hits = [f for f in scan_bytes(_nest(MAX_NEST, inner)).files[0].findings if "nested in" in f.title]
    if b"system" in inner:  # the innermost payload is reached and reported through every level
        assert any(f.rule_id == "artifact.pickle.dangerous-global" and f.severity is Severity.CRITICAL
                   and "os.system" in f.title for f in nested_hits)


def test_a_nested_blob_is_scanned_not_just_flagged():
    data = _nest(1, P4 + sglob("os", "system") + s8("x") + b"\x85R.")
    titles = [f.title for f in scan_bytes(data).files[0].findings]
    assert any("nested in pickle.loads" in t and "os.system" in t for t in titles), titles
    assert not any(r == "artifact.pickle.nested-uninspectable" for r, _ in _findings(data))


# ------------------------------------------------------------------ EXT opcodes
@pytest.mark.parametrize("data", [b"\x80\x02\x82\x01.", b"\x80\x02\x83\x01\x02.", b"\x80\x02\x84\x01\x02\x03\x04.",
                                  b"\x80\x04\x82\xff)R."],
                         ids=["EXT1", "EXT2", "EXT4", "EXT1 called"])
def test_ext_opcodes_are_critical_unresolvable_globals(data):
    found = _findings(data)
    assert ("artifact.pickle.unresolvable-global", Severity.CRITICAL) in found, found


# ------------------------------------------------------------------ global names
def _after_a_global(module: str, name: str, *, stack: bool = True) -> bytes:
    """A valid first global (so the stream is a pickle), then the global under test."""
    second = (_str(module) + _str(name) + b"\x93") if stack else glob0(module, name)
    return P4 + OD + b")R0" + second + b"."


@pytest.mark.parametrize("stack", [True, False], ids=["STACK_GLOBAL", "GLOBAL"])
@pytest.mark.parametrize(("module", "name"), [
    ("a" * 257, "Thing"),               # module too long, identifiers fine
    ("somepkg", "T" * 257),             # name too long
    ("some.pkg", "T" * 300),
    ("some-pkg", "Thing"),              # module not an identifier
    ("somepkg", "Thi ng"),              # name not an identifier
    ("somepkg", "1Thing"),
    ("somepkg..sub", "Thing"),          # an empty dotted part
    ("somepkg", "Thing."),
    ("somepkg", ""),
])
def test_over_long_or_non_identifier_global_names_are_malformed(module, name, stack):
    if not stack and ("\n" in module + name):
        pytest.skip("GLOBAL cannot carry a newline")
    found = _findings(_after_a_global(module, name, stack=stack))
    assert ("artifact.malformed", Severity.HIGH) in found, found


@pytest.mark.parametrize(("module", "name"), [("a" * 256, "Thing"), ("somepkg", "T" * 256),
                                              ("a" * 128 + "." + "b" * 127, "T" * 256)])
def test_names_at_the_length_bound_are_judged_not_malformed(module, name):
    found = _findings(_after_a_global(module, name))
    assert ("artifact.malformed", Severity.HIGH) not in found, found
    assert "artifact.pickle.unknown-global" in {r for r, _ in found}, found
