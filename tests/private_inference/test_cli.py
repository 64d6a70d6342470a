"""The real commands: plan, he-infer, mpc-infer; bad input is one line and exit 2, tampering exit 3."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytest.importorskip("tenseal")

from modelshield.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory, raw_cancer):
    import joblib
    import torch

    pipe, _, Xte, _, yte = raw_cancer
    d = tmp_path_factory.mktemp("pi")
    joblib.dump(pipe, d / "lr.joblib")
    df = pd.DataFrame(Xte[:40], columns=[f"f{i}" for i in range(30)])
    df["label"] = yte[:40]
    df.to_csv(d / "test.csv", index=False)
    wide = df.copy()
    wide["extra"] = 1.0
    wide.to_csv(d / "wide.csv", index=False)
    bad = torch.nn.Sequential(torch.nn.Linear(30, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
    torch.jit.save(torch.jit.script(bad), d / "ln.pt")
    return d


def test_plan_he_json(files, capsys):
    out = files / "plan.json"
    rc = main(["private", "plan", str(files / "lr.joblib"), "--trust", "--technique", "he", "--data",
               str(files / "test.csv"), "--target", "label", "--json", str(out)])
    assert rc == 0
    p = json.loads(out.read_text())
    q = p["parameters"]["batched"]
    assert p["feasible"] and q["total_bits"] <= q["max_bits_128"] and p["multiplicative_depth"]["batched"] == 1
    assert p["estimate"]["batched"]["ms_per_sample"] > 0


def test_plan_unsupported_one_line_exit_2(files, capsys):
    rc = main(["private", "plan", str(files / "ln.pt"), "--trust", "--technique", "he"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error:") and "LayerNorm" in err and "\n" not in err


@pytest.mark.parametrize("cmd", ["plan", "he-infer", "mpc-infer"])
def test_wider_data_exit_2(files, capsys, cmd):
    rc = main(["private", cmd, str(files / "lr.joblib"), "--trust", "--data", str(files / "wide.csv"), "--target", "label"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "31 features" in err and "\n" not in err


def test_he_infer_json_fields(files):
    out = files / "he.json"
    rc = main(["private", "he-infer", str(files / "lr.joblib"), "--trust", "--data", str(files / "test.csv"),
               "--target", "label", "--json", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    for k in ("accuracy", "plaintext_accuracy", "agreement", "max_logit_error", "ms_per_sample", "parameters"):
        assert k in r
    assert r["agreement"] == 1.0 and r["accuracy"] == r["plaintext_accuracy"]


def test_he_infer_tampered_exit_3(files, capsys):
    rc = main(["private", "he-infer", str(files / "lr.joblib"), "--trust", "--data", str(files / "test.csv"),
               "--target", "label", "--tamper-self-test"])
    err = capsys.readouterr().err.strip()
    assert rc == 3 and "authentication" in err


def test_bad_technique_and_parties_exit_2(files, capsys):
    assert main(["private", "plan", str(files / "lr.joblib"), "--trust", "--technique", "fhe"]) == 2
    assert main(["private", "plan", str(files / "lr.joblib"), "--trust", "--technique", "mpc", "--parties", "5"]) == 2


def test_mpc_two_parties_refused_one_line_exit_2(files, capsys):
    for cmd in (["mpc-infer", "--data", str(files / "test.csv"), "--target", "label"], ["plan", "--technique", "mpc"]):
        rc = main(["private", cmd[0], str(files / "lr.joblib"), "--trust", *cmd[1:], "--parties", "2"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "\n" not in err and "threshold" in err and "not hidden" in err, (cmd, err)
        assert "--allow-no-secrecy" in err


def test_plan_mpc_two_parties_opt_in_json(files, capsys):
    out = files / "plan2.json"
    rc = main(["private", "plan", str(files / "lr.joblib"), "--trust", "--technique", "mpc", "--parties", "2",
               "--allow-no-secrecy", "--json", str(out), "--force"])
    assert rc == 0 and "threshold: 0, inputs NOT hidden" in capsys.readouterr().out
    p = json.loads(out.read_text())
    assert p["threshold"] == 0 and p["threat_model"]["inputs_hidden"] is False


@pytest.mark.parametrize("parties", [3, 2])
def test_mpc_infer_json_threshold_and_threat_model(files, capsys, parties):
    pytest.importorskip("mpyc")
    out = files / f"mpc{parties}.json"
    opt_in = ["--allow-no-secrecy"] if parties == 2 else []
    rc = main(["private", "mpc-infer", str(files / "lr.joblib"), "--trust", "--data", str(files / "test.csv"),
               "--target", "label", "--max-samples", "4", "--parties", str(parties), *opt_in, "--json", str(out),
               "--force"])
    printed = capsys.readouterr().out
    assert rc == 0
    r = json.loads(out.read_text())
    t = (parties - 1) // 2
    assert r["threshold"] == t and r["threat_model"]["threshold"] == t
    assert r["threat_model"]["adversary"].startswith("semi-honest")
    assert r["threat_model"]["inputs_hidden"] is (parties == 3) and r["agreement"] == 1.0
    assert f"threshold: {t}, " in printed and ("NOT hidden" in printed) is (parties == 2)
