"""``modelshield harden backdoor``: drop the flagged rows and retrain; before/after table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from modelshield.cli import main
from modelshield.data.dataset import Dataset
from modelshield.harden.backdoor import remove_backdoor
from modelshield.models.torch import TorchModel


def _csvs(sc, tmp_path):
    cols = [f"f{i}" for i in range(sc.Xtr.shape[1])]
    keep = sc.yte != sc.trigger.target
    paths = {}
    for name, X, y in (("train", sc.Xtr, sc.ytr), ("test", sc.Xte, sc.yte),
                       ("triggered", sc.trigger.apply(sc.Xte[keep]), np.full(keep.sum(), sc.trigger.target))):
        paths[name] = tmp_path / f"{name}.csv"
        pd.DataFrame(X, columns=cols).assign(label=y).to_csv(paths[name], index=False)
    return paths


def test_retrain_without_flagged_rows_removes_the_tabular_backdoor(get_scenario, tmp_path, capsys):
    sc = get_scenario("breast_cancer", 0, True)
    p = _csvs(sc, tmp_path)
    mp = tmp_path / "model.pt"
    torch.jit.script(sc.model.module).save(str(mp))
    out, rj = tmp_path / "fixed.pt", tmp_path / "harden.json"
    rc = main(["harden", "backdoor", str(mp), "--train", str(p["train"]), "--data", str(p["test"]), "--target",
               "label", "--triggered", str(p["triggered"]), "--output", str(out), "--json", str(rj)])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads(rj.read_text())
    before, after = rep["table"]
    assert before["attack_success_rate"] >= 0.9
    assert after["attack_success_rate"] < 0.10
    assert after["clean_accuracy"] >= before["clean_accuracy"] - 0.03
    removed = set(rep["dropped_rows"]) | set(rep["relabelled_rows"])  # relabelled: the held-out reference's label
    assert not set(rep["dropped_rows"]) & set(rep["relabelled_rows"])
    assert len(removed & set(sc.poisoned_rows.tolist())) / len(sc.poisoned_rows) >= 0.8
    fixed = TorchModel(torch.jit.load(str(out)))
    keep = sc.yte != sc.trigger.target
    assert np.mean(fixed.predict(sc.trigger.apply(sc.Xte[keep])) == sc.trigger.target) < 0.10
    # the output is never overwritten without --force
    rc = main(["harden", "backdoor", str(mp), "--train", str(p["train"]), "--data", str(p["test"]), "--target",
               "label", "--output", str(out)])
    assert rc == 2 and "already exists" in capsys.readouterr().err


def test_sklearn_retrain_drops_flipped_labels(get_scenario):
    from sklearn.linear_model import LogisticRegression

    from modelshield.models.sklearn import SklearnModel
    from modelshield.poisoning.planted import flip_labels

    sc = get_scenario("breast_cancer", 0, False)
    pl = flip_labels(sc.ytr, fraction=0.2, seed=0)
    model = SklearnModel(LogisticRegression(max_iter=500).fit(sc.Xtr, pl.y))
    rep = remove_backdoor(model, Dataset(X=sc.Xtr, y=pl.y), Dataset(X=sc.Xte, y=sc.yte))
    assert rep.flagged_by["label issues"] > 0
    truth = set(pl.rows.tolist())
    dropped = set(rep.dropped_rows)
    assert len(dropped & truth) / len(truth) >= 0.8
    before, after = rep.rows
    assert after["clean_accuracy"] >= before["clean_accuracy"] - 0.01


@pytest.mark.parametrize("args,needle", [
    (["--method", "prune"], "unknown backdoor-removal method 'prune'; choose retrain or fine-prune; fix --method"),
    (["--method", "fine-prune"], "needs a PyTorch model"),
])
def test_harden_bad_input_is_one_line_exit_2(get_scenario, tmp_path, capsys, args, needle):
    import joblib
    from sklearn.linear_model import LogisticRegression

    sc = get_scenario("breast_cancer", 0, False)
    p = _csvs(sc, tmp_path)
    mp = tmp_path / "m.joblib"
    joblib.dump(LogisticRegression(max_iter=300).fit(sc.Xtr, sc.ytr), mp)
    capsys.readouterr()
    rc = main(["harden", "backdoor", str(mp), "--train", str(p["train"]), "--data", str(p["test"]), "--target",
               "label", "--output", str(tmp_path / "o.joblib"), "--trust", *args])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and not ln.startswith("looking")]
    assert rc == 2 and len(err) == 1 and needle in err[0], err
