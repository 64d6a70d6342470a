"""Exact behaviour of the token buckets, daily budgets, throttles and defence-state stores.

Written against the mutants of ``scripts/mutation.sh limits`` that the gateway-level tests let survive:
refill arithmetic and its boundaries, the refusals' reasons, retry times and messages, throttled rates and
buckets, the day arithmetic, and the Redis wrappers (against a recording client: no server needed).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from datetime import datetime, timezone

import pytest

import modelshield.serve.limits as limits_mod
from modelshield.errors import MissingExtraError
from modelshield.serve.limits import (
    Decision,
    FileStateStore,
    Limiter,
    MemoryBackend,
    RedisBackend,
    RedisStateStore,
    Throttle,
    make_backend,
)

DAY = 86400.0
T0 = 20_000 * DAY  # a UTC midnight (2024-10-04)


class Clock:
    def __init__(self, t: float = T0 + 3600.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# -- the memory backend's bucket -------------------------------------------------------------------


def test_a_new_bucket_is_full_and_refills_at_rate_up_to_burst():
    b = MemoryBackend()
    assert b.take("k", rate=2.0, burst=10.0, cost=10.0, now=100.0) == (True, 0.0, 0.0)
    assert b.take("k", rate=2.0, burst=10.0, cost=2.0, now=101.5) == (True, 1.0, 0.0)  # 3 tokens back
    assert b.take("k", rate=2.0, burst=10.0, cost=1.0, now=1000.0) == (True, 9.0, 0.0)  # capped at burst
    assert b.take("other", rate=2.0, burst=4.0, cost=4.0, now=1000.0) == (True, 0.0, 0.0)


def test_a_refusal_says_how_long_until_the_cost_is_back_and_keeps_the_refill():
    b = MemoryBackend()
    assert b.take("k", rate=4.0, burst=2.0, cost=2.0, now=10.0)[0]
    assert b.take("k", rate=4.0, burst=2.0, cost=2.0, now=10.25) == (False, 1.0, 0.25)  # 1 token, 1 missing at 4/s
    # the refused take credited the refill up to its time: 0.25 s later the bucket holds 2
    assert b.take("k", rate=4.0, burst=2.0, cost=2.0, now=10.5) == (True, 0.0, 0.0)


def test_a_take_of_exactly_the_tokens_left_is_allowed():
    b = MemoryBackend()
    assert b.take("k", rate=1.0, burst=3.0, cost=1.5, now=0.0) == (True, 1.5, 0.0)
    assert b.take("k", rate=1.0, burst=3.0, cost=1.5, now=0.0) == (True, 0.0, 0.0)
    assert b.take("k", rate=1.0, burst=3.0, cost=0.5, now=0.0) == (False, 0.0, 0.5)


def test_a_clock_that_steps_back_refills_nothing_and_takes_nothing():
    b = MemoryBackend()
    assert b.take("k", rate=1.0, burst=5.0, cost=3.0, now=100.0) == (True, 2.0, 0.0)
    assert b.take("k", rate=1.0, burst=5.0, cost=1.0, now=90.0) == (True, 1.0, 0.0)
    # the bucket now counts from 90: 2 s later two tokens are back
    assert b.take("k", rate=1.0, burst=5.0, cost=3.0, now=92.0) == (True, 0.0, 0.0)


# -- the memory backend's day counters -------------------------------------------------------------


def test_a_budget_can_be_spent_exactly_and_a_refusal_adds_nothing():
    b = MemoryBackend()
    assert b.usage("k", "d1") == 0
    assert b.spend("k", "d1", amount=6, budget=10) == (True, 6)
    assert b.spend("k", "d1", amount=5, budget=10) == (False, 6)
    assert b.spend("k", "d1", amount=4, budget=10) == (True, 10)
    assert b.usage("k", "d1") == 10 and b.usage("k", "d2") == 0 and b.usage("j", "d1") == 0
    assert b.spend("k", "d2", amount=10, budget=10) == (True, 10)


def test_day_counters_of_other_days_are_dropped_past_100000_entries():
    b = MemoryBackend()
    b._days = {(f"k{i}", "old"): 1 for i in range(100_000)}
    b._days[("k", "today")] = 3
    assert len(b._days) == 100_001
    assert b.spend("k", "today", amount=1, budget=10) == (True, 4)
    assert b._days == {("k", "today"): 4}
    c = MemoryBackend()
    c._days = {(f"k{i}", "old"): 1 for i in range(100_000)}
    assert c.spend("k", "today", amount=1, budget=10) == (True, 1)
    assert len(c._days) == 100_001  # at the bound itself, nothing is dropped


def test_memory_state_round_trips_and_import_keeps_the_larger_count():
    b = MemoryBackend()
    b.take("k", rate=1.0, burst=5.0, cost=2.0, now=50.0)
    b.spend("k", "d", amount=4, budget=10)
    state = json.loads(json.dumps(b.export_state()))
    assert state == {"buckets": {"k": [3.0, 50.0]}, "days": [["k", "d", 4]]}
    c = MemoryBackend()
    c.spend("k", "d", amount=7, budget=10)
    c.spend("j", "d", amount=1, budget=10)
    c.import_state({"buckets": {"k": ["3", 50]}, "days": [["k", "d", "4"], ["j", "d", 2], [5, 6, 7]]})
    assert c._buckets == {"k": (3.0, 50.0)} and isinstance(c._buckets["k"][0], float)
    assert c.usage("k", "d") == 7 and c.usage("j", "d") == 2 and c.usage("5", "6") == 7
    assert c.take("k", rate=1.0, burst=5.0, cost=3.0, now=50.0) == (True, 0.0, 0.0)
    c.import_state({})  # nothing to restore
    assert c.usage("k", "d") == 7
    c.import_state({"days": [["z", "d", 0]]})
    assert c._days[("z", "d")] == 0


# -- the Redis backend and state store, against a recording client ----------------------------------


class FakeRedis:
    """Records script calls and answers with the values queued in ``replies``."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.replies: list = []
        self.store: dict = {}
        self.scripts: list[str] = []

    def register_script(self, source):
        self.scripts.append(source)
        name = "take" if "HMGET" in source else "spend"

        def run(*, keys, args):
            self.calls.append((name, list(keys), list(args)))
            return self.replies.pop(0)

        return run

    def ping(self):
        return 1

    def get(self, key):
        self.calls.append(("get", key))
        return self.store.get(key)

    def hgetall(self, key):
        self.calls.append(("hgetall", key))
        return self.store.get(key, {})

    def hset(self, key, *, mapping):
        self.calls.append(("hset", key, dict(mapping)))

    def hdel(self, key, *names):
        self.calls.append(("hdel", key, *names))


