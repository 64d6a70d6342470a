"""The allowlist is exact (module, name) pairs (issue 15.A.1): generated families over the installed packages.

Every module path the allowlist admits names from is introspected: each module alias it exposes
(``np``, ``os``, ``sys``, ``warnings``, ``F``...) is tried as a single name and as attribute chains
(``<alias>.save``, ``<alias>.testing.<x>``...), and each class it imports from a denylisted module
(``Thread``, ``Listener``, ``Parallel``...) is tried by its re-exported name. The pickles are built opcode
by opcode (GLOBAL / STACK_GLOBAL, never executed): the scanner must report at least HIGH and
``safe_load`` must refuse. Genuine models of many kinds must still scan clean and load.
"""

from __future__ import annotations

import functools
import importlib
import io
import logging
import os
import pickle
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest

from modelshield.artifacts import scan_bytes
from modelshield.artifacts.policy import (
    ALLOW_PAIRS,
    ALLOW_QUALNAMES,
    ALLOW_RULES,
    DENY_PREFIXES,
    REEXPORTED_GADGETS,
    classify_global,
    identity_verdict,
)
from modelshield.artifacts.restricted import resolve_allowed, safe_load
from modelshield.errors import FormatError, UnsafeModelError
from modelshield.findings import Severity

from .corpus import glob0, sglob

#: attribute names tried below every module alias (those the alias really has): file/process/code gadgets
GADGET_ATTRS = ("system", "popen", "save", "savez", "load", "open", "eval", "exec", "testing", "ctypeslib",
                "mock", "FileHandler", "CodeType", "FunctionType", "bltns", "getattr", "Popen", "run",
                "import_module", "_create_fn", "remove", "rmtree", "warn", "modules")


def _ref4(module: str, name: str) -> bytes:
    """protocol 4: push module.name with STACK_GLOBAL and return it (no call)."""
    return b"\x80\x04" + sglob(module, name) + b"."


def _ref2(module: str, name: str) -> bytes:
    """protocol 2: the same through GLOBAL."""
    return b"\x80\x02" + glob0(module, name) + b"."


def _import_models_packages() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("sklearn.ensemble", "sklearn.linear_model", "sklearn.pipeline", "sklearn.preprocessing",
                     "sklearn.neural_network", "sklearn.model_selection", "sklearn.feature_selection",
                     "sklearn.neighbors", "sklearn.gaussian_process", "sklearn.calibration", "sklearn.svm",
                     "sklearn.tree", "sklearn.cluster", "sklearn.decomposition", "sklearn.metrics",
                     "sklearn.callback", "scipy.sparse", "scipy.stats", "scipy.interpolate", "pandas",
                     "torch", "torch.nn", "torch.optim", "numpy.random", "fairlearn.reductions",
                     "fairlearn.postprocessing", "modelshield.harden.dp", "modelshield.harden.fairness"):
            try:
                importlib.import_module(name)
            except ImportError:  # pragma: no cover - optional packages
                pass


def _trusted_modules() -> dict[str, types.ModuleType]:
    """Every imported module whose path the allowlist admits a name from (exactly or by a rule)."""
    import re

    _import_models_packages()
    rules = [re.compile(r.module) for r in ALLOW_RULES]
    exact = {m for m, _ in ALLOW_PAIRS}
    out = {}
    for name, mod in sorted(sys.modules.items()):
        if not isinstance(mod, types.ModuleType) or "test" in name.split(".")[-1]:
            continue
        if name in exact or any(r.fullmatch(name) for r in rules):
            out[name] = mod
    return out


