"""The scanner over the generated corpus: every malicious file flagged, no benign file above low,
hostile files answered within bounds, plus targeted behaviour (offsets, memo, nesting, streaming)."""

from __future__ import annotations

import io
import os
import pickle
import struct
import time
import tracemalloc
from pathlib import Path

import pytest

from modelshield.artifacts import FileStatus, ScanReport, detect_format, scan, scan_bytes
from modelshield.findings import Severity

from .corpus import benign_cases, call4, hostile_cases, malicious_cases, s8, sglob, torch_zip

MALICIOUS = [n for n, _t, _c in malicious_cases()]
HOSTILE = [n for n, _t, _c in hostile_cases()]
BENIGN = [n for n, _t, _c in benign_cases()]


def rules(report: ScanReport) -> set[str]:
    return {f.rule_id for f in report.findings}


@pytest.mark.parametrize("name", MALICIOUS)
def test_every_malicious_file_is_flagged(corpus, name):
    case = corpus[f"malicious/{name}"]
    report = scan(case.path)
    assert report.blocks(Severity.MEDIUM), f"{name} ({case.technique}) not flagged"
    assert all(f.location for f in report.findings)
    assert any(fr.status is not FileStatus.CLEAN for fr in report.files)


@pytest.mark.parametrize("name", BENIGN)
def test_no_benign_file_is_flagged_above_low(corpus, name):
    report = scan(corpus[f"benign/{name}"].path)
    high = [f.title for f in report.findings if f.severity > Severity.LOW]
    assert not high, high
    assert all(fr.status is FileStatus.CLEAN for fr in report.files)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_inputs_answer_within_bounds(corpus, name):
    t0 = time.perf_counter()
    report = scan(corpus[f"robust/{name}"].path, timeout=10)
    assert time.perf_counter() - t0 < 10
    assert report.files
    if name not in ("cyclic.pkl", "billion_laughs.pkl"):
        # everything else here is broken or abusive: it must never come back clean
        assert report.blocks(Severity.MEDIUM), [f.title for f in report.findings]


def test_dangerous_call_reports_offset_and_call():
    data = call4("os", "system", "echo x")
    report = scan_bytes(data, "x.pkl")
    f = next(f for f in report.findings if f.rule_id == "artifact.pickle.dangerous-global")
    assert f.severity is Severity.CRITICAL
    assert data[f.offset] == 0x93  # the STACK_GLOBAL opcode
    assert f.evidence["calls"][0]["opcode"] == "REDUCE"
    assert f.location == "x.pkl"


def test_memo_indirection_resolves_through_binget():
    data = (b"\x80\x04" + s8("os") + b"q\x07" + b"0" + s8("system") + b"q\x09" + b"0"
            + s8("numpy") + s8("dtype") + b"00h\x07h\x09\x93" + s8("x") + b"\x85R.")
    titles = [f.title for f in scan_bytes(data).findings]
    assert "dangerous global os.system" in titles
    assert not any("numpy" in t for t in titles)  # decoys are popped, not reported


def test_unknown_global_is_suspicious_with_module_path():
    report = scan_bytes(call4("mypackage.models", "Custom"))
    (f,) = report.findings
    assert f.severity is Severity.HIGH and f.rule_id == "artifact.pickle.unknown-global"
    assert "mypackage.models.Custom" in f.title
    assert report.files[0].status is FileStatus.SUSPICIOUS


def test_nested_pickle_findings_are_reported_at_the_outer_call():
    inner = call4("subprocess", "check_output", "id")
    outer = b"\x80\x04" + sglob("pickle", "loads") + b"C" + bytes([len(inner)]) + inner + b"\x85R."
    report = scan_bytes(outer)
    nested = [f for f in report.findings if f.title.startswith("nested in pickle.loads")]
    assert nested and "subprocess.check_output" in nested[0].title


def test_format_is_detected_by_content_not_extension(tmp_path):
    p = tmp_path / "weights.safetensors"
    p.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    report = scan(p)
    assert report.files[0].format == "pickle"
    assert detect_format(b"\x93NUMPY\x01\x00") == "npy"
    assert detect_format(b"PK\x03\x04") == "zip"


