"""The request path of ``POST /v1/predict`` as named steps, callable without HTTP.

:class:`PredictPipeline` takes a headers mapping, the body (bytes, or the chunks of a stream) and the
client's address, and gives back an :class:`Answer` or a :class:`Refusal`::

    outcome = await PredictPipeline(gateway).run({"authorization": "Bearer ..."}, b'{"inputs": [[...]]}', "10.0.0.7")

Each step is a method that takes the request's :class:`PredictState` and returns it (filled in further)
or a :class:`Refusal`; the first refusal ends the request. The steps, in order (:data:`STEPS`)::

    authenticate  client blocked -> 429, no or bad key -> 401, scope -> 403, key blocked -> 403
    admit         request rate -> 429                  (nothing of the body has been read so far)
    read_body     body size -> 413, daily bytes -> 429 (the body is hashed for the audit log)
    parse         not JSON / .npy, not finite, wrong width -> 422, batch size -> 413
    limit         rows/s, daily rows, the owner's daily rows -> 429
    screen        input schema, OOD, adversarial and STRIP scores, per policy -> 422 (one model call
                  screens and predicts)
    predict       the model's probabilities are the answer; non-finite -> 500
    harden        output hardening; the answer is serialised once (response and audit log)
    record        audit log commit (fail closed: 503), then monitors, counters, latency

A refusal from the first seven steps is counted and logged by :meth:`Gateway.refuse
<modelshield.serve.gateway.Gateway.refuse>` before it is answered (a refusal that cannot be logged is
answered 503); an error inside them is answered 4xx (:class:`~modelshield.errors.ModelShieldError`) or
500 and logged the same way, with no traceback to the client. ``record`` answers 503 itself when the
request's record cannot be committed: nothing is answered that is not in the log. An error inside
``harden`` or ``record`` is not caught here: the app's handler answers it 500, without a record (as
before the pipeline existed).
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import math
import secrets
import time
from collections.abc import AsyncIterable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib import format as npf

from modelshield.errors import ModelShieldError
from modelshield.serve.auditlog import AuditRecord, compact_json, input_hash
from modelshield.serve.monitors.base import Batch

if TYPE_CHECKING:
    from modelshield.serve.auth import Principal
    from modelshield.serve.gateway import Gateway

__all__ = ["AUDIT_UNAVAILABLE", "STEPS", "Answer", "PredictPipeline", "PredictState", "Refusal", "Refused",
           "parse_inputs", "read_body", "request_ids"]

#: the endpoint the pipeline serves (metrics label and audit records)
ENDPOINT = "/v1/predict"
#: the steps of :meth:`PredictPipeline.run`, in order
STEPS = ("authenticate", "admit", "read_body", "parse", "limit", "screen", "predict", "harden", "record")
#: the steps whose refusals and errors are answered and logged as refusals (``record`` answers its own 503)
_CHECKED = STEPS[:7]
#: the error code of the fail-closed 503 (a record could not be committed)
AUDIT_UNAVAILABLE = "audit_unavailable"
_NPY_TYPES = ("application/x-npy", "application/octet-stream")
#: what a rejected request is told, per screening source that flagged it (no scores, no thresholds)
_REJECTED_BY = {"schema": "fail the input schema", "ood": "look out of distribution",
                "adversarial": "look adversarial", "strip": "look like they carry a backdoor trigger (STRIP)"}

_log = logging.getLogger("modelshield.serve")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused: HTTP ``status``, error ``code`` (the ``reason`` label of
    ``modelshield_rejections`` and the audit decision ``rejected:<code>``), the ``message`` answered as
    ``{"detail": message}``, and response ``headers`` (``Retry-After``, ``WWW-Authenticate``, ...)."""

    status: int
    code: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def limited(cls, decision: Any) -> Refusal:
        """429 for a limiter decision that refused: its reason, message and ``Retry-After`` (1 s to 1 day)."""
        return cls(429, decision.reason, decision.message,
                   {"Retry-After": str(max(1, math.ceil(min(decision.retry_after_s, 86400.0))))})

    @classmethod
    def audit_unavailable(cls, request_id: str) -> Refusal:
        """503, fail closed: a record the answer depends on could not be committed to the audit log."""
        return cls(503, AUDIT_UNAVAILABLE, "audit log unavailable", {"X-Request-Id": request_id})


