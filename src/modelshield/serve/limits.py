"""Per-key token-bucket rate limits and daily budgets, metered in requests, rows and bytes.

Two backends behind one interface (:class:`LimitBackend`): :class:`MemoryBackend` for a single
process, :class:`RedisBackend` when several replicas share the limits (atomic Lua scripts, so
concurrent replicas never over-grant). :class:`Limiter` applies the limits in the order the gateway
meets them: :meth:`Limiter.admit` (one request token, before the body is read or validated),
:meth:`Limiter.charge_bytes` (the body's size against a daily byte budget) and
:meth:`Limiter.charge_rows` (a rows/s token bucket, where a batch of *n* rows costs *n*, then the
daily row budget). A throttled key (extraction alert) gets a lower request rate *and* a lower row
rate: sending bigger batches does not escape it.

Per-key defence state (throttles, blocks, the memory backend's buckets, monitor state) survives a
restart through a :class:`StateStore`: :class:`FileStateStore` (a JSON file in the state dir) or
:class:`RedisStateStore` (one Redis hash, shared by replicas).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from modelshield._io import replace_private_file

__all__ = [
    "Decision",
    "FileStateStore",
    "LimitBackend",
    "Limiter",
    "MemoryBackend",
    "RedisBackend",
    "RedisStateStore",
    "StateStore",
    "Throttle",
    "make_backend",
]


@dataclass(slots=True)
class Decision:
    """The outcome of one check. ``reason`` when refused: ``rate`` (requests/s), ``rows`` (rows/s),
    ``budget`` (daily rows) or ``bytes`` (daily bytes); ``message`` says it in one line."""

    allowed: bool
    reason: str = ""
    retry_after_s: float = 0.0
    tokens_left: float = 0.0
    rows_used_today: int = 0
    message: str = ""


class LimitBackend(Protocol):
    def take(self, key: str, *, rate: float, burst: float, cost: float, now: float) -> tuple[bool, float, float]:
        """Take ``cost`` tokens from ``key``'s bucket. Returns ``(allowed, tokens_left, retry_after_s)``."""
        ...

    def spend(self, key: str, day: str, *, amount: int, budget: int) -> tuple[bool, int]:
        """Add ``amount`` rows to today's usage unless that exceeds ``budget``. Returns ``(allowed, used)``."""
        ...

    def usage(self, key: str, day: str) -> int: ...

    def export_state(self) -> dict[str, Any]:
        """What a restart must restore (empty when the backend keeps it itself)."""
        ...

    def import_state(self, state: dict[str, Any]) -> None: ...


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

    def export_state(self) -> dict[str, Any]:
        """Buckets and day counters as JSON-able data (what a restart must not forget)."""
        with self._lock:
            return {"buckets": {k: list(v) for k, v in self._buckets.items()},
                    "days": [[k, d, n] for (k, d), n in self._days.items()]}

    def import_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            for k, (tokens, last) in state.get("buckets", {}).items():
                self._buckets[str(k)] = (float(tokens), float(last))
            for k, d, n in state.get("days", []):
                self._days[(str(k), str(d))] = max(int(n), self._days.get((str(k), str(d)), 0))


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


def _redis_client(url: str, what: str) -> Any:
    """A Redis client with short timeouts (the gateway fails loudly, never hangs, when Redis is away)."""
    try:
        import redis  # lazy: redis is in the optional 'serve' extra
    except ImportError as exc:  # pragma: no cover - optional extra
        from modelshield.errors import MissingExtraError

        raise MissingExtraError("redis", "serve", what) from exc
    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


