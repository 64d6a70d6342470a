"""The Flower backend runs the same plan as the in-process engine (needs the ``fl`` extra)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from modelshield.errors import MissingExtraError
from modelshield.federated import FederatedConfig, prepare, run
from modelshield.federated.recipes import check_backend, run_plan

X, Y = load_breast_cancer(return_X_y=True)
# the full stack on 5 clients: SecAgg in groups of 2, trimmed mean across the group sums, client-level DP, attackers
CFG = FederatedConfig(clients=5, rounds=3, group_size=2, aggregator="trimmed-mean:0.2", dp_noise=0.5, clip=1.0,
                      malicious=0.2, attack="sign-flip", seed=3)


@pytest.mark.skipif(importlib.util.find_spec("flwr") is not None, reason="flwr is installed")
def test_missing_flwr_is_missing_extra_error():
    with pytest.raises(MissingExtraError) as info:
        check_backend("flower")
    assert "modelshield[fl]" in str(info.value) and info.value.extra == "fl"
    with pytest.raises(MissingExtraError):
        run_plan(prepare(X, Y, CFG), "flower")


@pytest.mark.slow  # Ray start-up and 5 actors: about 65 s on 2 busy cores
def test_flower_and_engine_agree_on_the_final_model(monkeypatch):
    pytest.importorskip("flwr")
    for var in ("RAY_TMPDIR", "FLWR_HOME"):  # run_flower makes short temporary ones (Ray's socket paths <= 107 B)
        monkeypatch.delenv(var, raising=False)
    engine = run(prepare(X, Y, CFG))
    flower = run_plan(prepare(X, Y, CFG), "flower")
    assert flower.backend == "flower"
    assert [r.failures for r in flower.result.rounds] == [0, 0, 0]  # no unexpected client failures
    assert [r.groups for r in flower.result.rounds] == [r.groups for r in engine.rounds] == [2, 2, 2]
    np.testing.assert_allclose(flower.result.weights, engine.weights, atol=1e-6)
    assert np.linalg.norm(engine.weights) > 0.1  # the model moved: agreement is not two zero vectors
    assert [r.accuracy for r in flower.result.rounds] == [r.accuracy for r in engine.rounds]
