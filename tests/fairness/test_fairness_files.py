"""The fairness engines over data files (the workflows of `fairness metrics|proxies`), without the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelshield.errors import DataError, FormatError, UserError
from modelshield.fairness.files import HEADLINE_DISPARITIES, decision_fairness, proxies_in_file
from modelshield.fairness.metrics import encode_groups, fairness_metrics


@pytest.fixture
def decisions(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    sex = rng.choice(["F", "M"], n)
    region = rng.choice(["n", "s"], n)
    y = rng.integers(0, 2, n)
    pred = np.where(sex == "M", rng.random(n) < 0.7, rng.random(n) < 0.3).astype(int)
    p = tmp_path / "dec.csv"
    pd.DataFrame({"y": y, "pred": pred, "sex": sex, "region": region}).to_csv(p, index=False)
    return p, y, pred, sex, region


def test_decision_fairness_equals_the_engine_per_attribute_and_intersection(decisions):
    p, y, pred, sex, region = decisions
    res = decision_fairness(p, target="y", prediction="pred", sensitive=["sex", "region"], n_boot=0,
                            min_group_size=1)
    by = {(r["attribute"], r["metric"]): r["value"] for r in res.disparities}
    for attrs, name in ((["sex"], "sex"), (["region"], "region"), (["sex", "region"], "sex&region")):
        ref = fairness_metrics(y, pred, encode_groups({"sex": sex, "region": region}, attrs), n_boot=0,
                               min_group_size=1)
        assert by[(name, "demographic_parity_difference")] == pytest.approx(
            ref.disparity["demographic_parity_difference"], abs=1e-12)
    assert {r["attribute"] for r in res.groups} == {"sex", "region", "sex&region"}
    assert {r["metric"] for r in res.headline()} == set(HEADLINE_DISPARITIES)
    assert res.to_dict() == {"groups": res.groups, "disparities": res.disparities}
    single = decision_fairness(p, target="y", prediction="pred", sensitive=["sex", "region"], n_boot=0,
                               intersections=False)
    assert {r["attribute"] for r in single.groups} == {"sex", "region"}


def test_decision_fairness_pos_label_is_read_as_a_label_value(decisions):
    p, *_ = decisions
    one = decision_fairness(p, target="y", prediction="pred", sensitive=["sex"], n_boot=0, pos_label="1")
    zero = decision_fairness(p, target="y", prediction="pred", sensitive=["sex"], n_boot=0, pos_label="0")
    rate = {(r["group"], "1"): r["selection_rate"] for r in one.groups} | \
        {(r["group"], "0"): r["selection_rate"] for r in zero.groups}
    assert rate[("F", "1")] == pytest.approx(1 - rate[("F", "0")])
    with pytest.raises(UserError, match="favourable outcome 'yes' is not a value of y") as ei:
        decision_fairness(p, target="y", prediction="pred", sensitive=["sex"], pos_label="yes")
    assert "--pos-label" in (ei.value.cli_hint or "") and "--" not in str(ei.value)


def test_decision_fairness_text_decisions_and_errors(tmp_path):
    p = tmp_path / "t.csv"
    pd.DataFrame({"y": ["no", "yes"] * 20, "pred": ["yes"] * 40, "g": ["a", "b"] * 20}).to_csv(p, index=False)
    res = decision_fairness(p, target="y", prediction="pred", sensitive=["g"], n_boot=0, pos_label="yes",
                            min_group_size=1)
    assert all(r["selection_rate"] == 1.0 for r in res.groups)
    with pytest.raises(DataError, match=r"^prediction column 'nope' is not in the data") as ei:
        decision_fairness(p, target="y", prediction="nope", sensitive=["g"])
    assert ei.value.cli_hint == "name the decisions with --prediction"
    empty = tmp_path / "e.csv"
    empty.write_text("y,pred,g\n")
    with pytest.raises(FormatError, match="no data rows"):
        decision_fairness(empty, target="y", prediction="pred", sensitive=["g"])


def test_proxies_in_file_finds_the_planted_proxy_and_needs_numbers(tmp_path):
    rng = np.random.default_rng(1)
    g = rng.integers(0, 2, 600)
    frame = pd.DataFrame({"proxy": g + rng.normal(0, 0.1, 600), "noise": rng.normal(size=600), "g": g,
                          "label": rng.integers(0, 2, 600)})
    p = tmp_path / "d.csv"
    frame.to_csv(p, index=False)
    rep = proxies_in_file(p, sensitive=["g"], target="label", seed=0)
    assert rep.strongest("g", 1)[0].feature == "proxy"
    assert {s.feature for s in rep.scores} == {"proxy", "noise"}  # the label and the attribute are not features
    frame["text"] = ["a"] * 600
    frame.to_csv(p, index=False)
    with pytest.raises(DataError, match="numeric features") as ei:
        proxies_in_file(p, sensitive=["g"], target="label")
    assert "--features" in (ei.value.cli_hint or "")
    assert proxies_in_file(p, sensitive=["g"], features=["proxy"]).strongest("g", 1)[0].feature == "proxy"
