"""Correctness against the peers (ART, torchattacks): same model, data and eps, we are at least as strong.

Needs the ``bench`` extra: ``pip install adversarial-robustness-toolbox multiprocess`` and
``pip install --no-deps torchattacks``.
"""

from __future__ import annotations

import numpy as np
import pytest

from modelshield.attacks import PGD, make_attack
from modelshield.attacks.threat import ThreatModel

pytestmark = pytest.mark.peers


def _art():
    try:
        from art.attacks.evasion import ProjectedGradientDescent
        from art.estimators.classification import PyTorchClassifier
    except Exception as exc:  # ImportError, or ART failing on an incompatible dependency
        pytest.skip(f"adversarial-robustness-toolbox is not importable ({type(exc).__name__}: {exc}); "
                    "pip install adversarial-robustness-toolbox multiprocess")
    return ProjectedGradientDescent, PyTorchClassifier


def _art_classifier(PyTorchClassifier, module, shape, n_classes, lower, upper):
    import torch

    return PyTorchClassifier(model=module, loss=torch.nn.CrossEntropyLoss(), input_shape=shape,
                             nb_classes=n_classes, clip_values=(lower, upper), device_type="cpu")


@pytest.mark.parametrize("norm,eps", [("inf", 0.25), ("2", 1.0)])
def test_our_pgd_is_at_least_as_strong_as_arts(mlp, torch_mlp, cancer_test, norm, eps):
    ProjectedGradientDescent, PyTorchClassifier = _art()
    ds, X, y = cancer_test
    lower, upper = ds.lower.astype(np.float32), ds.upper.astype(np.float32)
    steps = 20
    clf = _art_classifier(PyTorchClassifier, torch_mlp, (30,), 2, lower, upper)
    art_pgd = ProjectedGradientDescent(clf, norm=np.inf if norm == "inf" else 2, eps=eps,
                                       eps_step=2.5 * eps / steps, max_iter=steps, num_random_init=1,
                                       batch_size=len(X), verbose=False)
    np.random.seed(0)
    x_art = art_pgd.generate(X.astype(np.float32), y=y)
    art_acc = float(np.mean(mlp.predict_index(x_art) == y))
    tm = ThreatModel(norm=norm, eps=eps, steps=steps, lower=lower, upper=upper)  # raw units, as ART
    ours = PGD(threat=tm).generate(mlp, X, y)
    assert ours.robust_accuracy <= art_acc + 0.01, (ours.robust_accuracy, art_acc)
    apgd = make_attack("apgd", tm).generate(mlp, X, y)
    assert apgd.robust_accuracy <= ours.robust_accuracy + 0.01


def test_our_attacks_match_torchattacks_on_images(digits_cnn):
    try:
        import torchattacks
    except Exception as exc:
        pytest.skip(f"torchattacks is not importable ({exc}); pip install --no-deps torchattacks")
    import torch

    model, X, y = digits_cnn
    module = model.as_torch()
    xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    tm = ThreatModel.image(eps=0.1, steps=20)
    ta_pgd = torchattacks.PGD(module, eps=0.1, alpha=2.5 * 0.1 / 20, steps=20, random_start=True)
    torch.manual_seed(0)
    ta_acc = float((module(ta_pgd(xt, yt)).argmax(1) == yt).float().mean())
    ours = PGD(threat=tm).generate(model, X, y)
    assert ours.robust_accuracy <= ta_acc + 0.01, (ours.robust_accuracy, ta_acc)
    ta_apgd = torchattacks.APGD(module, eps=0.1, steps=20, loss="ce", n_restarts=1, seed=0)
    ta_apgd_acc = float((module(ta_apgd(xt, yt)).argmax(1) == yt).float().mean())
    ens = make_attack("apgd", tm).generate(model, X, y)
    assert ens.robust_accuracy <= ta_apgd_acc + 0.01, (ens.robust_accuracy, ta_apgd_acc)
