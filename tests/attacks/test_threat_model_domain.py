"""Issue 15 B: the default threat model must not overstate robustness.

Families of generated data: the default picks the strongest threat model still valid for the data
(a pixel box for [0, 1] / [0, 255] data, the widened domain for tabular data, never the sample's
extremes alone), stated bounds follow a documented precedence, the threat model is stated in one
line, narrower-than-the-data choices are warned about, and an eps that covers the whole box is refused.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelshield.attacks.threat import (
    DOMAIN_MARGIN,
    ThreatModel,
    infer_domain,
    load_bounds_file,
    parse_box,
)
from modelshield.data.dataset import Dataset
from modelshield.errors import UserError


def _pixels(seed: int, shape: tuple[int, ...], n: int = 40, levels: int | None = None) -> np.ndarray:
    """Image-like values in [0, 1] whose border pixels are 0 in every row (as in digits)."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, *shape))
    if levels:
        X = np.round(X * levels) / levels
    flat = X.reshape(n, -1)
    flat[:, : max(1, flat.shape[1] // 8)] = 0.0  # never-lit pixels
    flat[:, -1] = np.minimum(flat[:, -1], 0.3)  # a pixel whose sample maximum is far below 1
    return flat.reshape(X.shape).astype(np.float32)


PIXEL_CASES = [(0, (64,), None), (1, (64,), 16), (2, (10,), None), (3, (1, 4, 4), None), (4, (3, 5, 5), 255)]


@pytest.mark.parametrize("seed,shape,levels", PIXEL_CASES)
def test_unit_interval_data_gets_the_unit_box_in_raw_units(seed, shape, levels):
    X = _pixels(seed, shape, levels=levels)
    d = int(np.prod(shape))
    tm = ThreatModel.for_dataset(Dataset(X=X, y=np.zeros(len(X))), eps=0.1)
    lo, hi = tm.bounds_arrays(d)
    assert tm.units == "raw" and tm.scale is None
    assert np.all(lo == 0.0) and np.all(hi == 1.0)  # not the sample's per-pixel min/max
    assert tm.mutable is None or tm.mutable.all()  # a pixel that is 0 in every row may still move
    assert tm.eps_limit(d) == pytest.approx(1.0)
    assert "inferred" in tm.bounds_source and "[0, 1]" in tm.describe()


@pytest.mark.parametrize("shape", [(64,), (100,), (1, 6, 6), (3, 4, 4)])
def test_whole_numbers_in_0_255_with_image_shape_get_the_byte_box(shape):
    rng = np.random.default_rng(len(shape))
    X = rng.integers(0, 200, size=(30, *shape)).astype(np.float64)
    X.reshape(30, -1)[:, 0] = 0
    tm = ThreatModel.for_dataset(Dataset(X=X, y=np.zeros(30)), eps=8.0)
    lo, hi = tm.bounds_arrays(int(np.prod(shape)))
    assert tm.units == "raw" and np.all(lo == 0) and np.all(hi == 255)
    assert tm.mutable is None or tm.mutable.all()


@pytest.mark.parametrize("d", [3, 8, 20])
def test_small_integer_tables_are_not_images(d):
    """Counts or codes in [0, 255] with few features are tabular: per-feature domain, std units."""
    X = np.random.default_rng(d).integers(0, 90, size=(50, d)).astype(np.float64)
    tm = ThreatModel.for_dataset(Dataset(X=X, y=np.zeros(50)), eps=0.1)
    assert tm.kind == "tabular-std" and tm.box is None


def _tabular(kind: str, seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(0, 1, (n, 5))
    if kind == "positive":
        return rng.lognormal(0, 1, (n, 5))
    if kind == "counts":
        return rng.poisson(4, (n, 5)).astype(np.float64)
    return np.column_stack([rng.normal(-50, 10, n), rng.uniform(0.2, 0.7, n), rng.normal(5, 1, n)])


@pytest.mark.parametrize("kind", ["normal", "positive", "counts", "mixed"])
@pytest.mark.parametrize("with_train", [False, True])
def test_tabular_domain_contains_the_observed_range_widened(kind, with_train):
    ev = _tabular(kind, 0, 40)
    tr = _tabular(kind, 1, 400) * 1.5 if with_train else None  # the training data reaches further
    train = Dataset(X=tr, y=np.zeros(len(tr))) if tr is not None else None
    tm = ThreatModel.for_dataset(Dataset(X=ev, y=np.zeros(40)), train=train, eps=0.1)
    d = ev.shape[1]
    lo, hi = tm.bounds_arrays(d)
    seen = np.vstack([ev] + ([tr] if tr is not None else []))
    omin, omax = seen.min(0), seen.max(0)
    assert np.all(lo <= omin) and np.all(hi >= omax)
    span = omax - omin
    for j in range(d):  # widened by the margin unless a natural bound (0, 1) stops it
        if omin[j] < 0:
            assert lo[j] <= omin[j] - DOMAIN_MARGIN * span[j] + 1e-9
        else:
            assert lo[j] >= 0 and (lo[j] == 0 or lo[j] <= omin[j] - DOMAIN_MARGIN * span[j] + 1e-9)
        if not (omin[j] >= 0 and omax[j] <= 1):
            assert hi[j] >= omax[j] + DOMAIN_MARGIN * span[j] - 1e-9
        else:
            assert hi[j] <= 1
    assert tm.units == "std"
    assert ("training" in tm.bounds_source) == with_train


def test_infer_domain_keeps_natural_bounds_and_whole_numbers():
    lo, hi = np.array([0.5, -3.0, 0.1, 2.0]), np.array([0.9, -1.0, 40.0, 9.0])
    wlo, whi = infer_domain(lo, hi, np.array([False, False, False, True]), 0.1)
    assert wlo[0] >= 0 and whi[0] <= 1  # a proportion stays a proportion
    assert whi[1] <= 0  # a non-positive feature stays non-positive
    assert wlo[2] == 0  # a non-negative one stays non-negative
    assert wlo[3] == np.floor(wlo[3]) and whi[3] == np.ceil(whi[3]) and whi[3] >= 9.7


# -- precedence: --bounds > bounds file > inferred ------------------------------------------
def _named(d: int = 6, seed: int = 0) -> Dataset:
    X = np.random.default_rng(seed).normal(0, 1, (30, d))
    return Dataset(X=X, y=np.zeros(30), feature_names=[f"c{j}" for j in range(d)])


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("form", ["mapping", "list"])
def test_bounds_file_sets_the_features_it_names_and_the_rest_is_inferred(tmp_path, fmt, form):
    ds = _named()
    inferred = ThreatModel.for_dataset(ds)
    if form == "mapping":
        doc = {"features": {"c1": {"lo": -5, "hi": 5}, 3: {"lo": -7}, "c4": {"hi": None}}}
    else:
        doc = {"features": [{"name": "c1", "lo": -5, "hi": 5}, {"index": 3, "lo": -7}, {"name": "c4", "hi": None}]}
    path = tmp_path / f"b.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps({"features": {str(k): v for k, v in doc["features"].items()}}
                                   if form == "mapping" else doc))
    else:
        import yaml

        path.write_text(yaml.safe_dump(doc))
    tm = ThreatModel.for_dataset(ds, bounds_file=path)
    lo, hi = tm.bounds_arrays(6)
    ilo, ihi = inferred.bounds_arrays(6)
    assert (lo[1], hi[1]) == (-5, 5)
    assert lo[3] == -7 and hi[3] == ihi[3]
    assert hi[4] == np.inf and lo[4] == ilo[4]
    for j in (0, 2, 5):
        assert (lo[j], hi[j]) == (ilo[j], ihi[j])
    assert str(path) in tm.bounds_source and "3 of 6" in tm.bounds_source


def test_flag_overrides_file_overrides_inferred(tmp_path):
    ds = _named()
    path = tmp_path / "b.yaml"
    path.write_text("default: {lo: -9, hi: 9}\nfeatures:\n  c0: {lo: -2, hi: 3}\n")
    from_file = ThreatModel.for_dataset(ds, bounds_file=path)
    lo, hi = from_file.bounds_arrays(6)
    assert (lo[0], hi[0]) == (-2, 3) and np.all(lo[1:] == -9) and np.all(hi[1:] == 9)
    both = ThreatModel.for_dataset(ds, bounds_file=path, bounds="-4,4")
    lo, hi = both.bounds_arrays(6)
    assert np.all(lo == -4) and np.all(hi == 4)
    assert "overrides the bounds file" in both.bounds_source
    assert both.units == "raw"  # one stated box for every feature: raw units by default
    assert ThreatModel.for_dataset(ds, bounds=[-4, 4], units="std").units == "std"


def test_bounds_file_types_and_mutability(tmp_path):
    ds = _named()
    path = tmp_path / "b.yaml"
    path.write_text("features:\n  c0: {mutable: false}\n  c2: {type: categorical}\n  c3: {type: integer}\n")
    tm = ThreatModel.for_dataset(ds, bounds_file=path)
    assert tm.mutable.tolist() == [False, True, False, True, True, True]
    assert tm.integer.tolist() == [False, False, False, True, False, False]


@pytest.mark.parametrize("text,needle", [
    (None, "not found"),
    ("features: [unclosed", "is not valid YAML: "),
    ("- 1\n- 2\n", "expected a mapping"),
    ("features:\n  nope: {lo: 0}\n", "unknown feature 'nope'"),
    ("features:\n  9: {lo: 0}\n", "out of range"),
    ("features:\n  c1: {lo: 3, hi: 1}\n", "above hi"),
    ("features:\n  c1: {lo: 0, top: 1}\n", "unknown key 'top'"),
    ("features:\n  c1: {type: float}\n", "type"),
    ("features:\n  c1: {lo: abc}\n", "finite number"),
    ("features:\n  c1: {mutable: maybe}\n", "mutable"),
    ("features:\n  c1: {lo: 0}\n  1: {hi: 2}\n", "given twice"),
    ("features:\n  - {lo: 0}\n", "name or index"),
    ("features:\n  c1: {lo: 100}\n", "lo above hi"),  # the inferred hi is below the stated lo
])
def test_bad_bounds_files_are_one_line_user_errors(tmp_path, text, needle):
    path = tmp_path / "b.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(UserError) as exc:
        ThreatModel.for_dataset(_named(), bounds_file=path)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("bad", ["1", "a,b", "1,0", "0,0", "nan,1", "0,inf", "1,2,3", [True, 2], [0], 5])
def test_bad_boxes_are_user_errors(bad):
    with pytest.raises(UserError, match="LO,HI"):
        parse_box(bad)


@pytest.mark.parametrize("good,box", [("0,1", (0.0, 1.0)), (" -1 , 1 ", (-1.0, 1.0)), ([0, 255], (0.0, 255.0))])
def test_boxes_parse(good, box):
    assert parse_box(good) == box


def test_load_bounds_file_by_index_without_names(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"features": {"0": {"lo": 1, "hi": 2}}}))
    spec = load_bounds_file(path, None, 3)
    assert spec.lower[0] == 1 and np.isnan(spec.lower[1])
    path.write_text(json.dumps({"features": {"x": {"lo": 1}}}))
    with pytest.raises(UserError, match="no feature names"):
        load_bounds_file(path, None, 3)


