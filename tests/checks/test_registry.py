"""The check registry, including a third-party check registered through a real entry point."""

from __future__ import annotations

import sys
import textwrap

import pytest

from modelshield.checks.registry import BUILTIN_CHECKS, available_checks, get_check, load_errors
from modelshield.errors import UserError


def test_every_builtin_check_loads():
    checks = available_checks()
    assert load_errors() == {}
    assert list(checks)[: len(BUILTIN_CHECKS)] == list(BUILTIN_CHECKS)


def test_unknown_check_is_a_user_error():
    with pytest.raises(UserError, match="unknown check 'nope'"):
        get_check("nope")


@pytest.fixture
def plugin_dist(tmp_path, monkeypatch):
    """Install a tiny distribution (module + dist-info with entry_points.txt) on sys.path."""
    (tmp_path / "ms_test_plugin.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from typing import ClassVar
        from modelshield.checks.base import Check
        from modelshield.findings import Finding, Severity

        @dataclass(kw_only=True)
        class HelloCheck(Check):
            name: ClassVar[str] = "hello"
            title: ClassVar[str] = "Hello plug-in"
            needs_data: ClassVar[bool] = False
            greeting: str = "hi"

            def _run(self, ctx):
                r = self.result(metrics={"n_classes": len(ctx.model.classes)})
                r.add(Finding(check=self.name, severity=Severity.LOW, title=self.greeting))
                return r

        class NotACheck:
            pass
    '''))
    (tmp_path / "ms_test_plugin_old.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from typing import ClassVar
        from modelshield.checks.base import Check

        @dataclass(kw_only=True)
        class OldStyleCheck(Check):  # written against the old interface: overrides the final run()
            name: ClassVar[str] = "oldstyle"
            needs_data: ClassVar[bool] = False

            def run(self, ctx):
                return self.result()
    '''))
    info = tmp_path / "ms_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ms-test-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[modelshield.checks]\nhello = ms_test_plugin:HelloCheck\nbroken = ms_test_plugin:NotACheck\n"
        "missing = ms_test_plugin_absent:Foo\noldstyle = ms_test_plugin_old:OldStyleCheck\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("ms_test_plugin", None)
    sys.modules.pop("ms_test_plugin_old", None)


def test_entry_point_plugin_runs_in_an_audit(plugin_dist, sk_logreg, breast_cancer):
    import modelshield as ms

    checks = available_checks()
    assert "hello" in checks
    errors = load_errors()
    assert "not a modelshield Check" in errors["broken"] and "ModuleNotFoundError" in errors["missing"]
    _, Xte, _, yte = breast_cancer
    report = ms.audit(sk_logreg, ms.Dataset(X=Xte, y=yte), checks=["hello"], options={"hello": {"greeting": "hey"}})
    res = report.runs[0].result("hello")
    assert res.metrics == {"n_classes": 2} and res.findings[0].title == "hey"
    assert res.params == {"greeting": "hey"}


def test_unknown_option_is_rejected(plugin_dist):
    cls = available_checks()["hello"]
    with pytest.raises(UserError, match="unknown option 'colour'"):
        cls.from_options({"colour": "red"})


def test_a_plugin_overriding_run_is_a_one_line_load_error(plugin_dist, sk_logreg, breast_cancer):
    import modelshield as ms

    checks = available_checks()
    assert "oldstyle" not in checks and "hello" in checks  # the broken plug-in does not take the others down
    err = load_errors()["oldstyle"]
    assert err.startswith("TypeError: ms_test_plugin_old.OldStyleCheck overrides Check.run()")
    assert "_run(self, ctx)" in err and "\n" not in err
    _, Xte, _, yte = breast_cancer
    with pytest.raises(UserError, match=r"unknown check 'oldstyle' \(it failed to load: TypeError: .*_run"):
        ms.audit(sk_logreg, ms.Dataset(X=Xte, y=yte), checks=["oldstyle"])



def test_check_needs_lists_capabilities_then_inputs():
    from dataclasses import dataclass
    from typing import ClassVar

    from modelshield.checks.base import Check
    from modelshield.checks.registry import available_checks, check_needs
    from modelshield.models.base import Capability

    @dataclass(kw_only=True)
    class Needy(Check):
        name: ClassVar[str] = "needy"
        requires: ClassVar[frozenset] = frozenset({Capability.PROBABILITIES, Capability.GRADIENTS})
        needs_labels: ClassVar[bool] = False
        needs_train: ClassVar[bool] = True
        needs_sensitive: ClassVar[bool] = True

        def _run(self, ctx):
            return self.result()

    assert check_needs(Needy) == ["gradients", "probabilities", "data", "train", "sensitive"]
    for name, cls in available_checks().items():
        needs = check_needs(cls)
        assert needs[: len(cls.requires)] == sorted(c.value for c in cls.requires), name
        assert needs[len(cls.requires):] == [w for w, f in (("data", cls.needs_data), ("labels", cls.needs_labels),
                                             ("train", cls.needs_train), ("sensitive", cls.needs_sensitive)) if f]
