"""Issue 15 C.5: the gateway's request path against a careful client.

Bodies are read only after authentication and never past ``max_body_bytes`` on any route;
``X-Forwarded-For`` is believed only from configured proxies; the request rate is taken before
validation; malformed ``.npy`` headers and non-number JSON inputs are 422; verification is admin
only; the API description is off by default.
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
import time

import numpy as np
import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from modelshield.serve.app import uvicorn_options
from modelshield.serve.config import ServeConfig

MiB = 1 << 20


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- (a) authenticate before reading any body; the body limit on every route ------------------------


def _asgi_call(app, method: str, path: str, headers: dict[str, str], n_chunks: int, chunk: int = MiB,
               content_length: bool = True):
    """Drive the ASGI app directly with a lazily produced body; returns (status, body, chunks pulled)."""
    pulled = 0
    payload = b"{" + b" " * (chunk - 1)

    async def receive():
        nonlocal pulled
        if pulled < n_chunks:
            pulled += 1
            return {"type": "http.request", "body": payload, "more_body": pulled < n_chunks}
        await asyncio.sleep(3600)  # a client that sends nothing more (never reached when nothing is read)

    sent = []

    async def send(msg):
        sent.append(msg)

    hdrs = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    hdrs.append((b"content-type", b"application/json"))
    if content_length:
        hdrs.append((b"content-length", str(n_chunks * chunk).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": hdrs, "client": ("10.1.2.3", 5555), "server": ("127.0.0.1", 8000)}

    async def run():
        await asyncio.wait_for(app(scope, receive, send), 30)

    asyncio.run(run())
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, pulled


_ROUTES = [("POST", "/admin/keys"), ("POST", "/v1/predict"), ("POST", "/admin/keys/abcd1234/unthrottle"),
           ("DELETE", "/admin/keys/abcd1234"), ("GET", "/admin/audit/verify"), ("GET", "/metrics"),
           ("GET", "/admin/stats")]
_BAD_AUTH = [{}, {"Authorization": "Bearer msk_00000000_nope"}, {"Authorization": "Basic YWRtaW46YWRtaW4="},
             {"Authorization": "Bearer " + "x" * 9000}]


@pytest.mark.parametrize(("method", "path"), _ROUTES)
def test_an_unauthenticated_body_is_never_read(make_gateway, method, path):
    app, _gw, _ = make_gateway(auth={"fail_burst": 1000})
    for auth in _BAD_AUTH:
        status, _, pulled = _asgi_call(app, method, path, auth, n_chunks=300)  # 300 MiB offered
        assert status == 401, auth
        assert pulled == 0, auth  # not one byte of the 300 MiB was buffered


@pytest.mark.parametrize("content_length", [True, False])
@pytest.mark.parametrize(("scope", "path"), [("admin", "/admin/keys"), ("predict", "/v1/predict")])
def test_an_authenticated_body_is_read_only_up_to_the_limit(make_gateway, content_length, scope, path):
    limit = 256 * 1024
    app, _gw, keys = make_gateway(limits={"max_body_bytes": limit})
    chunk = 64 * 1024
    status, body, pulled = _asgi_call(app, "POST", path, bearer(keys[scope]), n_chunks=100, chunk=chunk,
                                      content_length=content_length)
    assert status == 413 and str(limit) in json.loads(body)["detail"]
    # with a Content-Length the refusal comes before any read; without one, at the first chunk past the limit
    assert pulled == (0 if content_length else limit // chunk + 1)


def test_the_body_limit_covers_routes_that_read_a_body_themselves(make_gateway):
    """The ASGI guard caps any route, also one added later that reads its whole body."""
    app, _, _ = make_gateway(limits={"max_body_bytes": 100_000})

    @app.post("/extra")
    async def extra(request: Request):  # reads everything it is given
        return {"n": len(await request.body())}

    status, _, pulled = _asgi_call(app, "POST", "/extra", {}, n_chunks=50, chunk=10_000, content_length=False)
    assert status == 413 and pulled == 11
    status, body, _ = _asgi_call(app, "POST", "/extra", {}, n_chunks=5, chunk=10_000)
    assert status == 200 and json.loads(body) == {"n": 50_000}


def test_admin_key_creation_still_validates_its_body(make_gateway):
    app, gw, keys = make_gateway()
    h = bearer(keys["admin"])
    with TestClient(app) as c:
        for bad in ({}, {"name": ""}, {"name": "x", "scopes": ["root"]}, {"name": "x", "rate_per_s": -1},
                    {"name": "x", "rows_per_s": 0}):
            r = c.post("/admin/keys", json=bad, headers=h)
            assert r.status_code == 422, bad
        assert c.post("/admin/keys", content=b"{not json", headers=h).status_code == 422
        r = c.post("/admin/keys", json={"name": "svc", "scopes": ["predict"], "rows_per_s": 5}, headers=h)
        assert r.status_code == 201 and r.json()["rows_per_s"] == 5
    assert gw.keys.get(r.json()["id"]).rows_per_s == 5


# -- (b) X-Forwarded-For only from trusted proxies ---------------------------------------------------


def _xff_values(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a, b, c, d = (int(x) for x in rng.integers(1, 255, 4))
        out.append([f"{a}.{b}.{c}.{d}", f"2001:db8::{a:x}:{b:x}", f"{a}.{b}.{c}.{d}, 10.0.0.{d}"][i % 3])
    return out


def _uvicorn(app, opts):
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off",
                                           **opts))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    return server, t, f"http://127.0.0.1:{port}"


def _rotate(make_gateway, opts_from, seed, trusted=()):
    import httpx

    app, gw, _ = make_gateway(auth={"fail_burst": 3, "block_s": 300}, trusted_proxies=list(trusted))
    server, t, url = _uvicorn(app, opts_from(gw.config))
    try:
        with httpx.Client(timeout=5) as c:
            codes = [c.post(f"{url}/v1/predict", json={"inputs": [[0.0]]},
                            headers={"Authorization": "Bearer msk_00000000_guess", "X-Forwarded-For": x}).status_code
                     for x in _xff_values(8, seed)]
    finally:
        server.should_exit = True
        t.join(10)
    gw.audit.close()
    clients = {r["client"] for r in gw.audit.recent(50) if r["kind"] == "auth"}
    return codes, clients


@pytest.mark.parametrize("seed", [0, 1])
def test_rotating_x_forwarded_for_does_not_change_the_client_identity(make_gateway, seed):
    codes, clients = _rotate(make_gateway, uvicorn_options, seed)
    assert codes == [401] * 3 + [429] * 5  # the 127.0.0.1 peer is blocked after the burst, whatever it claims
    assert clients == {"127.0.0.1"}


def test_uvicorns_own_default_would_believe_the_header(make_gateway):
    """Why the options matter: with uvicorn's defaults (proxy headers from loopback) rotation evades the block."""
    codes, clients = _rotate(make_gateway, lambda cfg: {}, 0)
    assert 429 not in codes and len(clients) >= 6


