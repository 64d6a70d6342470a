"""The README's protect -> audit walk-through, with every check: keygen, encrypt, sign, then
``audit model.enc --key-file ... --public-key ...``. The artifact check reports the decrypted payload
(scanned in memory by the secure loader), not "encrypted container: cannot be inspected".

Malicious files are built by the test with harmless references and are never called.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelshield.cli import main


def _run(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small clean model and its train/test CSVs (every check applies: labels, members, a group)."""
    d = tmp_path_factory.mktemp("flow")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=160) > 0).astype(int)
    model = LogisticRegression(max_iter=300).fit(X[:100], y[:100])
    cols = [f"f{i}" for i in range(6)]
    for name, sl in (("train", slice(0, 100)), ("test", slice(100, 160))):
        df = pd.DataFrame(X[sl], columns=cols)
        df["group"] = np.where(np.arange(len(df)) % 2 == 0, "a", "b")
        df["y"] = y[sl]
        df.to_csv(d / f"{name}.csv", index=False)
    joblib.dump(model, d / "model.joblib")
    # the same model carrying a reference to os.system (never called): the scanner calls it dangerous
    model.hook = os.system  # type: ignore[attr-defined]
    (d / "hooked.pkl").write_bytes(pickle.dumps(model, protocol=4))
    keys = ["protect", "keygen"]
    assert _run(*keys, d / "master.key") == 0
    assert _run(*keys, d / "signer.pem", "--type", "ecdsa-p256", "--public-out", d / "signer.pub") == 0
    return {"dir": d, "model": d / "model.joblib", "hooked": d / "hooked.pkl", "train": d / "train.csv",
            "test": d / "test.csv", "key": d / "master.key", "priv": d / "signer.pem", "pub": d / "signer.pub"}


def _protect(f: dict[str, Path], plain: Path, name: str) -> Path:
    enc = f["dir"] / name
    assert _run("protect", "encrypt", plain, enc, "--key-file", f["key"], "--force") == 0
    assert _run("protect", "sign", enc, "--private-key", f["priv"], "--force") == 0
    return enc


def _audit(f: dict[str, Path], enc: Path, tag: str, *extra: object) -> tuple[int, dict | None]:
    js = f["dir"] / f"{tag}.json"
    rc = _run("audit", enc, "--key-file", f["key"], "--public-key", f["pub"], "--data", f["test"],
              "--train", f["train"], "--target", "y", "--sensitive", "group", "--quick", "--no-progress",
              "-o", f["dir"] / f"{tag}.html", "--json", js, "--force", *extra)
    return rc, (json.loads(js.read_text()) if js.exists() else None)


def _artifact(doc: dict) -> dict:
    (res,) = [r for r in doc["runs"][0]["results"] if r["check"] == "artifact"]
    return res


@pytest.mark.slow
def test_readme_flow_every_check_passes_the_gate_for_a_clean_model(small, capsys) -> None:
    enc = _protect(small, small["model"], "model.enc")
    rc, doc = _audit(small, enc, "clean")
    out = capsys.readouterr().out
    assert doc is not None
    ran = {r["check"]: r["status"] for r in doc["runs"][0]["results"]}
    # every built-in check ran (none skipped for want of an input)
    assert {"baseline", "artifact", "robustness", "privacy", "fairness", "theft"} <= set(ran)
    assert "skipped" not in ran.values() and "error" not in ran.values(), ran
    art = _artifact(doc)
    assert art["status"] == "passed" and not art["findings"], art
    (row,) = art["tables"]["files"]
    assert row["format"].startswith("modelshield-encrypted > ") and row["status"] == "clean"
    assert row["sha256"] == hashlib.sha256(enc.read_bytes()).hexdigest()
    assert "cannot be inspected" not in out
    assert rc == 0 and doc["passed"], [g for g in doc["runs"][0].get("gate", {}).get("reasons", [])]


def test_readme_flow_artifact_check_reports_the_decrypted_payload(small, capsys) -> None:
    """The fast half of the flow (artifact and baseline checks): no 'cannot be inspected' finding."""
    enc = _protect(small, small["model"], "fast.enc")
    rc, doc = _audit(small, enc, "fast", "--checks", "artifact,baseline")
    assert doc is not None and rc == 0 and doc["passed"]
    art = _artifact(doc)
    assert art["status"] == "passed" and art["metrics"]["files_clean"] == 1
    (row,) = art["tables"]["files"]
    assert row["format"].startswith("modelshield-encrypted > pickle")
    assert len(row["sha256"]) == 64
    assert "cannot be inspected" not in capsys.readouterr().out


def test_readme_flow_refuses_a_malicious_model(small, capsys) -> None:
    enc = _protect(small, small["hooked"], "hooked.enc")
    capsys.readouterr()
    rc, doc = _audit(small, enc, "evil")
    err = capsys.readouterr().err.strip()
    assert rc == 3 and doc is None  # refused before any check: nothing loaded, no report
    assert err.startswith("error: refusing to load") and "system" in err and "\n" not in err


def test_trusted_encrypted_model_still_gets_its_payload_scanned(small, capsys) -> None:
    """--trust skips the loader's enforcement, not the audit: the artifact check reports the payload's
    dangerous reference (from the decrypted bytes) and the gate fails."""
    enc = _protect(small, small["hooked"], "hooked-trusted.enc")
    rc, doc = _audit(small, enc, "trusted", "--trust", "--checks", "artifact,baseline")
    assert doc is not None and rc == 1 and not doc["passed"]
    art = _artifact(doc)
    assert art["status"] == "findings" and art["metrics"]["files_dangerous"] == 1
    titles = [f["title"] for f in art["findings"]]
    assert any("system" in t for t in titles), titles
    assert all(f["location"] == str(enc) for f in art["findings"])
    assert not any("cannot be inspected" in t for t in titles)
