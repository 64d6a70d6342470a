"""Fuzzing: mutated corpus files only ever produce findings or a malformed result, within bounds."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelshield.artifacts import scan_bytes
from modelshield.findings import Severity

from .corpus import call0, hostile_cases, malicious_cases, torch_zip, write_zip

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


# ---------------------------------------------------------------- archive structure (issue 15 A.2)
EVIL = call0("os", "system", "echo fuzz")
_PREFIXES = [b"", b"\x880", b"\x890", b"C\x01a0", b"\x95" + len(EVIL).to_bytes(8, "little"), b"\x8c\x01a0"]
_NAMES = ["archive/data.pkl", "archive/version", "archive/data/0", "config.json", "archive/code/__torch__.py",
          "arr.npy", "a/b.bin", "archive/.data/serialization_id", "archive/constants.pkl", "nested.zip"]


@st.composite
def recase(draw, name: str) -> str:
    how = draw(st.sampled_from(["keep", "upper", "lower", "title", "random"]))
    if how == "random":
        return "".join(c.upper() if draw(st.booleans()) else c for c in name)
    return {"keep": name, "upper": name.upper(), "lower": name.lower(), "title": name.title()}[how]


@st.composite
def member_content(draw, depth: int) -> tuple[bytes, bool]:
    """(content, carries the payload somewhere)."""
    kind = draw(st.sampled_from(["evil", "benign", "random", "nested"] if depth < 2 else ["evil", "benign", "random"]))
    if kind == "evil":
        return draw(st.sampled_from(_PREFIXES)) + EVIL, True
    if kind == "benign":
        return draw(st.sampled_from([b"\x80\x02}q\x00.", b"3\n", b"\x00" * 16, b"little", b"{}"])), False
    if kind == "random":
        return draw(st.binary(max_size=64)), False
    data, evil = draw(archive(depth + 1))
    return data, evil


@st.composite
def archive(draw, depth: int = 0) -> tuple[bytes, bool]:
    members = []
    evil = False
    for _ in range(draw(st.integers(1, 5))):
        name = draw(recase(draw(st.sampled_from(_NAMES))))
        content, bad = draw(member_content(depth))
        members.append((name, content))
        evil = evil or bad
    if draw(st.booleans()) and members:  # duplicate a member under a case variant of its name
        name, content = draw(st.sampled_from(members))
        members.append((draw(recase(name)), content))
    zip64 = draw(st.booleans())
    shift = draw(st.sampled_from([0, 0, 0, -3, 8])) if zip64 else 0
    data = write_zip(members, zip64=zip64, locator_shift=shift)
    prefix = draw(st.sampled_from([b"", b"", b"\x80\x02N.", b"MZ-junk-prefix"]))
    return prefix + data, evil


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(archive())
def test_archive_structure_mutations_never_hide_a_payload(case):
    data, evil = case
    t0 = time.perf_counter()
    report = scan_bytes(data, "fuzz.pt", timeout=5)
    assert time.perf_counter() - t0 < 20  # the 5 s deadline plus generous slack for a loaded machine
    (fr,) = report.files
    titles = [f.title for f in fr.findings]
    assert not any("unexpected parse failure" in t for t in titles), titles
    if evil:  # a payload anywhere in the structure is always found, or the file is at least inconclusive
        assert any("os.system" in t for t in titles) or max(f.severity for f in fr.findings) >= Severity.HIGH, titles
        assert fr.status.value != "clean"