@functools.cache
def _alias_chains() -> list[tuple[str, str, str]]:
    """(module, name, description): single alias names and chains through them, generated."""
    cases: list[tuple[str, str, str]] = []
    for modname, mod in _trusted_modules().items():
        for attr, value in sorted(vars(mod).items()):
            if not isinstance(value, types.ModuleType) or not attr.isidentifier():
                continue
            cases.append((modname, attr, f"module alias {attr} -> {value.__name__}"))
            tried = [a for a in GADGET_ATTRS if a in vars(value)]
            public = sorted(a for a, v in vars(value).items() if not a.startswith("_") and callable(v))[:2]
            for a in tried + public:
                cases.append((modname, f"{attr}.{a}", f"chain through {value.__name__}.{a}"))
                inner = vars(value)[a]
                if isinstance(inner, types.ModuleType):
                    deeper = sorted(x for x, v in vars(inner).items() if not x.startswith("_") and callable(v))[:1]
                    cases += [(modname, f"{attr}.{a}.{d}", "two-step chain") for d in deeper]
    return cases


@functools.cache
def _reexported_gadgets() -> list[tuple[str, str, str]]:
    """Class-like names trusted modules import from modules on the denylist (Thread, Listener, Parallel...)."""
    cases = []
    for modname, mod in _trusted_modules().items():
        for attr, value in sorted(vars(mod).items()):
            if isinstance(value, types.ModuleType) or not isinstance(value, type):
                continue
            own = (getattr(value, "__module__", None), getattr(value, "__qualname__", None))
            if not all(isinstance(x, str) for x in own) or own == (modname, attr):
                continue
            target = classify_global(*own)  # type: ignore[arg-type]
            if target.kind == "deny" and target.rule in DENY_PREFIXES:
                cases.append((modname, attr, f"{own[0]}.{own[1]}"))
    return cases


def test_the_generated_families_are_large_and_reach_real_aliases():
    chains = _alias_chains()
    aliases = {(m, n) for m, n, _ in chains if "." not in n}
    assert len(chains) > 500 and len(aliases) > 200
    # the aliases of the issue are among them: numpy as np below scikit-learn's loss module, enum's builtins
    assert ("sklearn._loss.loss", "np") in aliases
    assert any(m.startswith("torch.nn") and n == "F" for m, n in aliases)  # import ... functional as F
    assert ("sklearn._loss.loss", "np.save") in {(m, n) for m, n, _ in chains}
    gadgets = {n for _, n, _ in _reexported_gadgets()}
    assert {"Thread", "Parallel", "Listener"} <= gadgets <= set(REEXPORTED_GADGETS) | {
        n for m, n, _ in _reexported_gadgets() if classify_global(m, n).rule != "reexported-gadget"}


def test_every_alias_chain_is_denied_by_the_policy():
    wrong = [(m, n, why, classify_global(m, n)) for m, n, why in _alias_chains()
             if classify_global(m, n).kind != "deny"]
    assert not wrong, wrong[:10]


def test_alias_chains_are_high_in_the_scanner_and_refused_by_safe_load():
    seen: set[tuple[str, str]] = set()
    for i, (module, name, why) in enumerate(_alias_chains()):
        key = (module.split(".")[0], name)  # one pickle per package and name keeps this fast
        if key in seen:
            continue
        seen.add(key)
        data = (_ref4 if i % 2 else _ref2)(module, name)
        report = scan_bytes(data)
        worst = report.files[0].max_severity
        assert worst is not None and worst >= Severity.HIGH, (module, name, why)
        with pytest.raises(UnsafeModelError):
            safe_load(data)
    assert len(seen) > 100


def test_reexported_denylisted_classes_are_denied_and_refused():
    cases = _reexported_gadgets()
    assert cases
    for module, name, target in cases:
        verdict = classify_global(module, name)
        assert verdict.kind == "deny", f"{module}.{name} is {target}: add {name!r} to REEXPORTED_GADGETS"
        with pytest.raises(UnsafeModelError):
            safe_load(_ref4(module, name))
        worst = scan_bytes(_ref2(module, name)).files[0].max_severity
        assert worst is not None and worst >= Severity.HIGH


