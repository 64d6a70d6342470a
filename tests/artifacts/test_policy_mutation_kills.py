"""The pickle policy's verdicts, pinned where mutation testing found them loose (issue 23).

For each branch of the judgement: the verdict kind, the rule that decided it and the reason shown to
the user (exactly), plus the Python 2 name mapping, the TorchScript context, the identity check the
restricted loader runs after import, and the lazily compiled rule tables.
"""

from __future__ import annotations

import re
import zoneinfo
from collections import OrderedDict

import numpy as np
import pytest

from modelshield.artifacts import policy as P
from modelshield.artifacts.policy import (
    ALLOW_PAIRS,
    ALLOW_RULES,
    DENY_PREFIXES,
    REEXPORTED_GADGETS,
    TORCHSCRIPT_ALLOW,
    Verdict,
    classify_global,
    compat_name,
    identity_verdict,
)

_STDLIB = ("is not on the allowlist: the standard library reaches files, processes and code (logging.FileHandler, "
           "unittest.mock, dataclasses' code generation)")
_RULE = {r.id: r for r in ALLOW_RULES}


@pytest.fixture(autouse=True)
def _fresh_verdicts():
    """Judge every pair afresh: verdicts are cached per pair, and a cached verdict from an earlier test
    would hide what the code does now."""
    P._classify_cached.cache_clear()
    yield
    P._classify_cached.cache_clear()


def _v(module: str, name: str, **kw) -> tuple[str, str, str]:
    v = classify_global(module, name, **kw)
    return v.kind, v.rule, v.reason


# ------------------------------------------------------------------ each branch of the judgement
@pytest.mark.parametrize(("module", "name", "key"), [
    ("os", "system", "os"), ("os.path", "join", "os"), ("os", "", "os"),
    ("logging.config", "listen", "logging.config"),  # the longest listed prefix decides
    ("logging", "FileHandler", "logging"), ("asyncio.unix_events", "_UnixSubprocessTransport", "asyncio"),
    ("builtins", "eval", "builtins.eval"), ("torch.jit._pickle", "build_intlist", "torch.jit"),
])
def test_denylisted_paths_are_denied_with_the_matching_prefix_and_its_reason(module, name, key):
    assert _v(module, name) == ("deny", key, DENY_PREFIXES[key])


@pytest.mark.parametrize(("module", "name"), [("collections", "OrderedDict"), ("numpy", "ndarray"),
                                              ("torch._utils", "_rebuild_tensor_v2"), ("torch", "float32"),
                                              ("zoneinfo", "ZoneInfo._unpickle")])
def test_exact_pairs_are_allowed_with_their_own_reason(module, name):
    assert _v(module, name) == ("allow", f"{module}.{name}", ALLOW_PAIRS[(module, name)])


@pytest.mark.parametrize(("module", "name", "key"), [
    ("random", "_os.system", "os"), ("sklearn.utils", "x.subprocess.Popen", "subprocess"),
    ("sklearn.utils", "a.b._pickle.loads", "pickle"), ("numpy", "lib._io.open", "io"),
])
def test_an_attribute_chain_is_named_after_the_denylisted_module_it_reaches(module, name, key):
    assert _v(module, name) == ("deny", key, f"attribute chain reaches {key}: {DENY_PREFIXES[key]}")


@pytest.mark.parametrize(("module", "name"), [("numpy", "__builtins__"), ("sklearn", "__version__"),
                                              ("a.__builtins__", "x"), ("a.__globals__", "x"), ("mypkg", "f.__globals__"),
                                              ("mypkg", "A.__init__.x")])
def test_dunders_are_denied(module, name):
    assert _v(module, name) == ("deny", "dunder", "dunder attribute access reaches interpreter internals "
                                                  "(numpy.__builtins__-style indirection)")


@pytest.mark.parametrize(("module", "name"), [("sklearn.linear_model", "LogisticRegression.fit"),
                                              ("mypkg", "A.b"), ("zoneinfo", "ZoneInfo.clear_cache"),
                                              ("mypkg", "Xos.system")])  # only leading underscores are stripped
def test_an_unlisted_dotted_name_is_a_denied_chain(module, name):
    assert _v(module, name) == ("deny", "dotted-chain", (
        f"attribute chain {name!r} below {module}: only exact (module, name) pairs are allowed, and chains walk "
        "through the module aliases a package imports (np.save, enum.bltns, torch's unittest.mock)"))


@pytest.mark.parametrize(("module", "name"), [("sklearn.utils", "Parallel"), ("sklearn.callback._progressbar", "Thread"),
                                              ("collections", "Thread"), ("numpy", "Path"), ("torch", "Process")])
