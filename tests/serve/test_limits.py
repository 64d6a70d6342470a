"""Token bucket and daily budgets: in-process, through the app, and against the real Redis server."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from modelshield.serve.limits import Limiter, MemoryBackend, RedisBackend


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _bucket_semantics(backend):
    now = [1000.0]
    lim = Limiter(backend, rate_per_s=2.0, burst=3, daily_rows=10, clock=lambda: now[0])
    got = [lim.check("k", 1).allowed for _ in range(4)]
    assert got == [True, True, True, False]
    d = lim.check("k", 1)
    assert d.reason == "rate" and d.retry_after_s == pytest.approx(0.5, abs=1e-6)
    now[0] += 0.5  # one token back at 2/s
    assert lim.check("k", 1).allowed
    assert not lim.check("k", 1).allowed
    assert lim.check("other", 1).allowed  # buckets are per key
    # daily budget in rows: 10 rows/day; "k" has used 4 so far
    now[0] += 10
    assert lim.check("k", 6).allowed
    b = lim.check("k", 1)
    assert not b.allowed and b.reason == "budget" and b.rows_used_today == 10
    now[0] += 86400  # next day
    assert lim.check("k", 5).allowed
    # throttling (what the extraction detector does): rate drops, burst becomes 1
    lim.throttle("t", 0.1)
    assert lim.check("t", 1).allowed
    assert not lim.check("t", 1).allowed
    lim.unthrottle("t")


def test_memory_bucket_and_budget():
    _bucket_semantics(MemoryBackend())


@pytest.mark.redis
def test_redis_bucket_and_budget(redis_url):
    url, prefix = redis_url
    _bucket_semantics(RedisBackend(url, prefix=prefix))


@pytest.mark.redis
def test_redis_replicas_share_limits_atomically(redis_url):
    """Two 'replicas' (separate clients) hammering one key never grant more than the bucket holds."""
    url, prefix = redis_url
    reps = [Limiter(RedisBackend(url, prefix=prefix), rate_per_s=1e-6, burst=50, daily_rows=10**9) for _ in range(2)]
    granted = []
    lock = threading.Lock()

    def worker(lim):
        n = sum(lim.check("shared", 1).allowed for _ in range(60))
        with lock:
            granted.append(n)

    threads = [threading.Thread(target=worker, args=(reps[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(granted) == 50


def test_rate_limit_through_the_api(make_gateway, breast_cancer):
    app, gw, keys = make_gateway(limits={"rate_per_s": 0.01, "burst": 2})
    X = breast_cancer[1][:2].tolist()
    with TestClient(app) as c:
        codes = [c.post("/v1/predict", json={"inputs": X}, headers=bearer(keys["predict"])).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429]
        r = c.post("/v1/predict", json={"inputs": X}, headers=bearer(keys["predict"]))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        # another key has its own bucket
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(keys["admin"])).status_code == 200
    # within rate_log_interval_s, one refusal per key is logged; the other is counted in /metrics
    assert [r["decision"] for r in gw.audit.recent(10)].count("rejected:rate") == 1
    assert gw.metrics.rate_unlogged._value.get() == 1


def test_daily_budget_and_size_limits(make_gateway, breast_cancer):
    app, _gw, keys = make_gateway(limits={"daily_rows": 5, "max_batch": 4, "max_body_bytes": 20_000})
    X = breast_cancer[1]
    h = bearer(keys["predict"])
    with TestClient(app) as c:
        assert c.post("/v1/predict", json={"inputs": X[:4].tolist()}, headers=h).status_code == 200
        r = c.post("/v1/predict", json={"inputs": X[:2].tolist()}, headers=h)
        assert r.status_code == 429 and "budget" in r.json()["detail"]
        assert c.post("/v1/predict", json={"inputs": X[:5].tolist()}, headers=h).status_code == 413
        big = {"inputs": X[:4].tolist(), "pad": "x" * 30_000}
        assert c.post("/v1/predict", json=big, headers=h).status_code == 413


@pytest.mark.redis
def test_gateway_with_redis_backend(make_gateway, redis_url, breast_cancer):
    url, prefix = redis_url
    lim = {"backend": "redis", "redis_url": url, "redis_prefix": prefix, "rate_per_s": 0.01, "burst": 3}
    app1, gw1, keys = make_gateway(limits=lim)
    # a second replica sharing the state dir (same keys) and the same Redis
    from modelshield.serve.app import create_app

    app2 = create_app(gw1.model, gw1.config, reference=breast_cancer[0])
    X = breast_cancer[1][:1].tolist()
    h = bearer(keys["predict"])
    with TestClient(app1) as c1, TestClient(app2) as c2:
        codes = [c.post("/v1/predict", json={"inputs": X}, headers=h).status_code for c in (c1, c2, c1, c2)]
    assert codes == [200, 200, 200, 429]
