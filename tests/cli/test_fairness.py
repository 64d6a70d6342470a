"""``modelshield harden fairness`` and ``modelshield fairness metrics|proxies`` from the command line."""

from __future__ import annotations

import importlib.util
import json

import joblib
import numpy as np
import pytest

from modelshield.cli import main

pytest.importorskip("fairlearn")

FEATURES = "x0,x1,x2,x3,group,proxy"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from modelshield.data.real import make_planted_bias

    d = tmp_path_factory.mktemp("fair")
    ds = make_planted_bias(3000, bias=0.5, seed=0)
    df = pd.DataFrame(ds.X, columns=ds.feature_names)
    df["label"] = ds.y
    df["grp"] = ds.sensitive["group"]
    df["region"] = ds.sensitive["region"]
    df.to_csv(d / "train.csv", index=False)
    clf = LogisticRegression(max_iter=1000).fit(ds.X, ds.y)
    joblib.dump(clf, d / "model.joblib")
    df["pred"] = clf.predict(ds.X)
    df.to_csv(d / "preds.csv", index=False)
    return d, ds, clf


def test_harden_fairness_writes_models_and_before_after(files, tmp_path, capsys):
    d, _, _ = files
    out = tmp_path / "fair"
    args = ["harden", "fairness", str(d / "model.joblib"), "--data", str(d / "train.csv"), "--target", "label",
            "--sensitive", "grp", "--features", FEATURES, "--output", str(out), "--trust", "--max-iter", "15"]
    rc = main(args)
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "before/after" in text and "exponentiated_gradient" in text
    report = json.loads((out / "report.json").read_text())
    rows = {r["method"]: r for r in report["table"]}
    assert set(rows) == {"original", "reweighing", "exponentiated_gradient", "threshold_optimizer"}
    assert rows["exponentiated_gradient"]["demographic_parity_difference"] < \
        0.5 * rows["original"]["demographic_parity_difference"]
    assert (out / "reweighing.joblib").is_file() and (out / "exponentiated_gradient.joblib").is_file()
    # grp is not a model input, so the threshold optimizer is evaluated but not saved
    assert not (out / "threshold_optimizer.joblib").exists() and rows["threshold_optimizer"]["saved"] is False
    model = joblib.load(out / "exponentiated_gradient.joblib")
    assert model.predict(np.zeros((2, 6))).shape == (2,)
    # never clobbers without --force
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--force", "--method", "reweighing"]) == 0


@pytest.mark.parametrize(("extra", "message"), [
    (["--constraint", "parity"], "unknown constraint 'parity'; choose demographic_parity or equalized_odds; "
                                 "check --constraint"),
    (["--method", "magic"], "unknown mitigation method 'magic'"),
    (["--method", "magic"], "check --method"),
    (["--sensitive", "ethnicity"], "'ethnicity' is not in the data"),
    (["--pos-label", "yes"], "favourable class 'yes' is not one of the model's classes [0, 1]; check --pos-label"),
])
def test_harden_fairness_bad_input_is_one_line_exit_2(files, tmp_path, capsys, extra, message):
    d, _, _ = files
    base = ["harden", "fairness", str(d / "model.joblib"), "--data", str(d / "train.csv"), "--target", "label",
            "--features", FEATURES, "--output", str(tmp_path / "o"), "--trust"]
    if "--sensitive" not in extra:
        base += ["--sensitive", "grp"]
    rc = main(base + extra)
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_fairness_metrics_matches_fairlearn(files, tmp_path, capsys):
    fm = pytest.importorskip("fairlearn.metrics")
    d, ds, clf = files
    out = tmp_path / "m.json"
    rc = main(["fairness", "metrics", str(d / "preds.csv"), "--target", "label", "--prediction", "pred",
               "-s", "grp", "-s", "region", "--bootstrap", "50", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    rows = {(r["attribute"], r["metric"]): r for r in doc["disparities"]}
    ref = fm.demographic_parity_difference(ds.y, clf.predict(ds.X), sensitive_features=ds.sensitive["group"])
    assert rows[("grp", "demographic_parity_difference")]["value"] == pytest.approx(ref, abs=1e-9)
    assert ("grp&region", "equalized_odds_difference") in rows
    assert rows[("grp", "demographic_parity_difference")]["lo"] is not None


def test_fairness_proxies_lists_the_planted_proxy(files, capsys):
    d, _, _ = files
    rc = main(["fairness", "proxies", str(d / "train.csv"), "-s", "grp", "--target", "label",
               "--features", FEATURES, "--top", "2"])
    text = capsys.readouterr().out
    assert rc == 0 and "proxies for grp" in text and "proxy" in text


@pytest.mark.skipif(importlib.util.find_spec("modelshield.report.write") is None, reason="report writers not built")
def test_audit_fairness_json_names_metrics_with_intervals(files, tmp_path, capsys):
    d, _, _ = files
    js = tmp_path / "a.json"
    rc = main(["audit", str(d / "model.joblib"), "--trust", "--data", str(d / "train.csv"), "--target", "label",
               "--sensitive", "grp", "--features", FEATURES, "--checks", "fairness", "--json", str(js),
               "--out", str(tmp_path / "a.html"), "--no-progress", "--quick"])
    capsys.readouterr()
    assert rc == 1  # the planted bias fails the default gate
    res = json.loads(js.read_text())["runs"][0]["results"][0]
    assert res["check"] == "fairness"
    assert res["metrics"]["grp.demographic_parity_difference"] > 0.2
    row = next(r for r in res["tables"]["fairness.disparities"] if r["metric"] == "equalized_odds_difference")
    assert row["lo"] <= row["value"] <= row["hi"]


def test_metrics_unknown_prediction_column_names_the_flag(tmp_path, capsys):
    import pandas as pd

    from modelshield.cli import main

    p = tmp_path / "dec.csv"
    pd.DataFrame({"y": [0, 1, 1, 0], "pred": [0, 1, 0, 0], "sex": ["F", "M", "F", "M"]}).to_csv(p, index=False)
    rc = main(["fairness", "metrics", str(p), "--target", "y", "--prediction", "nope", "--sensitive", "sex"])
    err = capsys.readouterr().err
    assert rc == 2 and "prediction column 'nope' is not in the data" in err and "--prediction" in err