def test_reexported_gadget_names_below_trusted_paths_are_denied(module, name):
    assert _v(module, name) == ("deny", "reexported-gadget", (
        f"{module}.{name} is not admitted by its shape: trusted packages bind this name to a denylisted class or "
        f"a module ({REEXPORTED_GADGETS[name]})"))


def test_a_gadget_name_of_an_unreviewed_package_is_just_unknown():
    assert _v("mypkg", "Thread")[0] == "unknown"


@pytest.mark.parametrize(("module", "name", "rule"), [
    ("sklearn.linear_model._logistic", "LogisticRegression", "sklearn-class"),
    ("sklearn.metrics._classification", "accuracy_score", "sklearn-metric"),
    ("sklearn.metrics.pairwise", "rbf_kernel", "sklearn-kernel"),
    ("numpy", "float64", "numpy-scalar"), ("torch", "FloatStorage", "torch-storage"),
    ("torch.nn.modules.linear", "Linear", "torch-layer"), ("pandas", "DataFrame", "pandas-public"),
    ("xgboost.sklearn", "XGBClassifier", "boosting"), ("lightgbm", "LGBMClassifier", "boosting"),
    ("numpy.random._mt19937", "MT19937", "numpy-random"),
])
def test_rule_admitted_names_carry_the_rule_and_its_reason(module, name, rule):
    assert _v(module, name) == ("allow", rule, _RULE[rule].reason)


@pytest.mark.parametrize(("name", "kind", "reason"), [
    ("helper", "deny", "__main__ functions/attribute chains reach whatever the loading script imported "
                       "(from os import system)"),
    ("_Model", "deny", "__main__ functions/attribute chains reach whatever the loading script imported "
                       "(from os import system)"),
    ("Model", "unknown", "a class from the saving script's __main__: the loading script must define it, so "
                         "loading runs code that was not reviewed"),
    ("MyModel", "unknown", "a class from the saving script's __main__: the loading script must define it, so "
                           "loading runs code that was not reviewed"),
])
def test_main_names(name, kind, reason):
    assert _v("__main__", name) == (kind, "__main__", reason)


@pytest.mark.parametrize(("module", "name"), [("builtins", "print"), ("builtins", "Exception"),
                                              ("exceptions", "NoSuchError")])
def test_builtins_off_the_allowlist_are_denied(module, name):
    assert _v(module, name) == ("deny", "builtins", "builtins outside the container/scalar constructors are gadgets")


@pytest.mark.parametrize(("module", "name", "full"), [("json", "loads", "json.loads"), ("collections", "", "collections"),
                                                      ("email.parser", "Parser", "email.parser.Parser"),
                                                      ("xml.etree.ElementTree", "XMLParser",
                                                       "xml.etree.ElementTree.XMLParser")])
def test_standard_library_names_off_the_allowlist_are_denied(module, name, full):
    assert _v(module, name) == ("deny", "stdlib", f"standard-library name {full} {_STDLIB}")


@pytest.mark.parametrize(("module", "name"), [("sklearn.linear_model._logistic", "np"), ("numpy", "random"),
                                              ("torch", "nn"), ("sklearn.utils", "check_array")])
def test_other_names_below_trusted_modules_are_denied(module, name):
    assert _v(module, name) == ("deny", "trusted-module-attribute", (
        f"{name!r} below the trusted module {module} is not one of its listed names or classes: a module alias or "
        "an imported helper reaches code outside the reviewed package"))


def test_unreviewed_packages_are_unknown():
    assert _v("somepkg.sub", "Thing") == ("unknown", "", "not on the allowlist: importing it runs code that was "
                                                          "not reviewed")
    assert Verdict("allow", "x").rule == ""


# ------------------------------------------------------------------ TorchScript context
@pytest.mark.parametrize("full", sorted(TORCHSCRIPT_ALLOW))
def test_torchscript_helpers_are_allowed_only_in_torchscript(full):
    module, name = full.rsplit(".", 1)
    assert _v(module, name, context="torchscript") == ("allow", full, TORCHSCRIPT_ALLOW[full])
    assert classify_global(module, name).kind == "deny"


@pytest.mark.parametrize(("module", "name"), [("__torch__.a", "B"), ("__torch__.model.sub", "Net"),
                                              ("__torch__", "Net")])
def test_torchscript_classes_are_allowed_only_in_torchscript(module, name):
    assert _v(module, name, context="torchscript") == ("allow", "__torch__", "TorchScript class compiled from this "
                                                                            "archive's code/")
    assert classify_global(module, name).kind != "allow"


def test_torchscript_context_judges_other_names_as_usual():
    for module, name in (("os", "system"), ("collections", "OrderedDict"), ("torch.jit._pickle", "other"),
                         ("__torch__", ""), ("x__torch__.a", "B")):
        assert classify_global(module, name, context="torchscript") == classify_global(module, name), (module, name)


