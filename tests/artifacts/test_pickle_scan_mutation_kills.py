"""Exact outcomes of the pickle scanner, finding by finding (issue 23: mutants of pickle_scan.py).

Every pickle here is written opcode by opcode and only scanned, never loaded (payloads are harmless
strings). The tests call ``scan_pickle_stream`` directly and pin what it returns: each finding's
severity, rule id, title, offset and evidence, the globals, the protocol, the opcode count and the
completeness of the stream, on the inline fast path of ``PickleScan.run`` and on the reference
interpreter (``run_general``) alike.
"""

from __future__ import annotations

import gc
import io
import struct

import pytest

from modelshield.artifacts import pickle_scan
from modelshield.artifacts._io import Budget, Reader
from modelshield.artifacts.pickle_scan import (
    MAX_ITEMS,
    MAX_KEEP_BYTES,
    MAX_KEEP_STR,
    MAX_NEST,
    Blob,
    Call,
    G,
    Opaque,
    PickleScan,
    RawFinding,
    Seq,
    StreamResult,
    _short,
    looks_like_pickle_start,
    scan_pickle_stream,
)
from modelshield.artifacts.policy import classify_global
from modelshield.findings import Severity

from .corpus import s8, sglob

P2 = b"\x80\x02"
P4 = b"\x80\x04"
OD = sglob("collections", "OrderedDict")


def X(text: str) -> bytes:
    """BINUNICODE (any length that fits four bytes)."""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def bb(data: bytes) -> bytes:
    """BINBYTES."""
    return b"B" + struct.pack("<I", len(data)) + data


@pytest.fixture(params=[False, True], ids=["fast path", "reference path"])
def general(request, monkeypatch):
    monkeypatch.setattr(PickleScan, "general", request.param)
    return request.param


def scan(data: bytes, *, nested: bool = True, **kw) -> StreamResult:
    budget = Budget(30)

    def nested_scan(inner: bytes, depth: int) -> list[RawFinding]:
        r = Reader(io.BytesIO(inner), budget, size=len(inner))
        return scan_pickle_stream(r, budget, depth=depth, nested=nested_scan).findings

    r = Reader(io.BytesIO(data), budget, size=len(data))
    return scan_pickle_stream(r, budget, nested=nested_scan if nested else None, **kw)


def rows(res: StreamResult) -> list[tuple[Severity, str, int | None]]:
    return [(f.severity, f.rule, f.offset) for f in res.findings]


# ------------------------------------------------------------------ EXT opcodes
@pytest.mark.parametrize(("op", "arg", "code"), [(b"\x82", b"\x07", 7), (b"\x83", b"\x01\x02", 0x0201),
                                                 (b"\x84", b"\x01\x02\x03\x04", 0x04030201)],
                         ids=["EXT1", "EXT2", "EXT4"])
def test_ext_opcode_is_one_critical_unresolvable_global(general, op, arg, code):
    res = scan(P2 + op + arg + b".")
    assert res.complete and res.is_pickle and res.protocol == 2
    assert len(res.findings) == 1
    f = res.findings[0]
    n = {b"\x82": 1, b"\x83": 2, b"\x84": 4}[op]
    assert (f.severity, f.rule, f.offset) == (Severity.CRITICAL, "artifact.pickle.unresolvable-global", 2)
    assert f.title == f"extension-registry global (EXT{n} code {code})"
    assert f.evidence == {"code": code}
    assert "copyreg's extension registry" in f.detail


def test_calling_an_ext_global_is_not_an_indirect_call(general):
    res = scan(P2 + b"\x82\x01)R.")
    assert rows(res) == [(Severity.CRITICAL, "artifact.pickle.unresolvable-global", 2)]


# ------------------------------------------------------------------ every finding, exactly
#: the fixed explanation of each rule (the policy's rules explain with the policy's own reason)
DETAILS = {
    "artifact.pickle.indirect-call": "Calling an object that is not an imported global (a call result, a persistent "
                                     "object or a constant) is an indirection that model files never need.",
    "artifact.pickle.unresolvable-global": "The module/name operands are not plain strings (type confusion or a "
                                           "computed name); the scanner cannot tell what would be imported, so it "
                                           "fails closed.",
    "artifact.pickle.nested-uninspectable": "Bytes are handed to a deserialiser but are not available statically "
                                            "(computed, too large, or nesting too deep).",
    "artifact.pickle.global-mutation": "The pickle mutates an imported class/module or an unresolved object, which "
                                       "calls its methods (append/extend/__setitem__/__setstate__) with attacker data.",
    "artifact.malformed": "The stream fails to parse. Loaders execute every opcode before the failing one, so "
                          "findings above still apply (the 'broken pickle' technique), and the remainder was not "
                          "analysed.",
    "artifact.limit-exceeded": "The scan stopped at a safety bound; the rest of the file was not analysed.",
    "artifact.torch.tensor-bounds": "A tensor's offset/size/stride address memory beyond its storage: a heap "
                                    "read/write gadget against torch.load(weights_only=True) (CVE-2026-24747 class).",
}
EXT_DETAIL = ("EXT opcodes name a global through copyreg's extension registry of the *loading* process; it cannot "
              "be resolved statically, so the scanner fails closed.")


def check_detail(f: RawFinding) -> None:
    if f.rule in ("artifact.pickle.dangerous-global", "artifact.pickle.unknown-global"):
        assert f.detail == classify_global(f.evidence["module"], f.evidence["name"]).reason
    elif f.rule == "artifact.pickle.trailing-data":
        assert f.detail.startswith("Bytes follow the pickle stream and do not parse as a pickle (")
        assert f.detail.endswith("); they were probe-parsed and reach no global.")
    elif "extension-registry" in f.title:
        assert f.detail == EXT_DETAIL
    else:
        assert f.detail == DETAILS[f.rule], f.rule
    assert f.references == (("CVE-2025-32434", "CVE-2026-24747") if f.rule == "artifact.torch.tensor-bounds" else ())