# -- warnings: narrower than the data's domain ------------------------------------------------
@pytest.mark.parametrize("box,narrower", [("0,1", True), ("-1,1", True), ("-100,100", False), ("-50,50", False)])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_stated_box_narrower_than_the_data_is_warned(box, narrower, seed):
    ds = _named(seed=seed)
    ds.X[0, 2] = 3.5  # some value outside [-1, 1] whatever the seed
    tm = ThreatModel.for_dataset(ds, bounds=box)
    lows = [m for lvl, m in tm.warnings if lvl == "low"]
    assert bool(lows) == narrower
    if narrower:
        assert "narrower than the data" in lows[0]


def test_inferred_tabular_bounds_warn_without_training_data_and_about_stuck_features():
    X = np.random.default_rng(0).normal(0, 1, (30, 4))
    X[:, 1] = 2.0  # one value in the whole sample
    ds = Dataset(X=X, y=np.zeros(30))
    tm = ThreatModel.for_dataset(ds)
    levels = [lvl for lvl, _ in tm.warnings]
    assert "info" in levels and "low" in levels
    assert any("take one value" in m for _, m in tm.warnings)
    with_train = ThreatModel.for_dataset(ds, train=Dataset(X=X + 1.0, y=np.zeros(30)))
    assert "info" not in [lvl for lvl, _ in with_train.warnings]
    assert ThreatModel.for_dataset(Dataset(X=_pixels(0, (64,)), y=np.zeros(40))).warnings == ()