class Refused(Exception):
    """Raised by helpers deep inside a step (the body parser); the step returns its :class:`Refusal`."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class Answer:
    """A prediction answered: the serialised body (exactly what the audit log holds when
    ``audit.log_outputs`` is on), headers (``X-Request-Id``, ``X-Audit-Seq``, ``X-Input-Flagged``) and
    the audit record's sequence number."""

    status: int
    body: str
    headers: Mapping[str, str]
    seq: int


@dataclass(slots=True, eq=False)
class PredictState:
    """What one request has gathered so far; each step fills in its part."""

    request_id: str
    client: str
    headers: Mapping[str, str]
    source: bytes | AsyncIterable[bytes]
    started: float
    principal: Principal | None = None
    key: str | None = None
    body: bytes = b""
    digest: str = ""
    X: np.ndarray | None = None
    rows: int = 0
    scores: dict[str, Any] | None = None
    decision: str = "ok"
    proba: np.ndarray | None = None
    answer: str = ""
    seq: int = 0


def request_ids() -> Callable[[], str]:
    """Request ids: a random per-process prefix and a counter (unique across restarts, no syscall each)."""
    prefix, counter = secrets.token_hex(8), itertools.count(1)
    return lambda: f"{prefix}{next(counter):016x}"


class PredictPipeline:
    """``POST /v1/predict`` over a :class:`~modelshield.serve.gateway.Gateway`, without HTTP.

    Parameters
    ----------
    gateway : the gateway whose keys, limits, defenses, monitors and audit log serve the request.
    new_id : request-id source (:func:`request_ids` by default; the app shares one with its other routes).
    """

    def __init__(self, gateway: Gateway, *, new_id: Callable[[], str] | None = None) -> None:
        self.gw = gateway
        self.new_id = new_id or request_ids()
        m = gateway.metrics
        self._ok, self._rows, self._latency = m.requests.labels(ENDPOINT, "200"), m.rows, m.latency

    async def run(self, headers: Mapping[str, str], body: bytes | AsyncIterable[bytes],
                  client: str) -> Answer | Refusal:
        """Serve one request: ``headers`` with lower-case names (or a case-insensitive mapping), ``body`` as
        bytes or an async iterable of chunks (pulled only after authentication), ``client`` the peer's address.
        The outcome is final: counted, logged, and carrying its ``X-Request-Id``."""
        st = PredictState(request_id=self.new_id(), client=client, headers=headers, source=body,
                          started=time.perf_counter())
        refusal: Refusal | None = None
        try:
            for name in _CHECKED:
                out = await getattr(self, name)(st)
                if isinstance(out, Refusal):
                    refusal = out
                    break
        except ModelShieldError as exc:
            refusal = Refusal(exc.http_status if 400 <= exc.http_status < 500 else 422, "invalid", str(exc))
        except Exception as exc:  # the model (or a bug) failed: logged in the audit log too, no traceback to the client
            _log.error("POST /v1/predict failed: %s", type(exc).__name__, exc_info=True)
            refusal = Refusal(500, "internal_error", "internal error")
        if refusal is not None:
            return await self.gw.refuse(refusal, request_id=st.request_id, client=st.client, key=st.key,
                                        endpoint=ENDPOINT, digest=st.digest, rows=st.rows, scores=st.scores)
        st = await self.harden(st)
        out = await self.record(st)
        if isinstance(out, Refusal):
            return out
        hdr = {"X-Request-Id": st.request_id, "X-Audit-Seq": str(st.seq)}
        if st.decision == "flagged":
            hdr["X-Input-Flagged"] = "1"
        return Answer(200, st.answer, hdr, st.seq)

    # -- the steps ----------------------------------------------------------------------------
    async def authenticate(self, st: PredictState) -> PredictState | Refusal:
        """The key (``predict`` scope), and not one blocked for suspected extraction."""
        p = self.gw.authenticate(st.headers.get("authorization"), st.client, "predict")
        if isinstance(p, Refusal):
            return p
        st.principal, st.key = p, p.key_id
        if p.key_id in self.gw.blocked_keys:
            return Refusal(403, "key_blocked", "this key is blocked (suspected model extraction)")
        return st

    async def admit(self, st: PredictState) -> PredictState | Refusal:
        """The key's request rate, before the body is read: bad requests cost too."""
        assert st.principal is not None
        dec = self.gw.limiter.admit(st.principal.key_id, rate=st.principal.rate_per_s)
        return st if dec.allowed else Refusal.limited(dec)

    async def read_body(self, st: PredictState) -> PredictState | Refusal:
        """The body (never past ``limits.max_body_bytes``), charged to the key's daily bytes, then hashed."""
        body = await read_body(st.headers, st.source, self.gw.config.limits.max_body_bytes)
        if isinstance(body, Refusal):
            return body
        assert st.key is not None
        dec = self.gw.limiter.charge_bytes(st.key, len(body))
        if not dec.allowed:
            return Refusal.limited(dec)
        st.body, st.digest = body, input_hash(body)
        return st

    async def parse(self, st: PredictState) -> PredictState | Refusal:
        """The rows: JSON ``{"inputs": [[...], ...]}`` or ``.npy``; finite, the model's width, at most ``max_batch``."""
        try:
            st.X = self.gw.parse(st.body, st.headers.get("content-type", "application/json"))
        except Refused as r:
            return r.refusal
        st.rows = len(st.X)
        return st

    async def limit(self, st: PredictState) -> PredictState | Refusal:
        """The key's rows per second and daily rows, then its owner's daily rows (when configured)."""
        gw, p, key = self.gw, st.principal, st.key
        assert p is not None and key is not None
        dec = gw.limiter.charge_rows(key, st.rows, rows_per_s=p.rows_per_s, daily_rows=p.daily_rows)
        if not dec.allowed:
            return Refusal.limited(dec)
        owner_budget = gw.config.limits.owner_daily_rows
        owner = gw.owner_of(key) if owner_budget else None
        if owner is not None and owner_budget:
            dec = gw.limiter.charge_owner_rows(owner, st.rows, budget=owner_budget)
            if not dec.allowed:
                return Refusal.limited(dec)
        return st

    async def screen(self, st: PredictState) -> PredictState | Refusal:
        """Input defense (schema, OOD, adversarial score) and the model call it shares with the prediction:
        on the event loop for small, fast requests, on a worker thread otherwise."""
        gw, X = self.gw, st.X
        assert X is not None
        if gw.run_inline(st.rows):  # fast model, small batch: no thread hop
            st.scores, st.decision, st.proba = gw.screen_and_predict(X)
        else:
            from starlette.concurrency import run_in_threadpool  # lazy: starlette comes with the optional 'serve' extra

            st.scores, st.decision, st.proba = await run_in_threadpool(gw.screen_and_predict, X)
        if st.proba is None:
            by = [_REJECTED_BY[n] for n in (st.scores or {}).get("flagged_by", ()) if n in _REJECTED_BY]
            return Refusal(422, "input_rejected", "inputs " + (" and ".join(by) if by else
                                                                "fail the input schema or look out of distribution"))
        return st

    async def predict(self, st: PredictState) -> PredictState | Refusal:
        """The model's probabilities (from the screening call) are the answer, if they are finite."""
        if not np.isfinite(st.proba).all():  # never answer (or log) NaN: it is not even valid JSON
            return Refusal(500, "model_error", "the model returned non-finite probabilities")
        return st

    async def harden(self, st: PredictState) -> PredictState:
        """Output hardening (top-k, rounding, noise); serialised once, for the response and the log."""
        st.answer = compact_json(self.gw.outputs.body(st.proba, self.gw.classes))
        if st.scores is not None:
            st.scores["decision"] = st.decision
        return st

    async def record(self, st: PredictState) -> PredictState | Refusal:
        """Commit the audit record (fail closed: 503), then hand the batch to the monitors and count it."""
        gw = self.gw
        seq = await gw.log(AuditRecord(kind="request", endpoint=ENDPOINT, status=200, decision=st.decision,
                                       key_id=st.key, client=st.client, request_id=st.request_id,
                                       input_hash=st.digest, n_rows=st.rows,
                                       output_json=st.answer if gw.config.audit.log_outputs else None,
                                       scores=st.scores))
        if seq is None:  # no answer that is not in the log
            gw.metrics.requests.labels(ENDPOINT, "503").inc()  # not made ahead: no 503 series until one happens
            return Refusal.audit_unavailable(st.request_id)
        assert st.key is not None and st.X is not None and st.proba is not None
        if gw.monitors:
            gw.enqueue_monitors(Batch(X=st.X, proba=st.proba, key_id=st.key, time=gw.clock()))
        gw.count(st.key, st.decision)
        self._rows.inc(st.rows)
        self._ok.inc()
        self._latency.observe(time.perf_counter() - st.started)
        st.seq = seq
        return st