#: name: (stream, [(severity, rule, title, offset, evidence)], (globals, pickles, opcodes, protocol, complete, end))
GOLDEN = {
    "dangerous": (
        P4 + sglob("os","system") + s8("echo hi") + b"\x85R.",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global os.system', 14, {'module': 'os', 'name': 'system', 'opcode': 'STACK_GLOBAL', 'policy_rule': 'os', 'calls': [{'offset': 25, 'opcode': 'REDUCE', 'args': "('echo hi')"}]})],
        ({'os.system': 'deny'}, 1, 8, 4, True, 27),
    ),
    "unknown called 9 times": (
        P4 + sglob("somepkg","Thing") + b"\x940" + b"h\x00)R0"*9 + b"N.",
        [(Severity.HIGH, 'artifact.pickle.unknown-global', 'global not on the allowlist: somepkg.Thing', 18, {'module': 'somepkg', 'name': 'Thing', 'opcode': 'STACK_GLOBAL', 'calls': [{'offset': 24, 'opcode': 'REDUCE', 'args': '()'}, {'offset': 29, 'opcode': 'REDUCE', 'args': '()'}, {'offset': 34, 'opcode': 'REDUCE', 'args': '()'}, {'offset': 39, 'opcode': 'REDUCE', 'args': '()'}, {'offset': 44, 'opcode': 'REDUCE', 'args': '()'}, {'offset': 49, 'opcode': 'REDUCE', 'args': '()'}, {'offset': 54, 'opcode': 'REDUCE', 'args': '()'}, {'offset': 59, 'opcode': 'REDUCE', 'args': '()'}]})],
        ({'somepkg.Thing': 'unknown'}, 1, 44, 4, True, 68),
    ),
    "INST": (
        b"(isomepkg\nThing\n.",
        [(Severity.HIGH, 'artifact.pickle.unknown-global', 'global not on the allowlist: somepkg.Thing', 1, {'module': 'somepkg', 'name': 'Thing', 'opcode': 'INST', 'calls': [{'offset': 1, 'opcode': 'INST', 'args': '()'}]})],
        ({'somepkg.Thing': 'unknown'}, 1, 3, 0, True, 17),
    ),
    "GLOBAL then OBJ": (
        b"(csomepkg\nThing\nK\x01o.",
        [(Severity.HIGH, 'artifact.pickle.unknown-global', 'global not on the allowlist: somepkg.Thing', 1, {'module': 'somepkg', 'name': 'Thing', 'opcode': 'GLOBAL', 'calls': [{'offset': 18, 'opcode': 'OBJ', 'args': '(1)'}]})],
        ({'somepkg.Thing': 'unknown'}, 1, 5, 0, True, 20),
    ),
    "NEWOBJ_EX": (
        P4 + sglob("somepkg","Thing") + b")}\x92.",
        [(Severity.HIGH, 'artifact.pickle.unknown-global', 'global not on the allowlist: somepkg.Thing', 18, {'module': 'somepkg', 'name': 'Thing', 'opcode': 'STACK_GLOBAL', 'calls': [{'offset': 21, 'opcode': 'NEWOBJ_EX', 'args': '((), <dict of 0>)'}]})],
        ({'somepkg.Thing': 'unknown'}, 1, 8, 4, True, 23),
    ),
    "int module": (
        P4 + b"K\x01" + s8("x") + b"\x93.",
        [(Severity.CRITICAL, 'artifact.pickle.unresolvable-global', 'unresolvable global via STACK_GLOBAL: operands are not strings', 7, {'module': '1', 'name': "'x'"})],
        ({}, 1, 5, 4, True, 9),
    ),
    "int name": (
        P4 + s8("x") + b"K\x01\x93.",
        [(Severity.CRITICAL, 'artifact.pickle.unresolvable-global', 'unresolvable global via STACK_GLOBAL: operands are not strings', 7, {'module': "'x'", 'name': '1'})],
        ({}, 1, 5, 4, True, 9),
    ),
    "call unresolved twice": (
        P4 + b"K\x01" + s8("x") + b"\x93)R)R.",
        [(Severity.CRITICAL, 'artifact.pickle.unresolvable-global', 'unresolvable global via STACK_GLOBAL: operands are not strings', 7, {'module': '1', 'name': "'x'"}), (Severity.HIGH, 'artifact.pickle.indirect-call', 'REDUCE calls <call result>, not a resolved global', 11, {'callable': '<call result>'})],
        ({}, 1, 9, 4, True, 13),
    ),
    "call EXT twice": (
        P2 + b"\x82\x05)R)\x81.",
        [(Severity.CRITICAL, 'artifact.pickle.unresolvable-global', 'extension-registry global (EXT1 code 5)', 2, {'code': 5}), (Severity.HIGH, 'artifact.pickle.indirect-call', 'NEWOBJ calls <call result>, not a resolved global', 7, {'callable': '<call result>'})],
        ({}, 1, 7, 2, True, 9),
    ),
    "PERSID called": (
        b"Pabc\n)R.",
        [(Severity.HIGH, 'artifact.pickle.indirect-call', 'REDUCE calls <persistent object>, not a resolved global', 6, {'callable': '<persistent object>'})],
        ({}, 1, 4, 0, True, 8),
    ),
    "BINPERSID called": (
        P4 + s8("k") + b"Q)\x81.",
        [(Severity.HIGH, 'artifact.pickle.indirect-call', 'NEWOBJ calls <persistent object>, not a resolved global', 7, {'callable': '<persistent object>'})],
        ({}, 1, 6, 4, True, 9),
    ),
    "constant called": (
        P4 + b"K\x05)R.",
        [(Severity.HIGH, 'artifact.pickle.indirect-call', 'REDUCE calls 5, not a resolved global', 5, {'callable': '5'})],
        ({}, 1, 5, 4, True, 7),
    ),
    "call result called": (
        P4 + OD + b")R)R.",
        [(Severity.HIGH, 'artifact.pickle.indirect-call', 'REDUCE calls collections.OrderedDict(), not a resolved global', 32, {'callable': 'collections.OrderedDict()'})],
        ({'collections.OrderedDict': 'allow'}, 1, 9, 4, True, 34),
    ),
    "pickle.loads(bytes)": (
        P4 + sglob("pickle","loads") + bb(P4 + sglob("os","system") + s8("x") + b"\x85R.") + b"\x85R.",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global pickle.loads', 17, {'module': 'pickle', 'name': 'loads', 'opcode': 'STACK_GLOBAL', 'policy_rule': 'pickle', 'calls': [{'offset': 45, 'opcode': 'REDUCE', 'args': "(b'\\x80\\x04\\x8c\\x02os\\x8c\\x06system\\x93\\x8c\\x01x\\x85R.')"}]}), (Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'nested in pickle.loads@45: dangerous global os.system', 45, {'module': 'os', 'name': 'system', 'opcode': 'STACK_GLOBAL', 'policy_rule': 'os', 'calls': [{'offset': 19, 'opcode': 'REDUCE', 'args': "('x')"}], 'nested_offset': 14, 'outer_offset': 45})],
        ({'pickle.loads': 'deny'}, 1, 8, 4, True, 47),
    ),
    "pickle.loads(None)": (
        P4 + sglob("pickle","loads") + b"N\x85R.",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global pickle.loads', 17, {'module': 'pickle', 'name': 'loads', 'opcode': 'STACK_GLOBAL', 'policy_rule': 'pickle', 'calls': [{'offset': 20, 'opcode': 'REDUCE', 'args': '(None)'}]}), (Severity.HIGH, 'artifact.pickle.nested-uninspectable', 'payload passed to pickle.loads could not be inspected', 20, {'loader': 'pickle.loads', 'argument': 'None'})],
        ({'pickle.loads': 'deny'}, 1, 8, 4, True, 22),
    ),
    "pickle.loads()": (
        P4 + sglob("pickle","loads") + b")R.",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global pickle.loads', 17, {'module': 'pickle', 'name': 'loads', 'opcode': 'STACK_GLOBAL', 'policy_rule': 'pickle', 'calls': [{'offset': 19, 'opcode': 'REDUCE', 'args': '()'}]}), (Severity.HIGH, 'artifact.pickle.nested-uninspectable', 'payload passed to pickle.loads could not be inspected', 19, {'loader': 'pickle.loads', 'argument': 'None'})],
        ({'pickle.loads': 'deny'}, 1, 7, 4, True, 21),
    ),
    "pickle.loads(list)": (
        P4 + sglob("pickle","loads") + b"]\x85R.",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global pickle.loads', 17, {'module': 'pickle', 'name': 'loads', 'opcode': 'STACK_GLOBAL', 'policy_rule': 'pickle', 'calls': [{'offset': 20, 'opcode': 'REDUCE', 'args': '(<list of 0>)'}]}), (Severity.HIGH, 'artifact.pickle.nested-uninspectable', 'payload passed to pickle.loads could not be inspected', 20, {'loader': 'pickle.loads', 'argument': '<list of 0>'})],
        ({'pickle.loads': 'deny'}, 1, 8, 4, True, 22),
    ),
    "codecs latin1 into loads": (
        P2 + b"c_pickle\nloads\n" + b"c_codecs\nencode\n" + X(P2.decode('latin-1') + "c" + "os\nsystem\n" + "N\x85R.") + X("latin1") + b"\x86R\x85R.",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global _pickle.loads', 2, {'module': '_pickle', 'name': 'loads', 'opcode': 'GLOBAL', 'policy_rule': '_pickle', 'calls': [{'offset': 71, 'opcode': 'REDUCE', 'args': "(b'\\x80\\x02cos\\nsystem\\nN\\x85R.')"}]}), (Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'nested in _pickle.loads@71: dangerous global os.system', 71, {'module': 'os', 'name': 'system', 'opcode': 'GLOBAL', 'policy_rule': 'os', 'calls': [{'offset': 15, 'opcode': 'REDUCE', 'args': '(None)'}], 'nested_offset': 2, 'outer_offset': 71})],
        ({'_pickle.loads': 'deny', '_codecs.encode': 'allow'}, 1, 10, 2, True, 73),
    ),
    "codecs latin-1 upper": (
        P2 + b"c_pickle\nloads\n" + b"c_codecs\nencode\n" + X("\x80\x02N.") + X("LATIN-1") + b"\x86R\x85R.",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global _pickle.loads', 2, {'module': '_pickle', 'name': 'loads', 'opcode': 'GLOBAL', 'policy_rule': '_pickle', 'calls': [{'offset': 58, 'opcode': 'REDUCE', 'args': "(b'\\x80\\x02N.')"}]})],
        ({'_pickle.loads': 'deny', '_codecs.encode': 'allow'}, 1, 10, 2, True, 60),
    ),
    "codecs iso-8859-1": (
        P2 + b"c_pickle\nloads\n" + b"c_codecs\nencode\n" + X("\x80\x02N.") + X("iso-8859-1") + b"\x86R\x85R.",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global _pickle.loads', 2, {'module': '_pickle', 'name': 'loads', 'opcode': 'GLOBAL', 'policy_rule': '_pickle', 'calls': [{'offset': 61, 'opcode': 'REDUCE', 'args': "(b'\\x80\\x02N.')"}]})],
        ({'_pickle.loads': 'deny', '_codecs.encode': 'allow'}, 1, 10, 2, True, 63),
    ),
    "codecs utf-8": (
        P2 + b"c_pickle\nloads\n" + b"c_codecs\nencode\n" + X("\x80\x02N.") + X("utf-8") + b"\x86R\x85R.",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global _pickle.loads', 2, {'module': '_pickle', 'name': 'loads', 'opcode': 'GLOBAL', 'policy_rule': '_pickle', 'calls': [{'offset': 56, 'opcode': 'REDUCE', 'args': "(_codecs.encode('\\x80\\x02N.', 'utf-8'))"}]}), (Severity.HIGH, 'artifact.pickle.nested-uninspectable', 'payload passed to _pickle.loads could not be inspected', 56, {'loader': '_pickle.loads', 'argument': "_codecs.encode('\\x80\\x02N.', 'utf-8')"})],
        ({'_pickle.loads': 'deny', '_codecs.encode': 'allow'}, 1, 10, 2, True, 58),
    ),
    "codecs no encoding": (
        P2 + b"c_pickle\nloads\n" + b"c_codecs\nencode\n" + X("\x80\x02N.") + b"\x85R\x85R.",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global _pickle.loads', 2, {'module': '_pickle', 'name': 'loads', 'opcode': 'GLOBAL', 'policy_rule': '_pickle', 'calls': [{'offset': 46, 'opcode': 'REDUCE', 'args': "(_codecs.encode('\\x80\\x02N.'))"}]}), (Severity.HIGH, 'artifact.pickle.nested-uninspectable', 'payload passed to _pickle.loads could not be inspected', 46, {'loader': '_pickle.loads', 'argument': "_codecs.encode('\\x80\\x02N.')"})],
        ({'_pickle.loads': 'deny', '_codecs.encode': 'allow'}, 1, 9, 2, True, 48),
    ),
    "codecs non-latin1 text": (
        P2 + b"c_pickle\nloads\n" + b"c_codecs\nencode\n" + X("\u0100") + X("latin1") + b"\x86R\x85R.",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global _pickle.loads', 2, {'module': '_pickle', 'name': 'loads', 'opcode': 'GLOBAL', 'policy_rule': '_pickle', 'calls': [{'offset': 54, 'opcode': 'REDUCE', 'args': '(<bytes>)'}]}), (Severity.HIGH, 'artifact.pickle.nested-uninspectable', 'payload passed to _pickle.loads could not be inspected', 54, {'loader': '_pickle.loads', 'argument': '<bytes>'})],
        ({'_pickle.loads': 'deny', '_codecs.encode': 'allow'}, 1, 10, 2, True, 56),
    ),
    "codecs int text": (
        P2 + b"c_pickle\nloads\n" + b"c_codecs\nencode\n" + b"K\x01" + X("latin1") + b"\x86R\x85R.",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global _pickle.loads', 2, {'module': '_pickle', 'name': 'loads', 'opcode': 'GLOBAL', 'policy_rule': '_pickle', 'calls': [{'offset': 49, 'opcode': 'REDUCE', 'args': "(_codecs.encode(1, 'latin1'))"}]}), (Severity.HIGH, 'artifact.pickle.nested-uninspectable', 'payload passed to _pickle.loads could not be inspected', 49, {'loader': '_pickle.loads', 'argument': "_codecs.encode(1, 'latin1')"})],
        ({'_pickle.loads': 'deny', '_codecs.encode': 'allow'}, 1, 10, 2, True, 51),
    ),
    "codecs int encoding": (
        P2 + b"c_pickle\nloads\n" + b"c_codecs\nencode\n" + X("ab") + b"K\x01" + b"\x86R\x85R.",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global _pickle.loads', 2, {'module': '_pickle', 'name': 'loads', 'opcode': 'GLOBAL', 'policy_rule': '_pickle', 'calls': [{'offset': 45, 'opcode': 'REDUCE', 'args': "(_codecs.encode('ab', 1))"}]}), (Severity.HIGH, 'artifact.pickle.nested-uninspectable', 'payload passed to _pickle.loads could not be inspected', 45, {'loader': '_pickle.loads', 'argument': "_codecs.encode('ab', 1)"})],
        ({'_pickle.loads': 'deny', '_codecs.encode': 'allow'}, 1, 10, 2, True, 47),
    ),
    "APPEND to a global": (
        P4 + OD + b"K\x01a.",
        [(Severity.HIGH, 'artifact.pickle.global-mutation', 'APPEND on collections.OrderedDict', 31, {'target': 'collections.OrderedDict'})],
        ({'collections.OrderedDict': 'allow'}, 1, 7, 4, True, 33),
    ),
    "APPENDS to a global": (
        P4 + OD + b"(K\x01e.",
        [(Severity.HIGH, 'artifact.pickle.global-mutation', 'APPENDS on collections.OrderedDict', 32, {'target': 'collections.OrderedDict'})],
        ({'collections.OrderedDict': 'allow'}, 1, 8, 4, True, 34),
    ),
    "SETITEM on a persistent object": (
        P4 + s8("k") + b"QK\x01K\x02s.",
        [(Severity.HIGH, 'artifact.pickle.global-mutation', 'SETITEM on <persistent object>', 10, {'target': '<persistent object>'})],
        ({}, 1, 7, 4, True, 12),
    ),
    "SETITEMS on a global": (
        P4 + OD + b"(K\x01K\x02u.",
        [(Severity.HIGH, 'artifact.pickle.global-mutation', 'SETITEMS on collections.OrderedDict', 34, {'target': 'collections.OrderedDict'})],
        ({'collections.OrderedDict': 'allow'}, 1, 9, 4, True, 36),
    ),
    "ADDITEMS on a global": (
        P4 + OD + b"(K\x01\x90.",
        [(Severity.HIGH, 'artifact.pickle.global-mutation', 'ADDITEMS on collections.OrderedDict', 32, {'target': 'collections.OrderedDict'})],
        ({'collections.OrderedDict': 'allow'}, 1, 8, 4, True, 34),
    ),
    "BUILD on a global": (
        P4 + OD + b"}b.",
        [(Severity.HIGH, 'artifact.pickle.global-mutation', 'BUILD on collections.OrderedDict', 30, {'target': 'collections.OrderedDict'})],
        ({'collections.OrderedDict': 'allow'}, 1, 7, 4, True, 32),
    ),
    "BUILD on a call of a call result": (
        P4 + OD + b")R)R}b.",
        [(Severity.HIGH, 'artifact.pickle.indirect-call', 'REDUCE calls collections.OrderedDict(), not a resolved global', 32, {'callable': 'collections.OrderedDict()'}), (Severity.HIGH, 'artifact.pickle.global-mutation', 'BUILD on collections.OrderedDict()()', 34, {'target': 'collections.OrderedDict()()'})],
        ({'collections.OrderedDict': 'allow'}, 1, 11, 4, True, 36),
    ),
    "BUILD on a plain call": (
        P4 + OD + b")R}b.",
        [],
        ({'collections.OrderedDict': 'allow'}, 1, 9, 4, True, 34),
    ),
    "BUILD on a list": (
        P4 + b"]}b.",
        [],
        ({}, 1, 5, 4, True, 6),
    ),
    "trailing data": (
        P4 + b"N." + b"\xff\xff",
        [(Severity.LOW, 'artifact.pickle.trailing-data', 'non-pickle data after the last pickle', 4, {})],
        ({}, 2, 4, 4, True, 5),
    ),
    "invalid opcode": (
        P4 + b"N\xff",
        [(Severity.HIGH, 'artifact.malformed', 'pickle stream is malformed: invalid opcode 0xff', 3, {'pickle_index': 0, 'pickle_start': 0})],
        ({}, 1, 3, 4, False, 4),
    ),
    "two pickles": (
        P4 + b"N." + P4 + sglob("os","system") + b".",
        [(Severity.CRITICAL, 'artifact.pickle.dangerous-global', 'dangerous global os.system', 18, {'module': 'os', 'name': 'system', 'opcode': 'STACK_GLOBAL', 'policy_rule': 'os'})],
        ({'os.system': 'deny'}, 2, 8, 4, True, 20),
    ),

}


