"""Bias mitigation on planted-bias data: each method must reduce the planted gap by a measured amount."""

from __future__ import annotations

import io
import json
import sys

import joblib
import numpy as np
import pytest

from modelshield.errors import DataError, MissingExtraError, OutputError, UserError
from modelshield.harden.fairness import MitigatedClassifier, mitigate, reweighing_weights

pytest.importorskip("fairlearn")


@pytest.fixture(scope="module")
def planted_setup():
    from sklearn.linear_model import LogisticRegression

    from modelshield.data.real import make_planted_bias

    ds = make_planted_bias(5000, bias=0.5, seed=0)
    train, test = ds.split(test_size=0.3, seed=0)
    clf = LogisticRegression(max_iter=1000).fit(train.X, train.y)
    return train, test, clf


@pytest.fixture(scope="module")
def dp_report(planted_setup):
    train, test, clf = planted_setup
    return mitigate(clf, train, sensitive=["group"], constraint="demographic_parity", eval_data=test,
                    max_iter=30, seed=0)


def test_reweighing_weights_hand_values_and_independence():
    y = np.array([1, 1, 0, 0])
    g = np.array(["a", "a", "a", "b"])
    # P(a)=3/4, P(y=1)=1/2, P(a,1)=1/2 -> 0.75; P(a,0)=1/4 -> 1.5; P(b,0)=1/4, P(b)=1/4 -> 0.5
    np.testing.assert_allclose(reweighing_weights(y, g), [0.75, 0.75, 1.5, 0.5])
    rng = np.random.default_rng(0)
    g = rng.integers(0, 3, 5000)
    y = (rng.random(5000) < np.array([0.2, 0.5, 0.7])[g]).astype(int)
    w = reweighing_weights(y, g)
    rates = [np.average(y[g == k], weights=w[g == k]) for k in range(3)]
    np.testing.assert_allclose(rates, y.mean(), atol=1e-12)  # weighted label rate is equal across groups
    assert w.mean() == pytest.approx(1.0)


def test_every_method_reduces_the_planted_gap(dp_report):
    before = dp_report.before["demographic_parity_difference"]
    assert before > 0.2  # the planted bias is learned
    got = {o.method: o.metrics for o in dp_report.outcomes}
    assert set(got) == {"reweighing", "exponentiated_gradient", "threshold_optimizer"}
    # measured on this seed: 0.237 -> reweighing 0.087, exponentiated gradient 0.029, threshold optimizer 0.040
    assert got["reweighing"]["demographic_parity_difference"] < 0.7 * before
    assert got["exponentiated_gradient"]["demographic_parity_difference"] < 0.4 * before
    assert got["threshold_optimizer"]["demographic_parity_difference"] < 0.4 * before
    for m in got.values():
        assert m["accuracy"] > dp_report.before["accuracy"] - 0.08  # the price in accuracy is bounded
    rows = dp_report.table()
    assert rows[0]["method"] == "original"
    eg = next(r for r in rows if r["method"] == "exponentiated_gradient")
    assert eg["delta_demographic_parity_difference"] == pytest.approx(
        got["exponentiated_gradient"]["demographic_parity_difference"] - before)


def test_equalized_odds_constraint_reduces_equalized_odds(planted_setup):
    train, test, clf = planted_setup
    rep = mitigate(clf, train, sensitive=["group"], constraint="equalized_odds", eval_data=test,
                   methods=["threshold_optimizer"], seed=0)
    before = rep.before["equalized_odds_difference"]
    after = rep.outcome("threshold_optimizer").metrics["equalized_odds_difference"]
    assert after < 0.5 * before


def test_saved_models_round_trip_and_audit_fairer(dp_report, planted_setup):
    from modelshield.runner import audit

    _, test, _ = planted_setup
    for o in dp_report.outcomes:
        if o.model is None:
            continue
        buf = io.BytesIO()
        joblib.dump(o.model, buf)
        buf.seek(0)
        loaded = joblib.load(buf)
        np.testing.assert_array_equal(loaded.predict(test.X), o.model.predict(test.X))
    eg = dp_report.outcome("exponentiated_gradient").model
    assert isinstance(eg, MitigatedClassifier)
    # decisions are per row, whatever the batch
    np.testing.assert_array_equal(eg.predict(test.X[:50]), eg.predict(test.X)[:50])
    np.testing.assert_array_equal(eg.predict(test.X[::-1])[::-1], eg.predict(test.X))
    rep = audit(eg, test, checks=["fairness"], quick=True, options={"fairness": {"proxies": False}})
    r = rep.runs[0].result("fairness")
    assert r.metrics["group.demographic_parity_difference"] == pytest.approx(
        dp_report.outcome("exponentiated_gradient").metrics["demographic_parity_difference"], abs=1e-12)


