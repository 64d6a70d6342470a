"""PGD adversarial training and TRADES make a PyTorch model more robust."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from modelshield.data.dataset import Dataset
from modelshield.errors import UserError
from modelshield.harden.adversarial import adversarial_train, harden_adversarial
from modelshield.models.torch import TorchModel


@pytest.fixture(scope="module")
def cancer(breast_cancer):
    torch.set_num_threads(1)
    Xtr, Xte, ytr, yte = breast_cancer
    return Dataset(X=Xtr, y=ytr), Dataset(X=Xte, y=yte)


@pytest.mark.parametrize("method", ["pgd", "trades"])
def test_fine_tuning_raises_robust_accuracy(torch_mlp, cancer, method):
    train, test = cancer
    model = TorchModel(torch_mlp)
    before_w = [p.detach().clone() for p in torch_mlp.parameters()]
    module, rep = harden_adversarial(model, train, test, method=method, eps=0.25, epochs=8, lr=3e-3, seed=0)
    assert rep.after["robust_accuracy"] > rep.before["robust_accuracy"] + 0.02, rep
    assert rep.after["clean_accuracy"] > 0.85
    assert rep.evaluated_on == "test" and rep.method == method
    # the input model is untouched
    for a, b in zip(before_w, torch_mlp.parameters()):
        assert torch.equal(a, b)
    assert module is not torch_mlp


def test_torchscript_models_can_be_fine_tuned(torch_mlp, cancer):
    train, test = cancer
    model = TorchModel(torch.jit.script(torch_mlp))
    module, _ = harden_adversarial(model, train, test, eps=0.25, epochs=3, lr=3e-3)
    with torch.no_grad():
        out = module(torch.as_tensor(test.X[:4]))
    assert out.shape == (4, 2) and not out.requires_grad
    with pytest.raises(UserError, match="from scratch needs a retrainable") as info:
        harden_adversarial(model, train, test, from_scratch=True, epochs=1)
    assert "--" not in str(info.value) and info.value.cli_hint == "drop --from-scratch"


def test_from_scratch_trains_a_fresh_model(torch_mlp, cancer):
    train, test = cancer
    _, rep = harden_adversarial(TorchModel(torch_mlp), train, test, eps=0.1, epochs=15, lr=1e-2,
                                from_scratch=True)
    assert rep.from_scratch and rep.after["clean_accuracy"] > 0.85


def test_deterministic_under_a_seed(cancer):
    from modelshield.attacks.threat import ThreatModel

    train, _ = cancer
    tm = ThreatModel.for_dataset(train, eps=0.2)
    outs = []
    for _ in range(2):
        torch.manual_seed(1)
        net = torch.nn.Sequential(torch.nn.Linear(30, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        adversarial_train(net, train.X, train.y, threat=tm, method="trades", epochs=2, seed=5)
        outs.append(net(torch.as_tensor(train.X[:5])).detach())
    assert torch.equal(outs[0], outs[1])


def test_bad_arguments(torch_mlp, cancer):
    from sklearn.linear_model import LogisticRegression

    from modelshield.models.sklearn import SklearnModel

    train, _ = cancer
    with pytest.raises(UserError, match="PyTorch"):
        harden_adversarial(SklearnModel(LogisticRegression().fit(train.X, train.y)), train)
    with pytest.raises(UserError, match="method"):
        harden_adversarial(TorchModel(torch_mlp), train, method="fgsm-at", epochs=1)
    with pytest.raises(UserError, match="TRADES weight beta must be >= 0") as info:  # it would train against
        harden_adversarial(TorchModel(torch_mlp), train, method="trades", beta=-1.0, epochs=1)  # robustness
    assert info.value.cli_hint == "fix --beta"


def test_threat_to_dict_writes_numbers_not_placeholders():
    """Reports (``attack --json``, ``harden adversarial --report``) carry per-feature values, JSON-safe."""
    import json

    from modelshield.attacks.threat import ThreatModel

    tm = ThreatModel(eps=0.1, lower=np.array([0.0, -np.inf]), upper=np.array([1.0, 2.5]),
                     scale=np.array([0.5, 2.0]), mutable=np.array([True, False]))
    d = json.loads(json.dumps(tm.to_dict(), allow_nan=False))
    assert d["lower"] == [0.0, None] and d["upper"] == [1.0, 2.5] and d["scale"] == [0.5, 2.0]
    assert d["mutable"] == 1  # boolean masks are counted


def test_a_config_object_and_the_keywords_train_the_same_model(torch_mlp, cancer):
    from modelshield.harden.adversarial import AdversarialTrainingConfig, torchscript_bytes

    train, test = cancer
    cfg = AdversarialTrainingConfig(method="trades", eps=0.2, epochs=2, lr=3e-3, seed=4, max_eval=50)
    mod_cfg, rep_cfg = harden_adversarial(TorchModel(torch_mlp), train, test, config=cfg)
    mod_kw, rep_kw = harden_adversarial(TorchModel(torch_mlp), train, test, method="trades", eps=0.2, epochs=2,
                                        lr=3e-3, seed=4, max_eval=50)
    for a, b in zip(mod_cfg.parameters(), mod_kw.parameters()):
        assert torch.equal(a, b)
    assert rep_cfg.method == "trades" and rep_cfg.after == rep_kw.after and rep_cfg.samples == 50
    # a keyword overrides the config's field; an unknown keyword is a TypeError, never silently ignored
    _, rep = harden_adversarial(TorchModel(torch_mlp), train, test, config=cfg, method="pgd", epochs=1)
    assert rep.method == "pgd" and rep.epochs == 1
    with pytest.raises(TypeError):
        harden_adversarial(TorchModel(torch_mlp), train, test, config=cfg, epoch=1)
    # the hardened module serialises as TorchScript that predicts as it does
    loaded = torch.jit.load(io.BytesIO(torchscript_bytes(mod_cfg, train.X)))
    with torch.no_grad():
        x = torch.as_tensor(test.X[:8])
        assert torch.allclose(loaded(x), mod_cfg(x))
