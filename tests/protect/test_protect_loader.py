"""The secure loader: verify -> decrypt -> scan -> load, failing closed with the reason."""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import modelshield
from modelshield.errors import IntegrityError, UnsafeModelError, UntrustedModelError, UserError
from modelshield.findings import Finding, Severity
from modelshield.protect import loader as loader_mod
from modelshield.protect.crypto import encrypt_file
from modelshield.protect.keys import load_private_key, write_key_file
from modelshield.protect.loader import TrustPolicy, detect_format_bytes, secure_load
from modelshield.protect.signing import sign


@pytest.fixture
def sk_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] > 0).astype(int)
    path = tmp_path / "model.joblib"
    joblib.dump(LogisticRegression().fit(X, y), path)
    return path, X


@pytest.fixture
def enc_model(tmp_path: Path, sk_file: tuple[Path, np.ndarray], master_key: bytes) -> tuple[Path, Path]:
    key_file = tmp_path / "master.key"
    write_key_file(key_file, master_key)
    enc = tmp_path / "model.enc"
    encrypt_file(sk_file[0], enc, key=master_key)
    return enc, key_file


def test_encrypted_signed_model_loads(tmp_path: Path, sk_file, enc_model, keypair) -> None:
    enc, key_file = enc_model
    priv, pub = keypair
    sign(enc, load_private_key(priv))  # the signature covers the encrypted file as stored
    policy = TrustPolicy(public_keys=[pub], require_signature=True, require_encryption=True)
    m = modelshield.load_model(enc, policy=policy, key_file=key_file, trust=True)
    X = sk_file[1]
    assert m.predict_proba(X).shape == (len(X), 2)
    assert m.format == "pickle"


def test_encrypted_model_needs_the_right_key(enc_model) -> None:
    enc, _ = enc_model
    with pytest.raises(UserError, match="is encrypted"):
        secure_load(enc, trust=True)
    with pytest.raises(IntegrityError, match="wrong key"):
        secure_load(enc, trust=True, key=os.urandom(32))


def test_tampered_container_is_refused(enc_model) -> None:
    enc, key_file = enc_model
    data = bytearray(enc.read_bytes())
    data[len(data) // 2] ^= 1
    enc.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="failed authentication"):
        secure_load(enc, trust=True, key_file=key_file)


def test_signature_is_checked_before_decryption(enc_model, keypair) -> None:
    enc, key_file = enc_model
    priv, pub = keypair
    sign(enc, load_private_key(priv))
    data = bytearray(enc.read_bytes())
    data[-1] ^= 1
    enc.write_bytes(bytes(data))
    # the signature fails first: the (also broken) ciphertext is never decrypted
    with pytest.raises(IntegrityError, match=r"refusing .*does not match its signature"):
        secure_load(enc, trust=True, key_file=key_file, public_key=pub)


def test_signature_policy_fails_closed(sk_file, keypair) -> None:
    path, _ = sk_file
    _, pub = keypair
    with pytest.raises(UntrustedModelError, match="no trusted public key"):
        secure_load(path, trust=True, require_signature=True)
    with pytest.raises(IntegrityError, match="no signature"):
        secure_load(path, trust=True, policy=TrustPolicy(public_keys=[pub], require_signature=True))
    with pytest.raises(UntrustedModelError, match="requires an encrypted model"):
        secure_load(path, trust=True, policy=TrustPolicy(require_encryption=True))
    with pytest.raises(UntrustedModelError, match="does not allow trust"):
        secure_load(path, trust=True, policy=TrustPolicy(allow_trust=False))
    with pytest.raises(UserError, match="TrustPolicy"):
        secure_load(path, trust=True, policy="strict")  # type: ignore[arg-type]


def test_signature_by_any_trusted_key(tmp_path: Path, sk_file, keypair) -> None:
    from modelshield.protect.keys import write_signing_keypair

    path, _ = sk_file
    priv, pub = keypair
    write_signing_keypair(tmp_path / "x.pem", tmp_path / "x.pub", "ed25519")
    sign(path, load_private_key(priv))
    secure_load(path, trust=True, policy=TrustPolicy(public_keys=[tmp_path / "x.pub", pub]))
    with pytest.raises(IntegrityError, match="different key"):
        secure_load(path, trust=True, policy=TrustPolicy(public_keys=[tmp_path / "x.pub"]))


@dataclass
class _FakeReport:
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def blocks(self, at: Severity) -> bool:
        return any(f.severity >= at for f in self.findings)


