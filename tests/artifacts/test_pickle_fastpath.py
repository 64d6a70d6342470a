"""The inline fast paths of ``PickleScan.run`` against the reference interpreter (``run_general``).

``run`` interprets the hot opcodes directly on the reader's buffer and falls back to the per-opcode
handlers when an argument is not fully buffered. Both paths must give the same result on every
input: same findings (rule, severity, title, offset, evidence), globals, opcode count, protocol,
completeness and end offset -- on whole files, on mutated and generated opcode streams, and through
a reader that receives the data a few bytes at a time (so that arguments straddle buffer ends).
"""

from __future__ import annotations

import io
import pickle
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelshield.artifacts import pickle_scan, scan, scan_bytes
from modelshield.artifacts._io import Budget, Reader
from modelshield.artifacts.joblib_scan import joblib_on_build
from modelshield.artifacts.pickle_scan import PickleScan, scan_pickle_stream

from .corpus import hostile_cases, malicious_cases


@contextmanager
def general_path(on: bool):
    before = PickleScan.general
    PickleScan.general = on
    try:
        yield
    finally:
        PickleScan.general = before


class Trickle(io.RawIOBase):
    """A non-seekable stream that returns at most ``step`` bytes per read."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__()
        self.data, self.pos, self.step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        k = self.step if n < 0 else min(n, self.step)
        out = self.data[self.pos:self.pos + k]
        self.pos += len(out)
        return out


def _stream(data: bytes, *, general: bool, step: int | None = None, clock=None) -> tuple:
    budget = Budget(30) if clock is None else Budget(30, clock=clock)

    def nested(inner: bytes, depth: int):
        r = Reader(io.BytesIO(inner), budget, size=len(inner))
        return scan_pickle_stream(r, budget, depth=depth, nested=nested, on_build=joblib_on_build).findings

    fh = io.BytesIO(data) if step is None else Trickle(data, step)
    reader = Reader(fh, budget, size=len(data) if step is None else None)
    with general_path(general):
        try:
            res = scan_pickle_stream(reader, budget, nested=nested, on_build=joblib_on_build)
        except Exception as exc:  # compared like a result: both paths must fail the same way
            return ("raised", type(exc).__name__, str(exc))
    return (res.pickles, res.ops, res.protocol, res.complete, res.is_pickle, res.joblib, res.end_offset,
            sorted(res.globals.items()),
            [(f.severity, f.rule, f.title, f.offset, f.detail, repr(f.evidence)) for f in res.findings])


def assert_same(data: bytes, **kw) -> tuple:
    fast = _stream(data, general=False, **kw)
    ref = _stream(data, general=True, **kw)
    assert fast == ref
    return fast


class Obj:
    def __init__(self, n: int) -> None:
        self.n, self.name, self.values = n, f"node{n}", [n * 0.5, -n, 1 << (n % 70)]


def _benign_pickles() -> list[bytes]:
    keys = ["criterion", "max_depth", "min_samples_split", "random_state", "n_outputs_"]
    tree = [{k: (i, float(i) / 3, None, True, False, "gini") for k in keys} for i in range(40)]
    blob = {"text": "x" * 2000, "short": "é€\U0001f600", "raw": b"\x00" * 300, "big": b"\x01" * 5000,
            "ints": [0, 1, 255, 256, 65535, 65536, -1, -(1 << 31), (1 << 31) - 1, 1 << 64, -(1 << 100)],
            "set": {1, 2, 3}, "frozen": frozenset({"a"}), "tuple": (1,), "t2": (1, 2), "t3": (1, 2, 3),
            "t4": (1, 2, 3, 4), "empty": (), "objs": [Obj(i) for i in range(5)]}
    out = []
    for proto in range(6):
        out.append(pickle.dumps(tree, protocol=proto))
        out.append(pickle.dumps(blob, protocol=proto))
    return out


BENIGN = _benign_pickles()
SEEDS = BENIGN + [c for _n, _t, c in malicious_cases() + hostile_cases() if isinstance(c, bytes) and len(c) < 4096]


# ------------------------------------------------------------------ whole inputs
@pytest.mark.parametrize("i", range(len(BENIGN)))
@pytest.mark.parametrize("step", [None, 1, 3, 7])
def test_benign_pickles_same_on_both_paths(i, step):
    res = assert_same(BENIGN[i], step=step)
    assert res[3] is True and res[0] == 1  # complete, one pickle
    assert {f[1] for f in res[8]} <= {"artifact.pickle.unknown-global"}  # only the test's own Obj class
    assert all("Obj" in f[2] for f in res[8])


def test_corpus_reports_same_on_both_paths(corpus):
    for key, case in corpus.items():
        reports = []
        for general in (False, True):
            with general_path(general):
                rep = scan(case.path).to_dict()
            for fr in rep["files"]:
                fr.pop("duration_s", None)
            reports.append((rep["files"], rep["errors"]))
        assert reports[0] == reports[1], key


@pytest.mark.parametrize("step", [1, 2, 5])
def test_joblib_file_same_through_a_trickling_stream(corpus, step):
    for key in ("benign/rf_raw.joblib", "benign/pipe.joblib", "benign/rf_p0.joblib", "benign/objarr.joblib",
                "malicious/joblib_objarray.joblib"):
        data = corpus[key].path.read_bytes()
        res = assert_same(data, step=step)
        assert res[5] is True, key  # the joblib array wrappers were recognised


# ------------------------------------------------------------------ generated and mutated streams
_OPS = [b"(", b"0", b"1", b"2", b"N", b"\x88", b"\x89", b")", b"]", b"}", b"\x8f", b"t", b"l", b"d", b"\x85",
        b"\x86", b"\x87", b"a", b"e", b"s", b"u", b"\x90", b"\x94", b"R", b"\x81", b"b", b".", b"\x91"]
_ARG_OPS = {b"h": 1, b"q": 1, b"K": 1, b"M": 2, b"J": 4, b"G": 8, b"j": 4, b"r": 4, b"\x95": 8, b"\x80": 1}


@st.composite
def opcode_stream(draw):
    parts = [draw(st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"\x80\x05"]))]
    for _ in range(draw(st.integers(1, 60))):
        kind = draw(st.integers(0, 5))
        if kind <= 1:
            parts.append(draw(st.sampled_from(_OPS)))
        elif kind == 2:
            op = draw(st.sampled_from(sorted(_ARG_OPS)))
            parts.append(op + draw(st.binary(min_size=0, max_size=_ARG_OPS[op])))
        elif kind == 3:  # short strings/bytes, with lengths that may lie
            op = draw(st.sampled_from([b"\x8c", b"C", b"U"]))
            body = draw(st.binary(max_size=12))
            n = draw(st.one_of(st.just(len(body)), st.integers(0, 255)))
            parts.append(op + bytes([n]) + body)
        elif kind == 4:  # 4-byte lengths, small to hostile
            op = draw(st.sampled_from([b"X", b"B", b"T"]))
            body = draw(st.binary(max_size=12))
            n = draw(st.one_of(st.just(len(body)), st.integers(0, 2000), st.just(0xFFFFFFFF),
                               st.just(0x7FFFFFFF)))
            parts.append(op + n.to_bytes(4, "little") + body)
        else:  # globals, valid and dangerous
            parts.append(draw(st.sampled_from([b"\x8c\x05numpy\x8c\x05dtype\x93", b"cos\nsystem\n",
                                               b"\x8c\x08builtins\x8c\x04eval\x93", b"\x8c\x03foo\x93"])))
    if draw(st.booleans()):
        parts.append(b".")
    return b"".join(parts)


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(opcode_stream(), st.sampled_from([None, 1, 2, 9]))
def test_generated_streams_same_on_both_paths(data, step):
    assert_same(data, step=step)


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        if kind == "flip":
            data[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[i: i + draw(st.integers(1, 32))]
        else:
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.sampled_from([None, 1, 4]))
def test_mutated_inputs_same_on_both_paths(data, step):
    assert_same(data, step=step)


# ------------------------------------------------------------------ hostile arguments on the fast paths
@pytest.mark.parametrize("data", [
    b"\x80\x04X\xff\xff\xff\x7fabc.",            # BINUNICODE length far past the end
    b"\x80\x04X\xff\xff\xff\xffabc.",
    b"\x80\x04\x8c\xffabc.",                      # SHORT_BINUNICODE length past the end
    b"\x80\x04C\x10abc.",                         # SHORT_BINBYTES length past the end
    b"\x80\x04\x8c\x02\xff\xfe.",                 # invalid UTF-8
    b"\x80\x04X\x02\x00\x00\x00\xc3(.",
    b"\x80\x04G\x00\x00.",                        # BINFLOAT cut short
    b"\x80\x04\x95\x10\x00",                      # FRAME cut short
    b"\x80\x04h\x05.",                            # BINGET of a key never stored
    b"\x80\x04\x94.",                             # MEMOIZE on an empty stack
    b"\x80\x04q\x00.",                            # BINPUT on an empty stack
    b"\x80\x04\x86.",                             # TUPLE2 underflow
    b"\x80\x04N\x87.",                            # TUPLE3 underflow
    b"\x80\x04u.",                                # SETITEMS without MARK
    b"\x80\x04}(K\x01u.",                         # SETITEMS with an odd count
    b"\x80\x04N\x81.",                            # NEWOBJ underflow
    b"\x80\x04N(K\x01K\x02ub.",                   # SETITEMS on a constant, BUILD without target
    b"\x80\x04NN.",                               # STOP with two values
    b"\x80\x04(N.",                               # STOP inside a MARK
    b"\x80\x06N.",                                # unsupported protocol
    b"\x80\x04\xff.",                             # invalid opcode
])
@pytest.mark.parametrize("step", [None, 1])
def test_hostile_arguments_are_malformed_on_both_paths(data, step):
    res = assert_same(data, step=step)
    assert res[3] is False  # never "complete"
    assert any(f[1] == "artifact.malformed" for f in res[8]), res[8]
    if step is None:
        (fr,) = scan_bytes(data, "hostile.pkl").files
        assert fr.status.value in ("malformed", "inconclusive", "dangerous"), fr.status  # never clean


def test_skipped_payload_length_past_end_is_malformed_not_clean():
    # a BINBYTES8 payload that is skipped by offset, declaring more bytes than the file holds
    data = b"\x80\x04\x8e" + (10**9).to_bytes(8, "little") + b"\x00" * 64 + b"."
    res = assert_same(data)
    assert any(f[1] == "artifact.malformed" for f in res[8])
    (fr,) = scan_bytes(data, "x.pkl").files
    assert fr.status.value == "malformed"


def test_truncated_joblib_array_is_malformed(corpus):
    data = corpus["benign/rf_raw.joblib"].path.read_bytes()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 40):
        res = assert_same(data[:cut])
        assert res[3] is False
        assert any(f[1] == "artifact.malformed" for f in res[8])
        (fr,) = scan_bytes(data[:cut], "rf.joblib").files
        assert fr.status.value == "malformed", cut


def test_stack_bound_same_op_and_offset(monkeypatch):
    monkeypatch.setattr(pickle_scan, "MAX_STACK", 50)
    for body in (b"K\x01" * 60, b"N" * 60, b")" * 60, b"}" * 60, b"G" + b"\x00" * 8 + b"2" * 59,
                 b"\x8c\x01a" * 60, b"(" * 60):
        res = assert_same(b"\x80\x04" + body + b".")
        (limit,) = [f for f in res[8] if f[1] == "artifact.limit-exceeded"]
        assert "stack-depth bomb" in limit[2] and limit[3] > 50


def test_memo_bound_same_op_and_offset(monkeypatch):
    monkeypatch.setattr(pickle_scan, "MAX_MEMO", 10)
    for body in (b"N\x94" * 20, b"N" + b"".join(b"q" + bytes([i]) for i in range(20))):
        res = assert_same(b"\x80\x04" + body + b".")
        assert any(f[1] == "artifact.limit-exceeded" and "memo entries" in f[2] for f in res[8])
    # rebinding an existing key at the bound is not a new entry
    res = assert_same(b"\x80\x04" + b"N\x940" * 10 + b"Nq\x00.")
    assert res[3] is True


def test_time_bound_hits_at_the_same_opcode():
    ticks = iter([0.0] + [1e9] * 100)
    data = b"\x80\x04" + b"N0" * 5000 + b"N."
    fast = _stream(data, general=False, clock=lambda: next(ticks))
    ticks = iter([0.0] + [1e9] * 100)
    ref = _stream(data, general=True, clock=lambda: next(ticks))
    assert fast == ref
    assert any(f[1] == "artifact.limit-exceeded" and "time bound" in f[2] for f in fast[8])
    assert fast[1] == 4096