@pytest.mark.parametrize("name", GOLDEN)
def test_every_finding_and_the_stream_summary_exactly(general, name):
    data, findings, (globs, pickles, ops, protocol, complete, end) = GOLDEN[name]
    res = scan(data)
    assert [(f.severity, f.rule, f.title, f.offset, f.evidence) for f in res.findings] == findings
    for f in res.findings:
        check_detail(f)
    assert (res.globals, res.pickles, res.ops, res.protocol, res.complete, res.end_offset) == (
        globs, pickles, ops, protocol, complete, end)
    assert res.is_pickle and not res.joblib


# ------------------------------------------------------------------ evidence rendering
def test_short_renders_values_bounded():
    assert _short("a" * 80) == repr("a" * 80)
    assert _short("a" * 81) == repr("a" * 77 + "...")
    assert _short(b"b" * 40) == repr(b"b" * 40)
    assert _short(b"b" * 41) == repr(b"b" * 40) + "..."
    assert _short(tuple(range(6))) == "(0, 1, 2, 3, 4, 5)"
    assert _short(tuple(range(7))) == "(0, 1, 2, 3, 4, 5, ...)"
    assert _short(((("x",),),)) == "((('x')))"  # the value at depth 3 is still rendered
    assert _short((((("x",),),),)) == "((((...))))"  # the one at depth 4 is cut
    assert _short(Opaque("x" * 200)) == "<" + "x" * 119
    assert _short(Blob("bytes", 5000, 3)) == "<bytes of 5000 bytes>"
    assert _short(Seq("dict")) == "<dict of 0>"


def test_short_renders_calls_with_their_arguments():
    g = G("somepkg", "f", 0, None)
    assert _short(Call(g, (1, "a"), 0)) == "somepkg.f(1, 'a')"
    assert _short(Call(g, Seq("list"), 0)) == "somepkg.f(...)"
    assert _short(Call(Call(g, (), 0), (((("x",),),),), 0)) == "somepkg.f()(((...)))"  # arguments at depth 1
    assert repr(Call(g, (), 0)) == "somepkg.f(...)"
    assert repr(g) == "somepkg.f" and g.key == "somepkg.f"


@pytest.mark.parametrize(("head", "expected"), [
    (b"\x80\x00", True), (b"\x80\x05", True), (b"\x80\x06", False), (b"\x80", False), (b"", False),
    (b"(", True), (b"c", True), (b"}", True), (b"x", False), (b"\x95", False),
])
def test_looks_like_pickle_start(head, expected):
    assert looks_like_pickle_start(head) is expected


def test_seq_keeps_a_bounded_prefix_and_counts_everything():
    s = Seq("list", list(range(100)))
    assert (s.items, s.n) == (list(range(MAX_ITEMS)), 100)
    s.add([1, 2])
    assert (len(s.items), s.n) == (MAX_ITEMS, 102)
    t = Seq("list", list(range(MAX_ITEMS - 1)))
    t.add(["a", "b"])
    assert (t.items[-1], len(t.items), t.n) == ("a", MAX_ITEMS, MAX_ITEMS + 1)
    assert (Seq("set").items, Seq("set").n, Seq("set", []).n) == ([], 0, 0)
    d = Seq("dict", [("k", 1), ("j", 2)])
    assert (d.get("j"), d.get("k"), d.get("z")) == (2, 1, None)
    assert repr(d) == "<dict of 2>"


# ------------------------------------------------------------------ values kept, values skipped
def top(data: bytes, **kw) -> tuple[PickleScan, object]:
    """Run one PickleScan to its STOP; the scan and the value it leaves."""
    r = Reader(io.BytesIO(data), Budget(30), size=len(data))
    ps = PickleScan(r, Budget(30), **kw)
    ps.run()
    assert ps.complete and len(ps.stack) == 1
    return ps, ps.stack[0]


