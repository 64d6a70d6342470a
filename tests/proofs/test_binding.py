"""What binds a proof to one model: the weights hash, a supplied SRS, and forgeries made with another
model's weights under this setup's keys (the attacks a verifier's checks exist for)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

ezkl = pytest.importorskip("ezkl")
torch = pytest.importorskip("torch")

from modelshield.cli import main  # noqa: E402
from modelshield.proofs import INSECURE_SRS_WARNING, load_manifest, model_hashes  # noqa: E402


def _one_error(capfd, code: int, rc: int) -> str:
    err = capfd.readouterr().err
    assert rc == code, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def _forge(other_onnx: Path, setup: Path, x: np.ndarray, work: Path) -> dict | None:
    """An attacker's proof: OTHER model's weights compiled with the setup's settings, proved with the
    setup's proving key, relabelled with the setup's hashes. ``None`` when ezkl cannot even prove it."""
    work.mkdir()
    (work / "in.json").write_text(json.dumps({"input_data": [x.reshape(-1).tolist()]}))
    try:
        ezkl.compile_circuit(str(other_onnx), str(work / "c"), str(setup / "settings.json"))
        ezkl.gen_witness(str(work / "in.json"), str(work / "c"), str(work / "w.json"))
        ezkl.prove(str(work / "w.json"), str(work / "c"), str(setup / "pk.key"), str(work / "p.json"),
                   srs_path=str(setup / "kzg.srs"))
    except BaseException as exc:  # a Rust panic is a BaseException
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return None
    inner = json.loads((work / "p.json").read_text())
    m = load_manifest(setup).to_dict()
    scale = json.loads((setup / "settings.json").read_text())["model_output_scales"][0]
    n_out = int(np.prod(m["output_shape"]))
    out = [float(ezkl.felt_to_float(v, scale)) for v in inner["instances"][0][-n_out:]]
    return {"format": "modelshield-zk-proof/1", "srs": m["srs"], "model_name": m["model_name"],
            **{k: m[k] for k in ("model_sha256", "weights_sha256", "vk_sha256", "settings_sha256")},
            "visibility": m["visibility"], "output": out, "predicted_class": int(np.argmax(out)), "ezkl": inner}


def test_supplied_srs_is_recorded_and_not_warned(zk_models, setups, proofs, capfd):
    m = json.loads((setups["b"] / "manifest.json").read_text())
    assert m["srs"] == "supplied"
    capfd.readouterr()
    assert main(["proof", "verify", str(proofs["b"]), "--setup", str(setups["b"])]) == 0
    assert INSECURE_SRS_WARNING not in capfd.readouterr().err
    assert json.loads(proofs["b"].read_text())["srs"] == "supplied"


def test_srs_too_small(zk_models, tmp_path, capfd):
    d = zk_models["dir"]
    ezkl.gen_srs(str(tmp_path / "small.srs"), 6)
    rc = main(["proof", "setup", str(d / "a.onnx"), "--data", str(d / "calib.npz"), "--out", str(tmp_path / "s"),
               "--srs", str(tmp_path / "small.srs")])
    assert "SRS of at least 2^" in _one_error(capfd, 2, rc)
    assert not (tmp_path / "s").exists()


def test_fixed_weights_forgery_never_verifies_other_weights(zk_models, setups, tmp_path, capfd):
    """Fixed weights live in the keys: b's weights compiled with a's settings and proved with a's proving
    key (a proof of b's output) do not verify under a's verifying key."""
    X, d = zk_models["X"], zk_models["dir"]
    x = X[1501]
    forged = _forge(d / "b.onnx", setups["a"], x, tmp_path / "forge")
    with torch.no_grad():
        out_a = zk_models["nets"]["a"](torch.as_tensor(x[None]))[0].numpy()
        out_b = zk_models["nets"]["b"](torch.as_tensor(x[None]))[0].numpy()
    assert np.max(np.abs(out_a - out_b)) > 0.5  # the two models really differ on this row
    if forged is None:
        return  # ezkl would not prove it at all
    assert np.max(np.abs(np.asarray(forged["output"]) - out_b)) < 0.1  # it claims b's output
    (tmp_path / "f.json").write_text(json.dumps(forged))
    capfd.readouterr()
    rc = main(["proof", "verify", str(tmp_path / "f.json"), "--setup", str(setups["a"])])
    assert "does not verify" in _one_error(capfd, 3, rc)


def test_weights_hash_ignores_layout_but_not_values(zk_models, tmp_path):
    """The weights hash is of the values: equal for a re-saved file with other metadata, different when any
    one tensor changes (each initializer in turn); the file hash differs in both cases."""
    import onnx
    from onnx import numpy_helper

    src = zk_models["dir"] / "a.onnx"
    base = model_hashes(src)
    m = onnx.load(str(src))
    m.producer_name, m.doc_string = "someone-else", "re-saved"
    onnx.save(m, str(tmp_path / "resaved.onnx"))
    h = model_hashes(tmp_path / "resaved.onnx")
    assert h["weights_sha256"] == base["weights_sha256"] and h["model_sha256"] != base["model_sha256"]
    assert len(m.graph.initializer) >= 4
    for i in range(len(m.graph.initializer)):
        changed = onnx.load(str(src))
        t = changed.graph.initializer[i]
        arr = numpy_helper.to_array(t).copy()
        arr.flat[0] += np.float32(1e-3)
        t.CopyFrom(numpy_helper.from_array(arr, t.name))
        onnx.save(changed, str(tmp_path / f"c{i}.onnx"))
        assert model_hashes(tmp_path / f"c{i}.onnx")["weights_sha256"] != base["weights_sha256"], t.name


@pytest.mark.slow
def test_hashed_weights_forgery_refused(tmp_path, capfd):
    """Hashed weights: the keys do not fix the weights, so ezkl itself ACCEPTS a proof made with other
    weights under this setup's key; verify refuses it because the weights hash is not the committed one."""
    rng = np.random.default_rng(0)
    X = rng.random((32, 8)).astype(np.float32)
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3)).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, torch.zeros(1, 8), str(tmp_path / f"h{seed}.onnx"), opset_version=13,
                              input_names=["x"], output_names=["y"], dynamo=False)
    np.savez(tmp_path / "c.npz", X=X, y=np.zeros(32))
    np.save(tmp_path / "x.npy", X[3])
    s = tmp_path / "setup"
    assert main(["proof", "setup", str(tmp_path / "h0.onnx"), "--data", str(tmp_path / "c.npz"), "--out", str(s),
                 "--weights-visibility", "hashed"]) == 0
    assert load_manifest(s).weights_commitment
    assert main(["proof", "prove", str(s), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.json")]) == 0
    assert main(["proof", "verify", str(tmp_path / "p.json"), "--setup", str(s)]) == 0
    forged = _forge(tmp_path / "h1.onnx", s, X[3], tmp_path / "forge")
    assert forged is not None
    shutil.copyfile(tmp_path / "forge" / "p.json", tmp_path / "inner.json")
    assert ezkl.verify(str(tmp_path / "inner.json"), str(s / "settings.json"), str(s / "vk.key"),
                       srs_path=str(s / "kzg.srs")) is True  # ezkl alone is fooled
    (tmp_path / "f.json").write_text(json.dumps(forged))
    capfd.readouterr()
    rc = main(["proof", "verify", str(tmp_path / "f.json"), "--setup", str(s)])
    assert "other weights" in _one_error(capfd, 3, rc)


@pytest.mark.slow  # two more setups; the default visibility's round trip runs in the default run
@pytest.mark.parametrize("visibility", ["public", "hashed"])
def test_input_visibility_round_trip(visibility, tmp_path, capfd):
    """A public input is in the proof (and altering it is refused); a hashed one is one public value."""
    rng = np.random.default_rng(1)
    X = rng.random((16, 6)).astype(np.float32)
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(1, 6), str(tmp_path / "m.onnx"), opset_version=13, input_names=["x"],
                          output_names=["y"], dynamo=False)
    np.savez(tmp_path / "c.npz", X=X, y=np.zeros(16))
    np.save(tmp_path / "x.npy", X[5])
    s = tmp_path / "setup"
    assert main(["proof", "setup", str(tmp_path / "m.onnx"), "--data", str(tmp_path / "c.npz"), "--out", str(s),
                 "--input-visibility", visibility]) == 0
    assert main(["proof", "prove", str(s), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.json")]) == 0
    assert main(["proof", "verify", str(tmp_path / "p.json"), "--setup", str(s)]) == 0
    p = json.loads((tmp_path / "p.json").read_text())
    inst = p["ezkl"]["instances"][0]
    assert len(inst) == (6 if visibility == "public" else 1) + 3
    with torch.no_grad():
        ref = net(torch.as_tensor(X[5:6]))[0].numpy()
    assert p["predicted_class"] == int(np.argmax(ref))
    if visibility == "public":
        scale = json.loads((s / "settings.json").read_text())["model_input_scales"][0]
        shown = [float(ezkl.felt_to_float(v, scale)) for v in inst[:6]]
        assert np.max(np.abs(np.asarray(shown) - X[5])) < 2.0 ** -scale
        assert inst[0] != inst[1]
        inst[0], inst[1] = inst[1], inst[0]  # another input, same output: ezkl must refuse
        (tmp_path / "t.json").write_text(json.dumps(p))
        capfd.readouterr()
        rc = main(["proof", "verify", str(tmp_path / "t.json"), "--setup", str(s)])
        assert "does not verify" in _one_error(capfd, 3, rc)
