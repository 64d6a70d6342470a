"""Per-key token-bucket rate limits and daily query budgets.

Two backends behind one interface (:class:`LimitBackend`): :class:`MemoryBackend` for a single
process, :class:`RedisBackend` when several replicas share the limits (atomic Lua scripts, so
concurrent replicas never over-grant). :class:`Limiter` applies both limits for one request.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "Decision",
    "LimitBackend",
    "Limiter",
    "MemoryBackend",
    "RedisBackend",
    "make_backend",
]


@dataclass(frozen=True)
class Decision:
    """The outcome for one request. ``reason`` is ``rate`` or ``budget`` when refused."""

    allowed: bool
    reason: str = ""
    retry_after_s: float = 0.0
    tokens_left: float = 0.0
    rows_used_today: int = 0


class LimitBackend(Protocol):
    def take(self, key: str, *, rate: float, burst: float, cost: float, now: float) -> tuple[bool, float, float]:
        """Take ``cost`` tokens from ``key``'s bucket. Returns ``(allowed, tokens_left, retry_after_s)``."""
        ...

    def spend(self, key: str, day: str, *, amount: int, budget: int) -> tuple[bool, int]:
        """Add ``amount`` rows to today's usage unless that exceeds ``budget``. Returns ``(allowed, used)``."""
        ...

    def usage(self, key: str, day: str) -> int: ...


class MemoryBackend:
    """In-process buckets and counters (thread-safe)."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._days: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def take(self, key: str, *, rate: float, burst: float, cost: float, now: float) -> tuple[bool, float, float]:
        with self._lock:
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + max(0.0, now - last) * rate)
            if tokens >= cost:
                tokens -= cost
                self._buckets[key] = (tokens, now)
                return True, tokens, 0.0
            self._buckets[key] = (tokens, now)
            return False, tokens, (cost - tokens) / rate

    def spend(self, key: str, day: str, *, amount: int, budget: int) -> tuple[bool, int]:
        with self._lock:
            if len(self._days) > 100_000:  # drop other days' counters
                self._days = {k: v for k, v in self._days.items() if k[1] == day}
            used = self._days.get((key, day), 0)
            if used + amount > budget:
                return False, used
            self._days[(key, day)] = used + amount
            return True, used + amount

    def usage(self, key: str, day: str) -> int:
        return self._days.get((key, day), 0)


_TAKE_LUA = """
local v = redis.call('HMGET', KEYS[1], 't', 'ts')
local rate, burst, cost, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tokens = tonumber(v[1]) or burst
local last = tonumber(v[2]) or now
local dt = now - last
if dt < 0 then dt = 0 end
tokens = math.min(burst, tokens + dt * rate)
local ok = 0
if tokens >= cost then tokens = tokens - cost; ok = 1 end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return {ok, tostring(tokens)}
"""

_SPEND_LUA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount, budget = tonumber(ARGV[1]), tonumber(ARGV[2])
if used + amount > budget then return {0, used} end
used = redis.call('INCRBY', KEYS[1], amount)
redis.call('EXPIRE', KEYS[1], 172800)
return {1, used}
"""


class RedisBackend:
    """Shared limits in Redis. Each operation is one atomic server-side script.

    ``now`` comes from the caller's clock: replicas must have synchronised clocks (NTP), as
    with any distributed token bucket.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "modelshield:limits:",
                 client: Any = None) -> None:
        if client is None:
            try:
                import redis
            except ImportError as exc:  # pragma: no cover - optional extra
                from modelshield.errors import MissingExtraError

                raise MissingExtraError("redis", "serve", "Redis-backed limits") from exc
            client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.client = client
        self.prefix = prefix
        self._take = client.register_script(_TAKE_LUA)
        self._spend = client.register_script(_SPEND_LUA)

    def ping(self) -> bool:
        return bool(self.client.ping())

    def take(self, key: str, *, rate: float, burst: float, cost: float, now: float) -> tuple[bool, float, float]:
        ok, tokens = self._take(keys=[f"{self.prefix}b:{key}"], args=[rate, burst, cost, repr(now)])
        tokens = float(tokens)
        return bool(ok), tokens, 0.0 if ok else (cost - tokens) / rate

    def spend(self, key: str, day: str, *, amount: int, budget: int) -> tuple[bool, int]:
        ok, used = self._spend(keys=[f"{self.prefix}d:{day}:{key}"], args=[amount, budget])
        return bool(ok), int(used)

    def usage(self, key: str, day: str) -> int:
        v = self.client.get(f"{self.prefix}d:{day}:{key}")
        return int(v) if v is not None else 0


def make_backend(kind: str, url: str = "", prefix: str = "modelshield:limits:") -> LimitBackend:
    if kind == "memory":
        return MemoryBackend()
    if kind == "redis":
        return RedisBackend(url, prefix=prefix)
    raise ValueError(f"unknown limits backend {kind!r}")


class Limiter:
    """Applies the token bucket (requests) then the daily budget (rows) for one key.

    A key can be *throttled* (e.g. by the extraction detector): its rate drops to
    ``throttle_rate`` until :meth:`unthrottle`.
    """

    def __init__(self, backend: LimitBackend, *, rate_per_s: float, burst: float, daily_rows: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.rate_per_s, self.burst, self.daily_rows = rate_per_s, burst, daily_rows
        self._clock = clock
        self._throttled: dict[str, float] = {}

    def throttle(self, key: str, rate: float) -> None:
        self._throttled[key] = rate

    def unthrottle(self, key: str) -> None:
        self._throttled.pop(key, None)

    @property
    def throttled(self) -> dict[str, float]:
        return dict(self._throttled)

    def check(self, key: str, rows: int, *, rate: float | None = None, daily_rows: int | None = None) -> Decision:
        now = self._clock()
        r = rate or self.rate_per_s
        burst = self.burst
        if key in self._throttled:
            r = min(r, self._throttled[key])
            burst = 1.0
        ok, tokens, retry = self.backend.take(key, rate=r, burst=burst, cost=1.0, now=now)
        if not ok:
            return Decision(False, "rate", retry_after_s=retry, tokens_left=tokens)
        day = time.strftime("%Y-%m-%d", time.gmtime(now))
        budget = daily_rows or self.daily_rows
        ok, used = self.backend.spend(key, day, amount=rows, budget=budget)
        if not ok:
            midnight = (math.floor(now / 86400) + 1) * 86400
            return Decision(False, "budget", retry_after_s=midnight - now, tokens_left=tokens,
                            rows_used_today=used)
        return Decision(True, tokens_left=tokens, rows_used_today=used)