def test_reexports_the_scanner_admits_by_shape_are_refused_after_import():
    """A class-like name the rules admit but whose identity is another module's (typing.Any,
    numbers.Integral, ...): the restricted loader resolves it and refuses it by identity."""
    refused = 0
    for modname, mod in _trusted_modules().items():
        for attr, value in sorted(vars(mod).items()):
            if isinstance(value, types.ModuleType) or classify_global(modname, attr).kind != "allow":
                continue
            own = (getattr(value, "__module__", None), getattr(value, "__qualname__", None))
            if not isinstance(value, type) or own == (modname, attr):
                continue
            if classify_global(*own).kind == "allow":  # type: ignore[arg-type]
                continue
            with pytest.raises(UnsafeModelError, match="resolves to"):
                resolve_allowed(modname, attr)
            refused += 1
            if refused >= 60:
                return
    assert refused >= 10


# ------------------------------------------------------------------ identity after import
@pytest.mark.parametrize("target", [np.save, os.system, subprocess.Popen, logging.FileHandler, os, np,
                                    functools.partial(print), eval, pickle.loads],
                         ids=["numpy.save", "os.system", "Popen", "FileHandler", "module-os", "module-numpy",
                              "partial-instance", "eval", "pickle.loads"])
@pytest.mark.parametrize("module", ["sklearn.linear_model._logistic", "torch.nn.modules.linear",
                                    "pandas.core.frame"])
def test_an_alias_under_an_allowed_path_is_refused_by_identity(monkeypatch, module, target):
    """A class-like name under a rule-admitted path that resolves to something else is refused
    (``find_class`` checks ``__module__``/``__qualname__`` and never returns a module)."""
    mod = importlib.import_module(module)
    monkeypatch.setattr(mod, "InjectedAlias", target, raising=False)
    assert classify_global(module, "InjectedAlias").kind == "allow"  # admitted by shape ...
    with pytest.raises(UnsafeModelError):                             # ... refused by identity
        resolve_allowed(module, "InjectedAlias")
    with pytest.raises(UnsafeModelError):
        safe_load(_ref4(module, "InjectedAlias"))
    assert identity_verdict(module, "InjectedAlias", target).kind == "deny"


def test_identity_accepts_genuine_objects_and_listed_constants():
    import torch
    from sklearn.linear_model import LogisticRegression

    assert identity_verdict("sklearn.linear_model._logistic", "LogisticRegression", LogisticRegression).kind == "allow"
    assert identity_verdict("numpy.core.multiarray", "_reconstruct",
                            np._core.multiarray._reconstruct).kind == "allow"  # alias of an allowed pair
    assert identity_verdict("torch", "float32", torch.float32).kind == "allow"
    assert identity_verdict("torch", "not_listed_dtype", torch.float32).kind == "deny"  # constant, not listed
    assert identity_verdict("torch", "float32", 3.0).kind == "deny"  # listed, but not a value type


def test_no_exact_pair_is_shadowed_by_the_denylist():
    shadowed = [(m, n) for m, n in ALLOW_PAIRS if classify_global(m, n).kind != "allow"]
    assert not shadowed


def test_every_exact_pair_resolves_through_the_restricted_loader():
    """The exact table is consistent with what the packages really hold (no entry that identity
    checking would refuse, no module objects)."""
    checked = 0
    for module, name in ALLOW_PAIRS:
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                obj = resolve_allowed(module, name)
            except FormatError:  # a name this version does not have (e.g. numpy.core on NumPy 1)
                continue
        assert not isinstance(obj, types.ModuleType)
        checked += 1
    assert checked > 100


