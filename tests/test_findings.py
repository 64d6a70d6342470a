from __future__ import annotations

import json

import numpy as np
import pytest

from modelshield.findings import CheckResult, Figure, Finding, Series, Severity


def test_severity_is_ordered_and_parses():
    assert Severity.INFO < Severity.LOW < Severity.MEDIUM < Severity.HIGH < Severity.CRITICAL
    assert max([Severity.LOW, Severity.CRITICAL, Severity.MEDIUM]) is Severity.CRITICAL
    assert Severity.parse("HIGH") is Severity.HIGH
    with pytest.raises(ValueError, match="expected one of"):
        Severity.parse("severe")


def test_finding_is_frozen_keyword_only_and_round_trips():
    f = Finding(check="x", severity="high", title="Bad thing", evidence={"v": np.float64(0.5), "a": np.arange(3)})
    assert f.severity is Severity.HIGH
    assert f.rule_id == "x.bad-thing"
    with pytest.raises(AttributeError):
        f.title = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Finding("x", Severity.LOW, "t")  # type: ignore[misc]
    d = json.loads(json.dumps(f.to_dict()))
    assert d["evidence"] == {"v": 0.5, "a": [0, 1, 2]}
    assert Finding.from_dict(d).to_dict() == d


def test_nan_metrics_become_null_in_json():
    r = CheckResult(check="c", metrics={"a": float("nan"), "b": 1.5})
    assert r.to_dict()["metrics"] == {"a": None, "b": 1.5}


def test_merge_combines_partial_results():
    a = CheckResult(check="c", findings=[Finding(check="c", severity="low", title="a")], metrics={"x": 1})
    b = CheckResult(check="c", findings=[Finding(check="c", severity="critical", title="b")], metrics={"y": 2})
    m = a.merge(b)
    assert [f.title for f in m.findings] == ["a", "b"]
    assert m.metrics == {"x": 1, "y": 2}
    assert m.max_severity is Severity.CRITICAL


def test_figure_validates_kind():
    with pytest.raises(ValueError):
        Figure(title="t", kind="pie", series=[])
    fig = Figure(title="t", kind="line", series=[Series(name="s", x=[1, 2], y=[0.5, np.float32(0.25)])])
    assert fig.to_dict()["series"][0]["y"] == [0.5, 0.25]
