"""Exact outcomes of the pickle scanner, finding by finding (issue 23: mutants of pickle_scan.py).

Every pickle here is written opcode by opcode and only scanned, never loaded (payloads are harmless
strings). The tests call ``scan_pickle_stream`` directly and pin what it returns: each finding's
severity, rule id, title, offset and evidence, the globals, the protocol, the opcode count and the
completeness of the stream, on the inline fast path of ``PickleScan.run`` and on the reference
interpreter (``run_general``) alike.
"""

from __future__ import annotations

import io
import struct

import pytest

from modelshield.artifacts._io import Budget, Reader
from modelshield.artifacts.pickle_scan import PickleScan, RawFinding, StreamResult, scan_pickle_stream
from modelshield.findings import Severity

from .corpus import s8, sglob

P2 = b"\x80\x02"
P4 = b"\x80\x04"
OD = sglob("collections", "OrderedDict")


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
