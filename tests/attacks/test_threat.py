"""The threat model: per-feature masks from a Dataset and the torch projector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modelshield.attacks.threat import ThreatModel
from modelshield.data.dataset import Dataset
from modelshield.errors import UserError


def test_for_dataset_masks_follow_feature_types(adult):
    _, te = adult
    tm = ThreatModel.for_dataset(te, eps=0.2)
    names = te.feature_names
    types = te.feature_types
    for j, (n, t) in enumerate(zip(names, types)):
        frozen = t in ("categorical", "binary") or n in te.immutable
        assert tm.mutable[j] == (not frozen), n
        assert tm.integer[j] == (t == "integer"), n
    assert tm.kind == "tabular-std"
    np.testing.assert_allclose(tm.scale, te.scale)
    assert not tm.mutable[names.index("age")]  # immutable
    assert tm.mutable[names.index("capital_gain")]


def test_image_like_data_gets_the_unit_box():
    X = np.random.default_rng(0).random((10, 1, 4, 4)).astype(np.float32)
    tm = ThreatModel.for_dataset(Dataset(X=X, y=np.zeros(10)), eps=0.1)
    assert tm.kind == "image" and tm.box == (0.0, 1.0) and tm.scale is None


@pytest.mark.parametrize("bad", [dict(eps=-1), dict(eps=float("nan")), dict(steps=0), dict(norm="1"),
                                 dict(query_budget=0), dict(step_size=0.0)])
def test_bad_threat_models_are_user_errors(bad):
    with pytest.raises(UserError):
        ThreatModel(**bad)


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_projection_stays_in_ball_and_box(norm):
    rng = np.random.default_rng(1)
    d = 6
    scale = rng.uniform(0.5, 3.0, d)
    lower, upper = -np.ones(d) * 2, np.ones(d) * 2
    mutable = np.array([1, 1, 1, 0, 1, 1], bool)
    integer = np.array([0, 0, 1, 0, 0, 1], bool)
    tm = ThreatModel(norm=norm, eps=0.7, scale=scale, lower=lower, upper=upper, mutable=mutable, integer=integer)
    p = tm.projector(d, torch.float64)
    x0 = torch.as_tensor(np.round(rng.uniform(-2, 2, (50, d))), dtype=torch.float64)
    x = x0 + torch.as_tensor(rng.normal(0, 5, (50, d)))
    out = p.finalize(p.project(x, x0), x0)
    assert torch.all(p.dist(out - x0) <= 0.7 + 1e-9)
    assert torch.all(out >= torch.as_tensor(lower)) and torch.all(out <= torch.as_tensor(upper))
    assert torch.equal(out[:, 3], x0[:, 3])  # immutable untouched
    for j in (2, 5):  # integer features stay whole
        assert torch.equal(out[:, j], torch.round(out[:, j]))


def test_integer_rounding_moves_toward_the_clean_value():
    tm = ThreatModel(eps=10.0, integer=np.array([True]))
    p = tm.projector(1, torch.float64)
    x0 = torch.tensor([[3.0], [3.0]])
    out = p.finalize(torch.tensor([[4.9], [1.2]], dtype=torch.float64), x0.double())
    assert out[:, 0].tolist() == [4.0, 2.0]


def test_threat_to_dict_is_plain_data():
    import json

    tm = ThreatModel(eps=0.3, scale=np.ones(3), mutable=np.array([1, 0, 1], bool))
    d = tm.to_dict()
    json.dumps(d)
    assert d["eps"] == 0.3 and d["mutable"] == 2