def test_threshold_optimizer_saved_when_attribute_is_an_input(planted_setup):
    import dataclasses

    train, test, clf = planted_setup
    # "group" is both a feature (column 4) and the sensitive column: the thresholds can travel with the model
    codes = {"a": 0.0, "b": 1.0}
    assert all(codes[s] == x for s, x in zip(train.sensitive["group"][:20], train.X[:20, 4]))
    rep = mitigate(clf, train, sensitive=["group"], methods=["threshold_optimizer"], eval_data=test)
    assert rep.outcome("threshold_optimizer").model is not None
    # renamed sensitive column that is not an input: evaluated, not saved
    renamed = dataclasses.replace(train, sensitive={"grp": train.sensitive["group"]})
    test2 = dataclasses.replace(test, sensitive={"grp": test.sensitive["group"]})
    rep2 = mitigate(clf, renamed, sensitive=["grp"], methods=["threshold_optimizer"], eval_data=test2)
    o = rep2.outcome("threshold_optimizer")
    assert o.model is None and "not saved" in o.note
    assert o.metrics["demographic_parity_difference"] < 0.5 * rep2.before["demographic_parity_difference"]


def test_bad_input(planted_setup):
    import dataclasses

    train, _, clf = planted_setup
    with pytest.raises(UserError, match="constraint"):
        mitigate(clf, train, constraint="parity")
    with pytest.raises(UserError, match="method"):
        mitigate(clf, train, methods=["magic"])
    with pytest.raises(DataError, match="not in the data"):
        mitigate(clf, train, sensitive=["race"])
    with pytest.raises(DataError, match="labels"):
        mitigate(clf, dataclasses.replace(train, y=None))
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from modelshield.data.dataset import Dataset

    X, y = load_iris(return_X_y=True)
    iris = Dataset(X=X, y=y, sensitive={"s": np.where(X[:, 0] > 5.8, "l", "s")})
    with pytest.raises(DataError, match="binary"):
        mitigate(LogisticRegression(max_iter=300).fit(X, y), iris)


def test_missing_fairlearn_names_the_extra(planted_setup, monkeypatch):
    train, _, clf = planted_setup
    monkeypatch.setitem(sys.modules, "fairlearn", None)
    with pytest.raises(MissingExtraError, match=r"modelshield\[fairness\]"):
        mitigate(clf, train, sensitive=["group"])


@pytest.mark.parametrize(("kw", "msg"), [({"eps": 0.0}, "eps"), ({"eps": -1.0}, "eps"), ({"eps": float("nan")}, "eps"),
                                         ({"max_iter": 0}, "max_iter")])
def test_bad_exponentiated_gradient_settings_are_refused_up_front(planted_setup, kw, msg):
    train, test, clf = planted_setup
    with pytest.raises(UserError, match=msg):
        mitigate(clf, train, sensitive=["group"], eval_data=test, **kw)


def test_parse_methods_and_resolve_pos_label():
    from types import SimpleNamespace

    from modelshield.errors import UserError
    from modelshield.harden.fairness import METHODS, parse_methods, resolve_pos_label

    assert parse_methods([]) == parse_methods(["all"]) == list(METHODS)
    assert parse_methods(["EG", "reweigh", "exponentiated-gradient"]) == ["exponentiated_gradient", "reweighing"]
    with pytest.raises(UserError, match=r"^unknown --method 'magic'; choose from: "):
        parse_methods(["magic"], what="--method")
    model = SimpleNamespace(classes=np.array([0, 1]))
    assert resolve_pos_label(model, None) is None and resolve_pos_label(model, "1") == 1
    with pytest.raises(UserError, match=r"positive label 'yes' is not one of the model's classes \[0, 1\]"):
        resolve_pos_label(model, "yes")