@pytest.mark.parametrize("op", ["X", "\x8d"], ids=["BINUNICODE", "BINUNICODE8"])
def test_strings_up_to_max_keep_str_are_kept_longer_ones_skipped(general, op):
    def unicode(n: int) -> bytes:
        head = b"X" + struct.pack("<I", n) if op == "X" else b"\x8d" + struct.pack("<Q", n)
        return P4 + head + b"s" * n + b"."
    assert top(unicode(MAX_KEEP_STR))[1] == "s" * MAX_KEEP_STR
    ps, v = top(unicode(MAX_KEEP_STR + 1))
    assert isinstance(v, Blob) and (v.kind, v.length, v.start) == ("str", MAX_KEEP_STR + 1, len(unicode(0)) - 1)
    assert ps.retained == 0


def test_bytes_are_kept_up_to_max_keep_bytes_and_max_retained(general, monkeypatch):
    ps, v = top(P4 + bb(b"x" * MAX_KEEP_STR) + b".")
    assert (v, ps.retained) == (b"x" * MAX_KEEP_STR, 0)  # short values are not counted
    ps, v = top(P4 + bb(b"x" * (MAX_KEEP_STR + 1)) + b".")
    assert (v, ps.retained) == (b"x" * (MAX_KEEP_STR + 1), MAX_KEEP_STR + 1)
    ps, v = top(P4 + b"\x8e" + struct.pack("<Q", MAX_KEEP_BYTES) + b"y" * MAX_KEEP_BYTES + b".")
    assert (v, ps.retained) == (b"y" * MAX_KEEP_BYTES, MAX_KEEP_BYTES)
    ps, v = top(P4 + bb(b"y" * (MAX_KEEP_BYTES + 1)) + b".")
    assert isinstance(v, Blob) and (v.kind, v.length, v.start, ps.retained) == ("bytes", MAX_KEEP_BYTES + 1, 7, 0)
    monkeypatch.setattr(pickle_scan, "MAX_RETAINED", 3000)
    ps, v = top(P4 + b"(" + bb(b"a" * 1500) + bb(b"b" * 1500) + bb(b"c" * 1025) + b"t.")
    assert v[:2] == (b"a" * 1500, b"b" * 1500) and isinstance(v[2], Blob) and ps.retained == 3000


def test_binstrings_load_as_latin1_text(general):
    assert top(b"T" + struct.pack("<i", 3) + b"a\xe9b.")[1] == "a\xe9b"
    assert top(b"U\x02\xff\x00.")[1] == "\xff\x00"
    assert top(b"T" + struct.pack("<i", MAX_KEEP_STR + 1) + b"\xe9" * (MAX_KEEP_STR + 1) + b".")[1] == "\xe9" * 1025
    _, v = top(b"T" + struct.pack("<i", MAX_KEEP_BYTES + 1) + b"z" * (MAX_KEEP_BYTES + 1) + b".")
    assert isinstance(v, Blob) and (v.kind, v.length, v.start) == ("str", MAX_KEEP_BYTES + 1, 5)
    assert top(P4 + b"C\x02\xff\x00.")[1] == b"\xff\x00"
    assert top(P4 + b"\x96" + struct.pack("<Q", 2) + b"ab.")[1] == b"ab"
    assert top(P4 + b"\x8c\x03\xed\xa0\x80.")[1] == "\ud800"  # surrogatepass, as pickle


@pytest.mark.parametrize(("data", "message"), [
    (b"T" + struct.pack("<i", -1) + b".", "negative length"),
    (P4 + b"X\x02\x00\x00\x00\xff\xfe.", "invalid UTF-8 in a string opcode"),
    (P4 + b"\x8c\x02\xff\xfe.", "invalid UTF-8 in a string opcode"),
])
def test_bad_string_operands_are_malformed(general, data, message):
    res = scan(data)
    assert [(f.rule, f.title) for f in res.findings] == [("artifact.malformed", f"pickle stream is malformed: {message}")]
    assert not res.complete


# ------------------------------------------------------------------ tensor views against their storage
def _int(v: int) -> bytes:
    return b"J" + struct.pack("<i", v)


def _ints(vs) -> bytes:
    return b"(" + b"".join(_int(v) for v in vs) + b"t"


def tensor(numel, offset, size, stride, *, rebuild: str = "_rebuild_tensor_v2", pid_extra: bytes = b"") -> bytes:
    """torch._utils.<rebuild>(storage, offset, size, stride, False, OrderedDict()) over a persistent storage
    whose pid is ("storage", FloatStorage, "0", "cpu", numel)."""
    numel_op = _int(numel) if isinstance(numel, int) else s8(numel)
    pid = b"(" + s8("storage") + sglob("torch", "FloatStorage") + s8("0") + s8("cpu") + numel_op + pid_extra + b"tQ"
    off = _int(offset) if isinstance(offset, int) else s8(offset)
    return (P2 + sglob("torch._utils", rebuild) + b"(" + pid + off + _ints(size) + _ints(stride) + b"\x89" + OD
            + b")RtR.")


def bounds_findings(data: bytes) -> list[RawFinding]:
    res = scan(data)
    assert res.complete
    return [f for f in res.findings if f.rule == "artifact.torch.tensor-bounds"]


@pytest.mark.parametrize(("numel", "offset", "size", "stride", "bad"), [
    (6, 0, (2, 3), (3, 1), False),       # extent 6 = numel
    (5, 0, (2, 3), (3, 1), True),        # extent 6 > 5
    (7, 1, (2, 3), (3, 1), False),       # the offset counts
    (6, 1, (2, 3), (3, 1), True),
    (4, 0, (2, 3), (1, 1), False),       # overlapping strides: extent 1 + 1 + 2 = 4
    (3, 0, (2, 3), (1, 1), True),
    (0, 0, (0, 3), (3, 1), False),       # an empty view addresses nothing, wherever it starts
    (0, 100, (3, 0), (1, 1), False),
    (100, -1, (2,), (1,), True),         # negative offset, size or stride: always out of bounds
    (100, 0, (-1,), (1,), True),
    (100, 0, (2, 2), (1, -1), True),
    (1, 0, (), (), False),               # a scalar: extent 1
    (0, 0, (), (), True),
])
def test_tensor_view_bounds(general, numel, offset, size, stride, bad):
    found = bounds_findings(tensor(numel, offset, size, stride))
    if not bad:
        assert found == []
        return
    assert len(found) == 1
    f = found[0]
    assert (f.severity, f.title, f.references) == (Severity.HIGH, "tensor view reaches outside its storage",
                                                   ("CVE-2025-32434", "CVE-2026-24747"))
    assert f.evidence == {"storage_numel": numel, "storage_offset": offset, "size": list(size), "stride": list(stride)}
    check_detail(f)
    assert f.offset == len(tensor(numel, offset, size, stride)) - 2  # the REDUCE of the rebuild call


def test_tensor_bounds_hook_covers_every_rebuild_function(general):
    for rebuild in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3"):
        assert len(bounds_findings(tensor(5, 0, (2, 3), (3, 1), rebuild=rebuild))) == 1, rebuild
    # _rebuild_parameter(data, requires_grad, backward_hooks): its data is checked where it was rebuilt
    assert bounds_findings(P2 + sglob("torch._utils", "_rebuild_parameter") + b"(K\x01\x89" + OD + b")RtR.") == []


@pytest.mark.parametrize(("numel", "offset", "size", "stride", "pid_extra"), [
    ("6", 0, (2, 3), (3, 1), b""),             # numel not an int: unknown, only signs are checked
    (5, "0", (2, 3), (3, 1), b""),             # offset not an int: not judged
    (5, 0, (2, 3), (3,), b""),                 # size and stride of different lengths: not judged
])
def test_tensor_views_that_cannot_be_judged_are_not_flagged(general, numel, offset, size, stride, pid_extra):
    assert bounds_findings(tensor(numel, offset, size, stride, pid_extra=pid_extra)) == []


def test_tensor_sign_checks_apply_without_a_known_storage_size(general):
    found = bounds_findings(tensor("6", -1, (2,), (1,)))
    assert [f.evidence["storage_numel"] for f in found] == ["6"]
    # a short pid (no numel slot): the size is unknown, the signs are still checked
    short_pid = tensor(6, 0, (2, 3), (3, 1)).replace(s8("cpu") + _int(6), s8("cpu"))
    assert bounds_findings(short_pid) == []
    neg = tensor(6, 0, (-2, 3), (3, 1)).replace(s8("cpu") + _int(6), s8("cpu"))
    assert [f.evidence["storage_numel"] for f in bounds_findings(neg)] == [None]


def test_tensor_rebuild_with_fewer_than_four_arguments_is_not_judged(general):
    data = P2 + sglob("torch._utils", "_rebuild_tensor_v2") + b"(K\x01K\x02J\xff\xff\xff\xfftR."
    assert bounds_findings(data) == []


def test_tensor_sizes_must_be_plain_ints(general):
    # True is an int subclass: pickle would pass it, but the scanner only judges plain ints
    data = tensor(1, 0, (2,), (1,)).replace(_ints((2,)), b"(\x88t")
    assert bounds_findings(data) == []
    data = tensor(1, 0, (2,), (1,)).replace(_ints((1,)), b"(\x88t")
    assert bounds_findings(data) == []


# ------------------------------------------------------------------ nested loads
def loads_of(arg: bytes, loader: tuple[str, str] = ("pickle", "loads")) -> bytes:
    return P4 + sglob(*loader) + arg + b"\x85R."


