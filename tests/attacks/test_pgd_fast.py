"""PGD's fast paths (scalar step on a plain box, batch compaction only when rows pile up, no
duplicate final forward) give exactly what a textbook PGD loop gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modelshield.attacks import PGD
from modelshield.attacks.threat import ThreatModel


def reference_pgd(model, tm: ThreatModel, X: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
    """The textbook loop: whole batch every step, the general projector, and each row's first
    adversarial iterate kept (what modelshield's PGD returns)."""
    module = model.as_torch()
    n = len(X)
    shape = tuple(model.input_spec.shape or X.shape[1:])
    d = int(np.prod(shape))
    proj = tm.projector(d)
    x0 = torch.as_tensor(X.reshape(n, d), dtype=torch.float32)
    with torch.no_grad():
        clean = module(x0.reshape((n, *shape))).argmax(1).numpy()
    sel = np.flatnonzero(clean == y)
    xs0, ys = x0[sel], torch.as_tensor(y[sel])
    x = proj.random_start(xs0, torch.Generator().manual_seed(seed))
    out, found = x.clone(), torch.zeros(len(sel), dtype=torch.bool)
    for _ in range(tm.steps):
        xr = x.detach().clone().requires_grad_(True)
        logits = module(xr.reshape((len(xr), *shape)))
        adv = logits.detach().argmax(1) != ys
        newly = adv & ~found
        out[newly] = xr.detach()[newly]
        found |= adv
        loss = torch.nn.functional.cross_entropy(logits, ys, reduction="none").sum()
        (g,) = torch.autograd.grad(loss, xr)
        x = proj.project(xr.detach() + tm.alpha * proj.ascent(g), xs0)
    out[~found] = x[~found]
    res = x0.clone()
    res[torch.as_tensor(sel)] = out
    return proj.finalize(proj.project(res, x0), x0).numpy().reshape(X.shape)


@pytest.mark.parametrize("early_stop", [True, False])
@pytest.mark.parametrize("norm,eps", [("inf", 0.25), ("2", 1.0)])
def test_pgd_matches_the_textbook_loop_on_tabular_data(mlp, cancer_test, early_stop, norm, eps):
    ds, X, y = cancer_test
    tm = ThreatModel.for_dataset(ds, norm=norm, eps=eps, steps=15)
    assert not tm.projector(X.shape[1]).uniform  # per-feature scales: the general step
    res = PGD(threat=tm, early_stop=early_stop).generate(mlp, X, y)
    np.testing.assert_allclose(res.x_adv, reference_pgd(mlp, tm, X, y), atol=1e-5)
    assert 0 < res.success.sum() < res.clean_correct.sum()  # some rows leave early, some stay


@pytest.mark.parametrize("early_stop", [True, False])
def test_pgd_fast_box_step_matches_the_textbook_loop_on_images(digits_cnn, early_stop):
    model, X, y = digits_cnn
    tm = ThreatModel.image(eps=0.1, steps=10)
    assert tm.projector(64).uniform  # unit box, unit scale: the scalar fused step
    res = PGD(threat=tm, early_stop=early_stop).generate(model, X, y)
    np.testing.assert_allclose(res.x_adv, reference_pgd(model, tm, X, y), atol=1e-6)
    assert 0 < res.success.sum() < res.clean_correct.sum()


def test_uniform_step_is_only_taken_when_every_feature_moves_in_raw_units():
    assert ThreatModel.image(eps=0.1).projector(4).uniform
    assert ThreatModel(eps=0.1, scale=np.ones(4)).projector(4).uniform
    assert not ThreatModel(eps=0.1, scale=np.array([1.0, 2.0, 1.0, 1.0])).projector(4).uniform
    assert not ThreatModel(eps=0.1, mutable=np.array([True, False, True, True])).projector(4).uniform


def test_early_stop_spends_fewer_forwards_for_the_same_result(mlp, cancer_test):
    ds, X, y = cancer_test
    tm = ThreatModel.for_dataset(ds, eps=0.25, steps=20)
    fast = PGD(threat=tm, early_stop=True).generate(mlp, X, y)
    full = PGD(threat=tm, early_stop=False).generate(mlp, X, y)
    np.testing.assert_array_equal(fast.adv_correct, full.adv_correct)
    assert fast.total_queries < full.total_queries
    # no early stop: every attacked row takes part in every step's forward pass
    assert set(full.queries[full.clean_correct].tolist()) == {tm.steps}
    assert np.all(fast.queries[fast.clean_correct] >= 1) and fast.queries.max() <= tm.steps
    assert np.all(fast.queries[~fast.clean_correct] == 0)


def test_restarts_only_rerun_robust_rows_and_count_their_forwards(mlp, cancer_test):
    ds, X, y = cancer_test
    tm = ThreatModel.for_dataset(ds, eps=0.15, steps=10)
    one = PGD(threat=tm).generate(mlp, X, y)
    three = PGD(threat=tm, restarts=3).generate(mlp, X, y)
    assert three.robust_accuracy <= one.robust_accuracy
    # a row robust to the end of every restart: steps + 1 forwards per checked restart, steps in the last
    robust = three.clean_correct & three.adv_correct
    assert robust.any()
    assert set(three.queries[robust].tolist()) == {2 * (tm.steps + 1) + tm.steps}
    assert three.queries.max() <= 3 * (tm.steps + 1)