# --- mitigate_to_folder: the workflow of `harden fairness`, without the CLI ------------------------------------

@pytest.fixture(scope="module")
def planted_files(tmp_path_factory):
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from modelshield.data.real import make_planted_bias

    d = tmp_path_factory.mktemp("mitigate")
    ds = make_planted_bias(1500, bias=0.5, seed=1)
    df = pd.DataFrame(ds.X, columns=ds.feature_names)
    df["label"], df["grp"] = ds.y, ds.sensitive["group"]
    df.to_csv(d / "train.csv", index=False)
    joblib.dump(LogisticRegression(max_iter=500).fit(ds.X, ds.y), d / "model.joblib")
    return d, list(ds.feature_names)


def test_mitigate_to_folder_writes_models_and_report(planted_files, tmp_path):
    from modelshield.harden.fairness import mitigate_to_folder
    from modelshield.protect.loader import load_model

    d, feats = planted_files
    lines: list[str] = []
    saved = mitigate_to_folder(d / "model.joblib", d / "train.csv", tmp_path / "out", sensitive=["grp"], target="label",
                               features=feats, methods=["reweigh", "thresholds"], max_iter=5,
                               load=lambda src: load_model(src, trust=True), note=lines.append)
    assert lines == ["mitigating for grp under demographic_parity: reweighing, threshold_optimizer"]
    assert [o.method for o in saved.report.outcomes] == ["reweighing", "threshold_optimizer"]
    assert set(saved.files) == {"reweighing"}  # grp is not a model input: the threshold optimizer is not saved
    assert saved.files["reweighing"] == tmp_path / "out" / "reweighing.joblib" and saved.files["reweighing"].is_file()
    on_disk = json.loads(saved.report_path.read_text())
    assert on_disk == json.loads(json.dumps(saved.document, default=str))
    assert on_disk["files"] == {"reweighing": str(tmp_path / "out" / "reweighing.joblib")}
    assert [r["method"] for r in on_disk["table"]] == ["original", "reweighing", "threshold_optimizer"]
    with pytest.raises(OutputError, match="already exists"):  # never into an existing folder without force
        mitigate_to_folder(d / "model.joblib", d / "train.csv", tmp_path / "out", sensitive=["grp"], target="label")


@pytest.mark.parametrize(("kwargs", "error", "message", "hint"), [
    ({"sensitive": []}, DataError, "at least one sensitive column", "--sensitive"),
    ({"constraint": "parity"}, UserError, "unknown constraint 'parity'", "--constraint"),
    ({"methods": ["magic"]}, UserError, "unknown mitigation method 'magic'", "--method"),
    ({"target": None}, DataError, "mitigation needs labels", "--target"),
    ({"pos_label": "yes"}, UserError, r"favourable class 'yes' is not one of the model's classes \[0, 1\]",
     "--pos-label"),
])
def test_mitigate_to_folder_refuses_bad_input_before_writing(planted_files, tmp_path, kwargs, error, message, hint):
    from modelshield.harden.fairness import mitigate_to_folder
    from modelshield.protect.loader import load_model

    d, feats = planted_files
    args = {"sensitive": ["grp"], "target": "label", "features": feats} | kwargs
    with pytest.raises(error, match=message) as ei:
        mitigate_to_folder(d / "model.joblib", d / "train.csv", tmp_path / "out", **args,
                           load=lambda src: load_model(src, trust=True))
    assert "--" not in str(ei.value) and hint in (ei.value.cli_hint or "")
    assert not (tmp_path / "out").exists()


def test_mitigate_to_folder_checks_the_output_folder_before_reading(planted_files, tmp_path):
    from modelshield.harden.fairness import mitigate_to_folder

    d, _ = planted_files
    (tmp_path / "file").write_text("x")
    for out, message in ((tmp_path / "file", "is a file"), (tmp_path / "no" / "out", "does not exist")):
        with pytest.raises(OutputError, match=message):  # no model or data is read: missing ones are not reported
            mitigate_to_folder(d / "missing.joblib", d / "missing.csv", out, sensitive=["grp"])
