"""``harden dp`` on scikit-learn Pipelines (issue 15 D.7): preprocessing steps kept as fitted, the final linear
classifier retrained with DP-SGD, the before/after report, and a clear error for unsupported pipelines."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from modelshield.cli import main
from modelshield.data.dataset import Dataset
from modelshield.errors import DataError
from modelshield.harden.dp import DPLogisticRegression, harden_dp, split_pipeline
from modelshield.models.wrap import wrap_object


@pytest.fixture(scope="module")
def raw_cancer():
    """Unscaled breast-cancer features (a pipeline's scaler has work to do: feature scales span 1e-3..1e3)."""
    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


PIPELINES = {
    "standard+logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    "minmax+sgd-logloss": lambda: make_pipeline(MinMaxScaler(), SGDClassifier(loss="log_loss", random_state=0)),
    "named-steps": lambda: Pipeline([("scale", StandardScaler()), ("minmax", MinMaxScaler()),
                                     ("clf", LogisticRegression(max_iter=2000))]),
    "passthrough": lambda: Pipeline([("skip", "passthrough"), ("scale", StandardScaler()),
                                     ("clf", SGDClassifier(loss="log_loss", random_state=0))]),
}


@pytest.mark.parametrize("kind", list(PIPELINES))
def test_pipeline_keeps_fitted_preprocessing_and_trains_the_final_step_with_dp(raw_cancer, kind):
    Xtr, Xte, ytr, yte = raw_cancer
    pipe = PIPELINES[kind]().fit(Xtr, ytr)
    before = [(n, getattr(t, "__dict__", {}).copy()) for n, t in pipe.steps[:-1]]
    res = harden_dp(wrap_object(pipe), Dataset(X=Xtr, y=ytr), Dataset(X=Xte, y=yte), epsilon=3.0, epochs=20,
                    seed=0, membership=False)
    new = res.model.estimator
    assert isinstance(new, Pipeline) and [n for n, _ in new.steps] == [n for n, _ in pipe.steps
                                                                        if pipe.named_steps[n] != "passthrough"]
    assert isinstance(new.steps[-1][1], DPLogisticRegression)
    assert res.dp.epsilon <= 3.0 + 1e-9
    # the preprocessing is kept as fitted (copies: the original pipeline is untouched), not refitted
    for (name, step), (_, saved) in zip(new.steps[:-1], [b for b in before if b[1]], strict=True):
        orig = pipe.named_steps[name]
        assert step is not orig
        np.testing.assert_array_equal(step.transform(Xte), orig.transform(Xte))
        assert {k: str(v) for k, v in orig.__dict__.items()} == {k: str(v) for k, v in saved.items()}
    # the before/after report: accuracies of both, the DP one still useful
    rows = {r["metric"]: r for r in res.comparison}
    assert set(rows) == {"train_accuracy", "test_accuracy"}
    assert rows["test_accuracy"]["before"] > 0.9 and rows["test_accuracy"]["after"] > 0.8
    assert res.notes and "covers the final classifier's training only" in res.notes[0]
    assert res.to_dict()["notes"] == res.notes
    # the bytes are the fitted pipeline, predicting as the adapter does
    loaded = joblib.load(io.BytesIO(res.model_bytes))
    np.testing.assert_array_equal(loaded.predict(Xte), new.predict(Xte))


def test_a_bare_linear_classifier_has_no_preprocessing_note(breast_cancer, sk_logreg):
    Xtr, _, ytr, _ = breast_cancer
    res = harden_dp(wrap_object(sk_logreg), Dataset(X=Xtr, y=ytr), epsilon=2.0, epochs=2, membership=False)
    assert isinstance(res.model.estimator, DPLogisticRegression) and res.notes == []


UNSUPPORTED_FINAL = [RandomForestClassifier(n_estimators=3, random_state=0), DecisionTreeClassifier(random_state=0),
                     SVC(probability=True, random_state=0)]


@pytest.mark.parametrize("final", UNSUPPORTED_FINAL, ids=lambda e: type(e).__name__)
def test_a_pipeline_ending_in_an_unsupported_step_is_one_clear_error(raw_cancer, final):
    Xtr, _, ytr, _ = raw_cancer
    pipe = make_pipeline(StandardScaler(), final).fit(Xtr[:200], ytr[:200])
    with pytest.raises(DataError) as exc:
        harden_dp(wrap_object(pipe), Dataset(X=Xtr, y=ytr), epsilon=1.0, epochs=1, membership=False)
    msg = str(exc.value)
    assert "\n" not in msg and "Pipeline" in msg and type(final).__name__ in msg and "LogisticRegression" in msg


def test_split_pipeline_refuses_a_non_transformer_step():
    class NoTransform:
        def fit(self, X, y=None):
            return self

    pipe = Pipeline([("odd", StandardScaler()), ("clf", LogisticRegression())])
    pipe.steps[0] = ("odd", NoTransform())  # (Pipeline's own validation would refuse it at fit time)
    with pytest.raises(DataError, match=r"'odd'.*without transform"):
        split_pipeline(pipe)
    with pytest.raises(DataError, match="got RandomForestClassifier"):
        split_pipeline(RandomForestClassifier())


def test_an_unfitted_preprocessing_step_is_a_clear_error(raw_cancer):
    Xtr, _, ytr, _ = raw_cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(Xtr, ytr)
    pipe.steps[0] = ("standardscaler", StandardScaler())  # unfitted
    with pytest.raises(DataError, match="not fitted"):
        harden_dp(wrap_object(pipe), Dataset(X=Xtr, y=ytr), epsilon=1.0, epochs=1, membership=False)


@pytest.mark.parametrize("kind", ["standard+logreg", "minmax+sgd-logloss"])
def test_harden_dp_cli_on_a_pipeline(tmp_path, capsys, raw_cancer, kind):
    Xtr, _, ytr, _ = raw_cancer
    pipe = PIPELINES[kind]().fit(Xtr, ytr)
    model = tmp_path / "pipe.joblib"
    joblib.dump(pipe, model)
    df = pd.DataFrame(Xtr, columns=[f"f{i}" for i in range(Xtr.shape[1])])
    df["label"] = ytr
    data = tmp_path / "train.csv"
    df.to_csv(data, index=False)
    out, js = tmp_path / "dp.joblib", tmp_path / "dp.json"
    rc = main(["harden", "dp", str(model), "--train", str(data), "-t", "label", "-o", str(out), "--epsilon", "2",
               "--epochs", "5", "--trust", "--json", str(js)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "train_accuracy: before" in captured.out and "note:" in captured.out
    assert isinstance(joblib.load(out), Pipeline)
    assert "covers the final classifier" in js.read_text()


def test_harden_dp_cli_refuses_an_unsupported_pipeline_with_one_line(tmp_path, capsys, raw_cancer):
    Xtr, _, ytr, _ = raw_cancer
    model = tmp_path / "pipe.joblib"
    joblib.dump(make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0)).fit(Xtr, ytr), model)
    df = pd.DataFrame(Xtr, columns=[f"f{i}" for i in range(Xtr.shape[1])])
    df["label"] = ytr
    data = tmp_path / "train.csv"
    df.to_csv(data, index=False)
    rc = main(["harden", "dp", str(model), "--train", str(data), "-t", "label", "-o", str(tmp_path / "o.joblib"),
               "--epsilon", "1", "--trust"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and "DecisionTreeClassifier" in err[0]
    assert not (tmp_path / "o.joblib").exists()


@pytest.mark.slow
def test_pipeline_before_after_report_includes_membership_leakage(raw_cancer):
    """The full before/after report (accuracy and membership inference) on a scaler + logistic pipeline."""
    Xtr, Xte, ytr, yte = raw_cancer
    pipe = PIPELINES["standard+logreg"]().fit(Xtr, ytr)
    res = harden_dp(wrap_object(pipe), Dataset(X=Xtr, y=ytr), Dataset(X=Xte, y=yte), epsilon=1.0, epochs=10,
                    seed=0, n_shadows=2)
    rows = {r["metric"]: r for r in res.comparison}
    assert {"train_accuracy", "test_accuracy", "mia_auc", "mia_tpr_at_1pct_fpr"} <= set(rows)
    for name, row in rows.items():
        if name == "mia_tpr_at_0_1pct_fpr":  # fewer than 1,000 non-members: the FPR is not resolved -> None
            assert row["before"] is None and row["after"] is None
        else:
            assert row["before"] is not None and row["after"] is not None
    assert 0.0 <= rows["mia_auc"]["after"] <= 1.0 and res.dp.epsilon <= 1.0 + 1e-9


def test_a_dp_config_and_the_keywords_give_the_same_model(breast_cancer, sk_logreg):
    from modelshield.harden.dp import DPConfig

    Xtr, Xte, ytr, _ = breast_cancer
    cfg = DPConfig(epsilon=2.0, epochs=2, membership=False, seed=3)
    by_cfg = harden_dp(wrap_object(sk_logreg), Dataset(X=Xtr, y=ytr), config=cfg)
    by_kw = harden_dp(wrap_object(sk_logreg), Dataset(X=Xtr, y=ytr), epsilon=2.0, epochs=2, membership=False, seed=3)
    np.testing.assert_array_equal(by_cfg.model.predict_proba(Xte), by_kw.model.predict_proba(Xte))
    assert by_cfg.dp.epsilon == by_kw.dp.epsilon <= 2.0 + 1e-9
    looser = harden_dp(wrap_object(sk_logreg), Dataset(X=Xtr, y=ytr), config=cfg, epsilon=8.0)  # keyword wins
    assert looser.dp.noise_multiplier < by_cfg.dp.noise_multiplier
    with pytest.raises(TypeError, match="epsilon"):
        harden_dp(wrap_object(sk_logreg), Dataset(X=Xtr, y=ytr), epochs=2)
    with pytest.raises(TypeError):
        harden_dp(wrap_object(sk_logreg), Dataset(X=Xtr, y=ytr), config=cfg, epsilons=1.0)
