"""``modelshield attack`` and ``modelshield harden adversarial`` from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelshield.attacks.threat import infer_domain
from modelshield.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory, breast_cancer, torch_mlp):
    import joblib
    import pandas as pd
    import torch
    from sklearn.ensemble import RandomForestClassifier

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("attack")
    Xtr, Xte, ytr, yte = breast_cancer
    np.savez(d / "test.npz", X=Xte, y=yte)
    np.savez(d / "train.npz", X=Xtr, y=ytr)
    cols = [f"f{i}" for i in range(Xte.shape[1])]
    pd.DataFrame(Xte, columns=cols).assign(label=yte).to_csv(d / "test.csv", index=False)
    torch.jit.save(torch.jit.script(torch_mlp), str(d / "mlp.pt"))
    rf = RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0).fit(
        pd.DataFrame(Xtr, columns=cols), ytr)
    joblib.dump(rf, d / "rf.joblib")
    return d


def test_attack_torchscript_pgd_writes_json(files, capsys):
    out = files / "pgd.json"
    rc = main(["attack", str(files / "mlp.pt"), "--trust", "--data", str(files / "test.npz"), "--attack", "pgd",
               "--eps", "0.3", "--steps", "10", "--json", str(out)])
    assert rc == 0, capsys.readouterr()
    res = json.loads(out.read_text())
    for k in ("clean_accuracy", "robust_accuracy", "attack_success_rate", "queries_total", "seconds"):
        assert k in res
    assert res["robust_accuracy"] < res["clean_accuracy"]
    assert "robust_accuracy" in capsys.readouterr().out
    # never clobbers without --force
    rc = main(["attack", str(files / "mlp.pt"), "--trust", "--data", str(files / "test.npz"), "--json", str(out)])
    assert rc == 2 and "already exists" in capsys.readouterr().err


def test_attack_sklearn_csv_with_hsj(files, capsys):
    out = files / "hsj.json"
    adv = files / "adv.npz"
    rc = main(["attack", str(files / "rf.joblib"), "--trust", "--data", str(files / "test.csv"), "--target",
               "label", "--attack", "hsj", "--eps", "0.5", "--queries", "300", "--max-samples", "40",
               "--json", str(out), "--save-adv", str(adv)])
    assert rc == 0, capsys.readouterr()
    res = json.loads(out.read_text())
    assert res["samples"] == 40 and 0 < res["queries_max"] <= 300
    with np.load(adv) as z:
        assert z["X"].shape == (40, 30) and z["success"].sum() == round(res["attack_success_rate"] * (
            res["clean_accuracy"] * 40))


@pytest.mark.parametrize("args,msg", [
    (["--attack", "deepfool"], "unknown attack 'deepfool'; expected auto or one of: fgsm, pgd, apgd, apgd-ce, "
                               "apgd-dlr, apgd-t, square, hsj; fix --attack"),
    (["--attack", "pgd", "--trust"], "white-box"),
    (["--norm", "3", "--attack", "square", "--trust"], "norm"),
    (["--eps", "-1", "--attack", "square", "--trust"], "eps"),
])
def test_attack_bad_inputs_are_one_line_errors(files, capsys, args, msg):
    rc = main(["attack", str(files / "rf.joblib"), "--data", str(files / "test.csv"), "--target", "label", *args])
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and "Traceback" not in err


def test_attack_missing_data_file(files, capsys):
    rc = main(["attack", str(files / "mlp.pt"), "--data", str(files / "nope.npz")])
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_harden_adversarial_improves_robust_accuracy(files, capsys):
    out, rep = files / "hardened.pt", files / "harden.json"
    rc = main(["harden", "adversarial", str(files / "mlp.pt"), "--trust", "--data", str(files / "train.npz"), "--test",
               str(files / "test.npz"), "--eps", "0.25", "--epochs", "8", "--lr", "0.003", "--out", str(out),
               "--report", str(rep)])
    assert rc == 0, capsys.readouterr()
    r = json.loads(rep.read_text())
    assert r["after"]["robust_accuracy"] > r["before"]["robust_accuracy"]
    assert r["after"]["clean_accuracy"] > 0.85
    # the written model loads as TorchScript and attacks run on it
    rc = main(["attack", str(out), "--trust", "--data", str(files / "test.npz"), "--eps", "0.25"])
    assert rc == 0


def test_harden_adversarial_refuses_non_torch_models(files, capsys):
    rc = main(["harden", "adversarial", str(files / "rf.joblib"), "--trust", "--data", str(files / "test.csv"),
               "--target", "label", "--out", str(files / "x.pt")])
    assert rc == 2 and "PyTorch" in capsys.readouterr().err


def test_attack_onnx_model_with_square(files, breast_cancer, capsys):
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression

    Xtr, _, ytr, _ = breast_cancer
    lr = LogisticRegression(max_iter=500).fit(Xtr, ytr)
    onx = skl2onnx.to_onnx(lr, Xtr[:1], options={id(lr): {"zipmap": False}})
    (files / "lr.onnx").write_bytes(onx.SerializeToString())
    out = files / "onnx.json"
    rc = main(["attack", str(files / "lr.onnx"), "--data", str(files / "test.npz"), "--attack", "square",
               "--eps", "0.5", "--queries", "200", "--json", str(out)])
    assert rc == 0, capsys.readouterr()
    res = json.loads(out.read_text())
    assert res["robust_accuracy"] < res["clean_accuracy"] - 0.1 and res["queries_max"] <= 200


def test_attack_features_option_and_real_threat_numbers_in_json(files, capsys):
    """Extra columns: the width error names --features, which exists and takes comma lists; the JSON
    holds the threat model's per-feature numbers, not placeholders."""
    import pandas as pd

    Xte = np.load(files / "test.npz")["X"]
    yte = np.load(files / "test.npz")["y"]
    cols = [f"f{i}" for i in range(30)]
    pd.DataFrame(Xte, columns=cols).assign(extra=1.0, label=yte).to_csv(files / "wide.csv", index=False)
    base = ["attack", str(files / "mlp.pt"), "--trust", "--data", str(files / "wide.csv"), "--target", "label",
            "--eps", "0.3", "--steps", "5", "--max-samples", "50"]
    rc = main(base)
    err = capsys.readouterr().err
    assert rc == 2 and "--features" in err and "Traceback" not in err
    out = files / "wide.json"
    rc = main([*base, "--features", ",".join(cols[:10]), "--features", ",".join(cols[10:]),
               "--immutable", "f0,f1", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    threat = json.loads(out.read_text())["threat"]
    assert "array[" not in json.dumps(threat)
    for key in ("lower", "upper", "scale"):
        assert len(threat[key]) == 30 and all(isinstance(v, float) for v in threat[key])
    # the tabular threat model bounds each feature by its domain: the observed range widened by the
    # documented margin (never the sample's extremes alone), and measures eps in stds
    lo, hi = infer_domain(Xte.min(axis=0).astype(np.float64), Xte.max(axis=0).astype(np.float64))
    assert threat["lower"] == pytest.approx(list(lo), abs=1e-5)
    assert threat["upper"] == pytest.approx(list(hi), abs=1e-5)
    assert all(a < b for a, b in zip(threat["lower"], Xte.min(axis=0)))
    assert threat["units"] == "std" and "inferred" in threat["bounds_source"]
    assert threat["mutable"] == 28  # f0, f1 immutable


def test_harden_adversarial_features_and_report_numbers(files, capsys):
    rep = files / "harden-wide.json"
    cols = ",".join(f"f{i}" for i in range(30))
    rc = main(["harden", "adversarial", str(files / "mlp.pt"), "--trust", "--data", str(files / "wide.csv"),
               "--target", "label", "--features", cols, "--eps", "0.1", "--epochs", "1",
               "--out", str(files / "hard-wide.pt"), "--report", str(rep)])
    assert rc == 0, capsys.readouterr().err
    threat = json.loads(rep.read_text())["threat"]
    assert "array[" not in json.dumps(threat) and len(threat["scale"]) == 30
    assert all(isinstance(v, float) and v > 0 for v in threat["scale"])


@pytest.mark.parametrize("cmd", [["attack"], ["harden", "adversarial"]])
def test_a_model_that_cannot_run_on_the_rows_is_one_line_exit_2(files, capsys, cmd):
    """--input-shape that does not fit the network: the first forward pass fails; that is a usage error with
    one line, not exit 70 with TorchScript's interpreter trace."""
    args = [*cmd, str(files / "mlp.pt"), "--trust", "--data", str(files / "test.npz"), "--input-shape", "2,15"]
    if cmd[0] == "harden":
        args += ["--out", str(files / "never.pt")]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cannot run on" in lines[0] and "--input-shape" in lines[0], err
    assert "TorchScript" not in err
    assert not (files / "never.pt").exists()