def test_a_configured_proxy_is_believed(make_gateway):
    codes, clients = _rotate(make_gateway, uvicorn_options, 0, trusted=["127.0.0.1"])
    assert 429 not in codes and "127.0.0.1" not in clients and len(clients) >= 6


def test_modelshield_serve_passes_the_proxy_options_to_uvicorn(server_setup):
    """The CLI end to end: a real `modelshield serve` process blocks the loopback peer whatever XFF says."""
    import httpx

    srv = server_setup({"auth": {"fail_burst": 3, "block_s": 300}}).start()
    with httpx.Client(timeout=5) as c:
        codes = [c.post(f"{srv.url}/v1/predict", json={"inputs": [[0.0]]},
                        headers={"Authorization": "Bearer msk_00000000_guess", "X-Forwarded-For": x}).status_code
                 for x in _xff_values(6, 2)]
        docs = c.get(f"{srv.url}/openapi.json").status_code
    assert codes == [401] * 3 + [429] * 3
    assert docs == 404


@pytest.mark.parametrize("bad", ["not-an-ip", "10.0.0.0/33", "example.com"])
def test_trusted_proxies_must_be_addresses(bad):
    with pytest.raises(ValueError, match="trusted_proxies"):
        ServeConfig(trusted_proxies=[bad])
    assert uvicorn_options(ServeConfig()) == {"proxy_headers": False, "forwarded_allow_ips": ""}
    assert uvicorn_options(ServeConfig(trusted_proxies=["10.0.0.0/8", "::1"]))["forwarded_allow_ips"] == "10.0.0.0/8,::1"


# -- (c) the request rate is taken before validation -----------------------------------------------