# ------------------------------------------------------------------ Python 2 names
def test_a_mapped_python2_name_keeps_the_target_verdict_and_says_how_it_was_read():
    assert _v("__builtin__", "set") == ("allow", "builtins.set", ALLOW_PAIRS[("builtins", "set")])
    assert _v("__builtin__", "eval") == ("deny", "builtins.eval", "__builtin__.eval is read as builtins.eval "
                                                                  f"(Python 2 name): {DENY_PREFIXES['builtins.eval']}")
    # itertools exists in Python 3 too and is denied unmapped: with equal ranks the mapped verdict is kept
    assert _v("itertools", "imap") == ("deny", "builtins.map", "itertools.imap is read as builtins.map (Python 2 "
                                                               f"name): {DENY_PREFIXES['builtins.map']}")
    assert _v("UserDict", "UserDict") == ("deny", "stdlib", "UserDict.UserDict is read as collections.UserDict "
                                                            f"(Python 2 name): standard-library name "
                                                            f"collections.UserDict {_STDLIB}")


def test_compat_name_uses_the_name_mapping_then_the_module_mapping():
    assert compat_name("__builtin__", "xrange") == ("builtins", "range")
    assert compat_name("copy_reg", "_reconstructor") == ("copyreg", "_reconstructor")
    assert compat_name("cPickle", "Thing") == ("pickle", "Thing")
    assert compat_name("collections", "OrderedDict") == ("collections", "OrderedDict")


def test_a_python3_module_mapped_to_an_allowed_name_keeps_the_worse_unmapped_verdict(monkeypatch):
    import _compat_pickle

    monkeypatch.setitem(_compat_pickle.NAME_MAPPING, ("os", "xrange"), ("builtins", "range"))
    monkeypatch.setitem(_compat_pickle.NAME_MAPPING, ("mypkg_py3", "Thing"), ("builtins", "range"))
    P._classify_cached.cache_clear()
    try:
        assert _v("os", "xrange") == ("deny", "os", DENY_PREFIXES["os"])
        assert _v("mypkg_py3", "Thing")[0] == "unknown"  # a module Python 3 may have: the worse verdict
    finally:
        monkeypatch.undo()
        P._classify_cached.cache_clear()


# ------------------------------------------------------------------ identity after import
def test_identity_of_a_module_object():
    assert identity_verdict("numpy", "random", np.random) == Verdict(
        "deny", "numpy.random is a module object, never model content", "module-object")


def test_identity_of_the_object_that_was_asked_for():
    assert identity_verdict("collections", "OrderedDict", OrderedDict) == Verdict(
        "allow", "resolved to itself", "collections.OrderedDict")
    # a classmethod of a C class has no __module__ of its own: its class's module is used
    assert identity_verdict("zoneinfo", "ZoneInfo._unpickle", zoneinfo.ZoneInfo._unpickle) == Verdict(
        "allow", "resolved to itself", "zoneinfo.ZoneInfo._unpickle")


def test_identity_of_an_alias_of_an_allowed_object():
    from sklearn.linear_model import LogisticRegression

    assert identity_verdict("sklearn.linear_model", "LogisticRegression", LogisticRegression) == Verdict(
        "allow", "resolves to the allowed sklearn.linear_model._logistic.LogisticRegression", "sklearn-class")
    v = identity_verdict("sklearn.linear_model._logistic", "Alias", OrderedDict)
    assert v == Verdict("allow", "resolves to the allowed collections.OrderedDict", "collections.OrderedDict")


def test_identity_of_an_alias_of_a_denied_object():
    import os

    own = os.system.__module__
    v = identity_verdict("sklearn.linear_model._logistic", "Alias", os.system)
    assert v == Verdict("deny", f"sklearn.linear_model._logistic.Alias resolves to {own}.system, which is not "
                                f"allowed ({classify_global(own, 'system').reason})", "resolved-identity")


def test_identity_of_objects_without_a_name_of_their_own():
    import torch

    assert identity_verdict("torch", "float32", torch.float32) == Verdict("allow", "listed constant", "torch.float32")
    assert identity_verdict("builtins", "Ellipsis", Ellipsis) == Verdict("allow", "listed constant",
                                                                         "builtins.Ellipsis")
    # a constant under a pair that is not listed exactly
    assert identity_verdict("torch", "Float32Alias", torch.float32) == Verdict(
        "deny", "torch.Float32Alias resolves to a torch.dtype object without a module/qualified name of its own",
        "resolved-identity")
    # a listed pair that resolved to a plain instance of a type that is not a value type
    assert identity_verdict("collections", "OrderedDict", OrderedDict()) == Verdict(
        "deny", "collections.OrderedDict resolves to a collections.OrderedDict object without a module/qualified "
                "name of its own", "resolved-identity")