# -- the body ------------------------------------------------------------------------------------
async def read_body(headers: Mapping[str, str], source: bytes | AsyncIterable[bytes], limit: int) -> bytes | Refusal:
    """The body, never more than ``limit`` bytes of it: a ``Content-Length`` over the limit is refused
    before anything is read, a stream as soon as it grows past it (413)."""
    too_large = Refusal(413, "body_too_large", f"body exceeds {limit} bytes")
    clen = headers.get("content-length")
    if clen is not None and (not clen.isdigit() or int(clen) > limit):
        return too_large
    if isinstance(source, bytes | bytearray):
        return too_large if len(source) > limit else bytes(source)
    chunks, size = [], 0
    async for chunk in source:
        size += len(chunk)
        if size > limit:
            return too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _invalid(message: str) -> Refused:
    return Refused(Refusal(422, "invalid", message))


def parse_inputs(body: bytes, content_type: str, *, max_batch: int, n_features: int | None) -> np.ndarray:
    """The rows of a request body as a float64 array; raises :class:`Refused` (422; 413 over ``max_batch``)."""
    ct = content_type.split(";")[0].strip().lower()
    if ct in _NPY_TYPES:
        X = _parse_npy(body)
    else:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise _invalid("body is not valid JSON") from None
        if not isinstance(data, dict) or "inputs" not in data:
            raise _invalid('body must be {"inputs": [[...], ...]}')
        X = _numbers(data["inputs"], body)
    if X.ndim != 2 or X.shape[0] == 0:
        raise _invalid(f"inputs must be a non-empty 2-D array (got shape {list(X.shape)})")
    if X.shape[0] > max_batch:
        raise Refused(Refusal(413, "batch_too_large", f"batch of {X.shape[0]} rows exceeds {max_batch}"))
    if n_features is not None and X.shape[1] != n_features:
        raise _invalid(f"each row must have {n_features} features, got {X.shape[1]}")
    X = X.astype(np.float64, copy=False)
    if not np.isfinite(X).all():
        raise _invalid("inputs must be finite numbers")
    return X


