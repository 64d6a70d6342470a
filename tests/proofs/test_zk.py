"""``modelshield proof setup|prove|verify``: the round trip on generated MLPs, tampering refused (exit 3),
bad input one line (exit 2)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ezkl")
torch = pytest.importorskip("torch")

from modelshield.cli import main  # noqa: E402
from modelshield.proofs import INSECURE_SRS, INSECURE_SRS_WARNING, load_manifest, model_hashes  # noqa: E402


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def _one_error(capfd, code: int, rc: int) -> str:
    err = capfd.readouterr().err
    assert rc == code, err
    assert "Traceback" not in err
    errors = _errors(err)
    assert len(errors) == 1, err
    return errors[0]


# ------------------------------------------------------------------------------------------- round trip
def test_round_trip_output_matches_torch(zk_models, setups, tmp_path, capfd):
    """Rows of several classes: each proof verifies, carries torch's output (to fixed-point error) and its
    argmax, and every command warns about the test SRS in one line."""
    X, y, net = zk_models["X"], zk_models["y"], zk_models["nets"]["a"]
    rows = [int(np.flatnonzero(y[1100:] == c)[0]) + 1100 for c in (0, 3, 7)]
    for i in rows:
        np.save(tmp_path / f"x{i}.npy", X[i])
        capfd.readouterr()
        assert main(["proof", "prove", str(setups["a"]), "--input", str(tmp_path / f"x{i}.npy"), "--out",
                     str(tmp_path / f"p{i}.json")]) == 0
        assert main(["proof", "verify", str(tmp_path / f"p{i}.json"), "--setup", str(setups["a"]), "--json",
                     str(tmp_path / f"v{i}.json")]) == 0
        err = capfd.readouterr().err
        assert err.count(INSECURE_SRS_WARNING) == 2  # prove and verify
        proof = json.loads((tmp_path / f"p{i}.json").read_text())
        verdict = json.loads((tmp_path / f"v{i}.json").read_text())
        with torch.no_grad():
            ref = net(torch.as_tensor(X[i : i + 1]))[0].numpy()
        assert verdict["valid"] is True and verdict["output"] == proof["output"]
        assert proof["predicted_class"] == int(np.argmax(ref)) == verdict["predicted_class"]
        assert np.max(np.abs(np.asarray(proof["output"]) - ref)) < 0.1
        assert proof["srs"] == INSECURE_SRS
        assert "hex_proof" not in proof["ezkl"] and "pretty_public_inputs" not in proof["ezkl"]


def test_manifest_binds_model_and_files(zk_models, setups, proofs):
    d = zk_models["dir"]
    m = load_manifest(setups["a"])
    raw = json.loads((setups["a"] / "manifest.json").read_text())
    assert raw["srs"] == INSECURE_SRS
    assert m.model_sha256 == hashlib.sha256((d / "a.onnx").read_bytes()).hexdigest()
    assert m.weights_sha256 == model_hashes(d / "a.onnx")["weights_sha256"]
    assert m.weights_sha256 != load_manifest(setups["b"]).weights_sha256
    assert raw["vk_sha256"] == hashlib.sha256((setups["a"] / "vk.key").read_bytes()).hexdigest()
    assert raw["settings_sha256"] == hashlib.sha256((setups["a"] / "settings.json").read_bytes()).hexdigest()
    proof = json.loads(proofs["a"].read_text())
    assert proof["model_sha256"] == m.model_sha256 and proof["vk_sha256"] == m.vk_sha256


def test_verify_with_expected_model_hash(zk_models, setups, proofs, capfd):
    d = zk_models["dir"]
    good = hashlib.sha256((d / "a.onnx").read_bytes()).hexdigest()
    assert main(["proof", "verify", str(proofs["a"]), "--setup", str(setups["a"]), "--model-hash",
                 f"sha256:{good.upper()}"]) == 0
    other = hashlib.sha256((d / "b.onnx").read_bytes()).hexdigest()
    rc = main(["proof", "verify", str(proofs["a"]), "--setup", str(setups["a"]), "--model-hash", other])
    assert "not the expected" in _one_error(capfd, 3, rc)


# -------------------------------------------------------------------------------------------- tampering
def _flip_proof_byte(p: dict) -> None:
    b = p["ezkl"]["proof"]
    b[len(b) // 2] ^= 0x01


def _truncate_proof(p: dict) -> None:
    p["ezkl"]["proof"] = p["ezkl"]["proof"][:-32]


def _swap_instances(p: dict) -> None:
    inst = p["ezkl"]["instances"][0]
    inst[0], inst[-1] = inst[-1], inst[0]


def _swap_instances_consistently(p: dict, setup: Path) -> None:
    """The public output altered in the proved values *and* the stated output: ezkl itself must refuse."""
    import ezkl

    _swap_instances(p)
    scale = json.loads((setup / "settings.json").read_text())["model_output_scales"][0]
    p["output"] = [float(ezkl.felt_to_float(v, scale)) for v in p["ezkl"]["instances"][0]]
    p["predicted_class"] = int(np.argmax(p["output"]))


def _stated_output(p: dict) -> None:
    p["output"][0] += 1.0


def _predicted_class(p: dict) -> None:
    p["predicted_class"] = (p["predicted_class"] + 1) % 10


def _model_hash(p: dict) -> None:
    p["model_sha256"] = hashlib.sha256(b"another model").hexdigest()


def _vk_hash(p: dict) -> None:
    p["vk_sha256"] = "0" * 64


def _no_ezkl(p: dict) -> None:
    del p["ezkl"]


TAMPERS = {"proof-byte": _flip_proof_byte, "proof-truncated": _truncate_proof, "public-output": _swap_instances,
           "stated-output": _stated_output,
           "predicted-class": _predicted_class, "model-hash": _model_hash, "vk-hash": _vk_hash,
           "no-inner-proof": _no_ezkl}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampered_proof_refused(tamper, setups, proofs, tmp_path, capfd):
    p = json.loads(proofs["a"].read_text())
    before = copy.deepcopy(p)
    TAMPERS[tamper](p)
    assert p != before
    (tmp_path / "t.json").write_text(json.dumps(p))
    rc = main(["proof", "verify", str(tmp_path / "t.json"), "--setup", str(setups["a"])])
    assert "refused" in _one_error(capfd, 3, rc)


def test_consistent_output_tamper_is_refused_by_ezkl(setups, proofs, tmp_path, capfd):
    """With the stated output matching the altered public values, only the proof check can refuse."""
    p = json.loads(proofs["a"].read_text())
    _swap_instances_consistently(p, setups["a"])
    (tmp_path / "t.json").write_text(json.dumps(p))
    rc = main(["proof", "verify", str(tmp_path / "t.json"), "--setup", str(setups["a"])])
    assert "does not verify" in _one_error(capfd, 3, rc)


def test_proof_for_another_model_refused(setups, proofs, tmp_path, capfd):
    """b's proof against a's setup: as made, and relabelled with every hash of a's setup."""
    rc = main(["proof", "verify", str(proofs["b"]), "--setup", str(setups["a"])])
    assert "bound to another model" in _one_error(capfd, 3, rc)
    p = json.loads(proofs["b"].read_text())
    a = json.loads(proofs["a"].read_text())
    for key in ("model_sha256", "weights_sha256", "vk_sha256", "settings_sha256"):
        p[key] = a[key]
    (tmp_path / "relabelled.json").write_text(json.dumps(p))
    rc = main(["proof", "verify", str(tmp_path / "relabelled.json"), "--setup", str(setups["a"])])
    assert "does not verify" in _one_error(capfd, 3, rc)


