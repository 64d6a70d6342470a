"""The secure loader's contract, pinned where mutation testing found it loose (issue 23).

The refusal order verify -> decrypt -> scan -> load (a later step never runs when an earlier one
refuses), every refusal by exact type, text and exit-code class (2: input error, 3: security), the key
sources, what is recorded about a decrypted payload, and ``load_model``'s dispatch.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelshield.errors import (
    FormatError,
    InputNotFoundError,
    IntegrityError,
    UnsafeModelError,
    UntrustedModelError,
    UserError,
)
from modelshield.findings import Finding, Severity
from modelshield.protect import loader as loader_mod
from modelshield.protect._provenance import payload_scan
from modelshield.protect.crypto import ScryptParams, encrypt_file
from modelshield.protect.keys import (
    KeyPermissionError,
    key_to_text,
    load_private_key,
    write_key_file,
    write_signing_keypair,
)
from modelshield.protect.loader import TrustPolicy, load_model, secure_load
from modelshield.protect.signing import sign

#: pickle that would call posix.system("true") if unpickled; built here, never loaded
_MALICIOUS = b"\x80\x04" + b"cposix\nsystem\n" + b"\x8c\x04true" + b"\x85" + b"R" + b"."
_FAST = ScryptParams(log2_n=10, r=8, p=1)


@pytest.fixture
def sk(tmp_path: Path) -> tuple[Path, np.ndarray, LogisticRegression]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    clf = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    path = tmp_path / "model.joblib"
    joblib.dump(clf, path)
    return path, X, clf


@pytest.fixture
def enc(tmp_path: Path, sk, master_key: bytes) -> Path:
    out = tmp_path / "model.enc"
    encrypt_file(sk[0], out, key=master_key)
    return out


@dataclass
class _FR:
    format: str


@dataclass
class _Report:
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    files: list[Any] = field(default_factory=list)
    always_blocks: bool = False

    def blocks(self, at: Severity) -> bool:
        return self.always_blocks or any(f.severity >= at for f in self.findings)


def _seam(monkeypatch, report: _Report | None = None) -> list[Any]:
    """Replace the scanner: the real one unless ``report`` is given; every call is recorded."""
    real_scan, real_safe = loader_mod._scanner()
    calls: list[Any] = []

    def scan_bytes(data, name):
        calls.append(("scan", name, hashlib.sha256(bytes(data)).hexdigest()))
        return real_scan(data, name) if report is None else report

    def safe_load(data, fmt):
        calls.append(("safe_load", fmt))
        return real_safe(data, fmt)

    monkeypatch.setattr(loader_mod, "_scanner", lambda: (scan_bytes, safe_load))
    return calls


def _finding(sev: Severity, title: str = "a finding", rule_id: str = "") -> Finding:
    return Finding(check="artifact", severity=sev, title=title, rule_id=rule_id)


# ------------------------------------------------------------------ the refusal order
def test_a_bad_signature_refuses_before_the_key_is_even_asked_for(enc, keypair, monkeypatch):
    priv, pub = keypair
    sign(enc, load_private_key(priv))
    enc.write_bytes(enc.read_bytes() + b"x")
    calls = _seam(monkeypatch)
    with pytest.raises(IntegrityError, match=r"^refusing .*model\.enc: ") as exc:
        secure_load(enc, public_key=pub)  # no key given: verification fails first
    assert exc.value.exit_code == 3
    assert calls == []


def test_a_wrong_key_refuses_before_the_scan(enc, monkeypatch):
    calls = _seam(monkeypatch)
    with pytest.raises(IntegrityError, match="wrong key") as exc:
        secure_load(enc, key=os.urandom(32))
    assert exc.value.exit_code == 3
    assert calls == []


def test_the_scan_sees_the_decrypted_payload_and_a_refusal_skips_the_load(tmp_path, master_key, monkeypatch):
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(_MALICIOUS)
    enc = tmp_path / "evil.enc"
    encrypt_file(plain, enc, key=master_key)
    calls = _seam(monkeypatch)
    with pytest.raises(UnsafeModelError) as exc:
        secure_load(enc, key=master_key)
    assert exc.value.exit_code == 3
    assert calls == [("scan", "evil.enc", hashlib.sha256(_MALICIOUS).hexdigest())]
    assert any("system" in f.title for f in exc.value.findings)


def test_a_clean_pickle_is_loaded_by_the_restricted_loader_with_its_format(sk, enc, master_key, monkeypatch):
    path, X, clf = sk
    calls = _seam(monkeypatch)
    for source, kw in ((path, {}), (enc, {"key": master_key})):
        calls.clear()
        m = secure_load(source, **kw)
        assert [c[0] for c in calls] == ["scan", "safe_load"]
        assert calls[1] == ("safe_load", "pickle")
        assert m.format == "pickle"
        assert np.array_equal(m.predict(X), clf.predict(X))


def test_trust_skips_the_scan_of_a_plain_file_but_not_of_a_decrypted_payload(sk, enc, master_key, monkeypatch):
    path, X, clf = sk
    calls = _seam(monkeypatch, _Report([_finding(Severity.CRITICAL, "would block")]))
    m = secure_load(path, trust=True)
    assert calls == []
    assert payload_scan(m) is None
    m = secure_load(enc, trust=True, key=master_key)  # scanned (for the audit) but not enforced
    assert [c[0] for c in calls] == ["scan"]
    assert np.array_equal(m.predict(X), clf.predict(X))


def test_require_encryption_is_checked_before_trust(sk):
    path = sk[0]
    with pytest.raises(UntrustedModelError) as exc:
        secure_load(path, trust=True, policy=TrustPolicy(require_encryption=True, allow_trust=False))
    assert str(exc.value) == (f"refusing {path}: the trust policy requires an encrypted model, "
                              "and this file is not a modelshield container")
    assert exc.value.exit_code == 3


def test_a_key_is_asked_for_before_trust_is_refused(enc):
    with pytest.raises(UserError, match=r"is encrypted; give its key"):
        secure_load(enc, trust=True, policy=TrustPolicy(allow_trust=False))


def test_trust_refused_by_policy_names_the_file(sk, monkeypatch):
    path = sk[0]
    calls = _seam(monkeypatch)
    with pytest.raises(UntrustedModelError) as exc:
        secure_load(path, trust=True, policy=TrustPolicy(allow_trust=False))
    assert str(exc.value) == f"refusing {path}: the trust policy does not allow trust=True"
    assert calls == []
    assert secure_load(path, trust=False, policy=TrustPolicy(allow_trust=False)).format == "pickle"


# ------------------------------------------------------------------ keys
def test_only_one_key_source(enc, master_key, tmp_path):
    kf = tmp_path / "k.key"
    write_key_file(kf, master_key)
    for kw in ({"key": master_key, "key_file": kf}, {"key_env": "X", "passphrase": "p"},
               {"passphrase": "p", "passphrase_env": "Y"}):
        with pytest.raises(UserError) as exc:
            secure_load(enc, **kw)
        assert str(exc.value) == "give only one of key=, key_file=, key_env=, passphrase=, passphrase_env="
        assert exc.value.exit_code == 2


def test_an_encrypted_file_without_a_key(enc):
    with pytest.raises(UserError) as exc:
        secure_load(enc)
    assert str(exc.value) == (
        f"{enc} is encrypted; give its key (command line: --key-file, --key-env or --passphrase-env; "
        "Python: key_file=, key_env=, passphrase_env=) or decrypt it first with 'modelshield protect decrypt'")


def test_every_key_source_decrypts(sk, enc, master_key, tmp_path, monkeypatch):
    X, clf = sk[1], sk[2]
    kf = tmp_path / "k.key"
    write_key_file(kf, master_key)
    monkeypatch.setenv("MS_TEST_KEY", key_to_text(master_key))
    for kw in ({"key": master_key}, {"key": bytearray(master_key)}, {"key_file": kf}, {"key_file": str(kf)},
               {"key_env": "MS_TEST_KEY"}):
        assert np.array_equal(secure_load(enc, **kw).predict(X), clf.predict(X)), kw
    penc = tmp_path / "p.enc"
    encrypt_file(sk[0], penc, passphrase="correct horse", scrypt=_FAST)
    monkeypatch.setenv("MS_TEST_PASS", "correct horse")
    for kw in ({"passphrase": "correct horse"}, {"passphrase": b"correct horse"},
               {"passphrase_env": "MS_TEST_PASS"}):
        assert np.array_equal(secure_load(penc, **kw).predict(X), clf.predict(X)), kw
    with pytest.raises(IntegrityError):
        secure_load(penc, passphrase="wrong")


def test_strict_key_permissions_refuse_a_shared_key_file(enc, master_key, tmp_path):
    kf = tmp_path / "k.key"
    write_key_file(kf, master_key)
    os.chmod(kf, 0o644)
    with pytest.raises(KeyPermissionError) as exc:
        secure_load(enc, key_file=kf, policy=TrustPolicy(strict_key_permissions=True))
    assert exc.value.exit_code == 3
    with pytest.warns(UserWarning):
        assert secure_load(enc, key_file=kf).format == "pickle"


# ------------------------------------------------------------------ signatures
def test_signature_required_without_keys(sk):
    path = sk[0]
    with pytest.raises(UntrustedModelError) as exc:
        secure_load(path, require_signature=True)
    assert str(exc.value) == (f"refusing {path}: a signature is required but no trusted public key was given "
                              "(public_key= or TrustPolicy(public_keys=...))")


def test_the_call_overrides_the_policys_signature_requirement(sk):
    path = sk[0]
    assert secure_load(path, policy=TrustPolicy(require_signature=True), require_signature=False).format == "pickle"
    with pytest.raises(UntrustedModelError):
        secure_load(path, policy=TrustPolicy(require_signature=True))


def test_a_given_public_key_always_verifies(sk, keypair):
    path = sk[0]
    _, pub = keypair
    sig = Path(str(path) + ".sig")
    with pytest.raises(IntegrityError) as exc:
        secure_load(path, public_key=pub)
    assert str(exc.value) == f"refusing {path}: no signature ({sig} does not exist)"
    with pytest.raises(IntegrityError):
        secure_load(path, policy=TrustPolicy(public_keys=[str(pub)]), require_signature=False)


def test_signature_paths_from_the_call_then_the_policy(sk, keypair, tmp_path):
    path = sk[0]
    priv, pub = keypair
    default = sign(path, load_private_key(priv))
    moved = tmp_path / "elsewhere.sig"
    default.rename(moved)
    with pytest.raises(IntegrityError, match="no signature"):
        secure_load(path, public_key=pub)
    assert secure_load(path, public_key=pub, signature=moved).format == "pickle"
    assert secure_load(path, policy=TrustPolicy(public_keys=[pub], signature=str(moved))).format == "pickle"
    from modelshield.protect.keys import load_public_key

    assert secure_load(path, public_key=load_public_key(pub), signature=moved).format == "pickle"


def test_one_or_several_keys_that_do_not_verify(sk, keypair, tmp_path):
    path = sk[0]
    priv, _ = keypair
    sign(path, load_private_key(priv))
    others = []
    for i in range(2):
        write_signing_keypair(tmp_path / f"o{i}.pem", tmp_path / f"o{i}.pub", "ed25519")
        others.append(tmp_path / f"o{i}.pub")
    with pytest.raises(IntegrityError) as one:
        secure_load(path, public_key=others[0])
    detail = str(one.value).removeprefix(f"refusing {path}: ")
    assert detail != str(one.value) and not detail.startswith("none of")
    with pytest.raises(IntegrityError) as two:
        secure_load(path, policy=TrustPolicy(public_keys=others))
    assert str(two.value) == f"refusing {path}: none of 2 trusted keys verify it ({detail})"


def test_the_first_verifying_key_of_several_is_enough(sk, keypair, tmp_path):
    path = sk[0]
    priv, pub = keypair
    sign(path, load_private_key(priv))
    write_signing_keypair(tmp_path / "o.pem", tmp_path / "o.pub", "ed25519")
    assert secure_load(path, policy=TrustPolicy(public_keys=[pub]), public_key=tmp_path / "o.pub").format == "pickle"
    assert secure_load(path, policy=TrustPolicy(public_keys=[tmp_path / "o.pub"]), public_key=pub).format == "pickle"


# ------------------------------------------------------------------ scan verdicts
def test_a_policy_that_is_not_a_trust_policy(sk):
    with pytest.raises(UserError) as exc:
        secure_load(sk[0], policy={"block_at": "low"})  # type: ignore[arg-type]
    assert str(exc.value) == "policy= must be a modelshield.protect.loader.TrustPolicy, got dict"


def test_an_incomplete_scan_refuses_with_its_first_error(sk, monkeypatch):
    path = sk[0]
    f = _finding(Severity.LOW)
    _seam(monkeypatch, _Report([f], errors=["timed out", "second"]))
    with pytest.raises(UnsafeModelError) as exc:
        secure_load(path)
    assert str(exc.value) == f"refusing to load {path}: the scan did not complete (timed out)"
    assert exc.value.findings == [f]


@pytest.mark.parametrize("encrypted", [False, True])
def test_a_blocking_scan_names_count_level_first_title_and_the_way_to_inspect(sk, enc, master_key, monkeypatch,
                                                                               encrypted):
    path = enc if encrypted else sk[0]
    found = [_finding(Severity.LOW, "minor"), _finding(Severity.HIGH, "first bad"),
             _finding(Severity.CRITICAL, "second bad")]
    _seam(monkeypatch, _Report(found, files=[_FR("pickle")]))
    with pytest.raises(UnsafeModelError) as exc:
        secure_load(path, **({"key": master_key} if encrypted else {}))
    expected = (f"refusing to load {path}: the scanner found 2 finding(s) at or above high (first bad); "
                f"inspect it with `modelshield scan {path}`")
    if encrypted:
        expected += " after `modelshield protect decrypt` (the scanner cannot read the encrypted file)"
    assert str(exc.value) == expected
    assert exc.value.findings == found


def test_the_blocking_level_comes_from_the_policy(sk, monkeypatch):
    path = sk[0]
    _seam(monkeypatch, _Report([_finding(Severity.MEDIUM, "medium")], files=[_FR("pickle")]))
    assert secure_load(path).format == "pickle"
    with pytest.raises(UnsafeModelError, match=r"1 finding\(s\) at or above medium \(medium\)"):
        secure_load(path, policy=TrustPolicy(block_at="medium"))
    with pytest.raises(UnsafeModelError, match=r"at or above medium"):
        secure_load(path, policy=TrustPolicy(block_at=Severity.MEDIUM))


def test_a_report_that_blocks_without_a_finding_at_the_level_still_refuses(sk, monkeypatch):
    path = sk[0]
    _seam(monkeypatch, _Report([_finding(Severity.LOW)], files=[_FR("pickle")], always_blocks=True))
    with pytest.raises(UnsafeModelError) as exc:
        secure_load(path)
    assert str(exc.value).startswith(f"refusing to load {path}: the scanner found blocking finding(s) at or "
                                     "above high (blocking findings); ")


@pytest.mark.parametrize("rule", sorted(loader_mod.PARSER_DIFFERENTIAL))
def test_readers_that_disagree_refuse_at_medium_whatever_the_blocking_level(sk, monkeypatch, rule):
    path = sk[0]
    f = _finding(Severity.MEDIUM, "two views of one archive", rule)
    _seam(monkeypatch, _Report([f], files=[_FR("pickle")]))
    with pytest.raises(UnsafeModelError) as exc:
        secure_load(path, policy=TrustPolicy(block_at="critical"))
    assert str(exc.value) == (f"refusing to load {path}: two views of one archive (readers disagree on what "
                              "this archive holds, whatever the blocking severity)")
    assert exc.value.findings == [f]
    _seam(monkeypatch, _Report([_finding(Severity.LOW, "chance bytes", rule)], files=[_FR("pickle")]))
    assert secure_load(path, policy=TrustPolicy(block_at="critical")).format == "pickle"


@pytest.mark.parametrize(("name", "data", "what"), [
    ("notes.txt", b"hello world\n", "in which the scanner recognised no format"),
    ("empty.bin", b"", "that does not parse: empty model file (.bin)"),
    ("noise.bin", bytes(range(256)) * 2, "that does not parse: inconclusive: "),
    ("cut.pkl", b"\x80\x04\x95", "that does not parse: pickle stream is malformed: "),
])
def test_unparseable_content_is_an_input_error_encrypted_or_not(tmp_path, master_key, name, data, what):
    plain = tmp_path / name
    plain.write_bytes(data)
    (tmp_path / "enc").mkdir()
    enc = tmp_path / "enc" / name  # the same name: the scanner grades unknown content by it
    encrypt_file(plain, enc, key=master_key)
    for path, kw, who in ((plain, {}, "a file"), (enc, {"key": master_key}, "an encrypted payload")):
        with pytest.raises(FormatError) as exc:
            secure_load(path, **kw)
        assert exc.value.exit_code == 2
        text = str(exc.value)
        assert text.startswith(f"{path}: unsupported model format ({who} {what}"), text
        assert text.endswith("); nothing was loaded")


def test_an_inconclusive_finding_in_a_recognised_format_is_unsafe(sk, monkeypatch):
    path = sk[0]
    f = _finding(Severity.HIGH, "scan hit its limit", "artifact.inconclusive")
    _seam(monkeypatch, _Report([f], files=[_FR("pickle")]))
    with pytest.raises(UnsafeModelError, match=r"^refusing to load .*\(scan hit its limit\)"):
        secure_load(path)
    _seam(monkeypatch, _Report([f], files=[_FR("unknown")]))
    with pytest.raises(FormatError, match=r"a file that does not parse: scan hit its limit\)"):
        secure_load(path)


def test_a_parse_failure_next_to_a_dangerous_finding_is_unsafe(sk, monkeypatch):
    path = sk[0]
    found = [_finding(Severity.HIGH, "truncated", "artifact.malformed"), _finding(Severity.CRITICAL, "os.system")]
    _seam(monkeypatch, _Report(found, files=[_FR("unknown")]))
    with pytest.raises(UnsafeModelError, match=r"2 finding\(s\) at or above high \(truncated\)"):
        secure_load(path)


@pytest.mark.parametrize(("formats", "refused"), [
    ([], False), (["unknown"], True), (["text"], True), (["unknown", "text"], True), (["unknown", "pickle"], False),
])
def test_unrecognised_means_every_scanned_file_in_no_format(sk, monkeypatch, formats, refused):
    path = sk[0]
    _seam(monkeypatch, _Report([], files=[_FR(f) for f in formats]))
    if refused:
        with pytest.raises(FormatError, match="in which the scanner recognised no format"):
            secure_load(path)
    else:
        assert secure_load(path).format == "pickle"


# ------------------------------------------------------------------ TorchScript's strict level
@pytest.fixture(scope="module")
def ts_file(tmp_path_factory) -> Path:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 2)).eval()
    p = tmp_path_factory.mktemp("ts") / "net.pt"
    torch.jit.save(torch.jit.script(net), str(p))
    return p


def test_torchscript_uses_the_lower_of_medium_and_the_policy_level(ts_file, monkeypatch):
    _seam(monkeypatch, _Report([_finding(Severity.LOW, "TorchScript archive")], files=[_FR("torchscript")]))
    assert secure_load(ts_file).format == "torchscript"
    with pytest.raises(UnsafeModelError, match=r"at or above low \(TorchScript archive\)"):
        secure_load(ts_file, policy=TrustPolicy(block_at="low"))
    _seam(monkeypatch, _Report([_finding(Severity.MEDIUM, "odd")], files=[_FR("torchscript")]))
    with pytest.raises(UnsafeModelError, match=r"at or above medium \(odd\)"):
        secure_load(ts_file, policy=TrustPolicy(block_at="critical"))


def test_a_torchscript_file_is_loaded_by_the_framework_with_the_hints(ts_file):
    m = secure_load(ts_file, input_shape=(4,), classes=["a", "b"])
    assert m.format == "torchscript"
    assert list(m.classes) == ["a", "b"]
    assert m.predict_proba(np.zeros((3, 4), dtype=np.float32)).shape == (3, 2)


# ------------------------------------------------------------------ what is recorded
def test_a_decrypted_payloads_scan_is_recorded_with_the_container_identity(sk, enc, master_key):
    path = sk[0]
    plain, raw = path.read_bytes(), enc.read_bytes()
    for trust, enforced in ((False, True), (True, False)):
        rec = payload_scan(secure_load(enc, key=master_key, trust=trust))
        assert rec is not None
        assert rec.path == str(enc.resolve())
        assert rec.file_sha256 == hashlib.sha256(raw).hexdigest()
        assert rec.file_size == len(raw)
        assert rec.payload_format == "pickle"
        assert rec.payload_size == len(plain)
        assert rec.enforced is enforced
        assert rec.report.size == len(plain)
    assert payload_scan(secure_load(path)) is None  # a plain file: nothing to record


def test_nothing_is_recorded_when_the_scan_lists_no_files(enc, master_key, monkeypatch):
    _seam(monkeypatch, _Report([], files=[]))
    assert payload_scan(secure_load(enc, key=master_key)) is None


def test_an_encrypted_onnx_payload_loads_without_trust(tmp_path, master_key):
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    X = np.random.default_rng(1).normal(size=(20, 3)).astype(np.float32)
    clf = LogisticRegression().fit(X, (X[:, 1] > 0).astype(int))
    onx = skl2onnx.convert_sklearn(clf, initial_types=[("x", FloatTensorType([None, 3]))],
                                   options={id(clf): {"zipmap": False}})
    plain = tmp_path / "m.onnx"
    plain.write_bytes(onx.SerializeToString())
    enc = tmp_path / "m.onnx.enc"
    encrypt_file(plain, enc, key=master_key)
    m = secure_load(enc, key=master_key)
    assert m.format == "onnx"
    assert payload_scan(m).payload_format == "onnx"
    assert np.allclose(m.predict_proba(X), clf.predict_proba(X), atol=1e-5)


# ------------------------------------------------------------------ load_model dispatch
def test_load_model_refuses_what_is_not_a_regular_file(tmp_path):
    missing = tmp_path / "nope.pkl"
    with pytest.raises(InputNotFoundError) as exc:
        load_model(missing)
    assert str(exc.value) == f"model file not found: {missing}"
    assert exc.value.exit_code == 2
    with pytest.raises(FormatError) as exc:
        load_model(str(tmp_path))
    assert str(exc.value) == f"{tmp_path} is a directory; pass the model file inside it"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(FormatError) as exc:
        load_model(fifo)
    assert str(exc.value) == (f"{fifo} is not a regular file (a pipe, device or socket); "
                              "save the model to a file")


def test_load_model_passes_options_to_the_secure_loader(sk, enc, master_key, ts_file):
    path, X, clf = sk
    m = load_model(str(ts_file), classes=["neg", "pos"], input_shape=(4,))
    assert list(m.classes) == ["neg", "pos"] and m.input_spec.shape == (4,)
    assert np.array_equal(load_model(enc, key=master_key).predict(X), clf.predict(X))
    with pytest.raises(UntrustedModelError):
        load_model(path, trust=True, policy=TrustPolicy(allow_trust=False))
    assert payload_scan(load_model(enc, key=master_key, trust=True)).enforced is False


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/predict", "https://127.0.0.1:9/predict"])
def test_load_model_wraps_a_url_without_touching_the_network(url):
    from modelshield.models.remote import RemoteModel

    m = load_model(url, input_shape=(2, 3), classes=[0, 1], headers={"X-Token": "t"})
    assert isinstance(m, RemoteModel)
    assert m.url == url
    assert m.headers["X-Token"] == "t"
    assert m.input_spec.n_features == 6
    assert load_model(url).input_spec.n_features is None


def test_load_model_wraps_an_in_memory_model_with_the_hints_given(sk):
    import torch

    clf = sk[2]
    assert load_model(clf).predict(sk[1]).tolist() == clf.predict(sk[1]).tolist()
    net = torch.nn.Linear(4, 2)
    m = load_model(net, input_shape=(4,))
    assert m.input_spec.shape == (4,)
    assert m.predict_proba(np.zeros((2, 4), dtype=np.float32)).shape == (2, 2)
    assert list(load_model(net, input_shape=(4,), classes=["x", "y"]).classes) == ["x", "y"]
    assert list(load_model(net, input_shape=(4,)).classes) == [0, 1]
    assert load_model(m) is m



def test_a_plain_report_object_without_errors_or_rule_ids_is_accepted(sk, monkeypatch):
    """The scanner seam takes duck-typed reports: a missing ``errors`` means a complete scan, a finding
    without ``rule_id`` is no parser differential."""
    from types import SimpleNamespace

    path = sk[0]
    finding = SimpleNamespace(severity=Severity.LOW, title="note")
    report = SimpleNamespace(findings=[finding], files=[_FR("pickle")], blocks=lambda at: False)
    real_safe = loader_mod._scanner()[1]
    monkeypatch.setattr(loader_mod, "_scanner", lambda: (lambda data, name: report, real_safe))
    assert secure_load(path).format == "pickle"


@pytest.fixture
def full_torch(tmp_path) -> Path:
    import torch

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    p = tmp_path / "full.pt"
    torch.save(net, p)
    return p


def test_a_pickle_based_torch_model_gets_the_shape_hint_and_its_path(full_torch):
    for load in (secure_load, load_model):
        m = load(full_torch, input_shape=(3, 4))
        assert m.format == "torch-zip"
        assert m.input_spec.shape == (3, 4)  # not the (12,) the first layer suggests
        assert m.source == str(full_torch)
        assert load(full_torch).input_spec.shape == (12,)


def test_load_model_scans_by_default(sk, monkeypatch):
    calls = _seam(monkeypatch)
    load_model(sk[0])
    assert [c[0] for c in calls] == ["scan", "safe_load"]


def test_load_model_passes_the_shape_hint_to_an_in_memory_model():
    import torch

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    assert load_model(net, input_shape=(3, 4)).input_spec.shape == (3, 4)
    assert load_model(net).input_spec.shape == (12,)


def test_load_model_passes_classes_to_a_remote_model():
    m = load_model("http://127.0.0.1:9/predict", classes=["neg", "pos"])
    assert list(m.classes) == ["neg", "pos"]


def test_classes_reach_a_pickled_model_that_has_none_of_its_own(tmp_path):
    from sklearn.cluster import KMeans

    X = np.random.default_rng(0).normal(size=(20, 3))
    path = tmp_path / "km.joblib"
    joblib.dump(KMeans(2, n_init=1, random_state=0).fit(X), path)
    for load in (secure_load, load_model):
        assert list(load(path, classes=["a", "b"]).classes) == ["a", "b"]


def test_a_torchscript_model_gets_the_shape_hint_and_its_path(tmp_path):
    import torch

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2)).eval()
    path = tmp_path / "flat.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    m = secure_load(path, input_shape=(3, 4))
    assert m.format == "torchscript"
    assert m.input_spec.shape == (3, 4)
    assert m.source == str(path)