INNER = P4 + sglob("os", "system") + s8("x") + b"\x85R."


def test_nested_findings_are_rebased_on_the_outer_call(general):
    res = scan(loads_of(bb(INNER)))
    outer, inner = res.findings
    assert (outer.rule, outer.title) == ("artifact.pickle.dangerous-global", "dangerous global pickle.loads")
    call_at = len(loads_of(bb(INNER))) - 2
    assert (inner.severity, inner.rule, inner.offset) == (Severity.CRITICAL, "artifact.pickle.dangerous-global", call_at)
    assert inner.title == f"nested in pickle.loads@{call_at}: dangerous global os.system"
    assert (inner.evidence["nested_offset"], inner.evidence["outer_offset"]) == (14, call_at)
    assert res.globals == {"pickle.loads": "deny"}  # the inner globals are reported through its findings


def test_nested_loads_needs_a_nested_scanner(general):
    res = scan(loads_of(bb(INNER)), nested=False)
    assert [(f.severity, f.rule) for f in res.findings] == [
        (Severity.CRITICAL, "artifact.pickle.dangerous-global"),
        (Severity.HIGH, "artifact.pickle.nested-uninspectable")]
    assert res.findings[1].evidence == {"loader": "pickle.loads", "argument": _short(INNER)}


def test_a_skipped_payload_is_fetched_for_the_nested_scan(general):
    pad = INNER + b"\x00" * (MAX_KEEP_BYTES + 1 - len(INNER))  # too large to keep: a Blob
    data = loads_of(bb(pad))
    seen = []

    def fetch(blob: Blob) -> bytes:
        seen.append((blob.kind, blob.length, blob.start))
        return pad[:len(INNER)]

    budget = Budget(30)

    def nested_scan(inner: bytes, depth: int) -> list[RawFinding]:
        r = Reader(io.BytesIO(inner), budget, size=len(inner))
        return scan_pickle_stream(r, budget, depth=depth, nested=nested_scan).findings

    r = Reader(io.BytesIO(data), budget, size=len(data))
    res = scan_pickle_stream(r, budget, nested=nested_scan, fetch_blob=fetch)
    assert seen == [("bytes", MAX_KEEP_BYTES + 1, 23)]  # 2 + 16 (the global) + 5 (the BINBYTES header)
    assert [f.title.split(": ", 1)[-1] for f in res.findings] == ["dangerous global pickle.loads",
                                                                   "dangerous global os.system"]
    # without a fetcher, or when it cannot return the bytes, the payload is uninspectable
    for fetch_blob in (None, lambda blob: None):
        r = Reader(io.BytesIO(data), budget, size=len(data))
        res = scan_pickle_stream(r, budget, nested=nested_scan, fetch_blob=fetch_blob)
        assert [f.rule for f in res.findings] == ["artifact.pickle.dangerous-global",
                                                  "artifact.pickle.nested-uninspectable"]
        assert res.findings[1].evidence["argument"] == f"<bytes of {MAX_KEEP_BYTES + 1} bytes>"


def test_nested_depth_is_passed_down_and_bounded(general):
    depths = []

    def nested(inner: bytes, depth: int) -> list[RawFinding]:
        depths.append(depth)
        return []

    for depth, expect in ((0, [1]), (MAX_NEST - 1, [MAX_NEST]), (MAX_NEST, [])):
        depths.clear()
        r = Reader(io.BytesIO(loads_of(bb(INNER))), Budget(30))
        res = scan_pickle_stream(r, Budget(30), depth=depth, nested=nested)
        assert depths == expect
        assert ("artifact.pickle.nested-uninspectable" in [f.rule for f in res.findings]) is (not expect)


@pytest.mark.parametrize("loader", [("torch", "load"), ("joblib", "load"), ("dill", "loads"), ("numpy", "loads")])
def test_every_nested_loader_is_followed(general, loader):
    res = scan(loads_of(bb(INNER), loader))
    assert [f.title for f in res.findings][-1] == (
        f"nested in {'.'.join(loader)}@{len(loads_of(bb(INNER), loader)) - 2}: dangerous global os.system")


# ------------------------------------------------------------------ the stream loop
def stream(data: bytes, **kw) -> StreamResult:
    budget = Budget(30)
    return scan_pickle_stream(Reader(io.BytesIO(data), budget, size=len(data)), budget, **kw)


NOT_A_PICKLE = dict(findings=[], globals={}, pickles=0, complete=False, is_pickle=False, joblib=False, end_offset=0)


def test_defaults_scan_at_depth_zero_without_probing(general):
    depths = []

    def nested(inner: bytes, depth: int) -> list[RawFinding]:
        depths.append(depth)
        return []

    stream(loads_of(bb(INNER)), nested=nested)
    assert depths == [1]
    res = stream(P4 + b"\xff")  # fails before anything could run, but no probe was asked for
    assert (res.is_pickle, res.pickles, [f.rule for f in res.findings]) == (True, 1, ["artifact.malformed"])
    res = stream(P4 + b"N.")  # no named global, but no probe_named either
    assert (res.is_pickle, res.pickles, res.findings, res.complete) == (True, 1, [], True)


def test_probe_reports_not_a_pickle_only_before_anything_ran(general):
    assert stream(P4 + b"\xff", probe=True) == StreamResult(ops=2, protocol=4, **NOT_A_PICKLE)
    res = stream(P4 + sglob("os", "system") + b"\xff", probe=True)
    assert [f.rule for f in res.findings] == ["artifact.pickle.dangerous-global", "artifact.malformed"]
    assert (res.is_pickle, res.complete) == (True, False)
    res = stream(P2 + b"\x82\x01\xff", probe=True)  # a finding but no global: it counts as code that ran
    assert [f.rule for f in res.findings] == ["artifact.pickle.unresolvable-global", "artifact.malformed"]


def test_probe_named_needs_a_named_global_or_a_bound(general, monkeypatch):
    assert stream(P2 + b"\x82\x01)R.", probe_named=True) == StreamResult(ops=5, protocol=2, **NOT_A_PICKLE)
    assert stream(P2 + b"\x82\x01\xff", probe_named=True) == StreamResult(ops=3, protocol=2, **NOT_A_PICKLE)
    res = stream(P4 + sglob("os", "system") + b".", probe_named=True)
    assert (res.is_pickle, res.globals) == (True, {"os.system": "deny"})
    monkeypatch.setattr(pickle_scan, "MAX_STACK", 3)
    res = stream(P2 + b"NNNN.", probe_named=True)
    assert res.is_pickle and [f.rule for f in res.findings] == ["artifact.limit-exceeded"]


def test_a_bound_hit_is_never_not_a_pickle(general, monkeypatch):
    monkeypatch.setattr(pickle_scan, "MAX_STACK", 3)
    res = stream(P2 + b"NNNN.", probe=True)
    assert [(f.severity, f.rule, f.title, f.offset, f.evidence) for f in res.findings] == [
        (Severity.HIGH, "artifact.limit-exceeded", "scan bound hit: pickle stack deeper than 3 items (stack-depth bomb)",
         6, {})]
    check_detail(res.findings[0])
    assert (res.is_pickle, res.complete, res.pickles) == (True, False, 1)
    res = stream(P2 + b"N." + P2 + b"NNNN.")  # in a later pickle too: not trailing data
    assert [(f.rule, f.offset) for f in res.findings] == [("artifact.limit-exceeded", 10)]
    assert (res.complete, res.pickles) == (False, 2)


def test_later_pickles_are_scanned_up_to_max_pickles(general):
    three = P4 + b"N." + P2 + b"K\x01." + b"\x80\x03" + sglob("os", "system") + b"."
    res = stream(three)
    assert (res.pickles, res.protocol, res.ops, res.end_offset, res.complete) == (3, 4, 3 + 3 + 5, len(three), True)
    assert res.globals == {"os.system": "deny"}
    res = stream(three, max_pickles=2)
    assert (res.pickles, res.end_offset, res.protocol, res.globals) == (2, 9, 4, {})
    many = P2 + b"N." * (pickle_scan.MAX_PICKLES + 1)
    assert stream(many).pickles == pickle_scan.MAX_PICKLES


def test_globals_keep_their_first_verdict_across_pickles(general):
    res = stream(P4 + OD + b"." + P4 + OD + b"." + P4 + sglob("os", "system") + b".")
    assert res.globals == {"collections.OrderedDict": "allow", "os.system": "deny"}
    assert list(res.globals) == ["collections.OrderedDict", "os.system"]


def test_a_later_pickle_that_fails_after_running_code_is_malformed(general):
    first = P4 + b"N."
    res = stream(first + P2 + b"\x82\x01" + b"\xff")
    assert [(f.rule, f.offset, f.evidence) for f in res.findings] == [
        ("artifact.pickle.unresolvable-global", 6, {"code": 1}),
        ("artifact.malformed", 8, {"pickle_index": 1, "pickle_start": 4})]
    assert (res.complete, res.pickles) == (False, 2)
    # with probe_named only named globals count: trailing data, and no named global anywhere: not a pickle
    assert stream(first + P2 + b"\x82\x01" + b"\xff", probe_named=True) == StreamResult(ops=6, protocol=4,
                                                                                       **NOT_A_PICKLE)
    res = stream(first + P2 + b"\x82\x01" + b"\xff" + P4 + OD + b".", probe_named=True)
    assert res.is_pickle is False


