"""CLI: modelshield fl simulate (engine backend; the Flower backend is tested in tests/federated)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from sklearn.datasets import load_breast_cancer

from modelshield.cli import main

pytest.importorskip("dp_accounting")


@pytest.fixture(scope="module")
def bc_csv(tmp_path_factory):
    p = tmp_path_factory.mktemp("fl") / "bc.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(p, index=False)
    return p


def _run(bc_csv, out, *flags):
    return main(["fl", "simulate", "--data", str(bc_csv), "--target", "target", "--json", str(out), *flags])


@pytest.mark.parametrize(
    ("flags", "needle", "hint"),
    [
        (["--clients", "400", "--partition", "dirichlet:0.05"], "without data", "--partition"),
        (["--clients", "5", "--secagg-group", "6"], "larger than the number of clients", "--secagg-group"),
        (["--dp-noise", "-0.5", "--clip", "1"], "sigma must be >= 0", "--dp-noise"),
        (["--clients", "6", "--aggregator", "krum", "--malicious", "0.34", "--attack", "sign-flip"], "n > 2f + 2",
         "--aggregator"),
        (["--clients", "10", "--aggregator", "bulyan", "--malicious", "0.2", "--attack", "sign-flip"], "n >= 4f + 3",
         "--aggregator"),
        (["--clients", "20", "--secagg-group", "4", "--aggregator", "krum", "--malicious", "0.2"], "n > 2f + 2",
         "--aggregator"),
        (["--secagg-group", "4", "--secagg-dropouts", "2"], "t < k/2", "--secagg-dropouts"),
        (["--secagg-group", "1"], "at least 2 clients", "--secagg-group"),
        (["--dp-noise", "1.0"], "clipping norm", "--clip"),
        (["--attack", "sign-flip"], "needs malicious > 0", "--malicious"),
        (["--malicious", "0.2", "--attack", "nope"], "attack must be", "--attack"),
        (["--aggregator", "mean"], "unknown aggregator", "--aggregator"),
        (["--model", "resnet"], "model must be", "--model"),
        (["--backend", "spark", "--rounds", "1"], "backend must be", "--backend"),
    ],
)
def test_bad_input_exit_2_one_line_before_training(bc_csv, tmp_path, capsys, flags, needle, hint):
    out = tmp_path / "r.json"
    assert _run(bc_csv, out, "--rounds", "2", *flags) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err and err.endswith(hint), err
    assert not out.exists()


def test_unknown_target_exit_2(bc_csv, tmp_path, capsys):
    assert main(["fl", "simulate", "--data", str(bc_csv), "--target", "nope", "--json", str(tmp_path / "r.json")]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("flwr") is not None, reason="flwr is installed")
def test_flower_backend_without_flwr_names_the_extra(bc_csv, tmp_path, capsys):
    assert _run(bc_csv, tmp_path / "r.json", "--backend", "flower", "--rounds", "1") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "modelshield[fl]" in err


def test_json_and_html(bc_csv, tmp_path, capsys):
    out, html = tmp_path / "r.json", tmp_path / "r.html"
    flags = ["--clients", "12", "--rounds", "3", "--secagg-group", "3", "--aggregator", "median", "--dp-noise", "0.8",
             "--clip", "1.0", "--malicious", "0.1", "--attack", "backdoor", "--html", str(html)]
    assert _run(bc_csv, out, *flags) == 0
    rep = json.loads(out.read_text())
    assert [r["round"] for r in rep["rounds"]] == [1, 2, 3]
    assert set(rep["rounds"][0]) >= {"round", "accuracy", "backdoor_success", "failures"}
    assert all(r["failures"] == 0 and r["groups"] == 4 for r in rep["rounds"])
    assert rep["final_accuracy"] == rep["rounds"][-1]["accuracy"]
    assert rep["epsilon"] > 0 and rep["privacy"]["delta"] == 1e-5 and "RDP" in rep["privacy"]["accountant"]
    cfg = rep["configuration"]
    assert (cfg["clients"], cfg["group_size"], cfg["n_malicious"], cfg["secure_aggregation"]) == (12, 3, 1, True)
    words = " ".join(rep["threat_model"])
    assert "honest-but-curious" in words and "malicious" in words and "differential privacy" in words
    page = html.read_text()
    assert page.count("<svg") == 2 and "Backdoor success per round" in page and "honest-but-curious" in page
    assert "final accuracy" in capsys.readouterr().out


def test_no_dp_epsilon_is_null(bc_csv, tmp_path):
    out = tmp_path / "r.json"
    assert _run(bc_csv, out, "--clients", "4", "--rounds", "2") == 0
    rep = json.loads(out.read_text())
    assert rep["epsilon"] is None and rep["privacy"]["accountant"] is None
    assert "sees every client's update" in " ".join(rep["threat_model"])


def test_sign_flip_breaks_fedavg_median_and_trimmed_mean_hold(bc_csv, tmp_path):
    def acc(*flags):
        out = tmp_path / "r.json"
        assert _run(bc_csv, out, "--force", "--clients", "10", "--rounds", "10", *flags) == 0
        return json.loads(out.read_text())["final_accuracy"]

    clean = acc()
    attack = ("--malicious", "0.2", "--attack", "sign-flip")
    assert clean > 0.9
    assert acc(*attack) < clean - 0.3
    for agg in ("median", "trimmed-mean:0.2"):
        assert acc(*attack, "--aggregator", agg) >= clean - 0.02, agg