@pytest.mark.parametrize("role", ["vk.key", "settings.json", "kzg.srs"])
def test_setup_file_swapped_refused(role, setups, proofs, tmp_path, capfd):
    """A setup folder whose file is another setup's (b's) does not match its manifest: refused."""
    import shutil

    bad = tmp_path / "setup"
    shutil.copytree(setups["a"], bad)
    src = setups["b"] / role
    if role == "kzg.srs":  # both setups generated their own test SRS of the same size
        assert src.read_bytes() != (bad / role).read_bytes()
    shutil.copyfile(src, bad / role)
    rc = main(["proof", "verify", str(proofs["a"]), "--setup", str(bad)])
    assert "not the file the manifest names" in _one_error(capfd, 3, rc)


# -------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("shape", [(63,), (2, 64), (8, 8), (1, 65)])
def test_wrong_input_shape(shape, setups, tmp_path, capfd):
    np.save(tmp_path / "x.npy", np.zeros(shape, dtype=np.float32))
    rc = main(["proof", "prove", str(setups["a"]), "--input", str(tmp_path / "x.npy"), "--out",
               str(tmp_path / "p.json")])
    assert "the model takes one example of shape (64,)" in _one_error(capfd, 2, rc)
    assert not (tmp_path / "p.json").exists()