def _fake_scanner(findings: list[Finding], calls: list[Any], errors: tuple[str, ...] = ()):
    def scan_bytes(data: bytes, name: str) -> _FakeReport:
        calls.append(("scan", name, bytes(data[:2])))
        return _FakeReport(list(findings), list(errors))

    def safe_load(source: bytes, fmt: str) -> Any:
        calls.append(("safe_load", fmt))
        return joblib.load(io.BytesIO(source))  # stands in for the restricted unpickler

    return scan_bytes, safe_load


def test_scanner_findings_refuse_the_load(monkeypatch, enc_model) -> None:
    enc, key_file = enc_model
    calls: list[Any] = []
    bad = Finding(check="artifact", severity=Severity.CRITICAL, title="dangerous global posix.system")
    monkeypatch.setattr(loader_mod, "_scanner", lambda: _fake_scanner([bad], calls))
    with pytest.raises(UnsafeModelError, match=r"dangerous global posix\.system") as info:
        secure_load(enc, key_file=key_file)
    assert info.value.findings == [bad]
    assert calls == [("scan", "model.enc", b"\x80\x04")]  # the scanner saw the decrypted plaintext


def test_incomplete_scan_refuses_the_load(monkeypatch, enc_model) -> None:
    enc, key_file = enc_model
    monkeypatch.setattr(loader_mod, "_scanner", lambda: _fake_scanner([], [], errors=("timed out",)))
    with pytest.raises(UnsafeModelError, match=r"scan did not complete \(timed out\)"):
        secure_load(enc, key_file=key_file)


def test_clean_scan_loads_with_the_restricted_loader(monkeypatch, enc_model, sk_file) -> None:
    enc, key_file = enc_model
    calls: list[Any] = []
    low = Finding(check="artifact", severity=Severity.LOW, title="unusual opcode")
    monkeypatch.setattr(loader_mod, "_scanner", lambda: _fake_scanner([low], calls))
    m = secure_load(enc, key_file=key_file)
    assert [c[0] for c in calls] == ["scan", "safe_load"]
    assert m.predict(sk_file[1]).shape == (len(sk_file[1]),)
    calls.clear()  # a stricter policy blocks the same LOW finding
    with pytest.raises(UnsafeModelError):
        secure_load(enc, key_file=key_file, policy=TrustPolicy(block_at="low"))


def test_detect_format_bytes_matches_file_detection(sk_file) -> None:
    from modelshield.formats import detect_file_format as detect_format

    path, _ = sk_file
    assert detect_format_bytes(path.read_bytes()) == detect_format(path) == "pickle"
    assert detect_format_bytes(pickle.dumps([1, 2], protocol=0)) == "pickle"
    assert detect_format_bytes(b"\x00\x01garbage") == "unknown"


def test_onnx_model_loads_encrypted_without_trust(tmp_path: Path, master_key: bytes) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    clf = LogisticRegression().fit(X, (X[:, 1] > 0).astype(int))
    onx = skl2onnx.convert_sklearn(clf, initial_types=[("x", FloatTensorType([None, 3]))],
                                   options={id(clf): {"zipmap": False}})
    plain = tmp_path / "m.onnx"
    plain.write_bytes(onx.SerializeToString())
    enc = tmp_path / "m.onnx.enc"
    encrypt_file(plain, enc, key=master_key)
    assert detect_format_bytes(plain.read_bytes()) == "onnx"
    m = secure_load(enc, key=master_key)
    assert np.allclose(m.predict_proba(X), clf.predict_proba(X), atol=1e-5)


# --- with the real artifact scanner (skipped until modelshield.artifacts provides it) --------

#: pickle that would call posix.system("true") if unpickled; built here, never loaded
_MALICIOUS = b"\x80\x04" + b"cposix\nsystem\n" + b"\x8c\x04true" + b"\x85" + b"R" + b"."


def test_real_scanner_refuses_an_encrypted_malicious_pickle(tmp_path: Path, master_key: bytes) -> None:
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(_MALICIOUS)
    enc = tmp_path / "evil.enc"
    encrypt_file(plain, enc, key=master_key)
    with pytest.raises(UnsafeModelError, match=r"refusing to load.*after `modelshield protect decrypt`"):
        secure_load(enc, key=master_key)
    with pytest.raises(UnsafeModelError) as plain_err:
        secure_load(plain)
    assert "protect decrypt" not in str(plain_err.value)


def test_real_scanner_loads_a_clean_model(sk_file, enc_model) -> None:
    enc, key_file = enc_model
    m = secure_load(enc, key_file=key_file)
    assert m.predict(sk_file[1]).shape == (len(sk_file[1]),)
