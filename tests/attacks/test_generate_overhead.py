"""``Attack.generate``'s fixed-cost shortcuts (issue #4) give exactly what the general paths give:
the L-inf corners computed once per clean batch and shared (random start, steps, final
projection), gathered rather than recomputed for a subset, the projector's fast path for images,
the unit-scale distance, and the final prediction straight on the torch tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modelshield.attacks import PGD
from modelshield.attacks.base import AttackContext
from modelshield.attacks.threat import ThreatModel
from modelshield.models.torch import TorchModel

D = 12


def _tabular(norm: str = "inf") -> ThreatModel:
    integer = np.zeros(D, bool)
    integer[:3] = True
    mutable = np.ones(D, bool)
    mutable[5] = False
    upper = np.ones(D)
    upper[:3] = 10
    return ThreatModel(norm=norm, eps=0.3, steps=8, lower=np.zeros(D), upper=upper,
                       scale=np.linspace(0.2, 1.5, D), integer=integer, mutable=mutable)


THREATS = {"image": ThreatModel.image(eps=0.1, steps=8), "tabular": _tabular()}


@pytest.fixture(scope="module")
def net_data() -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(D, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)).eval()
    X = np.random.default_rng(0).random((160, D)).astype(np.float32)
    with torch.no_grad():
        y = net(torch.as_tensor(X)).argmax(1).numpy()
    return net, X, y


@pytest.mark.parametrize("kind", sorted(THREATS))
def test_random_start_with_shared_bounds_is_identical(kind: str) -> None:
    tm = THREATS[kind]
    proj = tm.projector(D)
    x0 = torch.rand(50, D, generator=torch.Generator().manual_seed(1)) * 3
    general = proj.random_start(x0, torch.Generator().manual_seed(7))
    shared = proj.random_start(x0, torch.Generator().manual_seed(7), proj.linf_bounds(x0))
    assert torch.equal(general, shared)
    lo, hi = proj.linf_bounds(x0)
    assert bool(((shared >= lo) & (shared <= hi)).all())


@pytest.mark.parametrize("kind", sorted(THREATS))
def test_context_bounds_cached_and_gathered_for_a_subset(kind: str, net_data) -> None:
    net, _, _ = net_data
    proj = THREATS[kind].projector(D)
    model = TorchModel(net, input_shape=(D,))
    ctx = AttackContext(model, proj, (D,), 4, False, 0, net)
    x0 = torch.rand(40, D, generator=torch.Generator().manual_seed(2)) * 2
    lo, _ = ctx.linf_bounds(x0)
    assert ctx.linf_bounds(x0)[0] is lo  # computed once per batch
    rows = torch.tensor([0, 3, 4, 17, 39])
    xs = ctx.select_rows(x0, rows)
    assert torch.equal(xs, x0[rows])
    slo, shi = ctx.linf_bounds(xs)
    rlo, rhi = proj.linf_bounds(xs)
    assert torch.equal(slo, rlo) and torch.equal(shi, rhi)
    assert ctx.linf_bounds(x0)[0] is lo  # the full batch's corners are still there
    other = x0.clone()  # equal values, another tensor: never served from the cache by mistake
    assert ctx.linf_bounds(other)[0] is not lo


def test_projector_fast_path_matches_explicit_masks() -> None:
    implicit = ThreatModel.image(eps=0.1).projector(D)
    explicit = ThreatModel.image(eps=0.1, mutable=np.ones(D, bool), integer=np.zeros(D, bool)).projector(D)
    for name in ("mask", "integer", "scale", "lower", "upper"):
        a, b = getattr(implicit, name), getattr(explicit, name)
        assert a.dtype == b.dtype and torch.equal(a, b), name
    for name in ("n_mutable", "all_mutable", "has_integer", "uniform", "unit_scale"):
        assert getattr(implicit, name) == getattr(explicit, name), name
    tm = _tabular()
    proj = tm.projector(D)
    assert torch.equal(proj.integer, torch.as_tensor(tm.integer & tm.mutable))
    assert proj.has_integer and not proj.all_mutable and proj.n_mutable == D - 1
    tm.integer[:] = False  # the projector holds a copy, never a view of the threat model
    assert bool(proj.integer[:3].all())


def test_unit_scale_distance_is_exact() -> None:
    delta = torch.randn(30, D, generator=torch.Generator().manual_seed(3))
    for norm in ("inf", "2"):
        proj = ThreatModel.image(norm=norm, eps=0.1).projector(D)
        assert proj.unit_scale
        z = delta / proj.scale
        ref = z.abs().amax(dim=1) if norm == "inf" else z.norm(dim=1)
        assert torch.equal(proj.dist(delta), ref)


@pytest.mark.parametrize("kind", sorted(THREATS))
@pytest.mark.parametrize("early_stop", [True, False])
def test_generate_final_check_on_a_subset(kind: str, early_stop: bool, net_data) -> None:
    """Some clean rows misclassified (the gather/scatter path): every returned row is valid, in
    the threat model, and flagged from a fresh prediction of exactly the returned inputs."""
    net, X, y = net_data
    tm = THREATS[kind]
    Xc = X.copy()
    if tm.integer is not None:
        Xc[:, :3] = np.round(Xc[:, :3] * 10)
    with torch.no_grad():
        y = net(torch.as_tensor(Xc)).argmax(1).numpy()
    y[::5] = (y[::5] + 1) % 4
    model = TorchModel(net, input_shape=(D,))
    r = PGD(threat=tm, early_stop=early_stop, seed=3).generate(model, Xc, y)
    assert r.x_adv.dtype == Xc.dtype and r.x_adv.shape == Xc.shape
    with torch.no_grad():
        pred = net(torch.as_tensor(r.x_adv)).argmax(1).numpy()
    np.testing.assert_array_equal(r.adv_correct, pred == y)
    np.testing.assert_array_equal(r.success, r.clean_correct & (pred != y))
    assert not r.clean_correct[::5].any() and np.array_equal(r.x_adv[::5], Xc[::5])
    assert r.success.any() and not r.success.all()
    proj = tm.projector(D)
    x0 = torch.as_tensor(Xc)
    xa = torch.as_tensor(r.x_adv)
    lo, hi = proj.linf_bounds(x0)
    assert bool(((xa >= lo) & (xa <= hi)).all())
    assert torch.equal(proj.finalize(xa, x0), xa)  # integer features whole, immutables untouched
    np.testing.assert_allclose(r.perturbation, np.where(r.success, proj.dist(xa - x0).double().numpy(), 0.0))
    again = PGD(threat=tm, early_stop=early_stop, seed=3).generate(model, Xc, y)
    assert np.array_equal(again.x_adv, r.x_adv) and np.array_equal(again.queries, r.queries)


def test_final_check_predicts_float16_inputs_as_returned(net_data) -> None:
    """A float16 batch is returned as float16: the final check predicts those rounded rows."""
    net, X, y = net_data
    X16 = X.astype(np.float16)
    model = TorchModel(net, input_shape=(D,))
    r = PGD(threat=ThreatModel.image(eps=0.1, steps=8)).generate(model, X16, y)
    assert r.x_adv.dtype == np.float16
    with torch.no_grad():
        pred = net(torch.as_tensor(r.x_adv.astype(np.float32))).argmax(1).numpy()
    np.testing.assert_array_equal(r.adv_correct, pred == y)
