"""The predict pipeline without HTTP: a headers mapping, body bytes and a client address in; an Answer or a
Refusal out (counted, logged, answered as the HTTP route would)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from modelshield.errors import DataError
from modelshield.serve.auditlog import input_hash
from modelshield.serve.pipeline import STEPS, Answer, PredictPipeline, Refusal

CLIENT = "10.0.0.7"


def _auth(key: str, **more: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", **more}


def _body(rows) -> bytes:
    return json.dumps({"inputs": np.asarray(rows, dtype=np.float64).tolist()}).encode()


def _run(pipeline: PredictPipeline, headers, body, client: str = CLIENT):
    return asyncio.run(pipeline.run(headers, body, client))


def _record(gw, request_id: str) -> dict:
    return {r["request_id"]: r for r in gw.audit.recent(50)}[request_id]


def _metric(gw, name: str, labels: dict[str, str] | None = None) -> float:
    return gw.metrics.registry.get_sample_value(name, labels or {}) or 0.0


@pytest.fixture
def rows(breast_cancer):
    return breast_cancer[1][:3]


def test_happy_path_answers_logs_and_counts(make_gateway, rows):
    _, gw, keys = make_gateway()
    pl = PredictPipeline(gw)
    body = _body(rows)
    out = _run(pl, _auth(keys["predict"]), body)
    assert isinstance(out, Answer) and out.status == 200
    answer = json.loads(out.body)
    assert len(answer["predictions"]) == 3 and answer["classes"] == gw.classes.tolist()
    assert out.headers["X-Audit-Seq"] == str(out.seq) and out.seq > 0
    rec = _record(gw, out.headers["X-Request-Id"])
    assert rec["seq"] == out.seq and rec["status"] == 200 and rec["decision"] in ("ok", "flagged")
    assert rec["n_rows"] == 3 and rec["input_hash"] == input_hash(body) and rec["client"] == CLIENT
    assert _metric(gw, "modelshield_requests_total", {"endpoint": "/v1/predict", "status": "200"}) == 1
    assert _metric(gw, "modelshield_predict_rows_total") == 3
    gw.wait_monitors()
    assert gw.drift is not None and gw._m_done == 1  # the batch reached the monitors


def test_a_body_stream_is_read_in_chunks(make_gateway, rows):
    _, gw, keys = make_gateway()
    body = _body(rows)

    async def chunks():
        for i in range(0, len(body), 7):
            yield body[i : i + 7]

    out = _run(PredictPipeline(gw), _auth(keys["predict"]), chunks())
    assert isinstance(out, Answer) and _record(gw, out.headers["X-Request-Id"])["input_hash"] == input_hash(body)


def _refusal(out, status: int, code: str) -> Refusal:
    assert isinstance(out, Refusal), out
    assert (out.status, out.code) == (status, code), out
    assert out.headers["X-Request-Id"]
    return out


def _logged(gw, out: Refusal, key: str | None) -> dict:
    rec = _record(gw, out.headers["X-Request-Id"])
    assert rec["status"] == out.status and rec["decision"] == f"rejected:{out.code}" and rec["key_id"] == key
    assert _metric(gw, "modelshield_rejections_total", {"reason": out.code}) >= 1
    return rec


def test_authentication_refusals(make_gateway, rows):
    _, gw, keys = make_gateway(auth={"fail_burst": 2, "block_s": 60})
    pl = PredictPipeline(gw)
    out = _refusal(_run(pl, {}, _body(rows)), 401, "auth_401")
    assert out.headers["WWW-Authenticate"] == "Bearer" and out.message
    _logged(gw, out, None)
    out = _refusal(_run(pl, _auth(keys["monitor"]), _body(rows), client="10.0.0.8"), 403, "auth_403")
    _logged(gw, out, None)
    # a second failed authentication from CLIENT reaches fail_burst: the client is blocked, counted, not logged
    _refusal(_run(pl, _auth("not-a-key"), _body(rows)), 401, "auth_401")
    out = _refusal(_run(pl, _auth(keys["predict"]), _body(rows)), 429, "client_blocked")
    assert 1 <= int(out.headers["Retry-After"]) <= 61
    assert out.headers["X-Request-Id"] not in {r["request_id"] for r in gw.audit.recent(50)}
    assert any(a["monitor"] == "auth.burst" for a in gw.alerts)


def test_a_blocked_key_is_refused(make_gateway, rows):
    _, gw, keys = make_gateway()
    key_id = gw.auth.authenticate(f"Bearer {keys['predict']}").key_id
    gw.blocked_keys.add(key_id)
    out = _refusal(_run(PredictPipeline(gw), _auth(keys["predict"]), _body(rows)), 403, "key_blocked")
    _logged(gw, out, key_id)


def test_the_request_rate_is_refused_with_retry_after_and_logged_once_per_interval(make_gateway, rows):
    _, gw, keys = make_gateway(limits={"rate_per_s": 0.01, "burst": 1, "rate_log_interval_s": 3600})
    pl = PredictPipeline(gw)
    assert isinstance(_run(pl, _auth(keys["predict"]), _body(rows)), Answer)
    first = _refusal(_run(pl, _auth(keys["predict"]), _body(rows)), 429, "rate")
    assert int(first.headers["Retry-After"]) >= 1
    _logged(gw, first, gw.auth.authenticate(f"Bearer {keys['predict']}").key_id)
    second = _refusal(_run(pl, _auth(keys["predict"]), _body(rows)), 429, "rate")
    assert second.headers["X-Request-Id"] not in {r["request_id"] for r in gw.audit.recent(50)}
    assert _metric(gw, "modelshield_rate_refusals_unlogged_total") == 1


@pytest.mark.parametrize("how", ["content-length", "stream", "bytes"])
def test_a_body_over_the_limit_is_refused(make_gateway, how):
    _, gw, keys = make_gateway(limits={"max_body_bytes": 100})
    body = b'{"inputs": [[' + b"1," * 100 + b"1]]}"
    headers = _auth(keys["predict"])
    if how == "content-length":
        headers["content-length"] = str(len(body))

    async def stream():
        yield body[:60]
        yield body[60:]

    out = _run(PredictPipeline(gw), headers, stream() if how == "stream" else body)
    assert _refusal(out, 413, "body_too_large").message == "body exceeds 100 bytes"
    _logged(gw, out, gw.auth.authenticate(f"Bearer {keys['predict']}").key_id)


def test_the_daily_byte_budget_is_refused(make_gateway, rows):
    _, gw, keys = make_gateway(limits={"daily_bytes": 64})
    out = _refusal(_run(PredictPipeline(gw), _auth(keys["predict"]), _body(rows)), 429, "bytes")
    assert int(out.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(("body", "ctype", "status", "code", "words"), [
    (b"{not json", "application/json", 422, "invalid", "not valid JSON"),
    (b'{"rows": [[1]]}', "application/json", 422, "invalid", '{"inputs"'),
    (b'{"inputs": [["1.0"]]}', "application/json", 422, "invalid", "not strings"),
    (b'{"inputs": [[1, 2]]}', "application/json", 422, "invalid", "features"),
    (b"not an npy", "application/x-npy", 422, "invalid", "not a .npy array"),
])
def test_bodies_that_do_not_parse_are_refused(make_gateway, body, ctype, status, code, words):
    _, gw, keys = make_gateway()
    out = _run(PredictPipeline(gw), _auth(keys["predict"], **{"content-type": ctype}), body)
    assert words in _refusal(out, status, code).message
    rec = _logged(gw, out, gw.auth.authenticate(f"Bearer {keys['predict']}").key_id)
    assert rec["input_hash"] == input_hash(body)  # hashed before parsing: the refusal names the body


def test_a_batch_over_max_batch_is_refused(make_gateway, breast_cancer):
    _, gw, keys = make_gateway(limits={"max_batch": 2})
    out = _run(PredictPipeline(gw), _auth(keys["predict"]), _body(breast_cancer[1][:3]))
    assert "exceeds 2" in _refusal(out, 413, "batch_too_large").message


def test_the_row_budgets_are_refused(make_gateway, breast_cancer):
    _, gw, keys = make_gateway(limits={"daily_rows": 4})
    pl = PredictPipeline(gw)
    assert isinstance(_run(pl, _auth(keys["predict"]), _body(breast_cancer[1][:3])), Answer)
    out = _refusal(_run(pl, _auth(keys["predict"]), _body(breast_cancer[1][:3])), 429, "budget")
    assert _logged(gw, out, gw.auth.authenticate(f"Bearer {keys['predict']}").key_id)["n_rows"] == 3


def test_inputs_the_defense_rejects_are_refused(make_gateway, rows):
    _, gw, keys = make_gateway(input={"policy": "reject"})
    far = np.asarray(rows, dtype=np.float64) + 1e3
    out = _refusal(_run(PredictPipeline(gw), _auth(keys["predict"]), _body(far)), 422, "input_rejected")
    rec = _logged(gw, out, gw.auth.authenticate(f"Bearer {keys['predict']}").key_id)
    assert rec["scores"]  # the screening's scores are kept with the refusal


@pytest.mark.parametrize(("failure", "status", "code"), [
    ("nan", 500, "model_error"), ("raises", 500, "internal_error"), ("data_error", 422, "invalid")])
def test_model_failures_are_refused_without_details(make_gateway, rows, monkeypatch, failure, status, code):
    _, gw, keys = make_gateway(reference=False)

    def broken(X):
        if failure == "raises":
            raise ValueError("secret internal detail")
        if failure == "data_error":
            raise DataError("the model cannot take these rows")
        return np.full((len(X), 2), np.nan)

    monkeypatch.setattr(gw.model, "predict_proba", broken)
    out = _refusal(_run(PredictPipeline(gw), _auth(keys["predict"]), _body(rows)), status, code)
    assert "secret" not in out.message
    _logged(gw, out, gw.auth.authenticate(f"Bearer {keys['predict']}").key_id)


def test_a_failing_audit_write_refuses_with_503_and_serves_nothing(make_gateway, rows, monkeypatch):
    _, gw, keys = make_gateway()

    async def broken(record):
        raise OSError("disk full")

    monkeypatch.setattr(gw.audit, "append_async", broken)
    pl = PredictPipeline(gw)
    queued = gw._m_in
    out = _refusal(_run(pl, _auth(keys["predict"]), _body(rows)), 503, "audit_unavailable")
    assert out.message == "audit log unavailable" and "X-Audit-Seq" not in out.headers
    assert gw._m_in == queued and not gw.stats  # not handed to the monitors, not counted as served
    assert _metric(gw, "modelshield_requests_total", {"endpoint": "/v1/predict", "status": "200"}) == 0
    assert _metric(gw, "modelshield_requests_total", {"endpoint": "/v1/predict", "status": "503"}) == 1
    assert _metric(gw, "modelshield_audit_failures_total") == 1
    # a refusal that cannot be logged is not answered with its own status either: 503 (fail closed)
    out = _refusal(_run(pl, {}, _body(rows)), 503, "audit_unavailable")
    assert "WWW-Authenticate" not in out.headers


class _Spy(PredictPipeline):
    """Records the steps as they run."""

    def __init__(self, gw) -> None:
        super().__init__(gw)
        self.ran: list[str] = []
        for name in STEPS:
            step = getattr(self, name)

            async def spied(st, _name=name, _step=step):
                self.ran.append(_name)
                return await _step(st)

            setattr(self, name, spied)


def test_the_steps_run_in_order(make_gateway, rows):
    _, gw, keys = make_gateway()
    pl = _Spy(gw)
    assert isinstance(_run(pl, _auth(keys["predict"]), _body(rows)), Answer)
    assert pl.ran == list(STEPS)
    assert STEPS == ("authenticate", "admit", "read_body", "parse", "limit", "screen", "predict", "harden", "record")


class _Watched:
    """An async body stream that records whether anything of it was read."""

    def __init__(self, body: bytes) -> None:
        self.body, self.read = body, False

    def __aiter__(self):
        return self._gen()

    async def _gen(self):
        self.read = True
        yield self.body


def test_authentication_comes_before_the_body_is_read(make_gateway):
    _, gw, _ = make_gateway()
    pl = _Spy(gw)
    body = _Watched(b"x" * (1 << 21))  # over max_body_bytes, and not JSON
    _refusal(_run(pl, {"content-length": str(1 << 21)}, body), 401, "auth_401")
    assert pl.ran == ["authenticate"] and not body.read


def test_the_request_rate_comes_before_the_body_and_its_validation(make_gateway, rows):
    _, gw, keys = make_gateway(limits={"rate_per_s": 0.01, "burst": 1})
    pl = _Spy(gw)
    assert isinstance(_run(pl, _auth(keys["predict"]), _body(rows)), Answer)
    pl.ran.clear()
    body = _Watched(b"{not json")
    _refusal(_run(pl, _auth(keys["predict"]), body), 429, "rate")  # not 422: the body was never looked at
    assert pl.ran == ["authenticate", "admit"] and not body.read


def test_the_audit_record_is_committed_before_the_answer_is_built(make_gateway, rows, monkeypatch):
    _, gw, keys = make_gateway()
    events: list[str] = []
    real_append, real_count = gw.audit.append_async, gw.count

    async def append(record):
        events.append("commit")
        return await real_append(record)

    def count(key, decision):
        events.append("count")
        return real_count(key, decision)

    monkeypatch.setattr(gw.audit, "append_async", append)
    monkeypatch.setattr(gw, "count", count)
    out = _run(PredictPipeline(gw), _auth(keys["predict"]), _body(rows))
    assert isinstance(out, Answer) and events == ["commit", "count"]
