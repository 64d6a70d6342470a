"""Issue 22 B.1: watermark ownership needs a keyed trigger set and a signed, timestamped commitment.

Families: forgeries (noise of several kinds labelled with a model's own answers, against the owner's
and against independent models), tamperings of the commitment, both signing key types.
"""

from __future__ import annotations

import base64
import hashlib
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from modelshield.errors import DataError, FormatError, IntegrityError  # noqa: E402
from modelshield.harden.watermark import embed_watermark, train_classifier  # noqa: E402
from modelshield.models.torch import TorchModel  # noqa: E402
from modelshield.protect.keys import generate_signing_key  # noqa: E402
from modelshield.theft.watermark import (  # noqa: E402
    Commitment,
    TriggerSet,
    derivation_params,
    derive_trigger_set,
    key_commitment,
    trigger_agreement,
    trigger_digest,
    verify_watermark,
)


def _key(i: int) -> bytes:
    return hashlib.sha256(b"proof-test key %d" % i).digest()


def _mlp(seed: int):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(30, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))


@pytest.fixture(scope="module", params=["ed25519", "ecdsa-p256"])
def owner(request, breast_cancer):
    torch.set_num_threads(1)
    Xtr, _, ytr, _ = breast_cancer
    sk = generate_signing_key(request.param)
    res = embed_watermark(_mlp(0), Xtr, ytr, key=_key(0), signing_key=sk, n_triggers=60, epochs=20, seed=0)
    assert res.commitment is not None
    return res, sk


@pytest.fixture(scope="module")
def independents(breast_cancer):
    Xtr, _, ytr, _ = breast_cancer
    return [train_classifier(_mlp(100 + i), Xtr, ytr, epochs=15, seed=100 + i) for i in range(5)]


