"""Declarations cannot rot: every built-in check is run on small data (classification and regression, white-box
and black-box, with sensitive columns, training data, PII and several attacks) and every metric it emits and
every policy threshold it reads must be one it declares (issue 15 D.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modelshield.checks.base import AuditContext
from modelshield.checks.registry import (
    BUILTIN_CHECKS,
    BUILTIN_METRICS,
    BUILTIN_THRESHOLDS,
    available_checks,
    declared_metrics,
    declared_thresholds,
)
from modelshield.data.dataset import Dataset
from modelshield.findings import CheckStatus
from modelshield.models.wrap import wrap_object
from modelshield.policy import Policy, matches_declared
from modelshield.runner import run_check

torch.set_num_threads(1)


def _cancer(breast_cancer, n_train=160, n_test=120):
    Xtr, Xte, ytr, yte = breast_cancer
    rng = np.random.default_rng(0)
    sens_tr = {"sex": rng.choice(["f", "m"], size=n_train), "region": rng.choice(["n", "s", "e"], size=n_train)}
    sens_te = {"sex": rng.choice(["f", "m"], size=n_test), "region": rng.choice(["n", "s", "e"], size=n_test)}
    names = [f"f{i}" for i in range(Xtr.shape[1])]
    train = Dataset(X=Xtr[:n_train], y=ytr[:n_train], feature_names=names, sensitive=sens_tr)
    test = Dataset(X=Xte[:n_test], y=yte[:n_test], feature_names=names, sensitive=sens_te)
    return train, test


@pytest.fixture(scope="module")
def scenarios(breast_cancer, sk_logreg, torch_mlp, tmp_path_factory):
    """(label, model, data, train, model_path, options) covering the branches that emit metrics."""
    import joblib
    from sklearn.linear_model import Ridge

    train, test = _cancer(breast_cancer)
    tmp = tmp_path_factory.mktemp("declared")
    path = tmp / "model.joblib"
    joblib.dump(sk_logreg, path)
    reg = Ridge().fit(train.X, train.X[:, 0] * 2.0)
    reg_train = Dataset(X=train.X, y=train.X[:, 0] * 2.0, feature_names=train.feature_names,
                        sensitive=train.sensitive)
    reg_test = Dataset(X=test.X, y=test.X[:, 0] * 2.0, feature_names=test.feature_names, sensitive=test.sensitive)
    quick = {"robustness": {"max_samples": 24, "eps": [0.1, 0.3], "attacks": ["fgsm", "pgd"], "detector": True},
             "privacy": {"n_shadows": 2, "attacks": ["loss", "rmia"], "max_rows": 200},
             "fairness": {"bootstrap": 50, "proxies": True, "intersections": True},
             "theft": {"budgets": [50, 100], "max_eval": 100}}
    rng = np.random.default_rng(1)
    text = np.array([[f"user{i}@example.org", f"+44 20 7946 {rng.integers(1000, 9999)}", f"{rng.random():.3f}"]
                     for i in range(60)], dtype=object)
    with_pii = Dataset(X=text, y=np.arange(60) % 2, feature_names=["email", "phone", "score"])
    return [
        ("sklearn", wrap_object(sk_logreg), test, train, path, quick, None),
        ("torch", wrap_object(torch_mlp, classes=[0, 1]), test, train, None, quick, None),
        ("regression", wrap_object(reg), reg_test, reg_train, None,
         {"fairness": {"bootstrap": 50}, "robustness": quick["robustness"], "theft": quick["theft"]}, None),
        ("pii", wrap_object(sk_logreg), with_pii, with_pii, None, {}, {"privacy"}),
    ]


def _run_all(scenario, monkeypatch):
    _label, model, data, train, path, options, only = scenario
    read: list[tuple[str, str]] = []
    original = AuditContext.threshold
    current = {"check": ""}

    def recording(self, key, default):
        read.append((current["check"], key))
        return original(self, key, default)

    monkeypatch.setattr(AuditContext, "threshold", recording)
    ctx = AuditContext(model=model, data=data, train=train, model_path=path, artifacts=[path] if path else [],
                       quick=True, policy=Policy.default(), options=options)
    results = {}
    for name, cls in available_checks().items():
        if name not in BUILTIN_CHECKS or (only is not None and name not in only):
            continue
        known = {f for f in cls.__dataclass_fields__}
        check = cls.from_options({k: v for k, v in options.get(name, {}).items() if k in known})
        current["check"] = name
        results[name] = (cls, run_check(check, ctx))
    return results, read


EXPECTED_TO_RUN = [set(BUILTIN_CHECKS), set(BUILTIN_CHECKS) - {"artifact"}, {"baseline", "fairness"}, {"privacy"}]


@pytest.mark.parametrize("index", [pytest.param(0, marks=pytest.mark.slow), pytest.param(1, marks=pytest.mark.slow),
                                   2, 3], ids=["sklearn", "torch", "regression", "pii"])  # slow: 10-20 s each
def test_every_emitted_metric_and_read_threshold_is_declared(scenarios, monkeypatch, index):
    results, read = _run_all(scenarios[index], monkeypatch)
    ran = {n for n, (_, r) in results.items() if r.status in (CheckStatus.PASSED, CheckStatus.FINDINGS)}
    errors = {n: r.summary for n, (_, r) in results.items() if r.status is CheckStatus.ERROR}
    assert not errors, errors
    assert EXPECTED_TO_RUN[index] <= ran, {n: r.skip_reason for n, (_, r) in results.items()}
    for name, (cls, res) in results.items():
        declared = declared_metrics(name, cls)
        assert declared is not None, f"built-in check {name} declares no metrics"
        undeclared = sorted(k for k in res.metrics if not matches_declared(k, declared))
        assert not undeclared, f"{name} emits undeclared metrics {undeclared}: declare them"
    for check, key in read:
        name, _, rest = key.partition(".")
        assert name == check, f"check {check} reads another check's threshold {key}"
        declared = declared_thresholds(name, available_checks()[name])
        assert declared is not None and matches_declared(rest, declared), f"{check} reads undeclared {key}"
    if index < 3:
        assert read, "no threshold was read: the scenario no longer grades anything"
    if index == 3:
        assert any(k.startswith("pii_data_") for k in results["privacy"][1].metrics), results["privacy"][1].metrics


def test_every_built_in_check_has_declarations():
    for name, cls in available_checks().items():
        if name in BUILTIN_CHECKS:
            assert declared_metrics(name, cls) is not None and declared_thresholds(name, cls) is not None, name
    # the registry's tables hold the declarations of built-in checks whose class declares none itself
    self_declared = {n for n in BUILTIN_CHECKS if available_checks()[n].declared_metrics is not None}
    assert set(BUILTIN_METRICS) | self_declared == set(BUILTIN_CHECKS)
    self_declared_t = {n for n in BUILTIN_CHECKS if available_checks()[n].declared_thresholds is not None}
    assert set(BUILTIN_THRESHOLDS) | self_declared_t == set(BUILTIN_CHECKS)
    assert set(BUILTIN_METRICS) <= set(BUILTIN_CHECKS) and set(BUILTIN_THRESHOLDS) <= set(BUILTIN_CHECKS)