# -- the one-line statement and the eps that covers the whole box ------------------------------
@pytest.mark.parametrize("kwargs,needles", [
    (dict(bounds="0,1", eps=0.05), ["L-inf", "eps=0.05", "raw units", "[0, 1]", "stated box"]),
    (dict(eps=0.3, norm="2"), ["L2", "eps=0.3", "standard deviations", "per-feature bounds", "inferred"]),
    (dict(eps=0.2, units="raw"), ["L-inf", "eps=0.2", "raw units", "inferred"]),
])
def test_the_threat_model_is_stated_in_one_line(kwargs, needles):
    tm = ThreatModel.for_dataset(_named(), **kwargs)
    line = tm.describe()
    assert "\n" not in line
    for n in needles:
        assert n in line, (n, line)
    d = tm.to_dict()
    json.dumps(d)
    assert d["description"] == line and d["bounds_source"] == tm.bounds_source and d["units"] == tm.units


@pytest.mark.parametrize("norm", ["inf", "2"])
@pytest.mark.parametrize("box", [(0.0, 1.0), (0.0, 255.0), (-3.0, 5.0)])
@pytest.mark.parametrize("d", [4, 64])
def test_an_eps_that_covers_the_whole_box_is_refused(norm, box, d):
    X = np.random.default_rng(d).uniform(box[0], box[1], (20, d))
    tm = ThreatModel.for_dataset(Dataset(X=X, y=np.zeros(20)), bounds=list(box), norm=norm)
    width = box[1] - box[0]
    limit = width if norm == "inf" else width * np.sqrt(d)
    assert tm.eps_limit(d) == pytest.approx(limit)
    tm.check_eps(d, 0.99 * limit)  # meaningful
    for e in (limit, 1.5 * limit):
        with pytest.raises(UserError, match="cannot be meaningful"):
            tm.check_eps(d, e, what="--eps")


def test_eps_limit_in_std_units_and_unbounded_features():
    ds = _named()
    tm = ThreatModel.for_dataset(ds)
    lo, hi = tm.bounds_arrays(6)
    assert tm.eps_limit(6) == pytest.approx(float(np.max((hi - lo) / tm.scale)))
    assert ThreatModel(eps=1e6).eps_limit(6) == np.inf  # no bounds: nothing to cover
