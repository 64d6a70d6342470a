"""DP-SGD: the fast per-sample clipping path against explicit per-sample gradients, the privacy
guarantee, utility, the Opacus paths, the DP linear model and reduced membership leakage."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from modelshield.errors import DataError
from modelshield.harden.dp import (
    DPLogisticRegression,
    _FastDP,
    fast_path_supported,
    harden_dp,
    train_dp_classifier,
)
from modelshield.privacy.accounting import compute_epsilon

torch.set_num_threads(1)


def _mlp(seed=0, d=30, h=64, k=2):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Linear(h, h), torch.nn.Tanh(),
                               torch.nn.Linear(h, k))


@pytest.mark.parametrize("max_norm", [0.05, 1.0, 1e6])
def test_fast_clipped_sum_equals_explicit_per_sample_clipping(max_norm):
    from torch.func import functional_call, grad, vmap

    net = _mlp(d=7, h=11, k=3)
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(20, 7, generator=gen)
    y = torch.randint(0, 3, (20,), generator=gen)
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss_one(p, x, t):
        out = functional_call(net, p, (x[None],))
        return torch.nn.functional.cross_entropy(out, t[None])

    per = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, X, y)
    norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in per.values()))
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    want = {k: (g * coef.view(-1, *([1] * (g.dim() - 1)))).sum(0) for k, g in per.items()}

    with _FastDP(net) as fast:
        torch.nn.functional.cross_entropy(net(X), y, reduction="sum").backward()
        got = {id(p): g for p, g in fast.clipped_sum(len(X), max_norm)}
    assert all(p.grad is None for p in net.parameters())  # unclipped weight grads never computed
    for name, p in net.named_parameters():
        torch.testing.assert_close(got[id(p)], want[name], rtol=1e-4, atol=1e-6)
    assert "forward" not in net[0].__dict__  # the original forward is restored


def test_fast_path_support_detection():
    assert fast_path_supported(_mlp())
    conv = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    assert not fast_path_supported(conv)
    bn = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    assert not fast_path_supported(bn)
    with pytest.raises(DataError, match="fast DP path"):
        train_dp_classifier(conv, np.zeros((10, 1, 10), np.float32), np.zeros(10, np.int64), epsilon=1.0,
                            mode="fast")


def test_train_dp_classifier_meets_epsilon_and_learns(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    net, rep = train_dp_classifier(_mlp(), Xtr, ytr, epsilon=1.0, delta=1e-5, epochs=20, batch_size=64,
                                   seed=0)
    assert rep.mode == "fast"
    assert rep.epsilon <= 1.0 and rep.epsilon > 0.99  # calibrated, not over-noised
    assert rep.epsilon == pytest.approx(
        compute_epsilon(rep.noise_multiplier, rep.sample_rate, rep.steps, 1e-5).epsilon)
    assert rep.steps == 20 * round(len(Xtr) / 64)
    with torch.no_grad():
        acc = (net(torch.as_tensor(Xte)).argmax(1).numpy() == yte).mean()
    assert acc > 0.85


def test_more_noise_hurts_and_seed_determinism(breast_cancer):
    Xtr, _, ytr, _ = breast_cancer
    a, ra = train_dp_classifier(_mlp(), Xtr, ytr, epsilon=2.0, epochs=3, seed=1)
    b, _ = train_dp_classifier(_mlp(), Xtr, ytr, epsilon=2.0, epochs=3, seed=1)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)
    _, rc = train_dp_classifier(_mlp(), Xtr, ytr, epsilon=0.5, epochs=3, seed=1)
    assert rc.noise_multiplier > ra.noise_multiplier


def test_opacus_hooks_path_same_accounting(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    _, fast = train_dp_classifier(_mlp(), Xtr, ytr, epsilon=3.0, epochs=5, batch_size=64, seed=0)
    net, hooks = train_dp_classifier(_mlp(), Xtr, ytr, epsilon=3.0, epochs=5, batch_size=64, seed=0,
                                     mode="hooks")
    assert hooks.mode == "hooks"
    assert hooks.steps == fast.steps and hooks.sample_rate == pytest.approx(fast.sample_rate)
    assert hooks.noise_multiplier == pytest.approx(fast.noise_multiplier)
    assert hooks.epsilon <= 3.0
    with torch.no_grad():
        assert (net(torch.as_tensor(Xte)).argmax(1).numpy() == yte).mean() > 0.8


def test_bad_input():
    X = np.zeros((10, 30), np.float32)
    with pytest.raises(DataError, match="class indices"):
        train_dp_classifier(_mlp(), X, np.full(10, -1), epsilon=1.0)
    with pytest.raises(DataError, match="epsilon"):
        train_dp_classifier(_mlp(), X, np.zeros(10, np.int64))
    with pytest.raises(DataError, match="mode"):
        train_dp_classifier(_mlp(), X, np.zeros(10, np.int64), epsilon=1.0, mode="turbo")
    with pytest.raises(DataError, match="labels"):
        train_dp_classifier(_mlp(), X, np.zeros(9, np.int64), epsilon=1.0)


def test_dp_logistic_regression(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    clf = DPLogisticRegression(epsilon=1.0, epochs=10).fit(Xtr, ytr)
    assert clf.score(Xte, yte) > 0.85
    assert clf.dp_report_.epsilon <= 1.0
    assert clf.predict_proba(Xte).shape == (len(Xte), 2)
    from sklearn.base import clone

    assert clone(clf).get_params() == clf.get_params()
    with pytest.raises(DataError, match="not fitted"):
        DPLogisticRegression().predict(Xte)


def test_dp_reduces_membership_leakage(breast_cancer):
    from modelshield.models.wrap import wrap_object
    from modelshield.privacy.membership import TrainingRecipe, membership_inference

    Xtr, Xte, ytr, yte = breast_cancer
    rng = np.random.default_rng(0)
    y = np.where(rng.random(len(ytr)) < 0.1, 1 - ytr, ytr)  # noisy labels: memorisation shows
    overfit = TrainingRecipe(epochs=400, lr=1e-2).fit(_mlp(), Xtr, y, seed=0)
    private, _ = train_dp_classifier(_mlp(), Xtr, y, epsilon=1.0, epochs=20, seed=0)
    kw = dict(attacks=["loss", "rmia"], n_shadows=4, recipe=TrainingRecipe(epochs=100), n_jobs=1)
    leak = membership_inference(wrap_object(overfit), (Xtr, y), (Xte, yte), **kw)
    dp = membership_inference(wrap_object(private), (Xtr, y), (Xte, yte), **kw)
    assert leak.best.auc > 0.6
    assert dp.best.auc < leak.best.auc - 0.05
    assert dp.best.tpr_at_1pct_fpr < leak.best.tpr_at_1pct_fpr


def test_batchnorm_is_refused_with_a_clear_error(breast_cancer):
    Xtr, _, ytr, _ = breast_cancer
    bn = torch.nn.Sequential(torch.nn.Linear(30, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    with pytest.raises(DataError, match="BatchNorm"):
        train_dp_classifier(bn, Xtr, ytr, epsilon=1.0, epochs=1)  # auto -> Opacus, which refuses


def test_harden_dp_rebuilds_a_torchscript_mlp(breast_cancer):
    # regression: every TorchScript model was refused ("cannot be re-initialised")
    from modelshield.data.dataset import Dataset
    from modelshield.models.base import Capability
    from modelshield.models.wrap import wrap_object

    torch.set_num_threads(1)
    Xtr, Xte, ytr, yte = breast_cancer
    scripted = wrap_object(torch.jit.script(_mlp(h=16)), classes=[0, 1])
    assert Capability.RETRAINABLE not in scripted.capabilities
    res = harden_dp(scripted, Dataset(X=Xtr, y=ytr), Dataset(X=Xte, y=yte), epsilon=2.0, epochs=5,
                    membership=False)
    assert res.dp.mode == "fast" and res.dp.epsilon <= 2.0 and res.model_format == "torchscript"
    assert isinstance(torch.jit.load(io.BytesIO(res.model_bytes)), torch.jit.ScriptModule)
    after = {r["metric"]: r["after"] for r in res.comparison}
    assert after["test_accuracy"] > 0.85

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(30, 2)

        def forward(self, x):
            return self.lin(x) * 2

    odd = wrap_object(torch.jit.script(Odd()), classes=[0, 1])
    with pytest.raises(DataError, match="TorchScript is supported only for an nn"):
        harden_dp(odd, Dataset(X=Xtr, y=ytr), epsilon=1.0, epochs=1, membership=False)


@pytest.mark.parametrize("kind", ["torch", "sklearn"])
def test_harden_dp_names_non_numeric_columns(kind, breast_cancer):
    # regression: text columns crashed with "could not convert string to float: 'Female'"
    from sklearn.linear_model import LogisticRegression

    from modelshield.data.dataset import Dataset
    from modelshield.models.wrap import wrap_object

    Xtr, _, ytr, _ = breast_cancer
    model = wrap_object(_mlp(), classes=[0, 1]) if kind == "torch" else wrap_object(
        LogisticRegression(max_iter=200).fit(Xtr, ytr))
    X = Xtr.astype(object)
    X[:, 3] = np.where(ytr == 1, "Female", "Male")
    names = [f"f{i}" for i in range(30)]
    with pytest.raises(DataError, match=r"non-numeric values in column\(s\) 'f3'.*leave those columns out") as err:
        harden_dp(model, Dataset(X=X, y=ytr, feature_names=names), epsilon=1.0, epochs=1, membership=False)
    assert "--" not in str(err.value) and "--features" in err.value.cli_message()


def test_harden_dp_refuses_bad_settings_for_every_model_kind(breast_cancer, sk_logreg):
    """A bad learning rate, accountant or mode is one clear error up front, for the scikit-learn path as for
    PyTorch (it used to ignore --accountant and --mode there, and a negative rate crashed in the optimizer)."""
    from modelshield.data.dataset import Dataset
    from modelshield.models.wrap import wrap_object

    Xtr, _, ytr, _ = breast_cancer
    train = Dataset(X=Xtr[:100], y=ytr[:100])
    for model in (wrap_object(sk_logreg), wrap_object(_mlp(h=4), classes=[0, 1])):
        for kw, msg in (({"lr": -1.0}, "learning rate"), ({"lr": 0.0}, "learning rate"),
                        ({"accountant": "foo"}, "unknown accountant"), ({"mode": "foo"}, "unknown DP mode")):
            with pytest.raises(DataError, match=msg):
                harden_dp(model, train, epsilon=1.0, epochs=1, membership=False, **kw)
    with pytest.raises(DataError, match="for PyTorch models"):
        harden_dp(wrap_object(sk_logreg), train, epsilon=1.0, epochs=1, membership=False, mode="hooks")
    res = harden_dp(wrap_object(sk_logreg), train, epsilon=1.0, epochs=1, membership=False, accountant="pld")
    assert res.dp.accountant == "pld"  # passed through, not replaced by rdp
