"""The ``poisoning`` audit check, end to end through ``modelshield audit`` (and bad input: one line, exit 2)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from modelshield.checks.base import AuditContext
from modelshield.checks.poisoning import PoisoningCheck
from modelshield.cli import main
from modelshield.data.dataset import Dataset
from modelshield.findings import CheckStatus
from modelshield.models.sklearn import SklearnModel


def _write(sc, tmp_path, scripted=True):
    cols = [f"f{i}" for i in range(sc.Xtr.shape[1])]
    tr, te, mp = tmp_path / "train.csv", tmp_path / "test.csv", tmp_path / "model.pt"
    pd.DataFrame(sc.Xtr, columns=cols).assign(label=sc.ytr).to_csv(tr, index=False)
    pd.DataFrame(sc.Xte, columns=cols).assign(label=sc.yte).to_csv(te, index=False)
    torch.jit.script(sc.model.module).save(str(mp))
    return mp, tr, te


def _check(report):
    for run in report["runs"]:
        for c in run["results"]:
            if c["check"] == "poisoning":
                return c
    raise AssertionError("no poisoning check in the report")


def _audit(mp, tr, te, tmp_path, *extra):
    out = tmp_path / "r.json"
    rc = main(["audit", str(mp), "--data", str(te), "--train", str(tr), "--target", "label", "--checks",
               "poisoning", "--json", str(out), "-o", str(tmp_path / "r.html"), *extra])
    return rc, (json.loads(out.read_text()) if out.exists() else None)


def test_audit_reports_flagged_rows_detectors_and_figures(get_scenario, tmp_path):
    sc = get_scenario("breast_cancer", 0, True)
    mp, tr, te = _write(sc, tmp_path)
    rc, rep = _audit(mp, tr, te, tmp_path)
    assert rc == 1  # a high finding fails the default gate
    c = _check(rep)
    assert c["metrics"]["backdoor_suspected"] is True and c["metrics"]["white_box"] is True
    det = {d["detector"]: d for d in c["tables"]["backdoor_detectors"]}
    assert set(det) == {"activation clustering", "spectral signatures", "neural cleanse", "STRIP"}
    assert all("score" in d and d["verdict"] in ("poisoned", "clean") for n, d in det.items() if n != "neural cleanse")
    assert det["neural cleanse"]["verdict"] == "not run" and "at least 3 classes" in det["neural cleanse"]["note"]
    assert det["activation clustering"]["verdict"] == "poisoned"
    ac = next(f for f in c["findings"] if f["rule_id"] == "poisoning.activation-clustering")
    named = set(ac["evidence"]["train_rows"])
    assert named and all(isinstance(i, int) for i in named)
    assert len(named & set(sc.poisoned_rows.tolist())) / len(named) >= 0.8
    titles = " ".join(f["title"] for f in c["figures"])
    assert "Activation clusters" in titles and "STRIP" in titles
    assert "Activation clusters" in (tmp_path / "r.html").read_text()
    # rows are named by index: no training value appears in the findings
    text = json.dumps(c["findings"])
    assert f"{sc.Xtr[int(next(iter(named))), 0]:.6f}" not in text


def test_audit_of_clean_control_has_no_backdoor_finding(get_scenario, tmp_path):
    sc = get_scenario("breast_cancer", 0, False)
    mp, tr, te = _write(sc, tmp_path)
    rc, rep = _audit(mp, tr, te, tmp_path)
    c = _check(rep)
    assert c["metrics"]["backdoor_suspected"] is False
    assert not [f for f in c["findings"] if f["severity"] in ("high", "critical")]
    assert rc == 0


@pytest.mark.parametrize("mutate,needle", [
    ("no_label", "label"),
    ("fraction", "above 0 and below 0.5"),
    ("method", "label_method"),
    ("wide", "feature"),
])
def test_bad_input_is_one_line_exit_2(get_scenario, tmp_path, capsys, mutate, needle):
    sc = get_scenario("breast_cancer", 0, False)
    mp, tr, te = _write(sc, tmp_path)
    extra: list[str] = []
    if mutate == "no_label":
        pd.read_csv(tr).drop(columns=["label"]).to_csv(tr, index=False)
    elif mutate == "fraction":
        extra = ["-O", "poisoning.poisoned_fraction=0.7"]
    elif mutate == "method":
        extra = ["-O", "poisoning.label_method=vote"]
    else:
        for p in (tr, te):
            pd.read_csv(p).assign(extra1=1.0, extra2=2.0).to_csv(p, index=False)
    capsys.readouterr()
    rc, _ = _audit(mp, tr, te, tmp_path, *extra)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err


def test_black_box_model_falls_back_to_strip_and_says_why(get_scenario):
    from sklearn.linear_model import LogisticRegression

    sc = get_scenario("breast_cancer", 0, False)
    model = SklearnModel(LogisticRegression(max_iter=300).fit(sc.Xtr, sc.ytr))
    ctx = AuditContext(model=model, data=Dataset(X=sc.Xte, y=sc.yte), train=Dataset(X=sc.Xtr, y=sc.ytr))
    res = PoisoningCheck().run(ctx)
    assert res.status in (CheckStatus.PASSED, CheckStatus.FINDINGS)
    assert res.metrics["white_box"] is False
    assert "falling back to STRIP" in res.summary and "exposes no layer activations" in res.summary
    det = {d["detector"]: d for d in res.tables["backdoor_detectors"]}
    assert det["activation clustering"]["verdict"] == "not run" and det["STRIP"]["verdict"] in ("clean", "poisoned")


def test_training_data_without_labels_in_process_is_an_option_error(get_scenario):
    from modelshield.errors import OptionError

    sc = get_scenario("breast_cancer", 0, False)
    ctx = AuditContext(model=sc.model, data=Dataset(X=sc.Xte, y=sc.yte), train=Dataset(X=sc.Xtr))
    with pytest.raises(OptionError, match=r"^the poisoning check needs labelled training data$") as info:
        PoisoningCheck().run(ctx)
    assert info.value.cli_hint == "give the label column with --target (it must be in --train too)"


def test_label_flipping_is_reported_by_index_in_the_check(get_scenario):
    from modelshield.poisoning.planted import flip_labels

    sc = get_scenario("breast_cancer", 0, False)
    pl = flip_labels(sc.ytr, fraction=0.1, seed=0)
    ctx = AuditContext(model=sc.model, data=Dataset(X=sc.Xte, y=sc.yte), train=Dataset(X=sc.Xtr, y=pl.y))
    res = PoisoningCheck().run(ctx)
    rows = {r["train_row"] for r in res.tables["flagged_training_rows"] if r["reason"] == "label issue"}
    truth = set(pl.rows.tolist())
    assert len(rows & truth) / len(truth) >= 0.8 and len(rows & truth) / len(rows) >= 0.5
    assert any(f.rule_id == "poisoning.label-issues" for f in res.findings)
