"""The ``modelshield attack`` workflow as library calls (:mod:`modelshield.attacks.recipes`), and the
adversarial-training config's early checks, without the CLI."""

from __future__ import annotations

import io

import numpy as np
import pytest

from modelshield.attacks.recipes import (
    ATTACK_NAMES,
    check_attack_options,
    check_model_runs,
    load_attack_data,
    run_attack,
)
from modelshield.data.dataset import Dataset
from modelshield.errors import DataError, OptionError, UserError
from modelshield.harden.adversarial import AdversarialTrainingConfig
from modelshield.models.callable import CallableModel


@pytest.mark.parametrize("kwargs,match,hint", [
    ({"attack": "deepfool"}, "unknown attack 'deepfool'; expected auto or one of: fgsm, pgd", "fix --attack"),
    ({"max_samples": 0}, "at least one sample", "--max-samples must be >= 1"),
    ({"bounds": "1,0"}, "bad bounds '1,0'", "fix --bounds"),
    ({"bounds": "zero,one"}, "bad bounds", "fix --bounds"),
])
def test_check_attack_options_refuses_with_neutral_messages(kwargs, match, hint):
    with pytest.raises(UserError, match=match) as info:
        check_attack_options(**kwargs)
    assert "--" not in str(info.value) and info.value.cli_hint == hint


def test_check_attack_options_accepts():
    for name in ("auto", *ATTACK_NAMES):
        check_attack_options(name, "0,1", 1)
    check_attack_options(bounds=[0, 255])


def test_load_attack_data(tmp_path):
    import pandas as pd

    pd.DataFrame({"a": [0.1, 0.2, 0.3], "b": [1.0, 2.0, 3.0], "c": [5, 6, 7], "label": [0, 1, 0]}).to_csv(
        tmp_path / "d.csv", index=False)
    ds = load_attack_data(tmp_path / "d.csv", target="label", features=["a", "b"], immutable=["b"])
    assert ds.feature_names == ["a", "b"] and list(ds.y) == [0, 1, 0] and ds.X.shape == (3, 2)
    assert list(ds.immutable) == ["b"]
    with pytest.raises(UserError, match=r"d\.csv: no labels$") as info:
        load_attack_data(tmp_path / "d.csv")
    assert info.value.cli_hint == "name the label column with --target"
    assert load_attack_data(tmp_path / "d.csv", labelled=False).y is None


def test_check_model_runs(cancer_test, forest):
    ds, _, _ = cancer_test
    check_model_runs(forest, ds)
    with pytest.raises(DataError, match="expects 30 features but the data has 10"):
        check_model_runs(forest, Dataset(X=ds.X[:, :10], y=ds.y))

    def broken(X):
        raise RuntimeError("shape mismatch deep inside a graph\n   at line 1\n   at line 2")

    m = CallableModel(broken, classes=[0, 1], n_features=30)
    with pytest.raises(UserError) as info:
        check_model_runs(m, ds, "rows.csv")
    assert str(info.value) == "the model cannot run on rows.csv's rows as shape (30,) (RuntimeError)"
    assert info.value.cli_hint == "check --input-shape and --features"


def test_run_attack_on_a_black_box(cancer_test, forest):
    ds, _, _ = cancer_test
    run = run_attack(forest, ds, eps=0.5, queries=60, max_samples=12, seed=3)
    assert run.attack == "square" and run.auto and len(run.sample) == 12 and run.seed == 3
    s = run.summary(model="m.joblib", data="d.csv")
    assert list(s)[-6:] == ["attack_chosen_by", "model", "data", "seed", "threat_model", "warnings"]  # as before
    assert s["samples"] == 12 and s["attack_chosen_by"] == "auto" and s["threat_model"] == run.threat.describe()
    assert 0 <= s["robust_accuracy"] <= s["clean_accuracy"] <= 1 and 0 < s["queries_max"] <= 60
    with np.load(io.BytesIO(run.adversarial_npz())) as z:
        assert z["X"].shape == (12, 30) and list(z["y"]) == list(run.sample.y)
        assert z["success"].tolist() == run.result.success.tolist()
    named = run_attack(forest, ds, attack="square", eps=0.5, queries=60, max_samples=12, seed=3)
    assert not named.auto and "attack_chosen_by" not in named.summary()
    assert named.result.success.tolist() == run.result.success.tolist()  # the same seed, the same attack


def test_run_attack_refusals(cancer_test, forest):
    ds, _, _ = cancer_test
    with pytest.raises(OptionError, match="cannot be meaningful") as info:
        run_attack(forest, ds, eps=3, bounds="0,2", units="raw", max_samples=5)
    assert info.value.cli_hint == "fix --eps" and "--" not in str(info.value)
    with pytest.raises(UserError, match="needs labels") as info:
        run_attack(forest, Dataset(X=ds.X), max_samples=5)
    assert info.value.cli_hint == "name the label column with --target"
    with pytest.raises(UserError, match="unknown attack"):
        run_attack(forest, ds, attack="nope")


def test_adversarial_training_config_validate():
    cfg = AdversarialTrainingConfig(method="trades", bounds="0,1")
    assert cfg.validate() is cfg
    with pytest.raises(UserError, match="unknown adversarial-training method 'fgsm'") as info:
        AdversarialTrainingConfig(method="fgsm").validate()
    assert info.value.cli_hint == "fix --method"
    with pytest.raises(UserError, match="bad bounds") as info:
        AdversarialTrainingConfig(bounds="2,1").validate()
    assert info.value.cli_hint == "fix --bounds"