def test_redis_take_passes_the_bucket_key_and_arguments_and_reads_the_reply():
    fake = FakeRedis()
    rb = RedisBackend(client=fake, prefix="p:")
    assert rb.client is fake and rb.prefix == "p:" and fake.scripts == [limits_mod._TAKE_LUA, limits_mod._SPEND_LUA]
    fake.replies = [[1, b"2.5"], [0, b"0.25"]]
    assert rb.take("k1", rate=2.0, burst=3.0, cost=1.0, now=1700000000.123456) == (True, 2.5, 0.0)
    assert rb.take("k1", rate=2.0, burst=3.0, cost=1.5, now=7.0) == (False, 0.25, 0.625)
    assert fake.calls == [("take", ["p:b:k1"], [2.0, 3.0, 1.0, "1700000000.123456"]),
                          ("take", ["p:b:k1"], [2.0, 3.0, 1.5, "7.0"])]


def test_redis_spend_and_usage_use_the_day_key():
    fake = FakeRedis()
    rb = RedisBackend(client=fake, prefix="p:")
    fake.replies = [[1, 7], [0, b"7"]]
    assert rb.spend("k", "2024-10-04", amount=3, budget=10) == (True, 7)
    assert rb.spend("k", "2024-10-04", amount=4, budget=10) == (False, 7)
    assert fake.calls == [("spend", ["p:d:2024-10-04:k"], [3, 10]), ("spend", ["p:d:2024-10-04:k"], [4, 10])]
    fake.store["p:d:2024-10-04:k"] = b"7"
    assert rb.usage("k", "2024-10-04") == 7
    assert rb.usage("k", "2024-10-05") == 0
    assert rb.ping() is True and rb.export_state() == {}
    rb.import_state({"buckets": {"k": [1, 2]}})  # a no-op: the state lives in Redis
    assert fake.calls[-1] == ("get", "p:d:2024-10-05:k")


