"""The main job: ``modelshield audit --demo`` writes HTML/JSON/SARIF reports with real content."""

from __future__ import annotations

import json

import pytest

from modelshield.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    rc = main(["audit", "--demo", "--out", str(out / "modelshield-report.html"), "--no-progress"])
    assert rc == 0
    return out


def _runs(demo):
    doc = json.loads((demo / "modelshield-report.json").read_text())
    return doc, {r["label"]: r for r in doc["runs"]}


def _result(run, check):
    return next(r for r in run["results"] if r["check"] == check)


def test_demo_writes_three_reports(demo):
    for suffix in ("html", "json", "sarif"):
        assert (demo / f"modelshield-report.{suffix}").stat().st_size > 1000
    sarif = json.loads((demo / "modelshield-report.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]


def test_demo_audits_sklearn_and_torch_models_with_every_check(demo):
    _doc, runs = _runs(demo)
    assert {"adult-income-hgb", "cancer-mlp-overfit", "cancer-mlp-dp", "downloaded-artifacts"} <= set(runs)
    adult = runs["adult-income-hgb"]
    assert adult["model"]["framework"] == "sklearn"
    for check in ("baseline", "artifact", "robustness", "privacy", "fairness", "theft"):
        assert _result(adult, check)["status"] in ("passed", "findings"), check
    mlp = runs["cancer-mlp-overfit"]
    assert mlp["model"]["framework"] == "pytorch"
    for check in ("baseline", "robustness", "privacy", "theft"):
        assert _result(mlp, check)["status"] in ("passed", "findings"), check
    assert _result(adult, "baseline")["metrics"]["accuracy"] > 0.8
    assert _result(mlp, "baseline")["metrics"]["accuracy"] > 0.75  # 10% label noise on purpose


def test_demo_scanner_catches_the_planted_payload(demo):
    _, runs = _runs(demo)
    art = _result(runs["downloaded-artifacts"], "artifact")
    crit = [f for f in art["findings"] if f["severity"] == "critical"]
    assert crit and any("downloaded-checkpoint.bin" in (f["location"] or "") for f in crit)
    assert not any("tokenizer-config.pkl" in (f["location"] or "") and f["severity"] in ("critical", "high")
                   for f in art["findings"])
    assert not runs["downloaded-artifacts"]["passed"]


def test_demo_dp_reduces_membership_leakage(demo):
    _, runs = _runs(demo)
    overfit = _result(runs["cancer-mlp-overfit"], "privacy")["metrics"]
    dp = _result(runs["cancer-mlp-dp"], "privacy")["metrics"]
    assert overfit["auc"] > dp["auc"]


def test_demo_html_has_sections_and_plots(demo):
    html = (demo / "modelshield-report.html").read_text()
    for title in ("Executive summary", "adult-income-hgb", "cancer-mlp-dp"):
        assert title in html
    assert html.count("<svg") >= 6
