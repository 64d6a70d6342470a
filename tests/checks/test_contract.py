"""One contract for every registered check: constructible with defaults, options round-trip through JSON,
returns a CheckResult, and is deterministic under a seed."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pytest

import modelshield as ms
from modelshield.checks.base import AuditContext
from modelshield.checks.registry import available_checks
from modelshield.findings import CheckResult, CheckStatus
from modelshield.runner import run_check

CHECKS = sorted(available_checks())


@pytest.fixture(scope="module")
def ctx_parts(tmp_path_factory, breast_cancer):
    from sklearn.linear_model import LogisticRegression

    Xtr, Xte, ytr, yte = breast_cancer
    model = LogisticRegression(max_iter=500).fit(Xtr, ytr)
    path = tmp_path_factory.mktemp("contract") / "model.joblib"
    joblib.dump(model, path)
    rng = np.random.default_rng(0)
    sens_te = {"group": rng.choice(["a", "b"], len(Xte))}
    sens_tr = {"group": rng.choice(["a", "b"], len(Xtr))}
    data = ms.Dataset(X=Xte, y=yte, sensitive=sens_te, feature_names=[f"f{i}" for i in range(30)])
    train = ms.Dataset(X=Xtr, y=ytr, sensitive=sens_tr, feature_names=[f"f{i}" for i in range(30)])
    return model, path, data, train


def _ctx(parts, seed):
    model, path, data, train = parts
    return AuditContext(model=ms.load_model(model), data=data, train=train, model_path=path, artifacts=[path],
                        seed=seed, quick=True)


@pytest.mark.parametrize("name", CHECKS)
def test_constructible_with_defaults_and_options_round_trip(name):
    cls = available_checks()[name]
    check = cls()
    params = json.loads(json.dumps(check.params(), default=list))
    again = cls.from_options(params)
    assert json.dumps(again.params(), default=list, sort_keys=True) == json.dumps(params, sort_keys=True)
    assert cls.name == name and cls.title and cls.description


@pytest.mark.parametrize("name", CHECKS)
def test_runs_and_is_deterministic_under_seed(name, ctx_parts):
    cls = available_checks()[name]
    a = run_check(cls(), _ctx(ctx_parts, seed=7))
    b = run_check(cls(), _ctx(ctx_parts, seed=7))
    assert isinstance(a, CheckResult) and a.check == name
    assert a.status is not CheckStatus.ERROR, a.summary
    json.dumps(a.to_dict())  # serialisable
    assert a.metrics == b.metrics
    assert [f.to_dict() for f in a.findings] == [f.to_dict() for f in b.findings]