def _noise(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.uniform(-3, 3, size=(n, 30))
    if kind == "gaussian":
        return rng.normal(size=(n, 30)) * 2
    return rng.uniform(-3, 3, size=(n, 30)).round()  # "lattice"


def test_owner_model_verifies(owner):
    res, sk = owner
    v = verify_watermark(res.module, commitment=res.commitment, public_key=sk.public_key(), key=res.key,
                         triggers=res.triggers)
    assert v.owned and v.proof == "verified" and v.p_value < 1e-12
    assert v.created == res.commitment.created and v.created.endswith("Z")
    # through the adapter and without the trigger file (the key re-derives it)
    v2 = verify_watermark(TorchModel(res.module), commitment=res.commitment, public_key=sk.public_key(), key=res.key)
    assert v2.matches == v.matches


def test_independent_models_do_not_verify(owner, independents):
    res, sk = owner
    for m in independents:
        v = verify_watermark(m, commitment=res.commitment, public_key=sk.public_key(), key=res.key)
        assert not v.owned and v.p_value > 1e-3


@pytest.mark.parametrize("kind", ["uniform", "gaussian", "lattice"])
@pytest.mark.parametrize("victim", ["owner", "independent"])
def test_forged_trigger_sets_are_refused(owner, independents, kind, victim):
    """Labelling noise with a model's own answers passes the bare agreement test (that was the hole)
    but never the ownership proof, with the owner's commitment or with one the forger signs."""
    res, sk = owner
    target = res.module if victim == "owner" else independents[0]
    X = _noise(kind, 60, seed=len(kind)).astype(np.float32)
    answers = TorchModel(target).predict_index(X)
    forged = TriggerSet(X=X, labels=answers, n_classes=2)
    assert trigger_agreement(target, forged).p_value < 1e-15  # the forgery "verifies" without a proof
    # 1. presented under the owner's commitment
    with pytest.raises(IntegrityError, match="not the committed one"):
        verify_watermark(target, commitment=res.commitment, public_key=sk.public_key(), key=res.key, triggers=forged)
    # 2. the forger commits it himself: no key derives those labels, so create() refuses ...
    forger_sk, forger_key = generate_signing_key(), _key(99)
    params = derivation_params(60, input_shape=(30,), n_classes=2)
    with pytest.raises(DataError, match="not the one this watermark key derives"):
        Commitment.create(forged, forger_key, forger_sk, params=params)
    # ... and a hand-made, validly signed commitment to the forged set is refused at verification
    body = {"format": "modelshield.watermark-commitment/1", "created": "2020-01-01T00:00:00Z",
            "trigger_sha256": trigger_digest(forged), "key_commitment": key_commitment(forger_key),
            "params": params}
    payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    fake = Commitment(payload=payload, signature=forger_sk.sign(b"modelshield.watermark-commitment/1\x00" + payload))
    with pytest.raises(IntegrityError, match="does not derive the committed trigger set"):
        verify_watermark(target, commitment=fake, public_key=forger_sk.public_key(), key=forger_key,
                         triggers=forged)


def _resigned_payload(com: Commitment, **changes) -> Commitment:
    body = json.loads(com.payload)
    body.update(changes)
    return Commitment(payload=json.dumps(body, sort_keys=True, separators=(",", ":")).encode(),
                      signature=com.signature)


@pytest.mark.parametrize("tamper", ["signature-bit", "created", "trigger-digest", "key-commitment", "params",
                                    "other-public-key", "wrong-watermark-key", "trigger-labels",
                                    "trigger-inputs"])
def test_tampered_evidence_is_refused(owner, tamper):
    res, sk = owner
    com, pub, key, ts = res.commitment, sk.public_key(), res.key, res.triggers
    if tamper == "signature-bit":
        sig = bytearray(com.signature)
        sig[5] ^= 0x01
        com = Commitment(payload=com.payload, signature=bytes(sig))
    elif tamper == "created":
        com = _resigned_payload(com, created="2019-01-01T00:00:00Z")  # back-dating
    elif tamper == "trigger-digest":
        com = _resigned_payload(com, trigger_sha256=trigger_digest(derive_trigger_set(
            _key(5), 60, input_shape=(30,), n_classes=2)))
    elif tamper == "key-commitment":
        com = _resigned_payload(com, key_commitment=key_commitment(_key(5)))
    elif tamper == "params":
        com = _resigned_payload(com, params={**json.loads(com.payload)["params"], "n": 59})
    elif tamper == "other-public-key":
        pub = generate_signing_key().public_key()
    elif tamper == "wrong-watermark-key":
        key = _key(5)
    elif tamper == "trigger-labels":
        labels = ts.labels.copy()
        labels[:3] = 1 - labels[:3]
        ts = TriggerSet(X=ts.X, labels=labels, n_classes=2)
    elif tamper == "trigger-inputs":
        X = ts.X.copy()
        X[0, 0] += 1e-3
        ts = TriggerSet(X=X, labels=ts.labels, n_classes=2)
    with pytest.raises(IntegrityError, match="refused"):
        verify_watermark(res.module, commitment=com, public_key=pub, key=key, triggers=ts)


def test_commitment_file_round_trip_and_bad_files(tmp_path, owner):
    res, _sk = owner
    p = res.commitment.save(tmp_path / "c.json")
    back = Commitment.load(p)
    assert back == res.commitment
    doc = json.loads(p.read_text())
    assert set(doc) == {"format", "payload", "signature"}
    assert res.key not in base64.b64decode(doc["payload"])  # the key is not in the public commitment
    for bad in (b"", b"{}", b"not json", json.dumps({**doc, "payload": "!!"}).encode()):
        (tmp_path / "bad.json").write_bytes(bad)
        with pytest.raises(FormatError):
            Commitment.load(tmp_path / "bad.json")
    assert "key" not in repr(res).lower().replace("trigger", "")  # no secret in the repr


@pytest.mark.parametrize("n,n_classes", [(10, 2), (60, 3), (101, 10)])
def test_keyed_derivation_is_deterministic_balanced_and_key_dependent(n, n_classes):
    a = derive_trigger_set(_key(1), n, input_shape=(4, 2), n_classes=n_classes, lower=0.0, upper=1.0)
    b = derive_trigger_set(_key(1), n, input_shape=(4, 2), n_classes=n_classes, lower=0.0, upper=1.0)
    c = derive_trigger_set(_key(2), n, input_shape=(4, 2), n_classes=n_classes, lower=0.0, upper=1.0)
    assert trigger_digest(a) == trigger_digest(b) != trigger_digest(c)
    assert a.X.shape == (n, 4, 2) and a.X.min() >= 0 and a.X.max() <= 1
    counts = np.bincount(a.labels, minlength=n_classes)
    assert counts.max() - counts.min() <= 1
    assert not np.array_equal(a.labels, c.labels) or (n_classes == 2 and n == 10)
