"""Files the scanner cannot parse are never clean; ordinary companions of a model stay quiet."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct

import numpy as np
import pytest

from modelshield.artifacts import FileStatus, scan, scan_bytes
from modelshield.findings import Severity


def _rand(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _rules(report) -> set[str]:
    return {f.rule_id for f in report.findings}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _sentencepiece_model() -> bytes:
    """A SentencePiece ModelProto written field by field: pieces (string, score, type), trainer spec."""
    pieces = b"".join(
        _ld(1, _ld(1, p.encode()) + b"\x15" + struct.pack("<f", -float(i)) + b"\x18\x01")
        for i, p in enumerate(["<unk>", "<s>", "</s>", "\u2581the", "\u2581a", "ing"])
    )
    return pieces + _ld(2, _ld(1, b"train.txt") + b"\x18\x06") + _ld(3, _ld(1, b"nmt_nfkc"))


@pytest.mark.parametrize("name", ["rand.pkl", "rand.pt", "rand.bin", "rand.onnx", "rand.safetensors",
                                  "rand.npy", "rand.h5", "rand.gguf", "rand.model", "blob"])
def test_unparseable_model_like_file_is_inconclusive(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(_rand(300, seed=len(name)))
    report = scan(p)
    fr = report.files[0]
    assert fr.status in (FileStatus.INCONCLUSIVE, FileStatus.MALFORMED), [f.title for f in fr.findings]
    assert report.blocks("medium")  # the CLI's default --fail-on
    assert _rules(report) & {"artifact.inconclusive", "artifact.malformed"}


def test_text_named_like_a_model_is_inconclusive(tmp_path):
    p = tmp_path / "weights.pt"
    p.write_text("not a checkpoint at all\n")
    report = scan(p)
    assert report.files[0].status is FileStatus.INCONCLUSIVE
    assert report.files[0].findings[0].evidence["extension"] == ".pt"


@pytest.mark.parametrize("name", ["empty.pkl", "empty.pt", "empty.safetensors", "empty.joblib"])
def test_empty_model_file_is_malformed(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"")
    report = scan(p)
    assert report.files[0].status is FileStatus.MALFORMED
    assert "artifact.malformed" in _rules(report) and report.blocks("medium")


def test_hf_style_model_folder_stays_clean(tmp_path):
    import torch
    from safetensors.numpy import save_file

    d = tmp_path / "bert-tiny"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "hidden_size": 8}))
    (d / "generation_config.json").write_text("{}")
    (d / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"[PAD]": 0, "caf\u00e9": 1}}}))
    (d / "tokenizer_config.json").write_text('{"do_lower_case": true}')
    (d / "special_tokens_map.json").write_text('{"unk_token": "[UNK]"}')
    (d / "README.md").write_text("---\nlicense: mit\n---\n# tiny model \u2014 na\u00efve caf\u00e9\n" * 50)
    (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "the", "##ing"] * 100))
    (d / "merges.txt").write_text("#version: 0.2\n\u0120 t\nh e\n")
    (d / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    (d / "notes_latin1.txt").write_bytes("r\xe9sum\xe9 na\xefve\n".encode("latin-1") * 20)
    (d / "notes_utf16.txt").write_bytes("hello world\n".encode("utf-16"))
    (d / "tokenizer.model").write_bytes(_sentencepiece_model())
    (d / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _rand(200))
    (d / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + _rand(200, 1))
    (d / ".gitkeep").write_bytes(b"")
    save_file({"w": np.ones((4, 4), dtype=np.float32)}, str(d / "model.safetensors"))
    torch.save({"w": torch.ones(4, 4)}, d / "pytorch_model.bin")
    report = scan(d)
    worst = {fr.path.rsplit("/", 1)[-1]: fr.max_severity for fr in report.files}
    assert len(report.files) == 17
    assert all(fr.status is FileStatus.CLEAN for fr in report.files), worst
    assert not report.blocks("medium") and all(s is None or s <= Severity.LOW for s in worst.values()), worst
    formats = {fr.path.rsplit("/", 1)[-1]: fr.format for fr in report.files}
    assert formats["tokenizer.model"] == "sentencepiece"


def test_sentencepiece_recogniser_rejects_lookalikes(tmp_path):
    good = _sentencepiece_model()
    for i, data in enumerate([good[:-3], good + b"\x00", b"\x0a\x05hello" + _rand(100)]):
        p = tmp_path / f"t{i}.model"
        p.write_bytes(data)
        assert scan(p).files[0].status is FileStatus.INCONCLUSIVE, i


def test_bytes_handed_to_a_nested_loader_do_not_become_inconclusive():
    # pickle.loads(b"<random>") inside a pickle: reported by the nested-loader rules, not as a file
    from .corpus import sglob

    inner = _rand(64, 5)
    data = b"\x80\x04" + sglob("pickle", "loads") + b"(C" + bytes([len(inner)]) + inner + b"tR."
    report = scan_bytes(data, "x.pkl")
    assert "artifact.inconclusive" not in _rules(report)
    assert "artifact.pickle.dangerous-global" in _rules(report)


def test_encrypted_container_is_its_own_inconclusive_format(tmp_path):
    from modelshield.protect.crypto import encrypt_bytes

    plain = pickle.dumps({"w": [1.0, 2.0]}, protocol=4)
    assert scan_bytes(plain, "m.pkl").files[0].status is FileStatus.CLEAN
    p = tmp_path / "model.pkl.enc"
    p.write_bytes(encrypt_bytes(plain, key=os.urandom(32)))
    report = scan(p)
    fr = report.files[0]
    assert fr.format == "modelshield-encrypted"
    assert fr.status is FileStatus.INCONCLUSIVE and report.blocks("medium")
    (f,) = fr.findings
    assert f.rule_id == "artifact.encrypted" and f.severity is Severity.HIGH
    assert "without the key" in f.title
    assert "decrypt" in f.detail and "secure loader" in f.detail


def test_encrypted_then_loaded_through_secure_loader_scans_plaintext(tmp_path):
    from modelshield.protect.crypto import encrypt_bytes
    from modelshield.protect.loader import secure_load

    key = os.urandom(32)
    buf = io.BytesIO()
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    pickle.dump(LogisticRegression().fit(X, y), buf, protocol=4)
    p = tmp_path / "model.pkl"
    p.write_bytes(encrypt_bytes(buf.getvalue(), key=key))
    model = secure_load(p, key=key)
    assert model.predict(X).shape == (40,)