# ------------------------------------------------------------------ the rule set itself
@pytest.mark.parametrize(("module", "name", "rule"), [
    ("sklearn._loss.loss", "np.save", "dotted-chain"),
    ("sklearn._loss.loss", "HalfBinomialLoss.np", "dotted-chain"),
    ("sklearn.linear_model._logistic", "LogisticRegression.fit", "dotted-chain"),
    ("numpy", "random.Generator", "dotted-chain"),              # harmless leaf: still not an exact pair
    ("zoneinfo", "ZoneInfo.other", "dotted-chain"),
    ("enum", "bltns.eval", "dotted-chain"),
    ("random", "_os.system", "os"),                              # a canonical name reached is named
    ("torch.nn.functional", "torch.save", "torch.save"),
    ("sklearn.utils", "np.testing.run", "dotted-chain"),
    ("sklearn._loss.loss", "np", "trusted-module-attribute"),
    ("torch.nn.functional", "F", "trusted-module-attribute"),
    ("modelshield.harden.dp", "np", "trusted-module-attribute"),
    ("sklearn.callback._progressbar", "Thread", "reexported-gadget"),
    ("sklearn.ensemble._forest", "Parallel", "reexported-gadget"),
    ("enum", "bltns", "stdlib"),
    ("logging", "FileHandler", "logging"),
    ("logging.handlers", "RotatingFileHandler", "logging.handlers"),
    ("unittest.mock", "Mock", "unittest"),
    ("dataclasses", "_create_fn", "dataclasses"),
    ("gzip", "GzipFile", "gzip"),
    ("mailbox", "Maildir", "mailbox"),
    ("wave", "open", "wave"),
    ("queue", "Queue", "stdlib"),
    ("typing", "NamedTuple", "stdlib"),
    ("collections", "UserDict", "stdlib"),
])
def test_denied_with_the_rule_that_matched(module, name, rule):
    verdict = classify_global(module, name)
    assert (verdict.kind, verdict.rule) == ("deny", rule), verdict


@pytest.mark.parametrize(("module", "name", "rule"), [
    ("sklearn.linear_model._logistic", "LogisticRegression", "sklearn-class"),
    ("sklearn.decomposition._pca", "PCA", "sklearn-class"),                 # all-caps acronym classes
    ("sklearn.gaussian_process.kernels", "RBF", "sklearn-class"),
    ("sklearn._loss._loss", "__pyx_unpickle_CyHalfBinomialLoss", "sklearn-class"),
    ("sklearn.metrics._classification", "accuracy_score", "sklearn-metric"),
    ("sklearn.neighbors._kd_tree", "newObj", "sklearn-tree-ctor"),
    ("numpy.random._pcg64", "PCG64", "numpy-random"),
    ("numpy._core.multiarray", "_reconstruct", "numpy._core.multiarray._reconstruct"),
    ("numpy", "float64", "numpy-scalar"),
    ("scipy.sparse._csr", "csr_matrix", "scipy-sparse"),
    ("pandas._libs.internals", "_unpickle_block", "pandas-internal"),
    ("torch.nn.modules.rnn", "LSTM", "torch-layer"),
    ("torch", "FloatStorage", "torch-storage"),
    ("torch.nn.functional", "relu", "torch.nn.functional.relu"),
    ("zoneinfo", "ZoneInfo._unpickle", "zoneinfo.ZoneInfo._unpickle"),  # an exactly listed qualname
    ("__builtin__", "xrange", "builtins.range"),                          # Python 2 name, mapped
])
def test_allowed_with_the_rule_that_matched(module, name, rule):
    verdict = classify_global(module, name)
    assert (verdict.kind, verdict.rule) == ("allow", rule), verdict


def test_dotted_chain_rule_both_ways():
    """A dotted name is allowed exactly when its pair is listed; the same leaf or a listed class's
    attribute through a dot is denied (and named 'dotted-chain'), the undotted listed name is allowed."""
    for (module, qualname) in ALLOW_QUALNAMES:
        assert classify_global(module, qualname).kind == "allow"
        head, leaf = qualname.rsplit(".", 1)
        assert classify_global(module, f"{head}.{leaf}x").rule == "dotted-chain"
        assert classify_global(module, f"{head}.{head}.{leaf}").kind == "deny"
    for module, name in [("sklearn.linear_model._logistic", "LogisticRegression"), ("torch.nn.modules.linear", "Linear"),
                         ("collections", "OrderedDict"), ("numpy", "ndarray")]:
        assert classify_global(module, name).kind == "allow"
        for leaf in ("Thing", "__init__", "fit", "np"):
            assert classify_global(module, f"{name}.{leaf}").kind == "deny"


@pytest.mark.parametrize(("name", "kind"), [("func", "deny"), ("_helper", "deny"), ("system", "deny"),
                                            ("Model", "unknown"), ("Net", "unknown"), ("Model.fit", "deny")])