def test_scan_bytes_matches_scan_file(corpus):
    path = corpus["malicious/torch_evil.pt"].path
    a = scan(path)
    b = scan_bytes(path.read_bytes(), str(path))
    assert [f.rule_id for f in a.findings] == [f.rule_id for f in b.findings]


def test_directory_walk_hf_cache_tree_dedupes_symlinks(tmp_path):
    blobs = tmp_path / "models--org--m" / "blobs"
    snap = tmp_path / "models--org--m" / "snapshots" / "abc123"
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    (blobs / "deadbeef").write_bytes(call4("os", "system", "x"))
    (blobs / "cafe").write_bytes(b'{"a": 1}')
    os.symlink("../../blobs/deadbeef", snap / "pytorch_model.bin")
    os.symlink("../../blobs/cafe", snap / "config.json")
    report = scan(tmp_path)
    assert len(report.files) == 2  # each blob once
    assert report.blocks("critical")
    assert scan(snap).blocks("critical")  # scanning the snapshot follows the links


def test_report_to_dict_is_json_with_schema_version(corpus):
    import json

    d = scan(corpus["malicious/zip_crc.pt"].path).to_dict()
    json.dumps(d)
    assert d["schema_version"] and d["summary"]["dangerous"] == 1
    assert {f["rule_id"] for f in d["files"][0]["findings"]} >= {"artifact.pickle.dangerous-global",
                                                                  "artifact.zip.anomaly"}


def test_hash_is_recorded_on_request(tmp_path):
    import hashlib

    p = tmp_path / "a.pkl"
    p.write_bytes(pickle.dumps([1, 2, 3]))
    assert scan(p, hash=True).files[0].sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert scan(p).files[0].sha256 is None


def test_large_payloads_are_skipped_not_read(tmp_path):
    """Memory does not grow with file size: a 64 MB BINBYTES8 payload is seeked over."""
    p = tmp_path / "big.pkl"
    n = 64 << 20
    with p.open("wb") as fh:
        fh.write(b"\x80\x04\x8e" + struct.pack("<Q", n))
        fh.seek(n - 1, io.SEEK_CUR)
        fh.write(b"\x00\x85" + sglob("os", "system") + b"." )
    tracemalloc.start()
    report = scan(p)
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 << 20, peak
    assert "artifact.pickle.dangerous-global" in rules(report)


def test_time_bound_makes_result_inconclusive(tmp_path):
    p = tmp_path / "slow.pkl"
    p.write_bytes(b"\x80\x04" + b"N0" * 200_000 + b"N.")
    report = scan(p, timeout=1e-9)
    assert "artifact.limit-exceeded" in rules(report)
    assert report.files[0].status is FileStatus.MALFORMED


def test_truncated_torch_zip_member_keeps_evidence(tmp_path):
    data = torch_zip(call4("os", "system", "x")[:-1] + b"\xff")
    report = scan_bytes(data)
    assert {"artifact.pickle.dangerous-global", "artifact.malformed"} <= rules(report)


def test_every_emitted_rule_is_documented(corpus):
    from modelshield.artifacts import RULES

    doc = (Path(__file__).resolve().parents[2] / "docs" / "scanner.md").read_text()
    emitted = {f.rule_id for c in corpus.values() for f in scan(c.path).findings}
    assert emitted <= set(RULES), emitted - set(RULES)
    assert all(f"`{r}`" in doc for r in RULES)


def test_module_entry_point_exit_codes(tmp_path, capsys):
    from modelshield.artifacts.__main__ import main

    good, bad = tmp_path / "good.pkl", tmp_path / "bad.pkl"
    good.write_bytes(pickle.dumps({"a": 1}))
    bad.write_bytes(call4("os", "system", "x"))
    assert main([str(good)]) == 0
    assert main([str(bad), "--json"]) == 1
    assert '"schema_version"' in capsys.readouterr().out
    assert main([str(tmp_path / "missing")]) == 2
