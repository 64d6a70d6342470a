"""One contract for every registered check: constructible with defaults, options round-trip through JSON,
returns a CheckResult, and is deterministic under a seed. ``Check.run`` is a final template method: called
directly it seeds, times and captures errors exactly as the runner does, and a subclass may not override it."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pytest

import modelshield as ms
from modelshield.checks.base import AuditContext, Check
from modelshield.checks.registry import available_checks
from modelshield.errors import OptionError
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


def _global_draws() -> tuple[float, float]:
    import torch

    return float(np.random.random()), float(torch.rand(1).item())


def _seeded_draws(seed: int) -> tuple[float, float]:
    import torch

    np.random.seed(seed)
    torch.manual_seed(seed)
    return _global_draws()


@pytest.mark.parametrize("name", CHECKS)
def test_direct_run_seeds_and_is_deterministic(name, ctx_parts):
    """``check.run(ctx)`` without the runner: the global generators are seeded from ``ctx.seed`` before the
    step (whatever state they were left in), and two runs with the same seed give the same result."""
    cls = available_checks()[name]
    seen: list[tuple[float, float]] = []

    class Probe(cls):  # type: ignore[misc, valid-type]
        def _run(self, ctx):
            seen.append(_global_draws())
            return super()._run(ctx)

    results = []
    for disturb in (1, 2):
        _seeded_draws(1000 + disturb)  # leave the global generators in a different state before each run
        results.append(Probe().run(_ctx(ctx_parts, seed=7)))
    a, b = results
    assert seen == [_seeded_draws(7)] * 2
    assert isinstance(a, CheckResult) and a.check == name
    assert a.status in (CheckStatus.PASSED, CheckStatus.FINDINGS), a.summary
    assert a.status is b.status and a.duration_s > 0
    assert a.metrics == b.metrics
    assert [f.to_dict() for f in a.findings] == [f.to_dict() for f in b.findings]


def _without_duration(result: CheckResult) -> dict:
    out = result.to_dict()
    out.pop("duration_s", None)
    return out


@pytest.mark.parametrize("name", CHECKS)
def test_direct_run_captures_an_error_like_the_runner(name, ctx_parts):
    cls = available_checks()[name]
    ctx = _ctx(ctx_parts, seed=7)
    check = cls()

    def boom(_ctx):
        raise RuntimeError(f"kaboom in {name}")

    check._run = boom  # the step fails; the template must turn that into the check's error result
    direct = check.run(ctx)
    via_runner = run_check(check, ctx)
    assert direct.status is CheckStatus.ERROR
    assert direct.summary == f"the check failed: RuntimeError: kaboom in {name}"
    assert [f.rule_id for f in direct.findings] == [f"{name}.error"]
    assert "Traceback" in direct.findings[0].evidence["traceback"]
    assert direct.params == check.params()
    assert _without_duration(direct) == _without_duration(via_runner)


@pytest.mark.parametrize("name", CHECKS)
def test_option_error_stops_the_audit_from_run_and_runner(name, ctx_parts):
    cls = available_checks()[name]
    check = cls()

    def meaningless(_ctx):
        raise OptionError(f"{name}: an option that measures nothing")

    check._run = meaningless
    with pytest.raises(OptionError, match="measures nothing"):
        check.run(_ctx(ctx_parts, seed=7))
    with pytest.raises(OptionError, match="measures nothing"):
        run_check(check, _ctx(ctx_parts, seed=7))


@pytest.mark.parametrize("name", [*CHECKS, "(base)"])
def test_a_subclass_overriding_run_is_refused(name):
    base = Check if name == "(base)" else available_checks()[name]
    with pytest.raises(TypeError) as err:
        type("Overrider", (base,), {"run": lambda self, ctx: self.result(), "__module__": "plugin"})
    message = str(err.value)
    assert "plugin.Overrider" in message and "_run(self, ctx)" in message and "final" in message
    assert "\n" not in message