class RedisBackend:
    """Shared limits in Redis. Each operation is one atomic server-side script.

    ``now`` comes from the caller's clock: replicas must have synchronised clocks (NTP), as
    with any distributed token bucket.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "modelshield:limits:",
                 client: Any = None) -> None:
        if client is None:
            client = _redis_client(url, "Redis-backed limits")
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

    def export_state(self) -> dict[str, Any]:
        return {}  # the buckets live in Redis already

    def import_state(self, state: dict[str, Any]) -> None:
        pass


def make_backend(kind: str, url: str = "", prefix: str = "modelshield:limits:") -> LimitBackend:
    if kind == "memory":
        return MemoryBackend()
    if kind == "redis":
        return RedisBackend(url, prefix=prefix)
    raise ValueError(f"unknown limits backend {kind!r}")


@dataclass(frozen=True)
class Throttle:
    """A throttled key's limits: requests/s (burst 1), rows/s and the rows bucket's size."""

    rate_per_s: float
    rows_per_s: float
    rows_burst: float

    def as_dict(self) -> dict[str, float]:
        return {"rate_per_s": self.rate_per_s, "rows_per_s": self.rows_per_s, "rows_burst": self.rows_burst}


_DAYS: dict[int, str] = {}


def _day(now: float) -> str:
    """The UTC day of ``now`` (cached: formatted once per day, not per request)."""
    d = int(now // 86400)
    s = _DAYS.get(d)
    if s is None:
        if len(_DAYS) > 64:
            _DAYS.clear()
        s = _DAYS[d] = time.strftime("%Y-%m-%d", time.gmtime(d * 86400))
    return s


def _midnight_after(now: float) -> float:
    return (math.floor(now / 86400) + 1) * 86400 - now


_ALLOWED = Decision(True)  # shared: callers only read it


class Limiter:
    """Applies a key's limits: requests/s, rows/s, daily rows and daily bytes.

    A key can be *throttled* (e.g. by the extraction detector): its request rate drops to
    ``rate`` (burst 1) and its row rate to ``rows_per_s`` (bucket ``rows_burst``) until
    :meth:`unthrottle`. Row limits count rows, so a throttled key gains nothing from big batches.
    """

    def __init__(self, backend: LimitBackend, *, rate_per_s: float, burst: float, daily_rows: int,
                 rows_per_s: float | None = None, rows_burst: float | None = None, daily_bytes: int | None = None,
                 throttle_rows_per_s: float = 10.0, throttle_rows_burst: float = 50.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.rate_per_s, self.burst, self.daily_rows = rate_per_s, burst, daily_rows
        self.rows_per_s = rows_per_s
        self.rows_burst = rows_burst if rows_burst is not None else float(max(burst, 1.0))
        self.daily_bytes = daily_bytes
        self.throttle_rows_per_s, self.throttle_rows_burst = throttle_rows_per_s, throttle_rows_burst
        self._clock = clock
        self._throttled: dict[str, Throttle] = {}

    def throttle(self, key: str, rate: float, rows_per_s: float | None = None,
                 rows_burst: float | None = None) -> Throttle:
        t = Throttle(rate, rows_per_s if rows_per_s is not None else self.throttle_rows_per_s,
                     rows_burst if rows_burst is not None else self.throttle_rows_burst)
        self._throttled[key] = t
        return t

    def unthrottle(self, key: str) -> None:
        self._throttled.pop(key, None)

    @property
    def throttled(self) -> dict[str, float]:
        """Throttled keys and their request rates (the dashboard's view)."""
        return {k: t.rate_per_s for k, t in list(self._throttled.items())}

    def throttles(self) -> dict[str, Throttle]:
        return dict(self._throttled)

    # -- the three steps of a request -------------------------------------------------------
    def admit(self, key: str, *, rate: float | None = None) -> Decision:
        """One request token (before the body is read or validated: a bad request costs one too)."""
        now = self._clock()
        r = rate or self.rate_per_s
        burst = self.burst
        t = self._throttled.get(key)
        if t is not None:
            r, burst = min(r, t.rate_per_s), 1.0
        ok, tokens, retry = self.backend.take(key, rate=r, burst=burst, cost=1.0, now=now)
        if not ok:
            return Decision(False, "rate", retry_after_s=retry, tokens_left=tokens, message="rate limit exceeded")
        return _ALLOWED

    def charge_bytes(self, key: str, nbytes: int, *, daily_bytes: int | None = None) -> Decision:
        """Count the request body against the daily byte budget (when there is one)."""
        budget = daily_bytes or self.daily_bytes
        if not budget:
            return _ALLOWED
        now = self._clock()
        ok, used = self.backend.spend(f"bytes:{key}", _day(now), amount=int(nbytes), budget=budget)
        if not ok:
            return Decision(False, "bytes", retry_after_s=_midnight_after(now),
                            message=f"daily byte budget exhausted ({used} of {budget} bytes used)")
        return _ALLOWED

    def charge_rows(self, key: str, rows: int, *, rows_per_s: float | None = None,
                    daily_rows: int | None = None) -> Decision:
        """Take ``rows`` tokens from the key's row bucket, then add them to today's row budget."""
        now = self._clock()
        r = rows_per_s or self.rows_per_s
        burst = self.rows_burst
        t = self._throttled.get(key)
        if t is not None:
            r = min(r, t.rows_per_s) if r else t.rows_per_s
            burst = min(burst, t.rows_burst)
        if r:
            if rows > burst:  # no wait would ever let this batch through
                return Decision(False, "rows", retry_after_s=burst / r,
                                message=f"batch of {rows} rows exceeds this key's row allowance of {burst:g} "
                                        "rows; send smaller batches")
            ok, tokens, retry = self.backend.take(f"rows:{key}", rate=r, burst=burst, cost=float(rows), now=now)
            if not ok:
                return Decision(False, "rows", retry_after_s=retry, tokens_left=tokens,
                                message=f"row rate limit exceeded ({r:g} rows/s)")
        budget = daily_rows or self.daily_rows
        ok, used = self.backend.spend(key, _day(now), amount=rows, budget=budget)
        if not ok:
            return Decision(False, "budget", retry_after_s=_midnight_after(now), rows_used_today=used,
                            message="daily query budget exhausted")
        return Decision(True, rows_used_today=used)

    def charge_owner_rows(self, owner: str, rows: int, *, budget: int) -> Decision:
        """Add ``rows`` to the owner's daily row budget, shared by every key of that owner."""
        now = self._clock()
        ok, used = self.backend.spend(f"owner:{owner}", _day(now), amount=rows, budget=budget)
        if not ok:
            return Decision(False, "budget", retry_after_s=_midnight_after(now), rows_used_today=used,
                            message="the daily query budget of this key's owner is exhausted")
        return _ALLOWED

    def check(self, key: str, rows: int, *, rate: float | None = None, daily_rows: int | None = None,
              rows_per_s: float | None = None) -> Decision:
        """:meth:`admit` then :meth:`charge_rows` (one call for callers that have the rows already)."""
        d = self.admit(key, rate=rate)
        if not d.allowed:
            return d
        return self.charge_rows(key, rows, rows_per_s=rows_per_s, daily_rows=daily_rows)


# -- persistence of the per-key defence state ---------------------------------------------------


class StateStore(Protocol):
    """Named JSON fields that survive a restart. ``set``/``delete`` are durable when they return."""

    def get_all(self) -> dict[str, Any]: ...

    def set(self, fields: dict[str, Any]) -> None: ...

    def delete(self, *names: str) -> None: ...


class FileStateStore:
    """Fields in one JSON file (mode 0600, written atomically: temp file, fsync, rename)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict[str, Any] = self._read()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):  # unreadable or corrupt: start fresh (fail safe: nothing is loosened)
            return {}
        return data if isinstance(data, dict) else {}

    def get_all(self) -> dict[str, Any]:
        with self._lock:
            self._data = self._read()
            return dict(self._data)

    def _write(self) -> None:
        body = json.dumps(self._data, separators=(",", ":"))
        replace_private_file(self.path, body.encode("utf-8"), prefix=".defence.")

    def set(self, fields: dict[str, Any]) -> None:
        with self._lock:
            self._data.update(fields)
            self._write()

    def delete(self, *names: str) -> None:
        with self._lock:
            for n in names:
                self._data.pop(n, None)
            self._write()


class RedisStateStore:
    """Fields in one Redis hash (``<prefix>defence``): replicas sharing a Redis share throttles and blocks."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "modelshield:limits:",
                 client: Any = None) -> None:
        if client is None:
            client = _redis_client(url, "Redis-backed state")
        self.client = client
        self.key = f"{prefix}defence"

    def get_all(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self.client.hgetall(self.key).items():
            try:
                out[k.decode() if isinstance(k, bytes) else str(k)] = json.loads(v)
            except ValueError:
                continue
        return out

    def set(self, fields: dict[str, Any]) -> None:
        if fields:
            self.client.hset(self.key, mapping={k: json.dumps(v, separators=(",", ":")) for k, v in fields.items()})

    def delete(self, *names: str) -> None:
        if names:
            self.client.hdel(self.key, *names)
