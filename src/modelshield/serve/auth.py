"""API keys (stored only as salted hashes), scopes, optional JWTs, and failed-auth burst blocking.

A key looks like ``msk_<id>_<secret>``: ``id`` (8 hex digits) is public and selects the record, the
32-byte ``secret`` is shown once at creation and only ``sha256(salt || secret)`` is stored.
Verification always hashes and compares in constant time (:func:`hmac.compare_digest`), also for
unknown ids (against a dummy record), so timing does not tell which ids exist.

Scopes: ``predict`` (``POST /v1/predict``), ``monitor`` (``/metrics``, dashboard data, alerts),
``admin`` (key management, audit verification; implies the other two).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelshield._io import private_dir, replace_private_file
from modelshield.errors import DataError, InputNotFoundError, UserError

__all__ = [
    "SCOPES",
    "ApiKey",
    "AuthError",
    "Authenticator",
    "FailureTracker",
    "KeyStore",
    "Principal",
]

SCOPES: tuple[str, ...] = ("predict", "monitor", "admin")
_PREFIX = "msk"


class AuthError(Exception):
    """Authentication (401) or authorization (403) failed. ``reason`` is safe to log; no secrets."""

    def __init__(self, status: int, reason: str, key_id: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.key_id = key_id


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key id (or ``jwt:<sub>``), its scopes and optional per-key limits."""

    key_id: str
    name: str
    scopes: frozenset[str]
    rate_per_s: float | None = None
    daily_rows: int | None = None
    rows_per_s: float | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


@dataclass
class ApiKey:
    """A stored key record: never holds the secret itself."""

    id: str
    name: str
    scopes: list[str]
    salt: str
    hash: str
    created: float
    revoked: float | None = None
    rate_per_s: float | None = None
    daily_rows: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    rows_per_s: float | None = None

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("salt")
        d.pop("hash")
        return d


def _digest(salt_hex: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt_hex) + secret.encode("utf-8")).hexdigest()


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    out = sorted(set(scopes))
    if not out:
        raise UserError(f"give at least one scope: {', '.join(SCOPES)}")
    bad = [s for s in out if s not in SCOPES]
    if bad:
        raise UserError(f"unknown scope {bad[0]!r}; choose from {', '.join(SCOPES)}")
    return out