def test_redis_defaults_without_a_server():
    pytest.importorskip("redis")
    rb = RedisBackend()  # connects lazily: nothing is sent yet
    assert rb.prefix == "modelshield:limits:"
    kw = rb.client.connection_pool.connection_kwargs
    assert (kw["host"], kw["port"], kw["db"]) == ("127.0.0.1", 6379, 0)
    assert kw["socket_timeout"] == 2.0 and kw["socket_connect_timeout"] == 2.0
    assert RedisBackend(client=FakeRedis()).prefix == "modelshield:limits:"
    st = RedisStateStore()
    assert st.key == "modelshield:limits:defence"
    assert st.client.connection_pool.connection_kwargs["host"] == "127.0.0.1"
    assert RedisStateStore(client=FakeRedis()).key == "modelshield:limits:defence"
    other = RedisStateStore("redis://10.1.2.3:6390/4", prefix="x:")
    kw = other.client.connection_pool.connection_kwargs
    assert (kw["host"], kw["port"], kw["db"], other.key) == ("10.1.2.3", 6390, 4, "x:defence")


def test_without_the_redis_package_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis -> ImportError
    with pytest.raises(MissingExtraError) as limits:
        RedisBackend()
    assert str(limits.value) == "redis is needed for Redis-backed limits: pip install 'modelshield[serve]'"
    with pytest.raises(MissingExtraError) as state:
        RedisStateStore()
    assert str(state.value) == "redis is needed for Redis-backed state: pip install 'modelshield[serve]'"


def test_make_backend():
    assert isinstance(make_backend("memory"), MemoryBackend)
    pytest.importorskip("redis")
    rb = make_backend("redis", "redis://127.0.0.9:6400/2", prefix="q:")
    kw = rb.client.connection_pool.connection_kwargs
    assert isinstance(rb, RedisBackend) and rb.prefix == "q:" and (kw["host"], kw["port"], kw["db"]) == (
        "127.0.0.9", 6400, 2)
    assert make_backend("redis", "redis://127.0.0.9:6400/2").prefix == "modelshield:limits:"
    with pytest.raises(ValueError) as info:
        make_backend("memcached")
    assert str(info.value) == "unknown limits backend 'memcached'"


def test_redis_state_store_reads_writes_and_deletes_json_fields():
    fake = FakeRedis()
    st = RedisStateStore(client=fake, prefix="p:")
    fake.store["p:defence"] = {b"bad": b"{not json", b"a": b'{"x":1}', "b": "[1,2]"}
    assert st.get_all() == {"a": {"x": 1}, "b": [1, 2]}
    st.set({})
    st.delete()
    assert fake.calls == [("hgetall", "p:defence")]  # nothing to write: no round trip
    st.set({"t": {"rate": 0.5, "rows": [1, 2]}, "n": 3})
    st.delete("t", "n")
    assert fake.calls[1:] == [("hset", "p:defence", {"t": '{"rate":0.5,"rows":[1,2]}', "n": "3"}),
                              ("hdel", "p:defence", "t", "n")]


# -- throttles, days ------------------------------------------------------------------------------


def test_throttle_defaults_and_views():
    lim = Limiter(MemoryBackend(), rate_per_s=5, burst=5, daily_rows=100)
    assert (lim.throttle_rows_per_s, lim.throttle_rows_burst) == (10.0, 50.0)
    assert lim.throttle("a", 0.5) == Throttle(0.5, 10.0, 50.0)
    assert lim.throttle("b", 0.2, rows_per_s=3.0, rows_burst=6.0) == Throttle(0.2, 3.0, 6.0)
    assert Throttle(0.2, 3.0, 6.0).as_dict() == {"rate_per_s": 0.2, "rows_per_s": 3.0, "rows_burst": 6.0}
    assert lim.throttled == {"a": 0.5, "b": 0.2}
    assert lim.throttles() == {"a": Throttle(0.5, 10.0, 50.0), "b": Throttle(0.2, 3.0, 6.0)}
    lim.unthrottle("a")
    lim.unthrottle("never")
    assert lim.throttled == {"b": 0.2}
    custom = Limiter(MemoryBackend(), rate_per_s=5, burst=5, daily_rows=100, throttle_rows_per_s=1.5,
                     throttle_rows_burst=4.0)
    assert custom.throttle("c", 1.0) == Throttle(1.0, 1.5, 4.0)


