"""Fuzzing: mutated corpus files only ever produce findings or a malformed result, within bounds."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelshield.checks.artifact import scan_bytes
from modelshield.findings import Severity

from .corpus import hostile_cases, malicious_cases, torch_zip

SEEDS = [c for _n, _t, c in malicious_cases() + hostile_cases() if isinstance(c, bytes) and len(c) < 4096]
SEEDS.append(torch_zip(b"\x80\x02}q\x00."))


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[i: i + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[i:i] = data[i: i + draw(st.integers(1, 32))]
    return bytes(data)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_never_crash_and_stay_bounded(data):
    t0 = time.perf_counter()
    report = scan_bytes(data, "fuzz.bin", timeout=5)
    assert time.perf_counter() - t0 < 6
    (fr,) = report.files
    for f in fr.findings:
        assert isinstance(f.severity, Severity) and f.rule_id.startswith("artifact.")
    assert not any("unexpected parse failure" in f.title for f in fr.findings), [f.title for f in fr.findings]
