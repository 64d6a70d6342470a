"""The gateway: :func:`create_app` puts authentication, limits, input defense, output hardening,
extraction and drift monitoring and a write-ahead audit log in front of any
:class:`~modelshield.models.base.BaseModel`.

Request path of ``POST /v1/predict`` (each refusal is logged before it is answered; refusals for the
request rate at most once per key per ``limits.rate_log_interval_s``, the rest counted)::

    client blocked? -> 429   authenticate -> 401   scope -> 403   key blocked -> 403
    request rate -> 429      (nothing of the body has been read so far)
    body size -> 413         daily bytes -> 429    parse -> 422   batch size -> 413
    rows/s and daily rows -> 429                   schema + OOD policy -> 422       predict
    output hardening -> audit log commit (fail closed: 503) -> 200 -> monitors (background thread)

Every route authenticates before it reads a body, and no route reads more than
``limits.max_body_bytes`` of one. The client address is the TCP peer's: ``X-Forwarded-For`` is
believed only from ``trusted_proxies`` (:func:`uvicorn_options`).

Screening and prediction share one model call when the adversarial detector's batch begins with the
request's rows, and run on the event loop for small requests whose mean CPU time is under
``inline_max_s`` (worker threads otherwise). Each response waits until its own audit record is
committed: on the event loop for a SQLite file, by the writer thread's group commit otherwise (see
:mod:`modelshield.serve.auditlog`). The monitors take what queued up every ``monitor_interval_s``.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import math
import queue
import secrets
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelshield._io import private_dir
from modelshield.data.loaders import first_non_finite
from modelshield.errors import DataError, MissingExtraError, ModelShieldError

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel as _Schema
    from pydantic import Field, ValidationError
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as _HTTPException
    from starlette.routing import Route
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as _exc:  # pragma: no cover - optional extra
    raise MissingExtraError("fastapi", "serve", "the serving gateway") from _exc
from modelshield.models.base import BaseModel
from modelshield.serve.auditlog import (
    AuditLog,
    AuditRecord,
    compact_json,
    input_hash,
    load_or_create_key,
    read_anchor,
    write_anchor,
)
from modelshield.serve.auth import SCOPES, Authenticator, AuthError, FailureTracker, KeyStore, Principal
from modelshield.serve.config import ServeConfig
from modelshield.serve.limits import FileStateStore, Limiter, RedisStateStore, StateStore, make_backend
from modelshield.serve.monitors.base import Alert, Batch, Monitor, load_state
from modelshield.serve.monitors.drift import DriftMonitor
from modelshield.serve.monitors.extraction import CoverageMonitor, PradaMonitor
from modelshield.serve.monitors.extraction_aggregate import GLOBAL as ALL_TRAFFIC
from modelshield.serve.monitors.extraction_aggregate import SignalMonitor
from modelshield.serve.monitors.inputs import InputDefense, InputSchema, default_detectors
from modelshield.serve.outputs import OutputHardening

__all__ = ["Gateway", "create_app", "uvicorn_options"]

DASHBOARD_DIR = Path(__file__).parent / "dashboard"
_NPY_TYPES = ("application/x-npy", "application/octet-stream")
_INLINE_ROWS = 16

_log = logging.getLogger("modelshield.serve")


class _Reject(Exception):
    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.headers = headers or {}


class _BodyTooLarge(_HTTPException):
    """A body grew past ``max_body_bytes`` while a route read it (any route)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body exceeds {limit} bytes")


class _BodyLimit:
    """ASGI middleware: no route reads more than ``limit`` bytes of a request body.

    It only counts what a route pulls (routes authenticate first and read afterwards), so an
    unauthenticated request's body is never read at all. ``/v1/predict`` enforces the same limit
    itself (and logs the refusal with the key).
    """

    def __init__(self, app: ASGIApp, limit: int, skip: tuple[str, ...] = ()) -> None:
        self.app, self.limit, self.skip = app, limit, skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.skip:
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge(self.limit)
            return msg

        async def watch(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted, watch)
        except _BodyTooLarge as exc:
            if started:
                raise
            await JSONResponse({"detail": exc.detail}, status_code=413)(scope, receive, send)


