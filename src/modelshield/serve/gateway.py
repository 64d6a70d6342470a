"""The gateway's state: keys, limits, monitors, alerts, the audit log, and the threads that serve them.

:class:`Gateway` holds everything that outlives one request -- the key store and authenticator, the
rate limiter, the input defense, output hardening, the drift and extraction monitors, the audit log,
the Prometheus metrics and the per-key defence state kept across restarts -- and runs the background
threads (monitors, housekeeping: anchors and state saves, webhook). It knows nothing of HTTP: the request
path is :class:`modelshield.serve.pipeline.PredictPipeline`, the routes are in
:mod:`modelshield.serve.routes`.

Threads: the monitor thread owns the monitors' updates; every access to the monitors' state from another
thread (dashboard snapshots, re-evaluation, state saves) holds ``_mon_lock``. ``_lock`` guards the
per-key statistics, the timeline and the alert list.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
import urllib.request
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from typing import Any

import numpy as np

from modelshield._io import private_dir
from modelshield.data.loaders import first_non_finite, load_dataset, require_numeric
from modelshield.errors import DataError, ModelShieldError, UserError
from modelshield.models.base import BaseModel
from modelshield.serve.auditlog import AuditLog, AuditRecord, load_or_create_key, write_anchor
from modelshield.serve.auth import Authenticator, AuthError, FailureTracker, KeyStore, Principal
from modelshield.serve.config import ServeConfig
from modelshield.serve.limits import FileStateStore, Limiter, RedisStateStore, StateStore, make_backend
from modelshield.serve.monitors.base import Alert, Batch, Monitor, load_state
from modelshield.serve.monitors.drift import DriftMonitor
from modelshield.serve.monitors.extraction import CoverageMonitor, PradaMonitor
from modelshield.serve.monitors.extraction_aggregate import GLOBAL as ALL_TRAFFIC
from modelshield.serve.monitors.extraction_aggregate import SignalMonitor
from modelshield.serve.monitors.inputs import InputDefense, InputSchema, default_detectors
from modelshield.serve.monitors.strip import StripDetector
from modelshield.serve.outputs import OutputHardening
from modelshield.serve.pipeline import Refusal, parse_inputs

__all__ = ["Gateway"]

#: batches of at most this many rows may be screened and predicted on the event loop
_INLINE_ROWS = 16

_log = logging.getLogger("modelshield.serve")


class _Metrics:
    """The gateway's Prometheus series (names and labels are a contract with dashboards and alert rules)."""

    def __init__(self) -> None:
        # lazy: prometheus-client is in the optional 'serve' extra
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
        from prometheus_client import generate_latest  # lazy: prometheus-client is in the optional 'serve' extra

        return generate_latest(self.registry)


class Gateway:
    """All the gateway's state; :class:`~modelshield.serve.pipeline.PredictPipeline` serves predictions
    through it and :func:`~modelshield.serve.app.create_app` wires both to HTTP routes.

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
        if self.reference is None and config.input.strip.enabled:
            raise UserError("input.strip needs reference data (the reference file): STRIP superimposes requests "
                            "with clean reference rows and sets its threshold on them")
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
        policies: dict[str, str] = {}
        sc = cfg.input.strip
        if sc.enabled:  # its clean overlays and threshold come from the reference data
            dets["strip"] = (StripDetector(n_overlays=sc.overlays, alpha=sc.alpha, mode=sc.mode, fpr=sc.fpr,
                                           seed=sc.seed), "poisoning.STRIP on the reference data")
            policies["strip"] = sc.policy or cfg.input.policy
        self.detector_name = ", ".join(f"{k}: {v[1]}" for k, v in dets.items())
        self.defense = InputDefense(schema, {k: v[0] for k, v in dets.items()}, model=self.model, X_ref=X,
                                    policy=cfg.input.policy, quantile=cfg.input.ood_quantile, policies=policies)
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

    # -- what every route shares: authentication, the audit log, refusals -------------------
    def authenticate(self, header: str | None, client: str, scope: str) -> Principal | Refusal:
        """Authenticate and authorize: the key's :class:`Principal`, or a 401/403/429 :class:`Refusal`.

        A client blocked for failed authentications is refused before its header is looked at; a burst of
        failures raises an ``auth.burst`` alert and blocks the client.
        """
        left = self.failures.blocked_for(client)
        if left > 0:
            return Refusal(429, "client_blocked", "too many failed authentications; try later",
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
            return Refusal(exc.status, f"auth_{exc.status}", exc.reason, hdr)
        return p

    async def log(self, record: AuditRecord) -> int | None:
        """Commit ``record`` to the audit log: its sequence number, or ``None`` when the log failed (counted)."""
        try:
            return await self.audit.append_async(record)
        except Exception:
            self.metrics.audit_failures.inc()
            return None

    async def refuse(self, refusal: Refusal, *, request_id: str, client: str, key: str | None, endpoint: str,
                     digest: str = "", rows: int = 0, scores: dict[str, Any] | None = None) -> Refusal:
        """Count and log a refusal; the :class:`Refusal` to answer (``X-Request-Id`` added).

        Refusals of a blocked client are counted, not logged one by one; a key's refusals for its request
        rate are logged at most once per ``limits.rate_log_interval_s`` (the record carries how many went
        unlogged since). Fail closed: a refusal that should be logged and cannot be is answered 503.
        """
        self.metrics.rejections.labels(refusal.code).inc()
        self.metrics.requests.labels(endpoint, str(refusal.status)).inc()
        if key:
            self.count(key, refusal.code)
        log_it = refusal.code != "client_blocked"  # a blocked client's flood is counted, not logged row by row
        if refusal.code == "rate" and key:  # ... and so is a key's flood past its request rate
            unlogged = self.rate_log_gate(key)
            log_it = unlogged is not None
            if unlogged:
                scores = {**(scores or {}), "unlogged_rate_refusals": unlogged}
        if log_it:
            seq = await self.log(AuditRecord(kind="request" if key else "auth", endpoint=endpoint,
                                             status=refusal.status, decision=f"rejected:{refusal.code}", key_id=key,
                                             client=client, request_id=request_id, input_hash=digest, n_rows=rows,
                                             scores=scores))
            if seq is None:
                return Refusal.audit_unavailable(request_id)
        return Refusal(refusal.status, refusal.code, refusal.message, {**refusal.headers, "X-Request-Id": request_id})

    # -- the model call ---------------------------------------------------------------------
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
        """The request's rows as a float64 array; raises :class:`~modelshield.serve.pipeline.Refused`
        (422, or 413 for a batch over ``limits.max_batch``)."""
        return parse_inputs(body, content_type, max_batch=self.config.limits.max_batch, n_features=self.n_features)

