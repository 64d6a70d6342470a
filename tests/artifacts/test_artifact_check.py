"""The ``artifact`` audit check."""

from __future__ import annotations

import pickle

from modelshield.checks.artifact import ArtifactCheck
from modelshield.checks.base import AuditContext
from modelshield.checks.registry import get_check
from modelshield.findings import CheckStatus, Severity

from .corpus import call4


def test_registered_and_applies_only_with_files(tmp_path):
    assert get_check("artifact") is ArtifactCheck
    assert not ArtifactCheck().applies(AuditContext())
    p = tmp_path / "m.pkl"
    p.write_bytes(pickle.dumps({"w": [1.0]}))
    assert ArtifactCheck().applies(AuditContext(model_path=p))


def test_reports_findings_metrics_and_table(tmp_path):
    good = tmp_path / "m.pkl"
    good.write_bytes(pickle.dumps({"w": [1.0]}))
    bad = tmp_path / "extra" / "evil.bin"
    bad.parent.mkdir()
    bad.write_bytes(call4("os", "system", "x"))
    seen = []
    ctx = AuditContext(model_path=good, artifacts=[bad.parent], progress=lambda f, m: seen.append(f))
    res = ArtifactCheck().run(ctx)
    assert res.status is CheckStatus.FINDINGS
    assert res.metrics["files"] == 2 and res.metrics["files_dangerous"] == 1
    assert res.max_severity is Severity.CRITICAL
    assert {r["status"] for r in res.tables["files"]} == {"clean", "dangerous"}
    assert all(f.location and f.check == "artifact" for f in res.findings)
    assert seen[-1] == 1.0
    clean = ArtifactCheck(hash=False).run(AuditContext(model_path=good))
    assert clean.status is CheckStatus.PASSED and not clean.findings


def _sha(p) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_sha256_column_is_filled_in_every_mode(tmp_path):
    files = []
    for i, payload in enumerate([{"w": [1.0]}, list(range(50)), "text"]):
        p = tmp_path / f"m{i}.pkl"
        p.write_bytes(pickle.dumps(payload))
        files.append(p)
    for quick in (False, True):
        res = ArtifactCheck().run(AuditContext(model_path=files[0], artifacts=files, quick=quick))
        rows = res.tables["files"]
        assert [r["sha256"] for r in rows] == [_sha(p) for p in files]
    rows = ArtifactCheck(hash=False).run(AuditContext(model_path=files[0], artifacts=files)).tables["files"]
    assert all("sha256" not in r for r in rows)  # asked not to hash: no empty column either


def _loaded_encrypted(tmp_path, payload: bytes):
    from modelshield.protect.crypto import encrypt_bytes
    from modelshield.protect.loader import load_model

    key = bytes(range(32))
    enc = tmp_path / "model.enc"
    enc.write_bytes(encrypt_bytes(payload, key=key))
    return enc, load_model(enc, key=key)


def test_encrypted_model_reports_the_loaders_scan_of_its_payload(tmp_path, sk_logreg):
    enc, model = _loaded_encrypted(tmp_path, pickle.dumps(sk_logreg))
    res = ArtifactCheck().run(AuditContext(model=model, model_path=enc))
    assert res.status is CheckStatus.PASSED and not res.findings
    (row,) = res.tables["files"]
    assert row["format"].startswith("modelshield-encrypted > pickle") and row["status"] == "clean"
    assert row["sha256"] == _sha(enc) and row["size"] == enc.stat().st_size
    # without the loaded model (a model given as an object, or another file) the container is opaque
    opaque = ArtifactCheck().run(AuditContext(model_path=enc))
    assert opaque.metrics["files_inconclusive"] == 1
    # the file changed after loading: the loader's scan no longer describes it, the disk is scanned
    data = bytearray(enc.read_bytes())
    data[-1] ^= 0xFF  # always a change (writing a fixed byte left the file as it was 1 time in 256)
    enc.write_bytes(bytes(data))
    changed = ArtifactCheck().run(AuditContext(model=model, model_path=enc))
    assert changed.metrics["files_clean"] == 0 and changed.tables["files"][0]["format"] == "modelshield-encrypted"
