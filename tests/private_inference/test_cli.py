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