def uvicorn_options(config: ServeConfig) -> dict[str, Any]:
    """``uvicorn.run`` options for the client address: proxy headers only from ``trusted_proxies``.

    uvicorn believes ``X-Forwarded-For`` from 127.0.0.1 by default, so a client on the same host
    (or behind a local proxy that does not set the header) could name any address and never be
    blocked for failed authentications; the gateway turns that off unless proxies are configured.
    """
    if not config.trusted_proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(config.trusted_proxies)}


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry()
        self.requests = Counter("modelshield_requests", "HTTP requests", ["endpoint", "status"], registry=r)
        self.key_requests = Counter("modelshield_key_requests", "Predict requests per key", ["key", "decision"],
                                    registry=r)
        self.rejections = Counter("modelshield_rejections", "Refused requests by reason", ["reason"], registry=r)
        self.alerts = Counter("modelshield_alerts", "Monitor alerts", ["monitor"], registry=r)
        self.rows = Counter("modelshield_predict_rows", "Rows predicted", registry=r)
        self.latency = Histogram("modelshield_predict_latency_seconds", "Predict latency", registry=r,
                                 buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
        self.drift = Gauge("modelshield_drift", "Latest drift statistics", ["stat"], registry=r)
        self.audit_failures = Counter("modelshield_audit_failures", "Audit-log writes that failed", registry=r)
        self.monitor_dropped = Counter("modelshield_monitor_dropped", "Batches the monitors skipped (queue full)",
                                       registry=r)
        self.rate_unlogged = Counter("modelshield_rate_refusals_unlogged",
                                     "Rate-limit refusals counted here instead of one audit record each", registry=r)
        # the audit chain's head, anchored outside the database (one series: cleared before each set)
        self.audit_head = Gauge("modelshield_audit_head_seq", "Newest audit-log record; the hash label is its chain "
                                "hash (keep it: audit-log verify --expect-head SEQ:HASH)", ["hash"], registry=r)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class Gateway:
    """All the gateway's state; :func:`create_app` wires it to HTTP routes.

    Parameters
    ----------
    model : the model to serve.
    config : validated :class:`~modelshield.serve.config.ServeConfig`.
    reference : reference inputs ``(n, n_features)`` for the schema, OOD threshold, drift and
        extraction monitors; defaults to ``config.reference`` (a data file) when set. Without
        reference data only the width check runs and drift/extraction monitoring is off.
    clock : injectable wall clock (tests).
    """

    def __init__(self, model: BaseModel, config: ServeConfig, *, reference: np.ndarray | None = None,
                 feature_names: list[str] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.model = model
        self.config = config
        self.clock = clock
        self.classes = np.asarray(model.classes)
        state = private_dir(config.state_dir)
        self.state_dir = state
        if reference is None and config.reference:
            from modelshield.data.loaders import load_dataset, require_numeric

            ds = load_dataset(config.reference)
            require_numeric(ds)  # the gateway takes numeric rows; a text column is a clear error, not a crash
            reference = np.asarray(ds.X, dtype=np.float64)
            feature_names = list(ds.feature_names) if ds.feature_names is not None else None
        self.reference = None if reference is None else np.asarray(reference, dtype=np.float64).reshape(
            len(reference), -1)
        found = None if self.reference is None else first_non_finite(self.reference)
        if found is not None:  # the schema, OOD, drift and extraction statistics need complete rows
            r, c, n_rows = found
            raise DataError(f"{config.reference or 'the reference data'}: missing or non-finite value in row "
                            f"{r + 1}, column {c + 1} ({n_rows} rows in all); the reference data must be complete "
                            "numeric rows (drop or fill them)")
        self.n_features = (self.reference.shape[1] if self.reference is not None
                           else model.input_spec.n_features)
        self.keys = KeyStore(state, reload_every_s=config.auth.reload_every_s)
        self.auth = Authenticator(self.keys, config.auth.jwt)
        self.failures = FailureTracker(burst=config.auth.fail_burst, window_s=config.auth.fail_window_s,
                                       block_s=config.auth.block_s)
        lc = config.limits
        ec = config.extraction
        self.limiter = Limiter(make_backend(lc.backend, lc.redis_url, lc.redis_prefix), rate_per_s=lc.rate_per_s,
                               burst=lc.burst, daily_rows=lc.daily_rows, rows_per_s=lc.rows_per_s,
                               rows_burst=lc.rows_burst, daily_bytes=lc.daily_bytes,
                               throttle_rows_per_s=ec.throttle_rows_per_s, throttle_rows_burst=ec.throttle_rows_burst,
                               clock=clock)
        self.store: StateStore = (RedisStateStore(lc.redis_url, prefix=lc.redis_prefix) if lc.backend == "redis"
                                  else FileStateStore(state / "defence.json"))
        self._rate_logged: dict[str, tuple[float, int]] = {}  # key -> (last logged rate refusal, unlogged since)
        self.audit = AuditLog(config.audit_url, load_or_create_key(config.audit_key_file),
                              durability=config.audit.durability, table=config.audit.table,
                              max_batch_wait_s=config.audit.max_batch_wait_s, commit=config.audit.commit)
        oc = config.outputs
        self.outputs = OutputHardening(top_k=oc.top_k, decimals=oc.decimals, noise=oc.noise,
                                       probabilities=oc.probabilities, seed=oc.seed)
        self.metrics = _Metrics()
        self._key_counters: dict[tuple[str, str], Any] = {}
        self.defense: InputDefense | None = None
        self.monitors: list[Monitor] = []
        self.drift: DriftMonitor | None = None
        self.prada: PradaMonitor | None = None
        self.coverage: CoverageMonitor | None = None
        self.signals: SignalMonitor | None = None
        self.detector_name = ""
        if self.reference is not None:
            self._build_monitors(feature_names)
        self.blocked_keys: set[str] = set()
        self.alerts: deque[dict[str, Any]] = deque(maxlen=500)
        self.stats: dict[str, Counter[str]] = defaultdict(Counter)
        self.timeline: dict[int, Counter[str]] = {}
        self.started = clock()
        self.last_verify: dict[str, Any] | None = None
        # monitor batches: the request path appends (no lock, no wake-up); the monitor thread drains
        # every ``monitor_interval_s`` (or at once when ``wait_monitors`` asks)
        self._mq: deque[Batch] = deque()
        self._m_in = 0  # batches queued (event-loop side)
        self._m_done = 0  # batches processed (monitor thread)
        self._m_wake = threading.Event()
        self._m_stop = False
        # mean time of one small screen + predict call: decides event loop vs worker thread
        self.inline_cost_s = 0.0
        self._hooks: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=1000)
        self._lock = threading.Lock()
        # the monitors' state: the monitor thread updates it, the dashboard, re-evaluation and state saves
        # read it from other threads; every access holds this lock (no reader iterates a dict mid-update)
        self._mon_lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._monitor_state = state / "monitors.json"  # read for logs written before the state store existed
        self._save_due = False
        self._hk_stop = threading.Event()
        self.anchor_file = config.audit_anchor_file
        self._restore_defence()
        self._start_threads()

    # -- construction -----------------------------------------------------------------------
    def _build_monitors(self, feature_names: list[str] | None) -> None:
        cfg = self.config
        X = self.reference
        assert X is not None
        schema = InputSchema(X, margin=cfg.input.range_margin, max_categories=cfg.input.max_categories,
                             feature_names=feature_names)
        dets = default_detectors(adversarial=cfg.input.adversarial)
        self.detector_name = ", ".join(f"{k}: {v[1]}" for k, v in dets.items())
        self.defense = InputDefense(schema, {k: v[0] for k, v in dets.items()}, model=self.model, X_ref=X,
                                    policy=cfg.input.policy, quantile=cfg.input.ood_quantile)
        if cfg.drift.enabled:
            proba = self.model.predict_proba(X[:5000])
            d = cfg.drift
            self.drift = DriftMonitor(X[:5000], proba, window=d.window, every=d.every,
                                      psi_threshold=d.psi_threshold, ks_alpha=d.ks_alpha, mmd_alpha=d.mmd_alpha,
                                      mmd_samples=d.mmd_samples, feature_names=feature_names)
            self.monitors.append(self.drift)
        if cfg.extraction.enabled:
            e = cfg.extraction
            self.prada = PradaMonitor(X, delta=e.prada_delta, min_queries=e.min_queries, max_memory=e.max_memory,
                                      predict=self.model.predict_proba)
            self.coverage = CoverageMonitor(X, self.model.predict_proba(X), factor=e.coverage_factor,
                                            min_queries=e.min_queries)
            self.monitors += [self.prada, self.coverage]
            if e.signals:
                self.signals = SignalMonitor(X, self.model.predict_proba(X), min_queries=e.signals_min_queries,
                                             group_of=self.owner_of if e.group_by == "owner" else None)
                self.monitors.append(self.signals)

    # -- per-key defence state across restarts ---------------------------------------------
    def _restore_defence(self) -> None:
        """Load throttles, blocks, buckets and monitor state; re-apply what a flag calls for."""
        try:
            data = self.store.get_all()
        except Exception as exc:  # e.g. Redis unreachable: fail loudly, not open
            raise ModelShieldError(f"cannot read the gateway's defence state: {type(exc).__name__}") from None
        for name, v in data.items():
            kind, _, key = name.partition(":")
            try:
                if kind == "throttle" and key:
                    self.limiter.throttle(key, float(v["rate_per_s"]), float(v["rows_per_s"]), float(v["rows_burst"]))
                elif kind == "block" and key:
                    self.blocked_keys.add(key)
            except (KeyError, TypeError, ValueError):
                continue
        buckets = data.get("buckets")
        if isinstance(buckets, dict):
            try:
                self.limiter.backend.import_state(buckets)
            except (KeyError, TypeError, ValueError) as exc:  # visible: the buckets start full again
                _log.warning("saved rate-limit buckets not restored (%s): they start full", type(exc).__name__)
        if self.monitors:
            mon = data.get("monitors")
            try:
                if isinstance(mon, dict):
                    for m in self.monitors:
                        if m.name in mon:
                            m.load_state(mon[m.name])
                else:
                    load_state(self.monitors, self._monitor_state)
            except (ValueError, KeyError, TypeError) as exc:  # stale or foreign state: start fresh, visibly
                _log.warning("saved monitor state not restored (%s): monitors start fresh", type(exc).__name__)
        self._cleared = {n.partition(":")[2] for n in data if n.startswith("cleared:")}
        self.reevaluate()

    def reevaluate(self) -> list[str]:
        """Apply the configured action to every key an extraction monitor has flagged that is neither
        throttled, blocked nor cleared by an admin (after a restart, or a state file from another replica).
        Returns the keys acted on; each gets a new alert."""
        done = []
        throttled = self.limiter.throttled
        with self._mon_lock:
            flagged = [(m.name, m.scores()) for m in self.monitors
                       if m.name.startswith("extraction.") and hasattr(m, "scores")]
        for name, scores in flagged:
            for key, sc in scores.items():
                if (not isinstance(sc, dict) or not sc.get("flagged") or key in throttled or key in self.blocked_keys
                        or key in self._cleared):
                    continue
                if self._action(name) in ("throttle", "block"):
                    self.raise_alert(Alert(monitor=name, severity="high", key_id=key,
                                           message=f"key {key}: flagged for likely model extraction before a "
                                                   f"restart; {self._action(name)} re-applied"))
                    done.append(key)
        return done

    def _action(self, monitor: str) -> str:
        e = self.config.extraction
        if monitor == SignalMonitor.name:
            return e.signals_action
        return e.prada_action if monitor == PradaMonitor.name else e.action

    def owner_of(self, key_id: str) -> str | None:
        """The owner/tenant a key belongs to (``keys create --owner``), for aggregate extraction signals."""
        rec = self.keys.get(key_id)
        owner = None if rec is None else rec.meta.get("owner")
        return str(owner) if owner else None

    def _persist(self, fields: dict[str, Any] | None = None, delete: tuple[str, ...] = ()) -> None:
        try:
            if fields:
                self.store.set(fields)
            if delete:
                self.store.delete(*delete)
        except Exception as exc:  # the defence keeps working in memory; the failure is visible
            _log.warning("cannot save the gateway's defence state: %s", type(exc).__name__)

    def save_defence(self) -> None:
        """Save the buckets and the monitors' state (the monitor thread, or after it stopped)."""
        fields: dict[str, Any] = {"buckets": self.limiter.backend.export_state()}
        if self.monitors:
            with self._mon_lock:
                fields["monitors"] = {m.name: m.state() for m in self.monitors}
        self._persist(fields)

    def clear_key(self, key: str) -> None:
        """An admin lifts a key's throttle and block (kept across restarts)."""
        self.limiter.unthrottle(key)
        self.blocked_keys.discard(key)
        self._cleared.add(key)
        self._persist({f"cleared:{key}": {"time": self.clock()}}, delete=(f"throttle:{key}", f"block:{key}"))

    # -- the audit chain's head, outside the database ---------------------------------------
    def anchor(self) -> tuple[int, str] | None:
        """Write the chain head to the anchor file (and the webhook); ``None`` if the log is unreadable."""
        try:
            seq, h = self.audit.head()
        except Exception:
            return None
        if seq <= 0:
            return seq, h
        try:
            write_anchor(self.anchor_file, seq, h, table=self.config.audit.table)
        except (OSError, ModelShieldError) as exc:
            _log.warning("cannot write the audit anchor: %s", type(exc).__name__)
        if self.config.webhook:
            try:
                self._hooks.put_nowait({"type": "audit_anchor", "seq": seq, "hash": h, "time": self.clock(),
                                        "table": self.config.audit.table})
            except queue.Full:
                pass
        return seq, h

    def _housekeeping(self) -> None:
        a_every = self.config.audit.anchor_every_s
        s_every = self.config.state_save_every_s
        step = min(x for x in (a_every, s_every) if x > 0)
        next_a = time.monotonic() + a_every if a_every > 0 else math.inf
        next_s = time.monotonic() + s_every
        while not self._hk_stop.wait(step):
            now = time.monotonic()
            if now >= next_a:
                next_a = now + a_every
                self.anchor()
            if now >= next_s:
                next_s = now + s_every
                self._save_due = True
                self._m_wake.set()  # the monitor thread saves (it owns the monitors' state)

    def _start_threads(self) -> None:
        t = threading.Thread(target=self._monitor_loop, name="monitors", daemon=True)
        t.start()
        self._threads.append(t)
        h = threading.Thread(target=self._housekeeping, name="housekeeping", daemon=True)
        h.start()
        self._threads.append(h)
        if self.config.webhook:
            w = threading.Thread(target=self._webhook_loop, name="webhook", daemon=True)
            w.start()
            self._threads.append(w)

    # -- background work --------------------------------------------------------------------
    def enqueue_monitors(self, batch: Batch) -> bool:
        """Hand a served batch to the monitors (never blocks); ``False`` when the queue is full."""
        if len(self._mq) >= self.config.monitor_queue:
            self.metrics.monitor_dropped.inc()
            return False
        self._mq.append(batch)
        self._m_in += 1
        if not self.config.monitor_interval_s:
            self._m_wake.set()
        return True

    def _monitor_loop(self) -> None:
        interval = self.config.monitor_interval_s
        while True:
            self._m_wake.wait(interval if interval else None)
            self._m_wake.clear()
            stop = self._m_stop
            while self._mq:
                batches: list[Batch] = []
                while self._mq and len(batches) < 256:
                    batches.append(self._mq.popleft())
                self._process(batches)
                self._m_done += len(batches)
            if self._save_due and not stop:
                self._save_due = False
                self.save_defence()
            if stop:
                return

    def _process(self, batches: list[Batch]) -> None:
        by_key: dict[str, list[Batch]] = {}
        for b in batches:
            by_key.setdefault(b.key_id, []).append(b)
        merged = [bs[0] if len(bs) == 1 else
                  Batch(X=np.concatenate([b.X for b in bs]), proba=np.concatenate([b.proba for b in bs]),
                        key_id=k, time=bs[-1].time) for k, bs in by_key.items()]
        for b in merged:
            for m in self.monitors:
                try:
                    with self._mon_lock:
                        alerts = m.update(b)
                except Exception as exc:  # a failing monitor must not stop the others
                    alerts = [Alert(monitor=m.name, severity="low",
                                    message=f"monitor error: {type(exc).__name__}")]
                for a in alerts:
                    self.raise_alert(a)
        if self.drift is not None and self.drift.last:
            last = self.drift.last
            for k in ("psi_max", "psi_prediction", "ks_min_p", "mmd2"):
                self.metrics.drift.labels(k).set(last[k])

    def wait_monitors(self, timeout: float = 30.0) -> None:
        """Block until the monitors have processed every batch queued so far (tests, shutdown)."""
        target = self._m_in
        deadline = time.monotonic() + timeout
        while self._m_done < target and time.monotonic() < deadline:
            self._m_wake.set()
            time.sleep(0.002)

    def _webhook_loop(self) -> None:
        url = self.config.webhook
        assert url is not None
        while True:
            item = self._hooks.get()
            if item is None:
                return
            req = urllib.request.Request(url, data=json.dumps(item).encode(), method="POST",  # noqa: S310
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=5):  # noqa: S310 - validated https/loopback URL
                    pass
            except OSError:
                pass  # best effort: the alert is already in the audit log and /metrics

    def raise_alert(self, alert: Alert) -> None:
        """Record an alert everywhere (memory, audit log, metrics, webhook) and apply its action."""
        d = alert.as_dict()
        action = ""
        if alert.monitor.startswith("extraction.") and alert.key_id:
            e = self.config.extraction
            action = self._action(alert.monitor)
            if alert.data.get("stream") == ALL_TRAFFIC:  # blame from everyone's mixed queries: a human decides
                action = "alert"
            key = alert.key_id
            if action == "throttle":
                t = self.limiter.throttle(key, e.throttle_rate_per_s, e.throttle_rows_per_s, e.throttle_rows_burst)
                self._cleared.discard(key)
                self._persist({f"throttle:{key}": t.as_dict()}, delete=(f"cleared:{key}",))
            elif action == "block":
                self.blocked_keys.add(key)
                self._cleared.discard(key)
                self._persist({f"block:{key}": {"time": alert.time}}, delete=(f"cleared:{key}",))
        d["action"] = action
        with self._lock:
            self.alerts.append(d)
        self.metrics.alerts.labels(alert.monitor).inc()
        try:
            self.audit.submit(AuditRecord(kind="alert", endpoint=alert.monitor, decision=action or "alert",
                                          key_id=alert.key_id, ts_us=int(alert.time * 1e6),
                                          scores={"message": alert.message, "value": alert.value,
                                                  "threshold": alert.threshold, "severity": alert.severity}))
        except RuntimeError:  # closed during shutdown
            pass
        if self.config.webhook:
            try:
                self._hooks.put_nowait(d)
            except queue.Full:
                pass

    def close(self) -> None:
        self._m_stop = True
        self._hk_stop.set()
        self._m_wake.set()
        if self.config.webhook:
            self._hooks.put(None)
        for t in self._threads:
            t.join(5)
        self.save_defence()
        self.audit.close()
        head = self.audit.last_head
        if head is not None and head[0] > 0:  # the final head, outside the database
            try:
                write_anchor(self.anchor_file, head[0], head[1], table=self.config.audit.table)
            except (OSError, ModelShieldError):
                pass

    # -- bookkeeping ------------------------------------------------------------------------
    def count(self, key: str, decision: str) -> None:
        minute = int(self.clock() // 60)
        with self._lock:
            self.stats[key][decision] += 1
            tl = self.timeline.get(minute)
            if tl is None:
                tl = self.timeline[minute] = Counter()
                for old in [m for m in self.timeline if m < minute - 120]:
                    del self.timeline[old]
            tl["ok" if decision == "ok" or decision == "flagged" else "rejected"] += 1
        child = self._key_counters.get((key, decision))
        if child is None:  # one labels() lookup per (key, decision), not per request
            child = self._key_counters[key, decision] = self.metrics.key_requests.labels(key, decision)
        child.inc()

    def snapshot(self) -> dict[str, Any]:
        """What the dashboard shows."""
        with self._lock:
            per_key = {k: dict(v) for k, v in self.stats.items()}
            timeline = [{"minute": m * 60, **dict(c)} for m, c in sorted(self.timeline.items())]
            alerts = list(self.alerts)[-100:]
        names = {k.id: k.name for k in self.keys.list()}
        with self._mon_lock:
            drift = list(self.drift.history)[-200:] if self.drift is not None else []
            extraction = {
                "prada": self.prada.scores() if self.prada is not None else {},
                "coverage": self.coverage.scores() if self.coverage is not None else {},
                "signals": self.signals.scores() if self.signals is not None else {},
                "groups": self.signals.groups() if self.signals is not None else {},
            }
        return {
            "now": self.clock(), "started": self.started,
            "model": self.model.describe(),
            "traffic": [{"key": k, "name": names.get(k, k), **v} for k, v in sorted(per_key.items())],
            "timeline": timeline,
            "alerts": alerts,
            "drift": drift,
            # the thresholds in force (PSI's is raised to the bootstrap maximum): the dashboard's reference lines
            "drift_thresholds": None if self.drift is None else {
                "psi": self.drift.psi_threshold, "mmd2": self.drift.mmd_threshold},
            "extraction": extraction,
            "throttled": self.limiter.throttled, "blocked_keys": sorted(self.blocked_keys),
            "blocked_clients": self.failures.blocked(),
            "audit": {"written": self.audit.n_written, "failed": self.audit.n_failed,
                      "batch_sizes": self.audit.batch_sizes(), "last_verify": self.last_verify},
            "input_defense": {"policy": self.config.input.policy, "detector": self.detector_name,
                              "thresholds": None if self.defense is None else self.defense.thresholds},
        }

    def rate_log_gate(self, key: str) -> int | None:
        """For a rate-limit refusal of ``key``: ``None`` when it is only counted (one was logged less than
        ``rate_log_interval_s`` ago), else how many went unlogged since the last logged one."""
        now = self.clock()
        last, unlogged = self._rate_logged.get(key, (-math.inf, 0))
        if now - last < self.config.limits.rate_log_interval_s:
            self._rate_logged[key] = (last, unlogged + 1)
            self.metrics.rate_unlogged.inc()
            return None
        if len(self._rate_logged) > 100_000:
            self._rate_logged.clear()
        self._rate_logged[key] = (now, 0)
        return unlogged

    # -- request steps ----------------------------------------------------------------------
    def principal(self, header: str | None, client: str, scope: str) -> Principal:
        """Authenticate and authorize; raises :class:`_Reject` (401/403/429)."""
        left = self.failures.blocked_for(client)
        if left > 0:
            raise _Reject(429, "client_blocked", "too many failed authentications; try later",
                          {"Retry-After": str(int(left) + 1)})
        try:
            p = self.auth.authenticate(header)
            Authenticator.authorize(p, scope)
        except AuthError as exc:
            if exc.status == 401 and self.failures.record_failure(client):
                self.raise_alert(Alert(monitor="auth.burst", severity="high",
                                       message=f"client {client}: {self.config.auth.fail_burst} failed "
                                               f"authentications; blocked for {self.config.auth.block_s:.0f}s",
                                       data={"client": client}))
            hdr = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
            raise _Reject(exc.status, f"auth_{exc.status}", exc.reason, hdr) from None
        return p

    def screen_and_predict(self, X: np.ndarray) -> tuple[dict[str, Any] | None, str, np.ndarray | None]:
        """Input defense then prediction; ``proba`` is ``None`` when the policy rejects the input."""
        t0 = time.thread_time()  # CPU time of this thread: waiting for the GIL under load does not count
        if self.defense is None:
            out: tuple[dict[str, Any] | None, str, np.ndarray | None] = (None, "ok", self.model.predict_proba(X))
        else:
            scr = self.defense.screen(X)
            if scr.decision == "rejected":
                out = (scr.summary(), scr.decision, None)
            else:  # the detector's batch began with X: its probabilities are the answer (one model call)
                out = (scr.summary(), scr.decision,
                       scr.proba if scr.proba is not None else self.model.predict_proba(X))
        if len(X) <= _INLINE_ROWS:
            self.inline_cost_s += 0.1 * (time.thread_time() - t0 - self.inline_cost_s)
        return out

    def run_inline(self, rows: int) -> bool:
        """Whether screening + prediction of ``rows`` rows may run on the event loop (cheaper than a thread hop)."""
        return rows <= _INLINE_ROWS and self.inline_cost_s < self.config.inline_max_s

    def parse(self, body: bytes, content_type: str) -> np.ndarray:
        ct = content_type.split(";")[0].strip().lower()
        if ct in _NPY_TYPES:
            X = _parse_npy(body)
        else:
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise _Reject(422, "invalid", "body is not valid JSON") from None
            if not isinstance(data, dict) or "inputs" not in data:
                raise _Reject(422, "invalid", 'body must be {"inputs": [[...], ...]}')
            X = _numbers(data["inputs"], body)
        if X.ndim != 2 or X.shape[0] == 0:
            raise _Reject(422, "invalid", f"inputs must be a non-empty 2-D array (got shape {list(X.shape)})")
        if X.shape[0] > self.config.limits.max_batch:
            raise _Reject(413, "batch_too_large", f"batch of {X.shape[0]} rows exceeds {self.config.limits.max_batch}")
        if self.n_features is not None and X.shape[1] != self.n_features:
            raise _Reject(422, "invalid", f"each row must have {self.n_features} features, got {X.shape[1]}")
        X = X.astype(np.float64, copy=False)
        if not np.isfinite(X).all():
            raise _Reject(422, "invalid", "inputs must be finite numbers")
        return X


_NOT_NUMBERS = {"U": "strings", "S": "strings", "b": "true/false", "c": "complex values", "M": "dates",
                "m": "durations", "V": "records"}


def _numbers(inputs: Any, body: bytes) -> np.ndarray:
    """``inputs`` as an array of JSON numbers: strings (``"1.0"``), booleans and nulls are refused."""
    try:
        A = np.asarray(inputs)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise _Reject(422, "invalid", "inputs must be a rectangular array of numbers") from None
    kind = A.dtype.kind
    if kind == "O":  # integers beyond int64 are numbers; anything else (None, lists in cells, dicts) is not
        flat = A.ravel()
        if not all(type(v) is int or type(v) is float for v in flat):
            raise _Reject(422, "invalid", "inputs must be a rectangular array of JSON numbers")
    elif kind not in "iuf":
        what = _NOT_NUMBERS.get(kind, f"{A.dtype} values")
        raise _Reject(422, "invalid", f"inputs must be JSON numbers, not {what} (e.g. 1.5, not \"1.5\")")
    elif b"true" in body or b"false" in body:  # numpy turns True into 1.0 beside numbers: look closer
        if _has_bool(inputs):
            raise _Reject(422, "invalid", "inputs must be JSON numbers, not true/false")
    try:
        return A.astype(np.float64, copy=False)
    except (ValueError, TypeError, OverflowError):
        raise _Reject(422, "invalid", "inputs must be a rectangular array of numbers") from None


def _has_bool(obj: Any) -> bool:
    stack = [obj]
    while stack:
        v = stack.pop()
        if type(v) is bool:
            return True
        if type(v) is list:
            stack.extend(v)
    return False


class KeyCreate(_Schema):
    """Body of ``POST /admin/keys``."""

    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(default_factory=lambda: ["predict"], min_length=1, max_length=3)
    rate_per_s: float | None = Field(None, gt=0, le=1e6)
    daily_rows: int | None = Field(None, gt=0, le=10**12)
    rows_per_s: float | None = Field(None, gt=0, le=1e9)


def _parse_npy(body: bytes) -> np.ndarray:
    """A ``.npy`` payload, read without ever unpickling or trusting the header's size.

    The header is parsed first; the array must be 2-D, numeric, and exactly as long as the bytes that
    follow, then it is viewed with ``np.frombuffer`` (no allocation driven by the header).
    """
    from numpy.lib import format as npf

    buf = io.BytesIO(body)
    try:
        version = npf.read_magic(buf)
        if version == (1, 0):
            shape, fortran, dtype = npf.read_array_header_1_0(buf)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npf.read_array_header_2_0(buf)
        else:
            raise ValueError("unsupported .npy version")
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, OverflowError, KeyError, MemoryError):
        raise _Reject(422, "invalid", "not a .npy array") from None
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise _Reject(422, "invalid", f"the .npy payload must be a numeric array, not {dtype.str!r}")
    if (not isinstance(shape, tuple) or len(shape) != 2
            or not all(type(d) is int and 0 <= d < 2**62 for d in shape)):
        raise _Reject(422, "invalid", f"the .npy payload must be a 2-D array with a sane shape (got {shape!r:.60})")
    offset = buf.tell()
    # Python integers: a shape whose product overflows int64 cannot wrap round to the body's size
    if math.prod(shape) * dtype.itemsize != len(body) - offset:
        raise _Reject(422, "invalid", f"the .npy payload's size does not match its header (shape {list(shape)}, "
                                      f"{len(body) - offset} data bytes)")
    flat = np.frombuffer(body, dtype=dtype, offset=offset)
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def create_app(model: BaseModel, config: ServeConfig | None = None, *, reference: np.ndarray | None = None,
               feature_names: list[str] | None = None, gateway: Gateway | None = None) -> FastAPI:
    """Build the FastAPI application serving ``model`` behind every protection in ``config``.

    The :class:`Gateway` is available as ``app.state.gateway``.
    """
    from contextlib import asynccontextmanager

    cfg = config or ServeConfig()
    gw = gateway or Gateway(model, cfg, reference=reference, feature_names=feature_names)
    limits = cfg.limits

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        previous = sys.getswitchinterval()
        if cfg.gil_switch_interval_s is not None:
            sys.setswitchinterval(cfg.gil_switch_interval_s)
        try:
            yield
        finally:
            sys.setswitchinterval(previous)
            gw.close()

    docs = cfg.api_docs  # off by default: the API description is public wherever it is served
    app = FastAPI(title="modelshield gateway", version="1", lifespan=lifespan,
                  description="Authenticated, rate-limited, audited predictions. "
                              "Send `Authorization: Bearer <key>`.",
                  docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
                  openapi_url="/openapi.json" if docs else None)
    app.state.gateway = gw
    app.add_middleware(_BodyLimit, limit=limits.max_body_bytes, skip=("/v1/predict",))
    # request ids: a random per-process prefix and a counter (unique across restarts, no syscall per request)
    _prefix, _counter = secrets.token_hex(8), itertools.count(1)

    def new_id() -> str:
        return f"{_prefix}{next(_counter):016x}"

    def reply(status: int, payload: dict[str, Any] | str, headers: dict[str, str] | None = None) -> Response:
        """A JSON response; ``payload`` may already be serialised (the predict body, logged verbatim)."""
        body = payload if isinstance(payload, str) else compact_json(payload)
        return Response(body, status_code=status, headers=headers, media_type="application/json")

    async def log(rec: AuditRecord) -> int | None:
        try:
            return await gw.audit.append_async(rec)
        except Exception:
            gw.metrics.audit_failures.inc()
            return None

    async def refuse(rej: _Reject, *, rid: str, client: str, key: str | None, endpoint: str,
                     digest: str = "", rows: int = 0, scores: dict[str, Any] | None = None) -> Response:
        gw.metrics.rejections.labels(rej.reason).inc()
        gw.metrics.requests.labels(endpoint, str(rej.status)).inc()
        if key:
            gw.count(key, rej.reason)
        log_it = rej.reason != "client_blocked"  # a blocked client's flood is counted, not logged row by row
        if rej.reason == "rate" and key:  # ... and so is a key's flood past its request rate
            unlogged = gw.rate_log_gate(key)
            log_it = unlogged is not None
            if unlogged:
                scores = {**(scores or {}), "unlogged_rate_refusals": unlogged}
        if log_it:
            seq = await log(AuditRecord(kind="request" if key else "auth", endpoint=endpoint, status=rej.status,
                                        decision=f"rejected:{rej.reason}", key_id=key, client=client,
                                        request_id=rid, input_hash=digest, n_rows=rows, scores=scores))
            if seq is None:
                return reply(503, {"detail": "audit log unavailable"}, {"X-Request-Id": rid})
        return reply(rej.status, {"detail": rej.message}, {**rej.headers, "X-Request-Id": rid})

    predict_schema = {
        "required": True,
        "content": {
            "application/json": {"schema": {
                "type": "object", "required": ["inputs"], "additionalProperties": True,
                "properties": {"inputs": {"type": "array", "maxItems": limits.max_batch,
                                          "items": {"type": "array", "items": {"type": "number"}}}}}},
            "application/x-npy": {"schema": {"type": "string", "format": "binary"}},
        },
    }
    err = {"content": {"application/json": {"schema": {"type": "object",
                                                       "properties": {"detail": {"type": "string"}}}}}}
    responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "predictions", "content": {"application/json": {"schema": {
            "type": "object", "required": ["predictions", "classes"],
            "properties": {"predictions": {"type": "array"}, "probabilities": {"type": "array"},
                           "top_k": {"type": "array"}, "classes": {"type": "array"}}}}}},
        401: {"description": "missing or invalid key", **err}, 403: {"description": "scope missing", **err},
        413: {"description": "body or batch too large", **err}, 422: {"description": "invalid input", **err},
        429: {"description": "rate limit, budget or block", **err},
        503: {"description": "audit log unavailable (fail closed)", **err},
    }

    async def read_body(request: Request) -> bytes:
        """The body, read only now (after authentication) and never past ``max_body_bytes``."""
        clen = request.headers.get("content-length")
        if clen is not None and (not clen.isdigit() or int(clen) > limits.max_body_bytes):
            raise _Reject(413, "body_too_large", f"body exceeds {limits.max_body_bytes} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise _Reject(413, "body_too_large", f"body exceeds {limits.max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    requests_ok = gw.metrics.requests.labels("/v1/predict", "200")
    rows_total, latency = gw.metrics.rows, gw.metrics.latency

    def limited(dec: Any) -> _Reject:
        return _Reject(429, dec.reason, dec.message,
                       {"Retry-After": str(max(1, math.ceil(min(dec.retry_after_s, 86400.0))))})

    async def predict(request: Request) -> Response:
        t0 = time.perf_counter()
        rid = new_id()
        client = request.client.host if request.client else "-"
        ep = "/v1/predict"
        key: str | None = None
        digest, rows = "", 0
        scores: dict[str, Any] | None = None
        try:
            p = gw.principal(request.headers.get("authorization"), client, "predict")
            key = p.key_id
            if key in gw.blocked_keys:
                raise _Reject(403, "key_blocked", "this key is blocked (suspected model extraction)")
            dec = gw.limiter.admit(key, rate=p.rate_per_s)  # before the body is read: bad requests cost too
            if not dec.allowed:
                raise limited(dec)
            body = await read_body(request)
            dec = gw.limiter.charge_bytes(key, len(body))
            if not dec.allowed:
                raise limited(dec)
            digest = input_hash(body)
            X = gw.parse(body, request.headers.get("content-type", "application/json"))
            rows = len(X)
            dec = gw.limiter.charge_rows(key, rows, rows_per_s=p.rows_per_s, daily_rows=p.daily_rows)
            if not dec.allowed:
                raise limited(dec)
            owner_budget = gw.config.limits.owner_daily_rows
            owner = gw.owner_of(key) if owner_budget else None
            if owner is not None and owner_budget:
                dec = gw.limiter.charge_owner_rows(owner, rows, budget=owner_budget)
                if not dec.allowed:
                    raise limited(dec)
            # screening (detectors query the model) and prediction: one worker-thread hop, off the event loop
            if gw.run_inline(rows):  # fast model, small batch: no thread hop
                scores, decision, proba = gw.screen_and_predict(X)
            else:
                scores, decision, proba = await run_in_threadpool(gw.screen_and_predict, X)
            if proba is None:
                raise _Reject(422, "input_rejected", "inputs fail the input schema or look out of distribution")
            if not np.isfinite(proba).all():  # never answer (or log) NaN: it is not even valid JSON
                raise _Reject(500, "model_error", "the model returned non-finite probabilities")
        except _Reject as rej:
            return await refuse(rej, rid=rid, client=client, key=key, endpoint=ep, digest=digest, rows=rows,
                                scores=scores)
        except ModelShieldError as exc:
            return await refuse(_Reject(exc.http_status if 400 <= exc.http_status < 500 else 422, "invalid",
                                        str(exc)), rid=rid, client=client, key=key, endpoint=ep, digest=digest,
                                rows=rows)
        except Exception as exc:  # the model (or a bug) failed: logged in the audit log too, no traceback to the client
            _log.error("POST /v1/predict failed: %s", type(exc).__name__, exc_info=True)
            return await refuse(_Reject(500, "internal_error", "internal error"), rid=rid, client=client, key=key,
                                endpoint=ep, digest=digest, rows=rows, scores=scores)
        body_json = compact_json(gw.outputs.body(proba, gw.classes))  # serialised once: the response and the log
        if scores is not None:
            scores["decision"] = decision
        seq = await log(AuditRecord(kind="request", endpoint=ep, status=200, decision=decision, key_id=key,
                                    client=client, request_id=rid, input_hash=digest, n_rows=rows,
                                    output_json=body_json if cfg.audit.log_outputs else None, scores=scores))
        if seq is None:  # fail closed: no answer that is not in the log
            gw.metrics.requests.labels(ep, "503").inc()
            return reply(503, {"detail": "audit log unavailable"}, {"X-Request-Id": rid})
        if gw.monitors:
            gw.enqueue_monitors(Batch(X=X, proba=proba, key_id=key, time=gw.clock()))
        gw.count(key, decision)
        rows_total.inc(rows)
        requests_ok.inc()
        latency.observe(time.perf_counter() - t0)
        hdr = {"X-Request-Id": rid, "X-Audit-Seq": str(seq)}
        if decision == "flagged":
            hdr["X-Input-Flagged"] = "1"
        return reply(200, body_json, hdr)

    # The hot path is served by a plain Starlette route (no FastAPI dependency solving, no body model):
    # it is matched first; the FastAPI route below is never reached and only documents the endpoint
    # in the OpenAPI spec (request body, responses).
    app.router.routes.insert(0, Route("/v1/predict", predict, methods=["POST"], include_in_schema=False))
    app.add_api_route("/v1/predict", predict, methods=["POST"], openapi_extra={"requestBody": predict_schema},
                      responses=responses, summary="Predict a batch", tags=["predict"])

    async def guard(request: Request, scope: str, endpoint: str) -> Principal | Response:
        rid = new_id()
        client = request.client.host if request.client else "-"
        try:
            return gw.principal(request.headers.get("authorization"), client, scope)
        except _Reject as rej:
            return await refuse(rej, rid=rid, client=client, key=None, endpoint=endpoint)

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics (monitor scope unless metrics_public)",
             responses={200: {"content": {"text/plain": {}}}, 401: err, 403: err, 429: err})
    async def metrics(request: Request) -> Response:
        if not cfg.metrics_public:
            p = await guard(request, "monitor", "/metrics")
            if isinstance(p, Response):
                return p
        try:  # the chain head, for a scraper to keep outside the database
            seq, h = await run_in_threadpool(gw.audit.head)
        except Exception:
            gw.metrics.audit_head.clear()
        else:
            gw.metrics.audit_head.clear()
            gw.metrics.audit_head.labels(h).set(seq)
        return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4")

    admin_resp = {401: err, 403: err, 429: err}

    @app.get("/admin/keys", tags=["admin"], responses=admin_resp)
    async def list_keys(request: Request) -> Response:
        p = await guard(request, "admin", "/admin/keys")
        if isinstance(p, Response):
            return p
        return reply(200, {"keys": [k.public() for k in gw.keys.list()]})

    key_create_body = {"required": True,
                       "content": {"application/json": {"schema": KeyCreate.model_json_schema()}}}

    @app.post("/admin/keys", tags=["admin"], responses={**admin_resp, 413: err, 422: err},
              openapi_extra={"requestBody": key_create_body})
    async def create_key(request: Request) -> Response:
        # authenticate first, then read (at most max_body_bytes of) the body: an unauthenticated body is never read
        p = await guard(request, "admin", "/admin/keys")
        if isinstance(p, Response):
            return p
        try:
            raw = await read_body(request)
        except _Reject as rej:
            return await refuse(rej, rid=new_id(), client=request.client.host if request.client else "-",
                                key=p.key_id, endpoint="/admin/keys")
        try:
            spec = KeyCreate.model_validate_json(raw)
        except ValidationError as exc:
            e = exc.errors()[0]
            where = ".".join(str(x) for x in e["loc"]) or "body"
            return reply(422, {"detail": f"{where}: {e['msg']}"})
        bad = [s for s in spec.scopes if s not in SCOPES]
        if bad:
            return reply(422, {"detail": f"unknown scope {bad[0]!r}; choose from {', '.join(SCOPES)}"})
        rec, token = gw.keys.create(spec.name, spec.scopes, rate_per_s=spec.rate_per_s, daily_rows=spec.daily_rows,
                                    rows_per_s=spec.rows_per_s)
        await log(AuditRecord(kind="admin", endpoint="/admin/keys", status=201, decision=f"create:{rec.id}",
                              key_id=p.key_id, client=request.client.host if request.client else None,
                              request_id=new_id()))
        return reply(201, {"key": token, **rec.public()})

    @app.delete("/admin/keys/{key_id}", tags=["admin"], responses={**admin_resp, 404: err})
    async def revoke_key(request: Request, key_id: str) -> Response:
        p = await guard(request, "admin", "/admin/keys")
        if isinstance(p, Response):
            return p
        if gw.keys.get(key_id) is None:
            return reply(404, {"detail": "no such key"})
        rec = gw.keys.revoke(key_id)
        await log(AuditRecord(kind="admin", endpoint="/admin/keys", status=200, decision=f"revoke:{rec.id}",
                              key_id=p.key_id, client=request.client.host if request.client else None,
                              request_id=new_id()))
        return reply(200, rec.public())

    @app.post("/admin/keys/{key_id}/unthrottle", tags=["admin"], responses=admin_resp)
    async def unthrottle(request: Request, key_id: str) -> Response:
        p = await guard(request, "admin", "/admin/keys")
        if isinstance(p, Response):
            return p
        gw.clear_key(key_id)
        await log(AuditRecord(kind="admin", endpoint="/admin/keys", status=200, decision=f"unthrottle:{key_id}"[:40],
                              key_id=p.key_id, client=request.client.host if request.client else None,
                              request_id=new_id()))
        return reply(200, {"key": key_id, "throttled": False})

    @app.get("/admin/stats", tags=["admin"], responses=admin_resp, summary="Dashboard data (monitor scope)")
    async def stats(request: Request) -> Response:
        p = await guard(request, "monitor", "/admin/stats")
        if isinstance(p, Response):
            return p
        return reply(200, gw.snapshot())

    @app.get("/admin/alerts", tags=["admin"], responses=admin_resp)
    async def alerts(request: Request) -> Response:
        p = await guard(request, "monitor", "/admin/alerts")
        if isinstance(p, Response):
            return p
        return reply(200, {"alerts": list(gw.alerts)})

    @app.get("/admin/audit/verify", tags=["admin"], responses=admin_resp,
             summary="Verify the audit-log chain against the newest anchor (admin scope)")
    async def verify(request: Request) -> Response:
        p = await guard(request, "admin", "/admin/audit/verify")  # a full scan of the log: admin only
        if isinstance(p, Response):
            return p
        try:
            anchor = read_anchor(gw.anchor_file, cfg.audit.table)
        except ModelShieldError as exc:
            return reply(200, {"ok": False, "reason": str(exc), "time": gw.clock()})
        res = await run_in_threadpool(
            lambda: gw.audit.verify(expect_head=None if anchor is None else (anchor.seq, anchor.hash)))
        gw.last_verify = {**res.as_dict(), "anchor": None if anchor is None else anchor.as_dict(), "time": gw.clock()}
        return reply(200, gw.last_verify)

    @app.get("/admin/audit/recent", tags=["admin"], responses=admin_resp)
    async def recent(request: Request, n: int = 50) -> Response:
        p = await guard(request, "admin", "/admin/audit/recent")
        if isinstance(p, Response):
            return p
        rows = await run_in_threadpool(gw.audit.recent, max(1, min(n, 500)))
        return reply(200, {"records": rows})

    if cfg.dashboard and DASHBOARD_DIR.is_dir():

        class _Dashboard(StaticFiles):
            async def get_response(self, path: str, scope: Any) -> Response:
                resp = await super().get_response(path, scope)
                resp.headers["Content-Security-Policy"] = (
                    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
                resp.headers["X-Content-Type-Options"] = "nosniff"
                resp.headers["Referrer-Policy"] = "no-referrer"
                resp.headers["Cache-Control"] = "no-store"
                return resp

        app.mount("/dashboard", _Dashboard(directory=str(DASHBOARD_DIR), html=True), name="dashboard")

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> Response:  # no tracebacks to clients
        return JSONResponse({"detail": "internal error"}, status_code=500)

    return app