def test_main_functions_are_denied_and_classes_unknown(name, kind):
    verdict = classify_global("__main__", name)
    assert verdict.kind == kind
    assert verdict.rule == ("dotted-chain" if "." in name else "__main__")


def test_unreviewed_packages_are_unknown_and_unreviewed_stdlib_is_denied():
    for module, name in [("mypkg", "Model"), ("somepkg.sub", "Thing"), ("xgboost_like", "Booster")]:
        assert classify_global(module, name).kind == "unknown"
    for module in sorted(m for m in sys.stdlib_module_names if m.isidentifier() and not m.startswith("_"))[:80]:
        assert classify_global(module, "Whatever").kind == "deny", module


def test_the_scan_and_the_old_dotted_prefix_bypass():
    """The bypass of the issue: an allow rule that matched the whole dotted path admitted
    ``sklearn._loss.<module>.np.save``; now critical."""
    data = b"\x80\x04" + sglob("sklearn._loss.loss", "np.save") + b"(" + b"\x8c\x01x" + b"tR."
    findings = scan_bytes(data).files[0].findings
    assert [(f.rule_id, f.severity, f.evidence.get("policy_rule")) for f in findings] == [
        ("artifact.pickle.dangerous-global", Severity.CRITICAL, "dotted-chain")]
    with pytest.raises(UnsafeModelError, match=r"np\.save"):
        safe_load(data)


def test_classify_is_cached_per_pair():
    from modelshield.artifacts import policy

    policy._classify_cached.cache_clear()
    classify_global("sklearn.tree._classes", "DecisionTreeClassifier")
    classify_global("sklearn.tree._classes", "DecisionTreeClassifier")
    info = policy._classify_cached.cache_info()
    assert (info.hits, info.misses) == (1, 1)