def test_trailing_data_is_low_and_names_the_error(general):
    res = stream(P4 + b"N." + b"\x80\x04\xff")
    (f,) = res.findings
    assert (f.severity, f.rule, f.title, f.offset, f.evidence) == (
        Severity.LOW, "artifact.pickle.trailing-data", "non-pickle data after the last pickle", 4, {})
    assert f.detail == ("Bytes follow the pickle stream and do not parse as a pickle (invalid opcode 0xff); they "
                        "were probe-parsed and reach no global.")
    assert (res.complete, res.pickles, res.is_pickle) == (True, 2, True)


def test_truncation_is_reported_where_the_reader_stopped(general):
    res = stream(P4 + b"X\x10\x00\x00\x00abc")
    assert [(f.rule, f.title, f.offset) for f in res.findings] == [
        ("artifact.malformed", "pickle stream is malformed: stream ends before 16 declared bytes", 10)]


def test_on_build_sees_the_call_its_state_and_the_offset_and_can_flag_joblib(general):
    seen = []

    def on_build(ps: PickleScan, call: Call, state, off: int) -> None:
        seen.append((call.func.key, state, off))
        ps.flags.add("joblib")

    data = P4 + OD + b")RK\x07b."
    res = stream(data + P2 + b"N.", on_build=on_build)
    assert seen == [("collections.OrderedDict", 7, len(data) - 2)]
    assert res.joblib is True and res.pickles == 2
    assert stream(data).joblib is False
    # a BUILD on a call of something that is not a global is not handed to the hook
    seen.clear()
    stream(P4 + OD + b")R)RK\x07b.", on_build=on_build)
    assert seen == []


def test_recursion_in_a_hook_is_a_bound(general):
    def on_build(ps, call, state, off):
        raise RecursionError

    res = stream(P4 + OD + b")RK\x07b.", on_build=on_build)
    assert [(f.rule, f.title) for f in res.findings] == [("artifact.limit-exceeded", "scan bound hit: recursion bound")]


def test_the_collector_is_restored(general):
    assert gc.isenabled()
    stream(P4 + OD + b")R.")
    assert gc.isenabled()
    stream(P4 + b"\xff")
    assert gc.isenabled()
    gc.disable()
    try:
        stream(P4 + OD + b")R.")
        assert not gc.isenabled()
    finally:
        gc.enable()


# ------------------------------------------------------------------ opcode by opcode
_L = b"\n."
VALUES = [  # (stream, the value it leaves: type and value exactly)
    (b"I00" + _L, False), (b"I01" + _L, True), (b"I 42 " + _L, 42), (b"L123L" + _L, 123), (b"I-7" + _L, -7),
    (b"I" + b"1" * 4096 + _L, int("1" * 4096)),
    (b"F1.5" + _L, 1.5), (b"F-2e3" + _L, -2000.0),
    (b"S'abc'" + _L, "abc"), (b'S"a\\x41"' + _L, "aA"), (b"S''" + _L, ""), (b"S'\\xe9'" + _L, "\xe9"),
    (b"S'" + b"a" * 65534 + b"'" + _L, "a" * 65534),
    (b"Vabc\\u0041" + _L, "abcA"), (b"V" + b"a" * 65536 + _L, "a" * 65536),
    (b"\x8a\x00.", 0), (b"\x8a\x02\xff\x7f.", 0x7FFF), (b"\x8a\x01\xff.", -1),
    (b"\x8b" + struct.pack("<i", 0) + b".", 0), (b"\x8b" + struct.pack("<i", 1) + b"\x80.", -128),
    (b"\x8b" + struct.pack("<i", 2) + b"\x01\x02.", 0x0201),  # little-endian, as pickle
    (b"\x8b" + struct.pack("<i", 4096) + b"\x01" * 4096 + b".", int.from_bytes(b"\x01" * 4096, "little")),
    (b"\x80\x05N.", None), (b"\x80\x04\x80\x02N.", None), (b"\x95" + struct.pack("<Q", 2) + b"N.", None),
    (b"Np0\n0g0\n.", None), (b"K\x07p" + b"0" * 63 + b"1\n0g1\n.", 7), (b"K\x07r\x05\x00\x00\x000j\x05\x00\x00\x00.", 7),
    (b"K\x07q\x03\x94" + b"0h\x01.", 7),  # MEMOIZE stores at len(memo), here 1
    (b"N(K\x01K\x021.", None), (b"K\x01(0.", 1), (b"K\x01K\x020.", 1), (b"K\x032\x86.", (3, 3)),
    (b"(K\x01K\x02t.", (1, 2)), (b")\x85.", ((),)), (b"K\x01K\x02\x86.", (1, 2)), (b"K\x01K\x02K\x03\x87.", (1, 2, 3)),
    (b"N\x98.", None), (b"G" + struct.pack(">d", 2.5) + b".", 2.5), (b"J\xff\xff\xff\xff.", -1),
    (b"M\x01\x02.", 0x0201), (b"K\xff.", 255), (b"\x88.", True), (b"\x89.", False), (b").", ()),
]


@pytest.mark.parametrize(("data", "expected"), VALUES, ids=[repr(d[:12]) for d, _ in VALUES])
def test_opcode_values(general, data, expected):
    v = top(data)[1]
    assert type(v) is type(expected) and v == expected


SEQS = [  # (stream, kind, kept items, count)
    (b"].", "list", [], 0), (b"}.", "dict", [], 0), (b"\x8f.", "set", [], 0),
    (b"(K\x01K\x02d.", "dict", [(1, 2)], 1), (b"(K\x01l.", "list", [1], 1), (b"(K\x01\x91.", "frozenset", [1], 1),
    (b"\x8f(K\x01K\x02\x90.", "set", [1, 2], 2), (b"](K\x01K\x02e.", "list", [1, 2], 2), (b"]K\x01a.", "list", [1], 1),
    (b"}K\x01K\x02s.", "dict", [(1, 2)], 1), (b"}(K\x01K\x02K\x03K\x04u.", "dict", [(1, 2), (3, 4)], 2),
]


@pytest.mark.parametrize(("data", "kind", "items", "n"), SEQS, ids=[repr(d) for d, *_ in SEQS])
def test_container_values(general, data, kind, items, n):
    v = top(P4 + data)[1]
    assert isinstance(v, Seq) and (v.kind, v.items, v.n) == (kind, items, n)


OPAQUE = [  # (stream, what the scanner could not know, persistent id)
    (b"I" + b"1" * 4097 + _L, "integer", None), (b"F" + b"1" * 4097 + _L, "float", None),
    (b"S'" + b"a" * 65536 + _L, "str", None), (b'S"' + b"a" * 65536 + _L, "str", None),
    (b"V" + b"a" * 65537 + _L, "str", None),
    (b"\x8b" + struct.pack("<i", 4097) + b"\x01" * 4097 + b".", "huge int", None),
    (b"\x97.", "out-of-band buffer", None), (b"Pabc\n.", "persistent object", b"abc"),
    (b"K\x01Q.", "persistent object", 1),
    (b"c" + b"m" * 1025 + b"\nx\n.", "unresolved global", None), (b"cm\n" + b"x" * 1025 + b"\n.", "unresolved global", None),
]


@pytest.mark.parametrize(("data", "what", "pid"), OPAQUE, ids=[repr(d[:12]) for d, *_ in OPAQUE])
def test_opaque_values(general, data, what, pid):
    v = top(data)[1]
    assert isinstance(v, Opaque) and (v.what, v.pid) == (what, pid)


def test_over_long_global_lines_are_unresolvable_critical(general):
    res = scan(b"c" + b"m" * 1025 + b"\nx\n.")
    assert [(f.severity, f.rule, f.title, f.evidence) for f in res.findings] == [
        (Severity.CRITICAL, "artifact.pickle.unresolvable-global",
         "unresolvable global via GLOBAL: operands are not strings",
         {"module": "<name longer than 1024 bytes>", "name": "'x'"})]