def _bad_bodies(n: int) -> list[tuple[bytes, str]]:
    kinds = [(b"{not json", "application/json"), (b'{"inputs": [["1.0", "2"]]}', "application/json"),
             (b'{"inputs": [[1, 2]]}', "application/json"), (b'{"rows": []}', "application/json"),
             (b"\x93NUMPY garbage", "application/x-npy"), (b'{"inputs": []}', "application/json")]
    return [kinds[i % len(kinds)] for i in range(n)]


def test_invalid_requests_spend_the_request_rate(make_gateway):
    app, gw, keys = make_gateway(limits={"rate_per_s": 0.001, "burst": 10, "rate_log_interval_s": 3600})
    h = bearer(keys["predict"])
    with TestClient(app) as c:
        codes = [c.post("/v1/predict", content=body, headers={**h, "Content-Type": ct}).status_code
                 for body, ct in _bad_bodies(200)]
    assert codes[:10] == [422] * 10 and codes[10:] == [429] * 190
    gw.audit.close()
    recs = gw.audit.recent(500)
    # 10 invalid requests logged, the 190 refusals for the rate as one record (the rest counted in /metrics)
    assert len(recs) == 11
    assert gw.metrics.rate_unlogged._value.get() == 189


def test_logged_rate_refusals_carry_the_count_of_the_unlogged_ones(make_gateway):
    app, gw, keys = make_gateway(limits={"rate_per_s": 0.001, "burst": 1, "rate_log_interval_s": 0.3})
    h = bearer(keys["predict"])
    with TestClient(app) as c:
        c.post("/v1/predict", json={"inputs": [[0.0] * 30]}, headers=h)
        for _ in range(5):
            c.post("/v1/predict", json={"inputs": [[0.0] * 30]}, headers=h)
        time.sleep(0.35)
        assert c.post("/v1/predict", json={"inputs": [[0.0] * 30]}, headers=h).status_code == 429
    gw.audit.close()
    rate = [r for r in gw.audit.recent(50) if r["decision"] == "rejected:rate"]
    assert len(rate) == 2
    assert json.loads(rate[0]["scores"])["unlogged_rate_refusals"] == 4


# -- (d) .npy headers that lie -----------------------------------------------------------------------


def _npy(header: str, data: bytes = b"", version: int = 1) -> bytes:
    h = header.encode("latin1")
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<H", len(h)) + h + data


_BAD_NPY = {
    "int64-overflow-wraps-to-zero": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"),
    "above-int64": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775808, 1), }"),
    "above-uint64": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (18446744073709551616, 30), }"),
    "huge-square": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }"),
    "overflow-fortran": _npy("{'descr': '<f8', 'fortran_order': True, 'shape': (4611686018427387904, 4), }"),
    "negative-rows": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 30), }", b"\0" * 240),
    "negative-both": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (-2, -30), }", b"\0" * 480),
    "object": _npy("{'descr': '|O', 'fortran_order': False, 'shape': (1, 30), }", b"\0" * 240),
    "structured": _npy("{'descr': [('a', '<f8'), ('b', '<f8')], 'fortran_order': False, 'shape': (1, 15), }",
                       b"\0" * 240),
    "subarray": _npy("{'descr': [('a', '<f8', (30,))], 'fortran_order': False, 'shape': (1, 1), }", b"\0" * 240),
    "complex": _npy("{'descr': '<c16', 'fortran_order': False, 'shape': (1, 30), }", b"\0" * 480),
    "datetime": _npy("{'descr': '<M8[s]', 'fortran_order': False, 'shape': (1, 30), }", b"\0" * 240),
    "three-d": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 30, 1), }", b"\0" * 240),
    "truncated": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 30), }", b"\0" * 239),
    "too-long": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 30), }", b"\0" * 241),
    "float-shape": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1.0, 30), }", b"\0" * 240),
    "bool-shape": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (True, 30), }", b"\0" * 240),
    "no-shape": _npy("{'descr': '<f8', 'fortran_order': False, }", b"\0" * 240),
    "header-only-magic": b"\x93NUMPY\x01\x00",
    "version-9": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 30), }", b"\0" * 240, version=9),
}


def test_lying_npy_headers_are_422_with_a_clear_message(make_gateway):
    app, _, keys = make_gateway(limits={"rate_per_s": 1e6, "burst": 1e6})
    h = {**bearer(keys["predict"]), "Content-Type": "application/x-npy"}
    with TestClient(app) as c:
        for name in sorted(_BAD_NPY):
            r = c.post("/v1/predict", content=_BAD_NPY[name], headers=h)
            assert r.status_code == 422, (name, r.status_code, r.text)
            assert ".npy" in r.json()["detail"], name