def _op_model(op: str, path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    if op == "Det":
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 2])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    else:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4] if op != "Unique" else [4])
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@pytest.mark.parametrize("op", ["Det", "Unique", "LpNormalization"])
def test_unsupported_operator(op, tmp_path, capfd):
    model = _op_model(op, tmp_path / f"{op}.onnx")
    np.savez(tmp_path / "d.npz", X=np.random.default_rng(0).random((8, 4)), y=np.zeros(8))
    rc = main(["proof", "setup", str(model), "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "s")])
    assert f"unsupported operator {op}" in _one_error(capfd, 2, rc)
    assert not (tmp_path / "s").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no half-built folder left


def test_existing_output_folder_needs_force(zk_models, setups, tmp_path, capfd):
    d = zk_models["dir"]
    before = (setups["a"] / "manifest.json").read_bytes()
    rc = main(["proof", "setup", str(d / "a.onnx"), "--data", str(d / "calib.npz"), "--out", str(setups["a"])])
    assert "already exists; pass --force" in _one_error(capfd, 2, rc)
    assert (setups["a"] / "manifest.json").read_bytes() == before
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    rc = main(["proof", "setup", str(d / "a.onnx"), "--data", str(d / "calib.npz"), "--out", str(other), "--force"])
    assert "only a proof setup folder (one with manifest.json) is replaced" in _one_error(capfd, 2, rc)
    assert (other / "keep.txt").read_text() == "mine"


def test_force_replaces_a_setup_folder_and_setup_is_reproducible(digits, onnx_mlp, tmp_path, capfd):
    """A second model's setup replaces the first with --force (the old proof is then refused); the same
    model, data and SRS give the same verifying key again (a verifier holding the model can rebuild it)."""
    import ezkl

    X, y = digits
    d = tmp_path
    for name, seed in (("one", 0), ("two", 1)):
        onnx_mlp(X[:300], y[:300], 4, seed, d / f"{name}.onnx", steps=30)
    np.savez(d / "c.npz", X=X[:16], y=y[:16])
    np.save(d / "x.npy", X[0])
    ezkl.gen_srs(str(d / "k.srs"), 11)
    s, again = d / "setup", d / "again"
    common = ["--data", str(d / "c.npz"), "--srs", str(d / "k.srs")]
    assert main(["proof", "setup", str(d / "one.onnx"), *common, "--out", str(s)]) == 0
    first = load_manifest(s)
    assert main(["proof", "prove", str(s), "--input", str(d / "x.npy"), "--out", str(d / "p.json")]) == 0
    assert main(["proof", "setup", str(d / "two.onnx"), *common, "--out", str(s), "--force"]) == 0
    assert load_manifest(s).model_sha256 == hashlib.sha256((d / "two.onnx").read_bytes()).hexdigest()
    assert load_manifest(s).vk_sha256 != first.vk_sha256
    capfd.readouterr()
    rc = main(["proof", "verify", str(d / "p.json"), "--setup", str(s)])
    assert "bound to another model" in _one_error(capfd, 3, rc)
    assert main(["proof", "setup", str(d / "one.onnx"), *common, "--out", str(again)]) == 0
    assert load_manifest(again).vk_sha256 == first.vk_sha256
    assert load_manifest(again).settings_sha256 == first.settings_sha256
    assert main(["proof", "verify", str(d / "p.json"), "--setup", str(again)]) == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--input-visibility", "secret"], "input visibility 'secret' is not one of: private, public, hashed; fix --input-visibility"),
    (["--output-visibility", "private"], "output visibility 'private' is not one of: public; fix --output-visibility"),
    (["--weights-visibility", "private"], "weights visibility 'private' is not one of: fixed, hashed; fix --weights-visibility"),
])
def test_bad_visibility(args, message, zk_models, tmp_path, capfd):
    d = zk_models["dir"]
    rc = main(["proof", "setup", str(d / "a.onnx"), "--data", str(d / "calib.npz"), "--out", str(tmp_path / "s"),
               *args])
    assert message in _one_error(capfd, 2, rc)


def test_bad_model_data_and_hash(zk_models, setups, proofs, tmp_path, capfd):
    d = zk_models["dir"]
    (tmp_path / "m.onnx").write_bytes(b"\x00not a protobuf\xff" * 10)
    rc = main(["proof", "setup", str(tmp_path / "m.onnx"), "--data", str(d / "calib.npz"), "--out",
               str(tmp_path / "s")])
    assert "not an ONNX model" in _one_error(capfd, 2, rc)
    np.savez(tmp_path / "narrow.npz", X=np.zeros((4, 10)), y=np.zeros(4))
    rc = main(["proof", "setup", str(d / "a.onnx"), "--data", str(tmp_path / "narrow.npz"), "--out",
               str(tmp_path / "s")])
    assert "rows of 10 values" in _one_error(capfd, 2, rc)
    rc = main(["proof", "verify", str(proofs["a"]), "--setup", str(setups["a"]), "--model-hash", "abc"])
    assert "not a SHA-256 hex digest (64 hex digits); fix --model-hash" in _one_error(capfd, 2, rc)
    (tmp_path / "garbage.json").write_text("{not json")
    rc = main(["proof", "verify", str(tmp_path / "garbage.json"), "--setup", str(setups["a"])])
    assert "not a proof" in _one_error(capfd, 2, rc)
    rc = main(["proof", "verify", str(proofs["a"]), "--setup", str(tmp_path)])
    assert "not a proof setup folder" in _one_error(capfd, 2, rc)
    rc = main(["proof", "prove", str(setups["a"]), "--input", str(d / "x.npy"), "--out", str(proofs["a"])])
    assert "already exists" in _one_error(capfd, 2, rc)


def test_missing_extra_names_it(zk_models, tmp_path, capfd, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ezkl", None)  # import ezkl now raises ImportError
    d = zk_models["dir"]
    rc = main(["proof", "setup", str(d / "a.onnx"), "--data", str(d / "calib.npz"), "--out", str(tmp_path / "s")])
    assert "modelshield[proofs]" in _one_error(capfd, 2, rc)