def test_the_rows_bucket_defaults_to_the_request_burst_and_at_least_one_row():
    assert Limiter(MemoryBackend(), rate_per_s=1, burst=7, daily_rows=1).rows_burst == 7.0
    assert Limiter(MemoryBackend(), rate_per_s=1, burst=0.5, daily_rows=1).rows_burst == 1.0
    assert Limiter(MemoryBackend(), rate_per_s=1, burst=7, daily_rows=1, rows_burst=3.0).rows_burst == 3.0


def test_days_are_utc_and_cached_with_a_bound(monkeypatch):
    monkeypatch.setattr(limits_mod, "_DAYS", {})  # days formatted by earlier tests would hide a wrong format
    assert limits_mod._day(0.0) == "1970-01-01"
    assert limits_mod._day(DAY - 0.001) == "1970-01-01"
    assert limits_mod._day(DAY) == "1970-01-02"
    assert limits_mod._day(T0 + 5.5) == "2024-10-04"
    assert limits_mod._day(-1.0) == "1969-12-31"
    far = 90_000 * DAY + 7.0  # the year 2216
    assert limits_mod._day(far) == datetime.fromtimestamp(far, tz=timezone.utc).date().isoformat()
    # a day is formatted once, then read from the cache
    monkeypatch.setattr(limits_mod, "_DAYS", {3: "cached"})
    assert limits_mod._day(3 * DAY + 1.0) == "cached"
    cache: dict[int, str] = {}
    monkeypatch.setattr(limits_mod, "_DAYS", cache)
    for d in range(65):
        limits_mod._day(d * DAY)
    assert len(cache) == 65  # up to 65 days are kept
    limits_mod._day(65 * DAY)
    assert cache == {65: "1970-03-07"}  # the 66th clears the cache first


def test_seconds_until_the_next_utc_midnight():
    assert limits_mod._midnight_after(T0) == DAY
    assert limits_mod._midnight_after(T0 + 100.0) == DAY - 100.0
    assert limits_mod._midnight_after(T0 - 0.5) == 0.5


# -- admit ----------------------------------------------------------------------------------------


def test_admit_takes_one_token_and_says_when_to_retry():
    clock = Clock()
    lim = Limiter(MemoryBackend(), rate_per_s=4.0, burst=2.0, daily_rows=10, clock=clock)
    assert lim.admit("k") == Decision(True)
    assert lim.admit("k") == Decision(True)
    assert lim.admit("k") == Decision(False, "rate", retry_after_s=0.25, tokens_left=0.0,
                                      message="rate limit exceeded")
    clock.t += 0.125  # half a token back
    assert lim.admit("k") == Decision(False, "rate", retry_after_s=0.125, tokens_left=0.5,
                                      message="rate limit exceeded")
    # a per-key rate replaces the default one
    assert lim.admit("j", rate=1.0).allowed and lim.admit("j", rate=1.0).allowed
    assert lim.admit("j", rate=1.0).retry_after_s == 1.0


def test_a_throttled_key_gets_the_lower_rate_and_a_bucket_of_one():
    clock = Clock()
    lim = Limiter(MemoryBackend(), rate_per_s=4.0, burst=10.0, daily_rows=10, clock=clock)
    lim.throttle("k", 0.5)
    assert lim.admit("k").allowed
    assert lim.admit("k") == Decision(False, "rate", retry_after_s=2.0, tokens_left=0.0,
                                      message="rate limit exceeded")
    # a throttle above the key's own rate does not raise it
    lim.throttle("j", 100.0)
    assert lim.admit("j", rate=0.25).allowed
    assert lim.admit("j", rate=0.25).retry_after_s == 4.0
    clock.t += 4.0
    assert lim.admit("j", rate=0.25).allowed and not lim.admit("j", rate=0.25).allowed  # bucket of 1


# -- bytes ----------------------------------------------------------------------------------------


def test_charge_bytes_against_the_daily_byte_budget():
    clock = Clock(T0 + DAY - 10.0)
    backend = MemoryBackend()
    lim = Limiter(backend, rate_per_s=1, burst=1, daily_rows=10, daily_bytes=1000, clock=clock)
    assert lim.charge_bytes("k", 600) == Decision(True)
    assert lim.charge_bytes("k", 400.7) == Decision(True)  # counted as whole bytes
    assert backend.usage("bytes:k", "2024-10-04") == 1000 and backend.usage("k", "2024-10-04") == 0
    assert lim.charge_bytes("k", 1) == Decision(False, "bytes", retry_after_s=10.0,
                                                message="daily byte budget exhausted (1000 of 1000 bytes used)")
    # a per-key budget replaces the default one
    assert lim.charge_bytes("j", 1500, daily_bytes=2000).allowed
    assert lim.charge_bytes("j", 501, daily_bytes=2000).message == \
        "daily byte budget exhausted (1500 of 2000 bytes used)"