def test_honest_npy_payloads_in_any_layout_give_the_json_answer(make_gateway, breast_cancer):
    import io

    app, _, keys = make_gateway(input={"policy": "log"}, limits={"rate_per_s": 1e6, "burst": 1e6})
    X = np.asarray(breast_cancer[1][:3])
    h = bearer(keys["predict"])
    with TestClient(app) as c:
        for dtype in ("<f8", ">f8", "<f4", "<i4", "|u1"):
            for fortran in (False, True):
                Xd = X.astype(dtype) if dtype[1] == "f" else np.clip(X, 0, 255).astype(dtype)
                buf = io.BytesIO()
                np.save(buf, np.asfortranarray(Xd) if fortran else Xd)
                a = c.post("/v1/predict", content=buf.getvalue(), headers={**h, "Content-Type": "application/x-npy"})
                b = c.post("/v1/predict", json={"inputs": Xd.astype(np.float64).tolist()}, headers=h)
                assert a.status_code == 200 and a.json() == b.json(), (dtype, fortran)


# -- (h) JSON inputs must be numbers ---------------------------------------------------------------


def _row(cell, at: int = 0) -> list:
    r: list = [0.5] * 30
    r[at] = cell
    return r


_NOT_NUMBERS = {
    "numeric-string": [["1.0"] * 30],
    "one-string-among-numbers": [_row("2", 7)],
    "exponent-string": [_row("1e3", 29)],
    "true": [_row(True, 3)],
    "false-in-second-row": [[0.5] * 30, _row(False, 0)],
    "all-bools": [[True] * 30],
    "null": [_row(None, 4)],
    "nested-list-cell": [_row([1.0], 5)],
    "object-cell": [_row({"v": 1.0}, 6)],
    "string-row": ["0.5," * 29 + "0.5"],
}


def test_inputs_that_are_not_json_numbers_are_422(make_gateway):
    app, _, keys = make_gateway(limits={"rate_per_s": 1e6, "burst": 1e6})
    with TestClient(app) as c:
        for name in sorted(_NOT_NUMBERS):
            r = c.post("/v1/predict", json={"inputs": _NOT_NUMBERS[name]}, headers=bearer(keys["predict"]))
            assert r.status_code == 422, (name, r.text)
            assert "number" in r.json()["detail"], name


def test_big_json_integers_and_text_containing_true_are_still_numbers(make_gateway):
    app, _, keys = make_gateway(input={"policy": "log"})
    with TestClient(app) as c:
        h = bearer(keys["predict"])
        assert c.post("/v1/predict", json={"inputs": [[10**20] + [0] * 29]}, headers=h).status_code == 200
        # "true" appears in the body, but only in another field: the inputs are numbers
        assert c.post("/v1/predict", json={"inputs": [[0.5] * 30], "note": "true"}, headers=h).status_code == 200


# -- (f) full-chain verification is admin only; (g) API docs off by default ------------------------


def test_only_an_admin_key_verifies_the_chain(make_gateway):
    app, _, keys = make_gateway()
    with TestClient(app) as c:
        assert c.get("/admin/audit/verify", headers=bearer(keys["monitor"])).status_code == 403
        assert c.get("/admin/audit/verify", headers=bearer(keys["predict"])).status_code == 403
        r = c.get("/admin/audit/verify", headers=bearer(keys["admin"]))
        assert r.status_code == 200 and r.json()["ok"] is True
        # the monitor scope still reads what the docs give it
        assert c.get("/admin/stats", headers=bearer(keys["monitor"])).status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_api_docs_are_off_by_default_and_on_when_asked(make_gateway, path):
    app, _, _ = make_gateway()
    with TestClient(app) as c:
        assert c.get(path).status_code == 404
    if path == "/docs/oauth2-redirect":
        return
    app2, _, _ = make_gateway(api_docs=True)
    with TestClient(app2) as c:
        assert c.get(path).status_code == 200


def test_serve_dev_turns_the_docs_on(tmp_path):
    from modelshield.serve.config import load_config

    assert load_config(None, state_dir=str(tmp_path)).api_docs is False
    assert load_config(None, state_dir=str(tmp_path), api_docs=True).api_docs is True