def test_identity_of_a_callable_instance_and_of_a_class_with_odd_names():
    class Callable:
        __module__ = "collections"
        __qualname__ = "OrderedDict"

        def __call__(self):
            return None

    c = Callable()
    c.__module__, c.__qualname__ = "collections", "OrderedDict"
    assert identity_verdict("collections", "OrderedDict", c).kind == "allow"

    class CallableInstance:
        def __call__(self):
            return None

    # an instance has its class's __module__ but no __qualname__ of its own
    assert identity_verdict("collections", "OrderedDict", CallableInstance()) == Verdict(
        "deny", f"collections.OrderedDict resolves to a {__name__}.test_identity_of_a_callable_instance_and_of_a_"
                "class_with_odd_names.<locals>.CallableInstance object without a module/qualified name of its own",
        "resolved-identity")
    # a method-wrapper has no __module__ at all
    assert identity_verdict("builtins", "int", (1).__add__) == Verdict(
        "deny", "builtins.int resolves to a builtins.method-wrapper object without a module/qualified name of its own",
        "resolved-identity")

    class NoNames:
        pass

    NoNames.__module__ = None  # type: ignore[assignment]
    v = identity_verdict("sklearn.linear_model._logistic", "LogisticRegression", NoNames)
    assert v.kind == "deny" and v.rule == "resolved-identity"


# ------------------------------------------------------------------ the lazily compiled tables
def test_allow_patterns_are_compiled_on_demand():
    pats = P.ALLOW_PATTERNS
    assert len(pats) == len(ALLOW_RULES)
    for (mod_re, name_re, reason), rule in zip(pats, ALLOW_RULES, strict=True):
        assert isinstance(mod_re, re.Pattern) and mod_re.pattern == rule.module
        assert name_re.pattern == rule.name and reason == rule.reason
    with pytest.raises(AttributeError) as exc:
        P.NO_SUCH_TABLE
    assert str(exc.value) == "module 'modelshield.artifacts.policy' has no attribute 'NO_SUCH_TABLE'"


def test_a_rule_is_compiled_on_first_use_and_kept():
    last = len(ALLOW_RULES) - 1
    for i in (0, last):
        P._RULE_COMPILED[i] = None  # as before its first use (it is compiled again below)
        mod_re, name_re = P._rule(i)
        assert (mod_re.pattern, name_re.pattern) == (ALLOW_RULES[i].module, ALLOW_RULES[i].name)
        assert P._RULE_COMPILED[i] == (mod_re, name_re)


def test_rules_compile_once_and_match_whole_strings():
    first = P._rule(0)
    assert P._rule(0) is first
    assert first[0].pattern == ALLOW_RULES[0].module and first[1].pattern == ALLOW_RULES[0].name
    last = P._rule(len(ALLOW_RULES) - 1)
    assert last[0].pattern == ALLOW_RULES[-1].module
    # fullmatch: a prefix or suffix of an admitted path/name is not enough
    assert P._allow_rule("sklearn.linear_model", "LogisticRegression") is _RULE["sklearn-class"]
    assert P._allow_rule("sklearnx.linear_model", "LogisticRegression") is None
    assert P._allow_rule("sklearn.metrics._classification", "accuracy_scorex") is None
    assert P._allow_rule("sklearn.metrics._classification", "accuracy_score") is _RULE["sklearn-metric"]
    assert P._allow_rule("xsklearn", "LogisticRegression") is None
    # the first matching rule wins (sklearn-class before sklearn-metric for a class-shaped name)
    assert P._allow_rule("sklearn.metrics._classification", "Scorer") is _RULE["sklearn-class"]


def test_trusted_and_ruled_modules():
    assert P._ruled_module("sklearn.linear_model._logistic")
    assert P._ruled_module("torch.nn.modules.linear")
    assert not P._ruled_module("collections")  # exact pairs only
    assert not P._ruled_module("sklearnx")
    assert not P._ruled_module("torch.utils")
    assert P._trusted_module("collections")  # a module of an exact pair
    assert P._trusted_module("sklearn.utils")
    assert not P._trusted_module("mypkg")
    assert not P._trusted_module("torch.utils")


def test_deny_lookup_takes_the_longest_listed_prefix():
    assert P._deny_lookup("logging.config.listen") == ("logging.config", DENY_PREFIXES["logging.config"])
    assert P._deny_lookup("logging.Logger") == ("logging", DENY_PREFIXES["logging"])
    assert P._deny_lookup("os") == ("os", DENY_PREFIXES["os"])
    assert P._deny_lookup("osx.thing") is None
    assert P._deny_lookup("collections.OrderedDict") is None
