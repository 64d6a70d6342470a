"""The benchmarks' paired-measurement helper: interleaved order, per-round ratios, no best-of-N."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("paired", Path(__file__).parents[2] / "benchmarks" / "paired.py")
paired_mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
sys.modules["paired"] = paired_mod
spec.loader.exec_module(paired_mod)  # type: ignore[union-attr]


class FakeClock:
    """Each case advances the clock by a scripted duration, so ratios are exact."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_rounds_alternate_order_and_ratios_are_per_round():
    clock = FakeClock()
    calls: list[str] = []
    durations = {"base": [1.0, 2.0, 1.0, 4.0, 1.0, 1.0], "x": [1.5, 3.0, 2.0, 4.0, 1.2, 9.0]}

    def case(name):
        def run():
            calls.append(name)
            clock.t += durations[name][len([c for c in calls if c == name]) - 1]
            return name
        return run

    res = paired_mod.paired({"base": case("base"), "x": case("x")}, baseline="base", rounds=5, warmup=1,
                            timer=clock)
    # warm-up forward, then rounds forward, reversed, forward, reversed, forward
    assert calls == ["base", "x", "base", "x", "x", "base", "base", "x", "x", "base", "base", "x"]
    assert res.ratios("x") == pytest.approx([1.5, 2.0, 1.0, 1.2, 9.0])
    s = res.summary("x")
    assert s["median"] == pytest.approx(1.5) and s["min"] == pytest.approx(1.0) and s["max"] == pytest.approx(9.0)
    assert "1.50 [1.00-9.00]" in res.table()
    d = res.to_dict()
    assert d["rounds"] == 5 and d["baseline"] == "base" and "machine" in d


def test_refuses_too_few_rounds_and_unknown_baseline():
    with pytest.raises(ValueError, match="at least 5"):
        paired_mod.paired({"a": lambda: None}, baseline="a", rounds=3)
    with pytest.raises(ValueError, match="baseline"):
        paired_mod.paired({"a": lambda: None}, baseline="b")
