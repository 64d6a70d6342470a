"""The proofs engine's refusals read neutrally from Python (no CLI flag in the message; the flag is in the
CLI hint), and they come before any proving work."""

from __future__ import annotations

import shutil

import pytest

from modelshield.errors import OutputError, UserError
from modelshield.proofs import INSECURE_SRS_WARNING, Visibility, setup, verify


@pytest.mark.parametrize("kwargs,message,hint", [
    ({"input": "secret"}, "input visibility 'secret' is not one of: private, public, hashed", "fix --input-visibility"),
    ({"output": "private"}, "output visibility 'private' is not one of: public", "fix --output-visibility"),
    ({"weights": "private"}, "weights visibility 'private' is not one of: fixed, hashed", "fix --weights-visibility"),
])
def test_visibility(kwargs, message, hint):
    with pytest.raises(UserError) as info:
        Visibility(**kwargs).validate()
    assert str(info.value) == message and info.value.cli_hint == hint
    assert Visibility().validate() == Visibility()


def test_model_hash_is_checked_before_the_proof_is_read(tmp_path):
    with pytest.raises(UserError) as info:
        verify(tmp_path / "missing.json", tmp_path, model_hash="abc")
    assert str(info.value) == "expected model hash 'abc' is not a SHA-256 hex digest (64 hex digits)"
    assert info.value.cli_hint == "fix --model-hash"


def test_setup_refuses_to_replace_a_folder_that_is_not_a_setup(zk_models, tmp_path):
    model, calib = zk_models["dir"] / "a.onnx", zk_models["dir"] / "calib.npz"
    out = tmp_path / "notes"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputError) as info:
        setup(model, calib, out, force=True)
    assert str(info.value) == f"only a proof setup folder (one with manifest.json) is replaced; {out} holds other files"
    assert info.value.cli_hint == "choose another --out" and (out / "keep.txt").read_text() == "mine"
    with pytest.raises(OutputError) as info:
        setup(model, calib, out)
    assert info.value.cli_hint == "pass --force to replace it"
    (out / "keep.txt").unlink()
    (out / "manifest.json").write_text("{}")
    shutil.copyfile(model, out / "m.onnx")
    with pytest.raises(UserError) as info:
        setup(out / "m.onnx", calib, out, force=True)  # an input inside the folder it would replace
    assert str(info.value) == f"{out / 'm.onnx'} is inside the output folder {out}, which replacing it would delete"


def test_the_insecure_srs_warning_names_no_flag():
    assert "--" not in INSECURE_SRS_WARNING and "public ceremony" in INSECURE_SRS_WARNING


def test_unreadable_setup_and_proof_files(tmp_path):
    from modelshield.errors import FormatError, InputNotFoundError
    from modelshield.proofs import load_manifest

    with pytest.raises(InputNotFoundError, match=r"is not a proof setup folder: no manifest\.json"):
        load_manifest(tmp_path, ())
    (tmp_path / "manifest.json").write_bytes(b"{not json")
    with pytest.raises(FormatError, match=r"manifest\.json: not JSON \("):
        load_manifest(tmp_path, ())
    with pytest.raises(InputNotFoundError, match=r"^proof not found: .*p\.json$"):
        verify(tmp_path / "p.json", tmp_path)
    (tmp_path / "p.json").write_bytes(b"\xff\xfe")
    with pytest.raises(FormatError, match=r"p\.json: not a proof \(not JSON: "):
        verify(tmp_path / "p.json", tmp_path)
