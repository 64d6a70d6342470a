"""``remove_backdoor`` without the CLI: its result serialises the repaired model itself, and its refusals
are neutral (the CLI flags only in the hint)."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelshield.data.dataset import Dataset
from modelshield.errors import DataError, UserError
from modelshield.harden.backdoor import BackdoorRemoval, remove_backdoor
from modelshield.models.sklearn import SklearnModel
from modelshield.poisoning._common import label_codes

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def data(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    return Dataset(X=Xtr, y=ytr), Dataset(X=Xte, y=yte)


def test_the_repaired_scikit_learn_model_serialises_as_joblib(data):
    train, held = data
    model = SklearnModel(LogisticRegression(max_iter=300).fit(train.X, train.y))
    rep = remove_backdoor(model, train, held)
    assert rep.framework == "sklearn" and rep.method == "retrain"
    back = joblib.load(io.BytesIO(rep.model_bytes()))
    assert np.array_equal(back.predict(held.X), rep.model.predict(held.X))


def test_a_torch_module_serialises_as_torchscript():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    rep = BackdoorRemoval(method="fine-prune", model=net, framework="pytorch", dropped_rows=[], flagged_by={})
    back = torch.jit.load(io.BytesIO(rep.model_bytes()))
    x = torch.randn(5, 4)
    assert torch.equal(back(x), net(x))
    scripted = torch.jit.script(net)
    again = BackdoorRemoval(method="retrain", model=scripted, framework="pytorch", dropped_rows=[], flagged_by={})
    assert torch.equal(torch.jit.load(io.BytesIO(again.model_bytes()))(x), net(x))


@pytest.mark.parametrize("kwargs,error,message,hint", [
    ({"method": "prune"}, UserError, "unknown backdoor-removal method 'prune'; choose retrain or fine-prune",
     "fix --method"),
    ({"method": "fine-prune"}, UserError, "fine-pruning needs a PyTorch model; retrain a scikit-learn model instead",
     "use --method retrain"),
    ({"train": "unlabelled"}, DataError, "the training data has no labels",
     "give the label column of --train with --target"),
    ({"heldout": "unlabelled"}, DataError, "the held-out data has no labels",
     "give the label column of --data with --target"),
])
def test_refusals_are_neutral(data, kwargs, error, message, hint):
    train, held = data
    model = SklearnModel(LogisticRegression(max_iter=300).fit(train.X, train.y))
    args = {"train": train, "heldout": held, **kwargs}
    for k in ("train", "heldout"):
        if args[k] == "unlabelled":
            args[k] = Dataset(X=(train if k == "train" else held).X)
    with pytest.raises(error) as info:
        remove_backdoor(model, **args)
    assert str(info.value) == message and info.value.cli_hint == hint


def test_label_codes_refusal_is_neutral():
    with pytest.raises(DataError) as info:
        label_codes(None, "held-out data")
    assert str(info.value) == "the held-out data has no labels"
    assert info.value.cli_hint == "give the label column with --target"