MALFORMED = [  # (stream, message, offset where the load fails)
    (b"L" + _L, "bad INT/LONG literal", 2), (b"IL" + _L, "bad INT/LONG literal", 3),
    (b"I" + b"x" * 4097 + _L, "INT/LONG argument is not valid (the load fails here)", 4099),
    (b"Fabc" + _L, "bad FLOAT literal", 5),
    (b"F" + b"x" * 4097 + _L, "FLOAT argument is not valid (the load fails here)", 4099),
    (b"Sabc" + _L, "STRING opcode argument must be quoted", 5), (b"S'" + _L, "STRING opcode argument must be quoted", 3),
    (b"S'abc\"" + _L, "STRING opcode argument must be quoted", 7),
    (b"S'" + b"a" * 65535 + _L, "STRING opcode argument must be quoted", 65538),
    (b"Sa" + b"a" * 65536 + _L, "STRING opcode argument must be quoted", 65539),
    (b"S'\\x4'" + _L, "bad STRING escape", 7), (b"V\\u00" + _L, "bad UNICODE literal", 6),
    (b"\x8b\xff\xff\xff\xff.", "negative LONG4 length", 5), (b"\x80\x06N.", "unsupported pickle protocol 6", 2),
    (b"Npx\n.", "bad PUT index", 4), (b"Np" + b"x" * 65 + _L, "PUT argument is not valid (the load fails here)", 68),
    (b"Ngx\n.", "bad GET index", 4), (b"\x80\x04\x94.", "MEMOIZE on an empty stack", 3),
    (b"p0\n.", "PUT on an empty stack", 3), (b"q\x00.", "BINPUT on an empty stack", 2),
    (b"r\x00\x00\x00\x00.", "LONG_BINPUT on an empty stack", 5), (b"g5\n.", "memo key 5 was never stored", 3),
    (b"Np-1\n.", "negative memo index", 5), (b"Nh\x01.", "memo key 1 was never stored", 3),
    (b"Nj\x01\x00\x00\x00.", "memo key 1 was never stored", 6),
    (b"c" + b"m" * 1024 + b"\nx\n.", f"invalid global name {'m' * 40!r}.'x' (the load fails here)", 1028),
    (b"c\xff\nx\n.", "non-UTF-8 global name", 3),
    (b"c" + b"-" * 1025 + b"\nx\n.", "GLOBAL/INST argument is not valid (the load fails here)", 1027),
    (b"(K\x01a.", "APPEND without a target", 4), (b"(K\x01K\x02s.", "SETITEM without a target", 6),
    (b"(e.", "APPENDS without a target", 2), (b"(K\x01K\x02u.", "SETITEMS without a target", 6),
    (b"}(K\x01u.", "SETITEMS with an odd number of items", 5), (b"(\x90.", "ADDITEMS without a target", 2),
    (b"(K\x01d.", "DICT with an odd number of items", 4),
    (b"\x85.", "stack underflow", 1), (b"K\x01\x86.", "stack underflow", 3), (b"K\x01K\x02\x87.", "stack underflow", 5),
    (b"a.", "stack underflow", 1), (b"K\x01s.", "stack underflow", 3), (b"R.", "stack underflow", 1),
    (b"N0.", "STOP with a stack that does not hold exactly one value", 3),
    (b"1.", "pop of a MARK that was never pushed", 1), (b"e.", "pop of a MARK that was never pushed", 1),
    (b"u.", "pop of a MARK that was never pushed", 1), (b"2.", "DUP on an empty stack", 1),
    (b"N(.", "STOP with a stack that does not hold exactly one value", 3),
    (b"\x98.", "READONLY_BUFFER on an empty stack", 1), (b"b.", "stack underflow", 1),
    (b"Nb.", "BUILD without a target", 2), (b"N\x81.", "stack underflow", 2),
    (b"o.", "pop of a MARK that was never pushed", 1), (b"(o.", "OBJ without a class", 2),
    (b"(i\n\n.", "invalid global name ''.'' (the load fails here)", 4),
]


@pytest.mark.parametrize(("data", "message", "offset"), MALFORMED, ids=[repr(d[:12]) for d, *_ in MALFORMED])
def test_malformed_streams(general, data, message, offset):
    res = stream(data)
    assert [(f.severity, f.rule, f.title, f.offset) for f in res.findings] == [
        (Severity.HIGH, "artifact.malformed", f"pickle stream is malformed: {message}", offset)]
    assert (res.complete, res.pickles, res.is_pickle) == (False, 1, True)


@pytest.mark.parametrize(("data", "message", "offset"), [
    (b"Np" + b"0" * 64 + b"1\n.", "PUT memo index longer than 64 bytes", 68),
    (b"Ng" + b"0" * 65 + b"\n.", "GET memo index longer than 64 bytes", 68),
])
def test_over_long_memo_indexes_are_a_bound(general, data, message, offset):
    res = stream(data)
    assert [(f.severity, f.rule, f.title, f.offset) for f in res.findings] == [
        (Severity.HIGH, "artifact.limit-exceeded", f"scan bound hit: {message}", offset)]


# ------------------------------------------------------------------ bounds, opcode by opcode
PUSHES = {  # one opcode that pushes one value (after its set-up)
    "BINGET": (b"N\x94", b"h\x00"), "LONG_BINGET": (b"N\x94", b"j\x00\x00\x00\x00"), "GET": (b"N\x94", b"g0\n"),
    "BININT1": (b"", b"K\x01"), "BININT2": (b"", b"M\x01\x02"), "BININT": (b"", b"J\x01\x02\x03\x04"),
    "NONE": (b"", b"N"), "NEWTRUE": (b"", b"\x88"), "NEWFALSE": (b"", b"\x89"), "EMPTY_TUPLE": (b"", b")"),
    "EMPTY_DICT": (b"", b"}"), "EMPTY_LIST": (b"", b"]"), "EMPTY_SET": (b"", b"\x8f"),
    "BINFLOAT": (b"", b"G" + struct.pack(">d", 1.0)), "SHORT_BINUNICODE": (b"", b"\x8c\x01a"),
    "SHORT_BINBYTES": (b"", b"C\x01a"), "BINUNICODE": (b"", b"X\x01\x00\x00\x00a"), "DUP": (b"N", b"2"),
    "INT": (b"", b"I5\n"), "BINSTRING": (b"", b"T\x01\x00\x00\x00a"), "BINBYTES8": (b"", b"\x8e" + struct.pack("<Q", 1) + b"a"),
}


@pytest.mark.parametrize("name", PUSHES)
def test_the_stack_bound_hits_at_the_push_past_it(general, monkeypatch, name):
    monkeypatch.setattr(pickle_scan, "MAX_STACK", 3)
    setup, op = PUSHES[name]
    data = P4 + setup + op * (4 - len(setup and b"x")) + b"."
    res = stream(data)
    assert [(f.rule, f.title, f.offset) for f in res.findings] == [
        ("artifact.limit-exceeded", "scan bound hit: pickle stack deeper than 3 items (stack-depth bomb)", len(data) - 1)]
    at_bound = P4 + setup + op * (3 - len(setup and b"x")) + b"0" * 2 + b"."
    assert stream(at_bound).complete


def test_the_mark_bound_hits_at_the_mark_past_it(general, monkeypatch):
    monkeypatch.setattr(pickle_scan, "MAX_STACK", 3)
    res = stream(P4 + b"((((.")
    assert [(f.rule, f.title, f.offset) for f in res.findings] == [
        ("artifact.limit-exceeded", "scan bound hit: MARK nesting deeper than the bound (stack-depth bomb)", 6)]
    assert stream(P4 + b"(((111N.").complete


@pytest.mark.parametrize("store", [b"\x94", b"q\x09", b"r\x09\x00\x00\x00", b"p9\n"], ids=["MEMOIZE", "BINPUT",
                                                                                          "LONG_BINPUT", "PUT"])
def test_the_memo_bound_counts_new_entries_only(general, monkeypatch, store):
    monkeypatch.setattr(pickle_scan, "MAX_MEMO", 3)
    fill = b"N\x940" * 3  # entries 0, 1, 2
    res = stream(P4 + fill + b"N" + store + b".")
    if store == b"\x94":
        assert [(f.rule, f.title) for f in res.findings] == [
            ("artifact.limit-exceeded", "scan bound hit: more than 3 memo entries")]
    else:
        assert [(f.rule, f.title) for f in res.findings] == [
            ("artifact.limit-exceeded", "scan bound hit: more than 3 memo entries")]
        rebind = store.replace(b"\x09", b"\x01").replace(b"9", b"1")
        assert stream(P4 + fill + b"N" + rebind + b".").complete
    assert stream(P4 + b"N\x940" * 2 + b"N" + store + b".").complete


def test_the_time_bound_is_checked_every_4096_opcodes(general):
    calls = []

    def clock() -> float:
        calls.append(1)
        return 0.0 if len(calls) == 1 else 1e9

    budget = Budget(30, clock=clock)
    data = P4 + b"N0" * 2047 + b"N."  # 4097 opcodes
    res = scan_pickle_stream(Reader(io.BytesIO(data), budget, size=len(data)), budget)
    assert [(f.rule, f.title) for f in res.findings] == [
        ("artifact.limit-exceeded", "scan bound hit: scan exceeded its 30 s time bound")]
    assert res.ops == 4096
    calls.clear()
    short = P4 + b"N0" * 2046 + b"N."  # 4095 opcodes: the clock is not read past the deadline
    budget = Budget(30, clock=clock)
    res = scan_pickle_stream(Reader(io.BytesIO(short), budget, size=len(short)), budget)
    assert res.complete and res.findings == [] and len(calls) == 1


# ------------------------------------------------------------------ global names at their bounds
def V(text: str) -> bytes:
    """UNICODE: a str of any length up to 65536 (BINUNICODE keeps only 1024)."""
    return b"V" + text.encode() + b"\n"


def global_of(module: str, name: str) -> bytes:
    return P4 + V(module) + V(name) + b"\x93."


def _unresolvable(module: str, name: str) -> dict:
    return {"module": f"<{module[:60]}>", "name": f"<{name[:60]}...>"}


@pytest.mark.parametrize(("module", "name"), [
    ("somepkg", "a." + "b" * 255),              # 257 characters with a dot: a long attribute chain
    ("m" * 256, "a." + "b" * 255),              # the module may be as long as 256
    ("somepkg", "a." + "b" * 65534),            # 65536: the longest name a pickle line holds
])
def test_long_attribute_chains_are_unresolvable_critical(general, module, name):
    res = scan(global_of(module, name))
    assert [(f.severity, f.rule, f.title, f.evidence) for f in res.findings] == [
        (Severity.CRITICAL, "artifact.pickle.unresolvable-global",
         "unresolvable global via STACK_GLOBAL: operands are not strings", _unresolvable(module, name))]
    assert res.complete and res.globals == {}


@pytest.mark.parametrize(("module", "name"), [
    ("somepkg", "b" * 257),                     # long but no dot: the loader's lookup fails
    ("m" * 257, "a." + "b" * 255),              # a long module is never a chain
    ("m" * 257, "x"),
])
def test_long_names_that_are_not_chains_are_malformed(general, module, name):
    res = scan(global_of(module, name))
    assert [(f.rule, f.title) for f in res.findings] == [
        ("artifact.malformed",
         f"pickle stream is malformed: invalid global name {module[:40]!r}.{name[:40]!r} (the load fails here)")]