def test_without_a_byte_budget_nothing_is_counted():
    backend = MemoryBackend()
    lim = Limiter(backend, rate_per_s=1, burst=1, daily_rows=10, clock=Clock())
    assert lim.charge_bytes("k", 10**12) == Decision(True)
    assert backend._days == {}


# -- rows -----------------------------------------------------------------------------------------


def test_charge_rows_spends_the_daily_budget_and_reports_the_usage():
    clock = Clock(T0 + 100.0)
    backend = MemoryBackend()
    lim = Limiter(backend, rate_per_s=1, burst=1, daily_rows=10, clock=clock)
    assert lim.charge_rows("k", 4) == Decision(True, rows_used_today=4)
    assert lim.charge_rows("k", 6) == Decision(True, rows_used_today=10)
    assert lim.charge_rows("k", 1) == Decision(False, "budget", retry_after_s=DAY - 100.0, rows_used_today=10,
                                               message="daily query budget exhausted")
    assert lim.charge_rows("j", 15, daily_rows=20) == Decision(True, rows_used_today=15)
    assert backend._buckets == {}  # no rows/s limit: no rows bucket


def test_a_rows_bucket_meters_batches_by_their_size():
    clock = Clock()
    backend = MemoryBackend()
    lim = Limiter(backend, rate_per_s=1, burst=1, daily_rows=1000, rows_per_s=2.0, rows_burst=8.0, clock=clock)
    assert lim.charge_rows("k", 8) == Decision(True, rows_used_today=8)
    assert lim.charge_rows("k", 3) == Decision(False, "rows", retry_after_s=1.5, tokens_left=0.0,
                                               message="row rate limit exceeded (2 rows/s)")
    assert backend.usage("k", "2024-10-04") == 8  # a refused batch is not counted
    clock.t += 1.5
    assert lim.charge_rows("k", 3) == Decision(True, rows_used_today=11)
    assert backend._buckets["rows:k"] == (0.0, clock.t)
    # a batch bigger than the bucket can never pass: said at once, with no token taken
    assert lim.charge_rows("j", 9) == Decision(
        False, "rows", retry_after_s=4.0,
        message="batch of 9 rows exceeds this key's row allowance of 8 rows; send smaller batches")
    assert "rows:j" not in backend._buckets
    # a refusal reports the tokens left
    assert lim.charge_rows("n", 5).allowed
    assert lim.charge_rows("n", 4) == Decision(False, "rows", retry_after_s=0.5, tokens_left=3.0,
                                               message="row rate limit exceeded (2 rows/s)")
    # a per-key row rate replaces the default one
    assert lim.charge_rows("m", 8, rows_per_s=0.5).allowed
    assert lim.charge_rows("m", 1, rows_per_s=0.5).message == "row rate limit exceeded (0.5 rows/s)"


def test_a_throttled_key_gets_the_lower_row_rate_and_the_smaller_bucket():
    clock = Clock()
    lim = Limiter(MemoryBackend(), rate_per_s=1, burst=1, daily_rows=1000, rows_per_s=20.0, rows_burst=100.0,
                  clock=clock)
    lim.throttle("k", 0.1, rows_per_s=2.0, rows_burst=5.0)
    d = lim.charge_rows("k", 6)
    assert (d.allowed, d.reason, d.retry_after_s) == (False, "rows", 2.5)
    assert d.message == "batch of 6 rows exceeds this key's row allowance of 5 rows; send smaller batches"
    assert lim.charge_rows("k", 5).allowed
    assert lim.charge_rows("k", 1).message == "row rate limit exceeded (2 rows/s)"
    # a throttle above the key's limits changes neither
    lim.throttle("j", 0.1, rows_per_s=50.0, rows_burst=500.0)
    assert lim.charge_rows("j", 100).allowed and not lim.charge_rows("j", 1).allowed
    assert lim.charge_rows("j", 1).retry_after_s == pytest.approx(1 / 20)


