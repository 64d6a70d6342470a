"""Gateway configuration: one YAML file, validated up front (unknown keys are errors).

Example ``serve.yaml``::

    host: 127.0.0.1
    port: 8000
    state_dir: ./state            # keys.json, audit.db, audit.key, monitor state
    reference: data/ref.csv       # reference data for schema, OOD and drift (optional)
    auth:
      fail_burst: 10              # failed authentications from one client within fail_window_s ...
      fail_window_s: 60
      block_s: 300                # ... block that client for block_s seconds and raise an alert
      reload_every_s: 0.05        # key-file change check
      jwt: {algorithms: [HS256], secret_env: MS_JWT_SECRET, audience: modelshield}
    trusted_proxies: []           # peers whose X-Forwarded-For is believed (IPs or CIDRs); none by default
    api_docs: false               # /docs and /openapi.json (true under 'serve --dev')
    limits:
      rate_per_s: 50              # token bucket per key (requests/s, taken before the body is read) ...
      burst: 100                  # ... and its size
      rows_per_s: 2000            # second token bucket per key, in rows (a batch of n rows costs n) ...
      rows_burst: 10000           # ... and its size (at least max_batch)
      daily_rows: 100000          # daily query budget per key, in rows
      daily_bytes: null           # daily budget per key, in request-body bytes (null: none)
      max_batch: 1024
      max_body_bytes: 1048576
      backend: memory             # or redis (several replicas)
      redis_url: redis://127.0.0.1:6379/0
    audit:
      url: null                   # default sqlite:///<state_dir>/audit.db; postgresql+psycopg://...
      key_file: null              # chain HMAC key, default <state_dir>/audit.key
      table: modelshield_audit
      durability: full            # fsync before the response (full) or the OS decides (normal)
      commit: auto                # commit on the event loop (loop: auto's choice for SQLite) or a writer thread
      anchor_every_s: 5           # write the chain head to <state_dir>/audit.anchor (and the webhook)
    input:
      policy: flag                # log | flag | reject
      adversarial: true           # also the robustness module's adversarial-input score
      ood_quantile: 0.999
      strip:                      # STRIP backdoor-trigger score (optional, off by default; needs reference)
        enabled: false
        policy: null              # log | flag | reject (null: input.policy)
        fpr: 0.01                 # share of clean reference rows flagged (sets the threshold)
        overlays: 16              # superimpositions per row: each request costs (overlays + 1) x rows
    outputs: {top_k: null, decimals: 4, noise: 0.0}
    drift: {window: 500, every: 100, psi_threshold: 0.2, ks_alpha: 0.001, mmd_alpha: 0.001}
    extraction: {prada_delta: 0.9, min_queries: 100, coverage_factor: 1.6, action: throttle, prada_action: alert,
                 throttle_rate_per_s: 1, throttle_rows_per_s: 10, throttle_rows_burst: 50}
    state_save_every_s: 5         # per-key defence state (throttles, blocks, buckets, monitors) saved this often
    webhook: null                 # https URL that receives alerts as JSON
    monitor_interval_s: 0.02      # monitors batch what queued up meanwhile (alerts come at most this late)
    inline_max_s: 0.005           # small, fast requests are screened + predicted on the event loop
    gil_switch_interval_s: 0.0005 # the loop wins the GIL back quickly after an fsync (null: Python's 5 ms)
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelshield._yaml import load_yaml_file
from modelshield.errors import UserError

__all__ = [
    "AuditConfig",
    "AuthConfig",
    "DriftConfig",
    "ExtractionConfig",
    "InputConfig",
    "StripConfig",
    "JWTConfig",
    "LimitsConfig",
    "OutputConfig",
    "ServeConfig",
    "default_state_dir",
    "load_config",
]


def default_state_dir() -> Path:
    """``$MODELSHIELD_STATE_DIR``, else ``$XDG_STATE_HOME/modelshield``, else ``~/.local/state/modelshield``."""
    env = os.environ.get("MODELSHIELD_STATE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "modelshield"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JWTConfig(_Section):
    """Accept JWTs issued by a platform. Keys come from the environment or a file, never the YAML."""

    algorithms: list[Literal["HS256", "RS256", "EdDSA"]] = Field(default_factory=lambda: ["HS256"])
    secret_env: str | None = None  # HS256 shared secret, read from this environment variable
    public_key_file: str | None = None  # PEM public key for RS256 / EdDSA
    issuer: str | None = None
    audience: str | None = None
    scope_claim: str = "scope"  # space-separated scopes, or a list
    leeway_s: float = 0.0


class AuthConfig(_Section):
    fail_burst: int = Field(10, ge=1)
    fail_window_s: float = Field(60.0, gt=0)
    block_s: float = Field(300.0, ge=0)
    jwt: JWTConfig | None = None
    reload_every_s: float = Field(0.05, ge=0)  # how often the key file is checked for changes


class LimitsConfig(_Section):
    rate_per_s: float = Field(50.0, gt=0)  # requests/s per key: taken before the body is read or validated
    burst: float = Field(100.0, ge=1)
    rows_per_s: float = Field(2000.0, gt=0)  # rows/s per key: a batch of n rows costs n tokens
    rows_burst: float = Field(10_000.0, ge=1)
    daily_rows: int = Field(1_000_000, ge=1)
    daily_bytes: int | None = Field(None, ge=1)  # request-body bytes per key and day (None: no budget)
    # rows per owner (keys create --owner) and day, shared by all of that owner's keys: Sybil keys cannot
    # multiply the budget (None: no owner budget; keys without an owner are limited per key only)
    owner_daily_rows: int | None = Field(None, ge=1)
    max_batch: int = Field(1024, ge=1)
    max_body_bytes: int = Field(1 << 20, ge=64)  # every route, not only /v1/predict
    # refusals for the rate limit are logged at most once per key per this many seconds (the others are
    # counted in /metrics and in the next logged refusal's "suppressed"): a flood cannot force one fsync each
    rate_log_interval_s: float = Field(1.0, ge=0)
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "modelshield:limits:"

    @model_validator(mode="after")
    def _burst_fits_a_batch(self) -> LimitsConfig:
        if self.rows_burst < self.max_batch:
            raise ValueError(f"rows_burst ({self.rows_burst:g}) must be at least max_batch ({self.max_batch}): "
                             "a full batch could never be served")
        return self


class AuditConfig(_Section):
    url: str | None = None
    key_file: str | None = None  # HMAC key of the chain; default <state_dir>/audit.key
    durability: Literal["full", "normal"] = "full"
    table: str = Field("modelshield_audit", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    log_outputs: bool = True
    commit: Literal["auto", "loop", "thread"] = "auto"  # auto: loop for a SQLite file, thread for a server
    max_batch_wait_s: float = Field(0.0, ge=0)  # writer thread only
    # the chain head (seq, hash) is written this often to <state_dir>/audit.anchor (outside the database) and
    # sent to the webhook; `audit-log verify` compares with it, so deleting the newest records is detected
    # (0: no periodic anchor; one is still written at shutdown)
    anchor_every_s: float = Field(5.0, ge=0)


class StripConfig(_Section):
    """STRIP scoring of live inputs (backdoor triggers). Its clean inputs are the gateway's reference data
    (``reference``): half of the rows are blended with each request, the other half set the threshold."""

    enabled: bool = False
    policy: Literal["log", "flag", "reject"] | None = None  # None: input.policy
    fpr: float = Field(0.01, gt=0, lt=0.5)
    overlays: int = Field(16, ge=1, le=256)
    alpha: float = Field(0.5, gt=0, lt=1)  # the input's weight in a blend (the kept share in a swap)
    mode: Literal["auto", "add", "blend", "swap"] = "auto"  # auto: add for images / wide rows, swap for tables
    seed: int | None = None  # overlays and the reference split; None: a random secret per start


class InputConfig(_Section):
    policy: Literal["log", "flag", "reject"] = "flag"
    adversarial: bool = True  # also score with the robustness issue's adversarial-input detector
    ood_quantile: float = Field(0.999, gt=0.5, lt=1.0)
    range_margin: float = Field(0.1, ge=0)  # fraction of the reference range allowed beyond it
    max_categories: int = Field(20, ge=1)  # integer features with at most this many values are categorical
    strip: StripConfig = Field(default_factory=StripConfig)


class OutputConfig(_Section):
    top_k: int | None = Field(None, ge=1)
    decimals: int | None = Field(None, ge=0, le=12)
    noise: float = Field(0.0, ge=0)
    probabilities: bool = True
    seed: int | None = None


class DriftConfig(_Section):
    enabled: bool = True
    window: int = Field(500, ge=20)
    every: int = Field(100, ge=1)
    psi_threshold: float = Field(0.2, gt=0)
    ks_alpha: float = Field(0.001, gt=0, lt=1)
    mmd_alpha: float = Field(0.001, gt=0, lt=1)
    mmd_samples: int = Field(200, ge=20)


class ExtractionConfig(_Section):
    enabled: bool = True
    prada_delta: float = Field(0.9, gt=0, lt=1)
    min_queries: int = Field(100, ge=10)
    max_memory: int = Field(3000, ge=100)
    coverage_factor: float = Field(1.6, gt=1)
    action: Literal["alert", "throttle", "block"] = "throttle"  # on a coverage alert
    prada_action: Literal["alert", "throttle", "block"] = "alert"  # PRADA false-alarms on skewed tabular data
    throttle_rate_per_s: float = Field(1.0, gt=0)  # a throttled key: requests/s (burst 1) ...
    throttle_rows_per_s: float = Field(10.0, gt=0)  # ... and rows/s, whatever its batch size
    throttle_rows_burst: float = Field(50.0, ge=1)
    # boundary / near-duplicate / off-manifold / distribution signals per key, per owner and over all traffic
    # (docs/extraction.md): Sybil keys of one owner are seen together; a key below min_queries still counts
    signals: bool = True
    signals_action: Literal["alert", "throttle", "block"] = "throttle"
    signals_min_queries: int = Field(50, ge=10)
    group_by: Literal["none", "owner"] = "owner"  # aggregate keys by their owner (keys create --owner)


class ServeConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    state_dir: Path = Field(default_factory=default_state_dir)
    reference: str | None = None
    auth: AuthConfig = Field(default_factory=AuthConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    input: InputConfig = Field(default_factory=InputConfig)
    outputs: OutputConfig = Field(default_factory=OutputConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    extraction: ExtractionConfig = Field(default_factory=ExtractionConfig)
    webhook: str | None = None
    metrics_public: bool = False  # /metrics without a monitor-scoped key
    api_docs: bool = False  # /docs, /redoc and /openapi.json (public when on); `serve --dev` turns them on
    # peers (IPs or CIDRs) whose X-Forwarded-For / X-Forwarded-Proto are believed; by default none, so the
    # client address used for brute-force blocking and the audit log is the TCP peer's
    trusted_proxies: list[str] = Field(default_factory=list)
    # the per-key defence state (throttles, blocks, token buckets, extraction-monitor state) is saved this
    # often (and at once when a key is throttled or blocked, and at shutdown); Redis when limits.backend is redis
    state_save_every_s: float = Field(5.0, gt=0)
    dashboard: bool = True
    monitor_queue: int = Field(10_000, ge=1)
    # the monitors (drift, PRADA, coverage) take what queued up every monitor_interval_s seconds, as one
    # batch per key: far less work per request; an extraction alert (and its throttle) comes at most this
    # much later. 0: wake the monitor thread on every request.
    monitor_interval_s: float = Field(0.02, ge=0, le=5)
    # screening + prediction run on the event loop (no thread hop) while one small request (<= 16 rows)
    # takes less CPU than this on average; slower models or bigger batches go to the worker threads.
    # 0: always threads. 5 ms: a model that holds the GIL blocks the loop from a worker thread as well,
    # and on a busy machine a ~0.5 ms call measures 1-1.5 ms of CPU (a 1 ms limit made it flap).
    inline_max_s: float = Field(0.005, ge=0, le=0.05)
    # Python's GIL switch interval while the app runs (restored at shutdown; null: leave it). When the event
    # loop comes back from a blocking call that released the GIL (the audit commit's fsync), it waits for
    # the thread that took the GIL meanwhile (monitors) to hand it back: up to this long. Python's
    # default, 5 ms, cost the loop about a fifth of its throughput with durability full.
    gil_switch_interval_s: float | None = Field(0.0005, gt=0, le=0.1)

    @field_validator("webhook")
    @classmethod
    def _https_webhook(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("webhook must be an https:// URL (plain http only to loopback)")
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                ipaddress.ip_network(p, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {p!r} is not an IP address or CIDR network") from None
        return v

    @property
    def audit_url(self) -> str:
        return self.audit.url or f"sqlite:///{Path(self.state_dir) / 'audit.db'}"

    @property
    def audit_key_file(self) -> Path:
        return Path(self.audit.key_file) if self.audit.key_file else Path(self.state_dir) / "audit.key"

    @property
    def audit_anchor_file(self) -> Path:
        """Where the gateway anchors the audit chain's head (outside the database)."""
        return Path(self.state_dir) / "audit.anchor"

    def with_overrides(self, **changes: Any) -> ServeConfig:
        """A copy with top-level fields replaced (``None`` values are ignored)."""
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return ServeConfig.model_validate(data)


def load_config(path: str | Path | None = None, **overrides: Any) -> ServeConfig:
    """Read and validate a YAML config; ``None`` gives the defaults. Errors name the bad key."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        loaded = load_yaml_file(p, "config file")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise UserError(f"{p}: the config must be a mapping of keys to values")
        data = loaded
        if data.get("reference") and not Path(str(data["reference"])).is_absolute():
            data["reference"] = str((p.parent / str(data["reference"])).resolve())
        if data.get("state_dir") and not Path(str(data["state_dir"])).is_absolute():
            data["state_dir"] = str((p.parent / str(data["state_dir"])).resolve())
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ServeConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "config"
        raise UserError(f"bad serve config: {where}: {err['msg']}") from None
