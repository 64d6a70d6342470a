"""Square's vectorised search: window masks, the two-value candidates, the float32 torch path and
the query accounting (one query per still-robust row per iteration, none after success)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modelshield.attacks import Square
from modelshield.attacks.square import _draw_windows
from modelshield.attacks.threat import ThreatModel
from modelshield.models.callable import CallableModel
from modelshield.models.torch import TorchModel


@pytest.mark.parametrize("h,w", [(8, 8), (5, 9)])
def test_windows_are_in_bounds_squares_and_both_builders_agree(h, w):
    sq = Square()
    for sz in range(1, min(h, w)):
        a = _draw_windows(sq._window_table(sz, h, w), 300, torch.Generator().manual_seed(sz))
        small = Square()
        small.table_limit = 0  # type: ignore[misc]  # force the row x column builder
        b = _draw_windows(small._window_table(sz, h, w), 300, torch.Generator().manual_seed(sz))
        assert torch.equal(a, b)
        masks = a.reshape(300, h, w)
        assert bool((masks.sum((1, 2)) == sz * sz).all())
        rows, cols = masks.any(2), masks.any(1)
        assert bool((rows.sum(1) == sz).all()) and bool((cols.sum(1) == sz).all())
        # every position is drawn (uniform over the (h - sz + 1) * (w - sz + 1) corners)
        corners = {(int(r.nonzero()[0]), int(c.nonzero()[0])) for r, c in zip(rows, cols)}
        if (h - sz + 1) * (w - sz + 1) <= 30:
            assert len(corners) == (h - sz + 1) * (w - sz + 1)


def test_square_results_do_not_depend_on_the_window_builder(digits_cnn, monkeypatch):
    model, X, y = digits_cnn
    tm = ThreatModel.image(eps=0.15, query_budget=150)
    a = Square(threat=tm).generate(model, X[:60], y[:60])
    monkeypatch.setattr(Square, "table_limit", 0)
    b = Square(threat=tm).generate(model, X[:60], y[:60])
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.queries, b.queries)


def test_square_on_torch_logits_matches_the_probability_path(digits_cnn):
    """The float32 logit margin (torch module) and the float64 log-probability margin (any
    ``predict_proba`` model) are the same loss: same draws, same accepted moves."""
    model, X, y = digits_cnn
    module = model.as_torch()

    def proba(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(module(torch.as_tensor(x, dtype=torch.float32)).double(), 1).numpy()

    black = CallableModel(proba, classes=list(range(10)), input_shape=(1, 8, 8))
    tm = ThreatModel.image(eps=0.15, query_budget=150)
    a = Square(threat=tm).generate(model, X[:80], y[:80])
    b = Square(threat=tm).generate(black, X[:80], y[:80])
    assert a.robust_accuracy < a.clean_accuracy - 0.1  # it works
    assert np.mean(a.adv_correct == b.adv_correct) >= 0.95
    assert np.mean(a.queries == b.queries) >= 0.95


def test_square_spends_one_query_per_iteration_and_none_after_success(digits_cnn):
    model, X, y = digits_cnn
    budget = 120
    tm = ThreatModel.image(eps=0.15, query_budget=budget)
    res = Square(threat=tm).generate(model, X, y)
    robust = res.clean_correct & res.adv_correct
    assert robust.any() and res.success.any()
    assert set(res.queries[robust].tolist()) == {budget}
    assert np.all(res.queries[res.success] < budget + 1) and np.all(res.queries[res.success] >= 1)
    assert np.all(res.queries[~res.clean_correct] == 0)
    assert np.abs(res.x_adv - X).max() <= 0.15 + 1e-6
    assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0


def test_square_handles_several_channels():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 6 * 6, 4)).eval()
    model = TorchModel(net, input_shape=(3, 6, 6))
    X = np.random.default_rng(0).random((40, 3, 6, 6)).astype(np.float32)
    y = model.predict(X)  # every row starts correct
    tm = ThreatModel.image(eps=0.2, query_budget=100)
    res = Square(threat=tm).generate(model, X, y)
    assert res.clean_accuracy == 1.0 and res.robust_accuracy < 0.9
    d = res.x_adv - X
    assert np.abs(d).max() <= 0.2 + 1e-6 and res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
    # every feature of an attacked row sits on one of its two values, x0 +- eps clipped to the box
    up, down = np.clip(X + np.float32(0.2), 0, 1), np.clip(X - np.float32(0.2), 0, 1)
    assert np.all(np.isclose(res.x_adv, up, atol=1e-6) | np.isclose(res.x_adv, down, atol=1e-6))
    again = Square(threat=tm).generate(model, X, y)
    np.testing.assert_array_equal(res.x_adv, again.x_adv)