class KeyStore:
    """API-key records in ``<state_dir>/keys.json`` (mode 0600, atomic writes).

    Verification checks the file's modification time at most every ``reload_every_s`` (whatever the
    key, so timing does not tell known from unknown ids) and re-reads it when it changed: a key created
    or revoked with ``modelshield keys ...`` applies within ``reload_every_s`` (default 0.05 s).
    """

    FILENAME = "keys.json"

    def __init__(self, state_dir: str | Path, *, reload_every_s: float = 0.05,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(state_dir) / self.FILENAME
        self.reload_every_s = reload_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._mtime: float | None = None
        self._checked = 0.0
        self._dummy = ApiKey(id="00000000", name="", scopes=[], salt=secrets.token_hex(16),
                             hash="0" * 64, created=0.0)
        self._load()

    # -- persistence ------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            st = self.path.stat()
        except (FileNotFoundError, NotADirectoryError):  # no keys yet (saving says why if the folder cannot exist)
            self._keys, self._mtime = {}, None
            return
        except OSError as exc:
            raise UserError(f"cannot read the key file {self.path}: {exc.strerror or type(exc).__name__}") from None
        if self._mtime == st.st_mtime_ns:
            return
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            keys = {k["id"]: ApiKey(**k) for k in raw.get("keys", [])}
        except (ValueError, TypeError, KeyError) as exc:
            raise DataError(f"{self.path}: corrupt key file ({exc.__class__.__name__})") from None
        self._keys, self._mtime = keys, st.st_mtime_ns

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked >= self.reload_every_s:
            self._checked = now
            with self._lock:
                self._load()

    def _save(self) -> None:
        private_dir(self.path.parent)
        body = json.dumps({"version": 1, "keys": [asdict(k) for k in self._keys.values()]}, indent=1)
        replace_private_file(self.path, body.encode("utf-8"), prefix=".keys.")
        self._mtime = self.path.stat().st_mtime_ns

    # -- management -------------------------------------------------------------------------
    def create(self, name: str, scopes: Iterable[str], *, rate_per_s: float | None = None,
               daily_rows: int | None = None, rows_per_s: float | None = None,
               owner: str | None = None) -> tuple[ApiKey, str]:
        """Create a key; returns ``(record, plaintext_key)``. The plaintext is not stored. ``owner`` (a person,
        team or tenant) groups keys for the gateway's aggregate extraction signals and per-owner budget."""
        if not name or len(name) > 100:
            raise UserError("key name must be 1-100 characters")
        if owner is not None and not (0 < len(owner) <= 100 and owner.isprintable()):
            raise UserError("key owner must be 1-100 printable characters")
        scope_list = _check_scopes(scopes)
        with self._lock:
            self._load()
            kid = secrets.token_hex(4)
            while kid in self._keys:  # pragma: no cover - 2^-32
                kid = secrets.token_hex(4)
            secret = secrets.token_urlsafe(32)
            salt = secrets.token_hex(16)
            rec = ApiKey(id=kid, name=name, scopes=scope_list, salt=salt, hash=_digest(salt, secret),
                         created=self._clock(), rate_per_s=rate_per_s, daily_rows=daily_rows, rows_per_s=rows_per_s,
                         meta={"owner": owner} if owner else {})
            self._keys[kid] = rec
            self._save()
        return rec, f"{_PREFIX}_{kid}_{secret}"

    def revoke(self, key_id: str) -> ApiKey:
        with self._lock:
            self._load()
            rec = self._keys.get(key_id)
            if rec is None:
                raise InputNotFoundError(f"no key with id {key_id!r} (see 'modelshield keys list')")
            if rec.revoked is None:
                rec.revoked = self._clock()
                self._save()
            return rec

    def list(self) -> list[ApiKey]:
        with self._lock:
            self._load()
            return sorted(self._keys.values(), key=lambda k: k.created)

    def get(self, key_id: str) -> ApiKey | None:
        self._maybe_reload()
        return self._keys.get(key_id)

    # -- verification -----------------------------------------------------------------------
    def verify(self, token: str) -> Principal:
        """Return the key's principal or raise :class:`AuthError` (401 unknown/bad/revoked)."""
        self._maybe_reload()  # the same for every attempt, so known and unknown ids cost the same
        prefix, _, rest = token.partition("_")
        kid, _, secret = rest.partition("_")
        rec = self._keys.get(kid) if prefix == _PREFIX else None
        target = rec if rec is not None else self._dummy
        ok = hmac.compare_digest(_digest(target.salt, secret), target.hash)
        if rec is None or not ok:
            raise AuthError(401, "invalid API key", key_id=kid if rec is not None else None)
        if rec.revoked is not None:
            raise AuthError(401, "revoked API key", key_id=rec.id)
        return Principal(key_id=rec.id, name=rec.name, scopes=frozenset(rec.scopes),
                         rate_per_s=rec.rate_per_s, daily_rows=rec.daily_rows, rows_per_s=rec.rows_per_s)


class FailureTracker:
    """Counts failed authentications per client over a sliding window; a burst blocks the client.

    ``record_failure`` returns ``True`` exactly once per burst (when the block starts), so the
    caller raises one alert, not one per request.
    """

    def __init__(self, *, burst: int, window_s: float, block_s: float,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = 100_000) -> None:
        self.burst, self.window_s, self.block_s = burst, window_s, block_s
        self._clock = clock
        # least recently failed first: a spray of new addresses evicts the stalest, never a client failing now
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked: dict[str, float] = {}
        self._lock = threading.Lock()
        self.max_clients = max_clients

    def blocked_for(self, client: str) -> float:
        """Seconds this client remains blocked (0 when not blocked: the block ends at ``start + block_s``)."""
        until = self._blocked.get(client)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            with self._lock:
                self._blocked.pop(client, None)
            return 0.0
        return left

    def record_failure(self, client: str) -> bool:
        """Count one failure; ``True`` when this failure starts a block.

        Memory is bounded: at most ``max_clients`` clients are tracked (failures and blocks each).
        """
        now = self._clock()
        with self._lock:
            q = self._fails.get(client)
            if q is None:
                while len(self._fails) >= self.max_clients:
                    self._fails.popitem(last=False)
                q = self._fails[client] = deque()
            else:
                self._fails.move_to_end(client)
            q.append(now)
            while q and q[0] < now - self.window_s:
                q.popleft()
            if len(q) >= self.burst and self._blocked.get(client, -math.inf) <= now:  # not blocked, or it ended
                if len(self._blocked) >= self.max_clients:  # drop ended blocks, then the soonest to end
                    self._blocked = {c: u for c, u in self._blocked.items() if u > now}
                    while len(self._blocked) >= self.max_clients:
                        del self._blocked[min(self._blocked, key=self._blocked.__getitem__)]
                self._blocked[client] = now + self.block_s
                q.clear()
                return True
        return False

    def blocked(self) -> dict[str, float]:
        now = self._clock()
        return {c: round(u - now, 1) for c, u in self._blocked.items() if u > now}


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal` (API key or JWT)."""

    def __init__(self, keys: KeyStore, jwt_config: Any | None = None) -> None:
        self.keys = keys
        self.jwt_config = jwt_config
        self._jwt_key: Any = None
        if jwt_config is not None:
            self._jwt_key = self._load_jwt_key(jwt_config)

    @staticmethod
    def _load_jwt_key(cfg: Any) -> Any:
        try:
            import jwt  # noqa: F401
        except ImportError as exc:  # pragma: no cover - optional extra
            from modelshield.errors import MissingExtraError

            raise MissingExtraError("pyjwt", "serve", "JWT authentication") from exc
        if cfg.public_key_file:
            p = Path(cfg.public_key_file)
            if not p.is_file():
                raise InputNotFoundError(f"JWT public key file not found: {p}")
            return p.read_bytes()
        if cfg.secret_env:
            val = os.environ.get(cfg.secret_env)
            if not val:
                raise UserError(f"JWT secret environment variable {cfg.secret_env} is not set")
            if len(val) < 32:
                raise UserError("the JWT HS256 secret must be at least 32 characters")
            return val
        raise UserError("jwt config needs secret_env (HS256) or public_key_file (RS256/EdDSA)")

    def authenticate(self, header: str | None) -> Principal:
        if not header:
            raise AuthError(401, "missing Authorization header")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 8192:
            raise AuthError(401, "expected 'Authorization: Bearer <key>'")
        if token.startswith(_PREFIX + "_"):
            return self.keys.verify(token)
        if self._jwt_key is not None and token.count(".") == 2:
            return self._verify_jwt(token)
        raise AuthError(401, "invalid API key")

    def _verify_jwt(self, token: str) -> Principal:
        import jwt  # lazy: pyjwt is in the optional 'serve' extra

        cfg = self.jwt_config
        try:
            claims = jwt.decode(
                token, self._jwt_key, algorithms=list(cfg.algorithms), audience=cfg.audience,
                issuer=cfg.issuer, leeway=cfg.leeway_s,
                options={"require": ["exp", "sub"], "verify_aud": cfg.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(401, f"invalid token ({type(exc).__name__})") from None
        raw = claims.get(cfg.scope_claim, [])
        scopes = raw.split() if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []
        sub = str(claims["sub"])[:64]
        return Principal(key_id=f"jwt:{sub}", name=sub, scopes=frozenset(s for s in scopes if s in SCOPES))

    @staticmethod
    def authorize(principal: Principal, scope: str) -> None:
        if not principal.has(scope):
            raise AuthError(403, f"key lacks the {scope!r} scope", key_id=principal.key_id)
