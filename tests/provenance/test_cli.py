"""CLI: ``modelshield bom MODEL ... --out`` and ``modelshield bom verify BOM MODEL`` (exit 0 / 3 / 2)."""

from __future__ import annotations

import hashlib
import json

from modelshield.cli import main


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_bom_round_trip(files, report, tmp_path, capsys, cdx_validator):
    out = tmp_path / "bom.cdx.json"
    code, text, _ = run(capsys, "bom", files / "model.onnx", "--audit", report, "--data", files / "data.csv",
                        "--out", out)
    assert code == 0 and "wrote" in text
    bom = json.loads(out.read_text())
    assert cdx_validator.is_valid(bom)
    comp = bom["metadata"]["component"]
    assert comp["hashes"][0]["content"] == hashlib.sha256((files / "model.onnx").read_bytes()).hexdigest()
    assert any(c["type"] == "data" for c in bom["components"])
    code, text, _ = run(capsys, "bom", "verify", out, files / "model.onnx")
    assert code == 0 and "match" in text
    # 'bom create' is the same command, spelled out
    code, _, _ = run(capsys, "bom", "create", files / "model.onnx", "--no-dependencies", "--out", tmp_path / "b2.json")
    assert code == 0
    assert not [c for c in json.loads((tmp_path / "b2.json").read_text())["components"] if c["type"] == "library"]


def test_verify_mismatch_exits_3(files, tmp_path, capsys):
    out = tmp_path / "bom.json"
    assert run(capsys, "bom", files / "model.onnx", "--no-dependencies", "--out", out)[0] == 0
    code, text, _ = run(capsys, "bom", "verify", out, files / "other.onnx", "--json", tmp_path / "v.json")
    assert code == 3 and "MISMATCH" in text and "NOT" in text
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["ok"] is False and not any(h["matches"] for h in verdict["hashes"])
    tampered = tmp_path / "t.onnx"
    raw = bytearray((files / "model.onnx").read_bytes())
    raw[len(raw) // 2] ^= 0x40
    tampered.write_bytes(bytes(raw))
    assert run(capsys, "bom", "verify", out, tampered)[0] == 3


def test_bad_input_exits_2_with_one_line(files, report, tmp_path, capsys):
    out = tmp_path / "bom.json"
    out.write_text("old")
    cases = [
        ("bom", files / "model.onnx", "--out", out),  # exists, no --force
        ("bom", tmp_path / "missing.onnx", "--out", tmp_path / "n.json"),
        ("bom", "verify", tmp_path / "missing.json", files / "model.onnx"),
        ("bom", "verify", files / "data.csv", files / "model.onnx"),  # not a BOM
        ("bom", "verify", report, files / "model.onnx"),  # JSON, not CycloneDX
        ("bom", "verify", report, tmp_path / "missing.onnx"),
        ("bom", files / "model.onnx", "--audit", files / "data.csv", "--out", tmp_path / "n.json"),
        ("bom", files / "model.onnx", "--out", files / "model.onnx", "--force"),  # the output is an input
    ]
    for args in cases:
        code, _, err = run(capsys, *args)
        assert code == 2, args
        lines = [x for x in err.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, (args, err)
    assert out.read_text() == "old"
    assert run(capsys, "bom", files / "model.onnx", "--no-dependencies", "--out", out, "--force")[0] == 0
    assert json.loads(out.read_text())["bomFormat"] == "CycloneDX"


def test_audit_of_another_model_exits_3(files, report, tmp_path, capsys):
    code, _, err = run(capsys, "bom", files / "other.onnx", "--audit", report, "--out", tmp_path / "b.json")
    assert code == 3 and "not about this model" in err
    assert not (tmp_path / "b.json").exists()