def test_a_throttle_meters_rows_even_without_a_rows_limit():
    clock = Clock()
    backend = MemoryBackend()
    lim = Limiter(backend, rate_per_s=1, burst=1, daily_rows=1000, rows_burst=100.0, clock=clock)  # no rows/s
    lim.throttle("k", 0.1, rows_per_s=4.0, rows_burst=10.0)
    assert lim.charge_rows("k", 10) == Decision(True, rows_used_today=10)
    assert lim.charge_rows("k", 2) == Decision(False, "rows", retry_after_s=0.5, tokens_left=0.0,
                                               message="row rate limit exceeded (4 rows/s)")
    assert lim.charge_rows("k", 11).message == \
        "batch of 11 rows exceeds this key's row allowance of 10 rows; send smaller batches"


def test_owner_budget_is_shared_by_the_owners_keys():
    clock = Clock(T0 + 60.0)
    backend = MemoryBackend()
    lim = Limiter(backend, rate_per_s=1, burst=1, daily_rows=10, clock=clock)
    assert lim.charge_owner_rows("team", 7, budget=10) == Decision(True)
    assert backend.usage("owner:team", "2024-10-04") == 7 and backend.usage("team", "2024-10-04") == 0
    assert lim.charge_owner_rows("team", 3, budget=10) == Decision(True)
    assert lim.charge_owner_rows("team", 1, budget=10) == Decision(
        False, "budget", retry_after_s=DAY - 60.0, rows_used_today=10,
        message="the daily query budget of this key's owner is exhausted")


def test_check_is_admit_then_charge_rows_with_the_keys_own_limits():
    clock = Clock()
    lim = Limiter(MemoryBackend(), rate_per_s=1.0, burst=2.0, daily_rows=5, clock=clock)
    assert lim.check("k", 3) == Decision(True, rows_used_today=3)
    assert lim.check("k", 3) == Decision(False, "budget", retry_after_s=DAY - 3600.0, rows_used_today=3,
                                         message="daily query budget exhausted")
    assert lim.check("k", 1).reason == "rate"  # the refused check still spent a request token
    assert lim.check("j", 8, rate=0.5, daily_rows=8, rows_per_s=4.0) == Decision(
        False, "rows", retry_after_s=0.5,
        message="batch of 8 rows exceeds this key's row allowance of 2 rows; send smaller batches")
    assert lim.check("j", 2, rate=0.5, daily_rows=8, rows_per_s=4.0) == Decision(True, rows_used_today=2)
    assert lim.check("j", 1, rate=0.5, daily_rows=8).retry_after_s == 2.0  # the rate given: 0.5/s
    assert lim.check("m", 7, daily_rows=8) == Decision(True, rows_used_today=7)  # over the default 5


# -- the file state store ----------------------------------------------------------------------------


def test_file_state_store_round_trip_compact_and_private(tmp_path):
    p = tmp_path / "defence.json"
    st = FileStateStore(p)
    assert st.get_all() == {}
    st.set({"throttles": {"k": [0.5, 10, 50]}, "n": 1})
    assert p.read_text(encoding="utf-8") == '{"throttles":{"k":[0.5,10,50]},"n":1}'
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    st.set({"n": 2, "m": None})
    st.delete("throttles", "absent")
    assert json.loads(p.read_text(encoding="utf-8")) == {"n": 2, "m": None}
    assert FileStateStore(p).get_all() == {"n": 2, "m": None}
    assert sorted(f.name for f in tmp_path.iterdir()) == ["defence.json"]  # no temp file left


def test_file_state_store_sees_another_writer(tmp_path):
    p = tmp_path / "defence.json"
    a, b = FileStateStore(p), FileStateStore(p)
    a.set({"x": 1})
    assert b.get_all() == {"x": 1}
    b.set({"y": 2})  # b re-read the file: a's field is kept
    assert a.get_all() == {"x": 1, "y": 2}


@pytest.mark.parametrize("body", ["{corrupt", "[1, 2]", '"text"', b"\xff\xfe"])
def test_an_unreadable_state_file_starts_fresh(tmp_path, body):
    p = tmp_path / "defence.json"
    p.write_bytes(body if isinstance(body, bytes) else body.encode())
    st = FileStateStore(p)
    assert st.get_all() == {}
    st.set({"a": 1})
    assert FileStateStore(p).get_all() == {"a": 1}


def test_a_state_path_that_is_a_directory_reads_as_empty(tmp_path):
    (tmp_path / "d").mkdir()
    assert FileStateStore(tmp_path / "d").get_all() == {}