def test_a_chain_at_256_characters_is_judged_by_the_policy(general):
    name = "a." + "b" * 254
    res = scan(global_of("somepkg", name))
    verdict = classify_global("somepkg", name)
    assert [(f.rule, f.evidence["policy_rule"]) for f in res.findings] == [
        ("artifact.pickle.dangerous-global", verdict.rule)]
    assert res.globals == {f"somepkg.{name}": "deny"}


def test_persistent_ids_keep_their_first_1024_bytes(general):
    v = top(b"P" + b"a" * 1100 + b"\n.")[1]
    assert isinstance(v, Opaque) and v.pid == b"a" * 1024
    assert top(b"P" + b"a" * 1024 + b"\n.")[1].pid == b"a" * 1024


@pytest.mark.parametrize(("data", "message"), [
    (P4 + b"\x8c", "unexpected end of stream"), (P4 + b"C", "unexpected end of stream"),
    (P4 + b"U", "unexpected end of stream"),
    (P4 + b"X\x01\x00", "stream ends before 4 declared bytes"),
    (P4 + b"\x8d\x01\x00", "stream ends before 8 declared bytes"),
    (P4 + b"\x8c\x05ab", "stream ends before 5 declared bytes"),
    (P4 + b"\x83\x01", "stream ends before 2 declared bytes"),
])
def test_truncated_operands(general, data, message):
    res = stream(data)
    assert [(f.rule, f.title) for f in res.findings] == [("artifact.malformed", f"pickle stream is malformed: {message}")]


def test_the_torchscript_context_reaches_the_policy(general):
    data = P2 + sglob("__torch__", "MyModule") + b")\x81."
    assert stream(data, context="torchscript").findings == []
    assert [(f.severity, f.rule) for f in stream(data).findings] == [(Severity.HIGH, "artifact.pickle.unknown-global")]
    assert stream(data, context="torchscript").globals == {"__torch__.MyModule": "allow"}


def test_a_fresh_scan_starts_empty():
    ps = PickleScan(Reader(io.BytesIO(b"N."), Budget(30)), Budget(30))
    assert (ps.depth, ps.context, ps.nested, ps.on_build, ps.fetch_blob) == (0, "pickle", None, None, None)
    assert (ps.findings, ps.globals, ps.ops, ps.retained, ps.protocol, ps.complete) == ([], {}, 0, 0, 0, False)
    assert (ps.stack, ps.metastack, ps.memo, ps.flags) == ([], [], {}, set())
    ps.run()
    assert (ps.ops, ps.complete, ps.stack) == (2, True, [None])
    ps.release()
    assert (ps.stack, ps.metastack, ps.memo) == ([], [], {})


@pytest.mark.parametrize(("data", "message"), [
    (b"N\x94h", "unexpected end of stream"), (b"K", "unexpected end of stream"), (b"q", "unexpected end of stream"),
    (b"M\x01", "stream ends before 2 declared bytes"), (b"J\x01\x02\x03", "stream ends before 4 declared bytes"),
    (b"G\x01\x02\x03\x04\x05\x06\x07", "stream ends before 8 declared bytes"),
    (b"\x95\x01\x02\x03\x04\x05\x06\x07", "stream ends before 8 declared bytes"),
    (b"X\x03\x00\x00\x00ab", "stream ends before 3 declared bytes"), (b"X\x03\x00", "stream ends before 4 declared bytes"),
    (b"C\x03ab", "stream ends before 3 declared bytes"), (b"\x8c", "unexpected end of stream"),
])
def test_fast_opcodes_cut_at_the_end_of_the_data(general, data, message):
    res = stream(P4 + data)
    assert [(f.rule, f.title, f.offset) for f in res.findings] == [
        ("artifact.malformed", f"pickle stream is malformed: {message}", len(P4 + data))]


def test_fixed_width_readers():
    # built once at import; checked here through the builder itself (a mutation test cannot see import-time calls)
    assert pickle_scan._u("<I")(b"\x01\x02\x03\x04") == 0x04030201
    assert pickle_scan._u("<i")(b"\xff\xff\xff\xff") == -1
    assert pickle_scan._u(">d")(struct.pack(">d", 2.5)) == 2.5
    assert (pickle_scan._U4(b"\x01\x00\x00\x00"), pickle_scan._I4(b"\xfe\xff\xff\xff")) == (1, -2)
    assert (pickle_scan._U8(b"\x01" + b"\x00" * 7), pickle_scan._U2(b"\x01\x02")) == (1, 0x0201)


def test_the_result_of_a_loader_call_is_a_call_of_that_loader(general):
    # loads(b"...")() calls the result of the loader: the evidence names the loader and its argument
    res = scan(P4 + sglob("pickle", "loads") + bb(P4 + b"N.") + b"\x85R)R.")
    assert [(f.rule, f.evidence) for f in res.findings][-1] == (
        "artifact.pickle.indirect-call", {"callable": "pickle.loads(b'\\x80\\x04N.')"})
    res = scan(P2 + b"c_codecs\nencode\n" + X("ab") + X("utf-8") + b"\x86R)R.")
    assert [(f.rule, f.evidence) for f in res.findings] == [
        ("artifact.pickle.indirect-call", {"callable": "_codecs.encode('ab', 'utf-8')"})]
    res = scan(P4 + sglob("somepkg", "Thing") + b"K\x01\x85R)R.")  # a global with a finding, no hook
    assert [(f.rule, f.evidence.get("callable")) for f in res.findings] == [
        ("artifact.pickle.unknown-global", None), ("artifact.pickle.indirect-call", "somepkg.Thing(1)")]
    res = scan(P4 + OD + b"K\x01\x85R)R.")  # a plain allowlisted global
    assert [(f.rule, f.evidence) for f in res.findings] == [
        ("artifact.pickle.indirect-call", {"callable": "collections.OrderedDict(1)"})]
    res = scan(P2 + sglob("torch._utils", "_rebuild_parameter") + b"(K\x01t" + b"R)R.")
    assert [(f.rule, f.evidence) for f in res.findings] == [
        ("artifact.pickle.indirect-call", {"callable": "torch._utils._rebuild_parameter(1)"})]


@pytest.mark.parametrize(("module", "name"), [("a-" * 30, "Thing"), ("somepkg", "b c" * 20)])
def test_non_identifier_names_are_quoted_in_the_malformed_message(general, module, name):
    data = global_of(module, name)
    res = scan(data)
    assert [(f.rule, f.title, f.offset) for f in res.findings] == [
        ("artifact.malformed",
         f"pickle stream is malformed: invalid global name {module[:40]!r}.{name[:40]!r} (the load fails here)",
         len(data) - 1)]


def test_unresolvable_chains_are_reported_at_their_opcode(general):
    data = global_of("somepkg", "a." + "b" * 255)
    assert [f.offset for f in scan(data).findings] == [len(data) - 2]
    data = P4 + b"K\x01" + s8("x") + b"\x93)R."
    assert [(f.rule, f.offset) for f in scan(data).findings] == [("artifact.pickle.unresolvable-global", 7)]


def test_names_longer_than_a_text_line_are_malformed_even_as_chains(general):
    # BINSTRING keeps up to 1 MiB and loads as latin-1 text, so a name can be longer than any text line (65536)
    def binstring(text: str) -> bytes:
        return b"T" + struct.pack("<i", len(text)) + text.encode("latin-1")

    for module, name in (("somepkg", "a." + "b" * 69_998), ("somepkg", "a." + "b" * 65_535), ("m" * 70_000, "x")):
        data = P2 + binstring(module) + binstring(name) + b"\x93."
        res = scan(data)
        assert [(f.rule, f.title) for f in res.findings] == [
            ("artifact.malformed",
             f"pickle stream is malformed: invalid global name {module[:40]!r}.{name[:40]!r} (the load fails here)")]


def test_probe_named_judges_later_pickles_by_their_named_globals(general):
    first = P4 + OD + b"."
    res = stream(first + P2 + b"\x82\x01\xff", probe_named=True)  # a finding but no named global: trailing
    assert [(f.rule, f.severity) for f in res.findings] == [
        ("artifact.pickle.unresolvable-global", Severity.CRITICAL), ("artifact.pickle.trailing-data", Severity.LOW)]
    res = stream(first + P4 + sglob("os", "system") + b"\xff", probe_named=True)  # a named global: malformed
    assert [f.rule for f in res.findings] == ["artifact.pickle.dangerous-global", "artifact.malformed"]
    assert res.is_pickle and not res.complete


def test_no_pickle_scanned_is_not_joblib():
    res = stream(P4 + b"N.", max_pickles=0)
    assert (res.pickles, res.joblib, res.findings) == (0, False, [])


def test_small_cases_of_views_targets_and_hooks(general):
    assert top(P4 + b"X\x00\x00\x00\x00.")[1] == ""  # an empty string is not a negative length
    # _rebuild_tensor takes exactly four arguments, and is judged
    four = P2 + sglob("torch._utils", "_rebuild_tensor") + b"(" + b"(" + s8("storage") + b"tQ" + _int(-1) + _ints((1,)) + _ints((1,)) + b"tR."
    assert [f.rule for f in scan(four).findings] == ["artifact.torch.tensor-bounds"]
    # a stride of 0 (an expanded view) reads the same element again: in bounds
    assert bounds_findings(tensor(1, 0, (3,), (0,))) == []
    # only the rebuild functions get the bounds check: tensor-shaped arguments of another global are not judged
    assert scan(P4 + OD + b"(N" + _int(-1) + _ints((1,)) + _ints((1,)) + b"tR.").findings == []
    # APPEND to the result of a plain global's call mutates nothing imported
    assert scan(P4 + OD + b")RK\x01a.").findings == []
