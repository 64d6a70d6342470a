"""PGD without early stop resolves its per-step bookkeeping (first adversarial iterate per row) in
chunks of iterates (issue 21.3): whatever the chunk size, the result is bit-for-bit the one of
resolving after every step, for every norm, loss, targeted or not, with restarts, over seeds."""

from __future__ import annotations

import numpy as np
import pytest

from modelshield.attacks import PGD
from modelshield.attacks import pgd as pgd_module
from modelshield.attacks.threat import ThreatModel


def _run(model, X, y, tm, *, loss, restarts, seed, chunk_bytes, monkeypatch):
    monkeypatch.setattr(pgd_module, "_CHUNK_BYTES", chunk_bytes)
    return PGD(threat=tm, loss=loss, restarts=restarts, seed=seed, early_stop=False).generate(model, X, y)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("norm,eps,loss,restarts,targeted", [
    ("inf", 0.25, "ce", 1, False), ("inf", 0.1, "dlr", 2, False), ("2", 1.0, "ce", 2, False),
    ("inf", 0.25, "ce", 1, True), ("2", 1.5, "dlr", 1, True)])
def test_chunked_resolution_equals_per_step_resolution(iris_mlp, monkeypatch, seed, norm, eps, loss, restarts,
                                                       targeted):
    model, X, y = iris_mlp
    labels = (np.asarray(y) + 1) % 3 if targeted else y
    tm = ThreatModel(norm=norm, eps=eps, steps=12, targeted=targeted)
    step_by_step = _run(model, X, labels, tm, loss=loss, restarts=restarts, seed=seed, chunk_bytes=1,
                        monkeypatch=monkeypatch)  # a chunk of one iterate: resolved after every forward
    per_iter = (X[0].size + 3) * 4 * len(X)
    for chunk_bytes in (3 * per_iter, 5 * per_iter, 2**30):  # chunks that split the run unevenly, and one chunk
        got = _run(model, X, labels, tm, loss=loss, restarts=restarts, seed=seed, chunk_bytes=chunk_bytes,
                   monkeypatch=monkeypatch)
        np.testing.assert_array_equal(got.x_adv, step_by_step.x_adv)
        np.testing.assert_array_equal(got.success, step_by_step.success)
        np.testing.assert_array_equal(got.queries, step_by_step.queries)
    assert 0 < step_by_step.success.sum()  # rows become adversarial at various steps: the bookkeeping matters