# ------------------------------------------------------------------ genuine models still load
def _genuine_models() -> list[tuple[str, object]]:
    from sklearn import (
        calibration,
        cluster,
        decomposition,
        ensemble,
        feature_selection,
        gaussian_process,
        impute,
        linear_model,
        model_selection,
        naive_bayes,
        neighbors,
        neural_network,
        pipeline,
        preprocessing,
        svm,
        tree,
    )
    from sklearn.datasets import make_classification, make_regression

    X, y = make_classification(120, 6, random_state=0)
    X = np.abs(X)
    Xr, yr = make_regression(120, 6, random_state=0)
    yr = np.abs(yr) + 1.0
    clf = [
        linear_model.LogisticRegression(), linear_model.SGDClassifier(random_state=0),
        tree.DecisionTreeClassifier(max_depth=3), ensemble.RandomForestClassifier(3, max_depth=3),
        ensemble.ExtraTreesClassifier(3, max_depth=3), ensemble.GradientBoostingClassifier(n_estimators=3),
        ensemble.HistGradientBoostingClassifier(max_iter=3), ensemble.AdaBoostClassifier(n_estimators=3),
        ensemble.BaggingClassifier(n_estimators=2),
        ensemble.VotingClassifier([("a", linear_model.LogisticRegression()), ("b", naive_bayes.GaussianNB())]),
        ensemble.StackingClassifier([("a", linear_model.LogisticRegression())], cv=2),
        neural_network.MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0), svm.SVC(), svm.LinearSVC(),
        neighbors.KNeighborsClassifier(algorithm="kd_tree"), neighbors.KNeighborsClassifier(algorithm="ball_tree"),
        gaussian_process.GaussianProcessClassifier(), calibration.CalibratedClassifierCV(svm.LinearSVC(), cv=2),
        pipeline.make_pipeline(preprocessing.FunctionTransformer(np.log1p), preprocessing.StandardScaler(),
                               preprocessing.PolynomialFeatures(), linear_model.LogisticRegression()),
        pipeline.make_pipeline(impute.SimpleImputer(), feature_selection.SelectKBest(feature_selection.f_classif, k=3),
                               preprocessing.QuantileTransformer(n_quantiles=10), decomposition.PCA(2),
                               linear_model.LogisticRegression()),
        pipeline.make_pipeline(preprocessing.SplineTransformer(), preprocessing.KBinsDiscretizer(quantile_method="averaged_inverted_cdf"),
                               linear_model.LogisticRegression()),
        model_selection.GridSearchCV(linear_model.LogisticRegression(), {"C": [0.5, 1.0]}, cv=2, scoring="roc_auc"),
    ]
    reg = [
        linear_model.Ridge(), linear_model.Lasso(), ensemble.HistGradientBoostingRegressor(max_iter=3),
        ensemble.HistGradientBoostingRegressor(max_iter=3, loss="poisson"),
        ensemble.HistGradientBoostingRegressor(max_iter=3, loss="quantile", quantile=0.3),
        ensemble.HistGradientBoostingRegressor(max_iter=3, loss="gamma"),
        ensemble.HistGradientBoostingRegressor(max_iter=3, loss="absolute_error"),
        ensemble.GradientBoostingRegressor(n_estimators=3, loss="huber"),
        neural_network.MLPRegressor(hidden_layer_sizes=(8,), max_iter=30, random_state=0), svm.SVR(),
    ]
    out: list[tuple[str, object]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out += [(type(m).__name__, m.fit(X, y)) for m in clf]
        out += [(type(m).__name__ + "-" + str(getattr(m, "loss", "")), m.fit(Xr, yr)) for m in reg]
        out.append(("KMeans", cluster.KMeans(3, n_init=1, random_state=0).fit(X)))
        out.append(("OneHot", preprocessing.OneHotEncoder(handle_unknown="ignore").fit((X > 1).astype(int))))
    return out


@functools.cache
def _genuine() -> list[tuple[str, object]]:
    return _genuine_models()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_genuine_scikit_learn_models_scan_clean_and_load(protocol):
    X = np.abs(np.random.default_rng(0).normal(size=(5, 6)))
    for name, model in _genuine():
        data = pickle.dumps(model, protocol=protocol)
        findings = [(f.rule_id, f.title) for f in scan_bytes(data).files[0].findings if f.severity >= Severity.MEDIUM]
        assert not findings, (name, findings)
        loaded = safe_load(data)
        assert type(loaded) is type(model), name
        if hasattr(model, "predict") and name != "KMeans":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                np.testing.assert_array_equal(loaded.predict(X), model.predict(X), err_msg=name)


def test_genuine_models_through_joblib_and_protocol_0():
    import joblib

    for name, model in _genuine()[::4]:
        buf = io.BytesIO()
        joblib.dump(model, buf)
        assert type(safe_load(buf.getvalue(), "joblib")) is type(model), name
        assert type(safe_load(pickle.dumps(model, protocol=0))) is type(model), name


def test_genuine_torch_and_pandas_objects_load():
    import pandas as pd
    import torch

    net = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.BatchNorm1d(2), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4, 4), torch.nn.LayerNorm(4), torch.nn.GELU(), torch.nn.Dropout())
    for obj in (net, net.state_dict()):
        buf = io.BytesIO()
        torch.save(obj, buf)
        loaded = safe_load(buf.getvalue())
        assert not [f for f in scan_bytes(buf.getvalue()).files[0].findings if f.severity >= Severity.MEDIUM]
        if isinstance(obj, dict):
            assert all(torch.equal(loaded[k], v) for k, v in obj.items())
        else:
            assert isinstance(loaded, torch.nn.Sequential) and len(loaded) == len(net)
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "c": pd.Categorical(["u", "v"]),
                          "d": pd.to_datetime(["2020-01-01", "2021-01-01"])})
    for protocol in (2, 4, 5):
        data = pickle.dumps(frame, protocol=protocol)
        pd.testing.assert_frame_equal(safe_load(data), frame)
    for value in (np.arange(6.0).reshape(2, 3), np.array(["a", 1], dtype=object), range(7), {"k": [1, 2]}):
        for protocol in (0, 2, 4):
            got = safe_load(pickle.dumps(value, protocol=protocol))
            assert repr(got) == repr(value)
