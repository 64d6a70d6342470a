"""The results cache: keyed by content and options, corrupt databases are one line, PostgreSQL by URL."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from modelshield.errors import DataError
from modelshield.scale.cache import ResultCache, cache_url
from modelshield.scale.registry import unit_key
from modelshield.scale.units import DataSpec, WorkUnit

pytest.importorskip("sqlalchemy")

BASE = WorkUnit(label="m", check="baseline", model_path="/m.pkl", artifacts=("/w.bin",),
                data=DataSpec(data="/d.csv", target="y"), policy={"thresholds": {}, "checks": {}}, seed=0)
DIGESTS = {"/m.pkl": "a" * 64, "/w.bin": "b" * 64, "/d.csv": "c" * 64}


@pytest.mark.parametrize("change", [
    {"digests": {"/m.pkl": "f" * 64}},
    {"digests": {"/w.bin": "f" * 64}},
    {"digests": {"/d.csv": "f" * 64}},
    {"unit": {"check": "robustness"}},
    {"unit": {"seed": 1}},
    {"unit": {"quick": True}},
    {"unit": {"trust": True}},
    {"unit": {"options": {"baseline": {"x": 1}}}},
    {"unit": {"policy": {"thresholds": {"baseline.x": 0.5}, "checks": {}}}},
    {"unit": {"policy": {"thresholds": {}, "checks": {"baseline": {"x": 2}}}}},
    {"unit": {"data": DataSpec(data="/d.csv", target="z")}},
    {"version": "9.9.9"},
])
def test_the_key_changes_with_every_input_that_changes_a_result(change, monkeypatch):
    before = unit_key(BASE, DIGESTS)
    assert unit_key(BASE, dict(DIGESTS)) == before  # stable
    if "version" in change:
        monkeypatch.setattr("modelshield.scale.registry.__version__", change["version"])
    after = unit_key(dataclasses.replace(BASE, **change.get("unit", {})), DIGESTS | change.get("digests", {}))
    assert after != before


def test_the_key_ignores_what_does_not_change_a_result():
    other_check_opts = dataclasses.replace(BASE, options={"robustness": {"eps": [0.1]}},
                                           policy={"thresholds": {}, "checks": {"robustness": {"eps": [0.2]}},
                                                   "limits": ["baseline.accuracy >= 0.9"], "fail_on": "low"})
    assert unit_key(other_check_opts, DIGESTS) == unit_key(BASE, DIGESTS)
    assert unit_key(dataclasses.replace(BASE, label="renamed"), DIGESTS) == unit_key(BASE, DIGESTS)


def test_put_get_round_trip_and_misses(tmp_path):
    c = ResultCache(tmp_path / "c.sqlite")
    outcome = {"result": {"check": "baseline", "status": "passed", "metrics": {"accuracy": 0.9}}, "model": {}}
    c.put("k1", check="baseline", model="m", version="1", outcome=outcome)
    c.put("k1", check="baseline", model="m", version="1", outcome=outcome)  # replacing is fine
    assert c.get_many(["k1", "k2"]) == {"k1": outcome}
    assert len(c) == 1
    c.close()
    assert ResultCache(str(tmp_path / "c.sqlite")).get_many(["k1"]) == {"k1": outcome}  # it persists


@pytest.mark.parametrize("content", [b"garbage" * 100, b"SQLite format 3\x00" + b"\xff" * 2000])
def test_a_corrupt_cache_is_one_line_that_suggests_no_cache(tmp_path, content):
    p = tmp_path / "c.sqlite"
    p.write_bytes(content)
    with pytest.raises(DataError, match=r"corrupt or not a modelshield cache; delete it$") as info:
        ResultCache(p)
    assert "\n" not in str(info.value) and info.value.cli_hint == "or re-run with --no-cache"


def test_a_missing_cache_folder_is_a_user_error(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        ResultCache(tmp_path / "no" / "c.sqlite")


def test_urls():
    assert cache_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert cache_url("sqlite:///x.db") == "sqlite:///x.db"
    assert cache_url("rel/c.sqlite").startswith("sqlite:////")


@pytest.mark.postgres
def test_postgresql_cache_round_trip():
    pytest.importorskip("psycopg")
    import sqlalchemy as sa

    url = "postgresql://postgres@127.0.0.1:5432/test"
    try:
        c = ResultCache(url)
    except DataError as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    key = uuid.uuid4().hex
    outcome = {"result": {"check": "artifact", "status": "findings"}, "model": {"path": "/x"}}
    try:
        c.put(key, check="artifact", model="x", version="1", outcome=outcome)
        assert ResultCache(url).get_many([key, uuid.uuid4().hex]) == {key: outcome}
    finally:
        with c.engine.begin() as conn:
            conn.execute(sa.delete(c.table).where(c.table.c.key == key))
        c.close()
