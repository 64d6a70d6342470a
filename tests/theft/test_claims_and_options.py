"""Library entry points the theft CLI translates: reading and opening an ownership claim from its files
(:func:`open_claim`), the extraction options (:func:`extraction_options`), the fingerprint's summary,
and neutral library messages (a CLI flag only in ``cli_hint``)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from modelshield.checks.theft import extraction_options, parse_budgets
from modelshield.errors import DataError, InputNotFoundError, IntegrityError, UserError
from modelshield.theft._records import read_input
from modelshield.theft.fingerprint import Fingerprint, create_fingerprint

torch = pytest.importorskip("torch")


def _mlp(seed: int):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(30, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))


@pytest.fixture(scope="module")
def claim_files(tmp_path_factory, breast_cancer):
    """A watermarked MLP and the owner's evidence on disk: commitment, public key, watermark key, triggers."""
    from modelshield.harden.watermark import embed_watermark
    from modelshield.protect.keys import generate_signing_key, public_pem, write_key_file

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("claim")
    Xtr, _, ytr, _ = breast_cancer
    sk = generate_signing_key()
    key = hashlib.sha256(b"claim test").digest()
    res = embed_watermark(_mlp(0), Xtr, ytr, key=key, signing_key=sk, n_triggers=30, epochs=10, seed=0)
    assert res.commitment is not None and res.trigger_accuracy == 1.0
    res.commitment.save(d / "c.json")
    (d / "owner.pub").write_bytes(public_pem(sk))
    (d / "other.pub").write_bytes(public_pem(generate_signing_key()))
    write_key_file(d / "wm.key", key)
    res.triggers.save(d / "t.npz")
    return d, res


def test_open_claim_reads_and_opens_the_evidence(claim_files):
    from modelshield.theft.watermark import open_claim

    d, res = claim_files
    claim = open_claim(d / "c.json", d / "owner.pub", d / "wm.key", d / "t.npz")
    assert claim.input_shape == (30,)
    assert np.array_equal(claim.triggers.labels, res.triggers.labels) and claim.presented is not None
    v = claim.verify(res.module, alpha=1e-6)
    assert v.owned and v.proof == "verified" and v.matches == v.n == 30 and v.alpha == 1e-6
    assert not claim.verify(_mlp(5)).owned  # an untrained model does not reproduce 30 random labels
    assert res.key.hex() not in repr(claim) and "OwnershipClaim(" in repr(claim)
    # the trigger file is optional: the key re-derives the committed set
    assert open_claim(d / "c.json", d / "owner.pub", d / "wm.key").presented is None


def test_open_claim_refuses_before_any_model(claim_files):
    from modelshield.theft.watermark import TriggerSet, open_claim

    d, res = claim_files
    with pytest.raises(IntegrityError, match="signature does not verify"):
        open_claim(d / "c.json", d / "other.pub", d / "wm.key")
    TriggerSet(X=res.triggers.X, labels=1 - res.triggers.labels, n_classes=2).save(d / "forged.npz", overwrite=True)
    with pytest.raises(IntegrityError, match="not the committed one"):
        open_claim(d / "c.json", d / "owner.pub", d / "wm.key", d / "forged.npz")
    with pytest.raises(InputNotFoundError, match="watermark commitment not found"):
        open_claim(d / "missing.json", d / "owner.pub", d / "wm.key")
    with pytest.raises(InputNotFoundError, match="trigger set not found"):
        open_claim(d / "c.json", d / "owner.pub", d / "wm.key", d / "missing.npz")


def test_read_input(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"abc")
    assert read_input(tmp_path / "x.bin", "thing") == (b"abc", str(tmp_path / "x.bin"))
    for p in (tmp_path / "nope.bin", tmp_path):  # missing, or a folder
        with pytest.raises(InputNotFoundError, match=f"^thing not found: {p}$"):
            read_input(p, "thing")


@pytest.mark.parametrize("text,expect", [(None, None), ("", None), ("100,1_000, 10000", [100, 1000, 10000]),
                                         ("50,", [50])])
def test_parse_budgets(text, expect):
    assert parse_budgets(text) == expect


@pytest.mark.parametrize("text,match", [("ten", "bad query budgets 'ten'"), ("0,100", "positive"), (",", "positive")])
def test_parse_budgets_errors_are_neutral(text, match):
    with pytest.raises(UserError, match=match) as info:
        parse_budgets(text)
    assert "--" not in str(info.value) and info.value.cli_hint == "fix --budgets"
    assert info.value.cli_message().endswith("; fix --budgets")


def test_extraction_options_keeps_what_is_given_and_validates():
    assert extraction_options() == {"exposure": "unspecified"}
    opts = extraction_options(budgets="50,200", exposure="rate-limited", query_budget=500, api_outputs="top1")
    assert opts == {"budgets": [50, 200], "exposure": "rate-limited", "query_budget": 500, "api_outputs": "top1"}
    assert extraction_options(budgets=[7], serve_config=__file__)["serve_config"] == __file__
    with pytest.raises(UserError, match="not one of"):
        extraction_options(exposure="everywhere")
    with pytest.raises(UserError, match=r"needs theft\.query_budget"):
        extraction_options(exposure="rate-limited")


def _fp(cal: dict | None) -> Fingerprint:
    X = np.zeros((12, 3), dtype=np.float32)
    return Fingerprint(X=X, labels=np.arange(12) % 2, n_classes=2, threshold=0.8,
                       meta={} if cal is None else {"calibration": cal})


def test_fingerprint_describe_and_undetected_derived():
    cal = {"independent_scores": [0.5, 0.6, 0.55, 0.52, 0.58], "derived_scores": [0.9, 0.95, 0.7],
           "derived_detected": 2, "false_match_rate": 0.004, "confidence": 0.95}
    fp = _fp(cal)
    assert fp.undetected_derived == 1
    assert fp.describe() == (
        "12 boundary points, threshold 0.80; 5 independent references scored 0.50-0.60, 3 derived copies "
        "(extracted through the API, fine-tuned, pruned) 0.70-0.95; false-match rate <= 4.0e-03 at 95% "
        "confidence (normal model of the references' scores)")
    assert _fp({**cal, "derived_detected": None}).undetected_derived == 0
    assert _fp({**cal, "derived_scores": []}).describe().endswith("scored 0.50-0.60, false-match rate <= 4.0e-03 "
                                                                   "at 95% confidence (normal model of the "
                                                                   "references' scores)")
    bare = _fp(None)
    assert bare.undetected_derived == 0
    assert bare.describe() == "12 boundary points, threshold 0.80 (no reference calibration)"


def test_fingerprint_messages_are_neutral():
    with pytest.raises(DataError, match="no calibration") as info:
        _fp(None).compare(lambda X: np.zeros(len(X), dtype=int))
    assert "--" not in str(info.value) and "--threshold" in (info.value.cli_hint or "")
    with pytest.raises(DataError, match="at least 5 independent") as info:
        create_fingerprint(lambda X: np.zeros(len(X), dtype=int), np.zeros((4, 3)), independent=[])
    assert "--" not in str(info.value) and "--target" in (info.value.cli_hint or "")