_NOT_NUMBERS = {"U": "strings", "S": "strings", "b": "true/false", "c": "complex values", "M": "dates",
                "m": "durations", "V": "records"}


def _numbers(inputs: Any, body: bytes) -> np.ndarray:
    """``inputs`` as an array of JSON numbers: strings (``"1.0"``), booleans and nulls are refused."""
    try:
        A = np.asarray(inputs)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise _invalid("inputs must be a rectangular array of numbers") from None
    kind = A.dtype.kind
    if kind == "O":  # integers beyond int64 are numbers; anything else (None, lists in cells, dicts) is not
        flat = A.ravel()
        if not all(type(v) is int or type(v) is float for v in flat):
            raise _invalid("inputs must be a rectangular array of JSON numbers")
    elif kind not in "iuf":
        what = _NOT_NUMBERS.get(kind, f"{A.dtype} values")
        raise _invalid(f"inputs must be JSON numbers, not {what} (e.g. 1.5, not \"1.5\")")
    elif b"true" in body or b"false" in body:  # numpy turns True into 1.0 beside numbers: look closer
        if _has_bool(inputs):
            raise _invalid("inputs must be JSON numbers, not true/false")
    try:
        return A.astype(np.float64, copy=False)
    except (ValueError, TypeError, OverflowError):
        raise _invalid("inputs must be a rectangular array of numbers") from None


def _has_bool(obj: Any) -> bool:
    stack = [obj]
    while stack:
        v = stack.pop()
        if type(v) is bool:
            return True
        if type(v) is list:
            stack.extend(v)
    return False


def _parse_npy(body: bytes) -> np.ndarray:
    """A ``.npy`` payload, read without ever unpickling or trusting the header's size.

    The header is parsed first; the array must be 2-D, numeric, and exactly as long as the bytes that
    follow, then it is viewed with ``np.frombuffer`` (no allocation driven by the header).
    """
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
        raise _invalid("not a .npy array") from None
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise _invalid(f"the .npy payload must be a numeric array, not {dtype.str!r}")
    if (not isinstance(shape, tuple) or len(shape) != 2
            or not all(type(d) is int and 0 <= d < 2**62 for d in shape)):
        raise _invalid(f"the .npy payload must be a 2-D array with a sane shape (got {shape!r:.60})")
    offset = buf.tell()
    # Python integers: a shape whose product overflows int64 cannot wrap round to the body's size
    if math.prod(shape) * dtype.itemsize != len(body) - offset:
        raise _invalid(f"the .npy payload's size does not match its header (shape {list(shape)}, "
                       f"{len(body) - offset} data bytes)")
    flat = np.frombuffer(body, dtype=dtype, offset=offset)
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
