"""Authentication and authorization: 401/403, revocation, hashes only, constant time, bursts, JWT."""

from __future__ import annotations

import json
import os
import stat
import statistics
import time

import pytest
from fastapi.testclient import TestClient

from modelshield.serve.auth import AuthError, FailureTracker, KeyStore


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def X(breast_cancer):
    return breast_cancer[1][:4].tolist()


def test_unauthenticated_calls_get_401_and_are_logged(make_gateway, X):
    app, gw, keys = make_gateway()
    with TestClient(app) as c:
        assert c.post("/v1/predict", json={"inputs": X}).status_code == 401
        r = c.post("/v1/predict", json={"inputs": X}, headers=bearer("msk_00000000_nope"))
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert c.post("/v1/predict", json={"inputs": X}, headers={"Authorization": "Basic abc"}).status_code == 401
        # right id, wrong secret
        kid = keys["predict"].split("_")[1]
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(f"msk_{kid}_wrong")).status_code == 401
        assert c.get("/metrics").status_code == 401
        assert c.get("/admin/keys").status_code == 401
        ok = c.post("/v1/predict", json={"inputs": X}, headers=bearer(keys["predict"]))
        assert ok.status_code == 200
    recs = gw.audit.recent(50)
    decisions = [r["decision"] for r in recs]
    assert decisions.count("rejected:auth_401") == 6
    assert gw.audit.verify().ok


def test_wrong_scope_gets_403(make_gateway, X):
    app, _, keys = make_gateway()
    with TestClient(app) as c:
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(keys["monitor"])).status_code == 403
        assert c.get("/admin/keys", headers=bearer(keys["predict"])).status_code == 403
        assert c.get("/admin/keys", headers=bearer(keys["monitor"])).status_code == 403
        assert c.get("/metrics", headers=bearer(keys["predict"])).status_code == 403
        assert c.get("/metrics", headers=bearer(keys["monitor"])).status_code == 200
        # admin implies the other scopes
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(keys["admin"])).status_code == 200
        assert c.get("/admin/stats", headers=bearer(keys["admin"])).status_code == 200


def test_revoked_key_is_refused_by_running_server(make_gateway, X, tmp_path):
    app, gw, keys = make_gateway(auth={"reload_every_s": 0})
    with TestClient(app) as c:
        h = bearer(keys["predict"])
        assert c.post("/v1/predict", json={"inputs": X}, headers=h).status_code == 200
        # revoke through a *different* store instance, as `modelshield keys revoke` does
        kid = keys["predict"].split("_")[1]
        KeyStore(gw.config.state_dir).revoke(kid)
        time.sleep(0.02)
        r = c.post("/v1/predict", json={"inputs": X}, headers=h)
        assert r.status_code == 401
        assert "revoked" in r.json()["detail"]
        # and through the admin API
        new = c.post("/admin/keys", json={"name": "svc", "scopes": ["predict"]}, headers=bearer(keys["admin"]))
        assert new.status_code == 201
        token, nid = new.json()["key"], new.json()["id"]
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(token)).status_code == 200
        assert c.delete(f"/admin/keys/{nid}", headers=bearer(keys["admin"])).status_code == 200
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(token)).status_code == 401
        assert c.delete("/admin/keys/ffffffff", headers=bearer(keys["admin"])).status_code == 404


def test_keys_are_stored_only_as_salted_hashes(tmp_path):
    ks = KeyStore(tmp_path)
    rec1, tok1 = ks.create("a", ["predict"])
    _rec2, tok2 = ks.create("b", ["predict"])
    raw = (tmp_path / "keys.json").read_text()
    for tok in (tok1, tok2):
        assert tok.split("_", 2)[2] not in raw
    assert stat.S_IMODE(os.stat(tmp_path / "keys.json").st_mode) == 0o600
    data = json.loads(raw)["keys"]
    assert data[0]["salt"] != data[1]["salt"]
    assert ks.verify(tok1).key_id == rec1.id
    with pytest.raises(AuthError):
        ks.verify(tok1[:-1] + ("A" if tok1[-1] != "A" else "B"))
    with pytest.raises(Exception, match="scope"):
        ks.create("c", ["root"])


def test_verification_always_uses_constant_time_compare(tmp_path, monkeypatch):
    import modelshield.serve.auth as auth_mod

    ks = KeyStore(tmp_path)
    _, tok = ks.create("a", ["predict"])
    kid = tok.split("_")[1]
    calls = []
    real = auth_mod.hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth_mod.hmac, "compare_digest", spy)
    for candidate in (tok, f"msk_{kid}_wrong", "msk_deadbeef_wrong", "garbage"):
        try:
            ks.verify(candidate)
        except AuthError:
            pass
    # one digest comparison per attempt, also for unknown ids and malformed keys
    assert calls == [(64, 64)] * 4


def test_unknown_and_known_ids_take_similar_time(tmp_path):
    ks = KeyStore(tmp_path)
    _, tok = ks.create("a", ["predict"])
    kid = tok.split("_")[1]
    known, unknown = f"msk_{kid}_" + "x" * 43, "msk_abcdef12_" + "x" * 43

    def t(token):
        t0 = time.perf_counter_ns()
        try:
            ks.verify(token)
        except AuthError:
            pass
        return time.perf_counter_ns() - t0

    a, b = [], []
    for _ in range(3000):  # interleaved, so background load hits both alike
        a.append(t(known))
        b.append(t(unknown))
    ratio = statistics.median(a) / statistics.median(b)
    assert 0.5 < ratio < 2.0, ratio


def test_failed_auth_burst_alerts_and_blocks(make_gateway, X):
    app, gw, keys = make_gateway(auth={"fail_burst": 5, "fail_window_s": 60, "block_s": 120})
    with TestClient(app) as c:
        for _ in range(5):
            assert c.post("/v1/predict", json={"inputs": X}, headers=bearer("msk_00000000_guess")).status_code == 401
        r = c.post("/v1/predict", json={"inputs": X}, headers=bearer(keys["predict"]))
        assert r.status_code == 429  # even a valid key, from the blocked client
        assert int(r.headers["retry-after"]) > 100
    alerts = [a for a in gw.alerts if a["monitor"] == "auth.burst"]
    assert len(alerts) == 1
    gw.audit.close()
    kinds = [(r["kind"], r["endpoint"]) for r in gw.audit.recent(50)]
    assert ("alert", "auth.burst") in kinds


def test_failure_tracker_window_and_expiry():
    now = [0.0]
    ft = FailureTracker(burst=3, window_s=10, block_s=5, clock=lambda: now[0])
    assert not ft.record_failure("c")
    now[0] = 11  # the first failure left the window
    assert not ft.record_failure("c")
    assert not ft.record_failure("c")
    assert ft.record_failure("c")
    assert ft.blocked_for("c") == pytest.approx(5)
    assert ft.blocked_for("other") == 0
    now[0] = 16.5
    assert ft.blocked_for("c") == 0


def _jwt_app(make_gateway, monkeypatch, tmp_path, alg):
    jwt = pytest.importorskip("jwt")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if alg == "HS256":
        secret = "s" * 40
        monkeypatch.setenv("MS_TEST_JWT", secret)
        cfg = {"algorithms": ["HS256"], "secret_env": "MS_TEST_JWT", "audience": "ms"}
        sign_key = secret
    else:
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == "RS256" \
            else ed25519.Ed25519PrivateKey.generate()
        pub = priv.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        (tmp_path / "pub.pem").write_bytes(pub)
        cfg = {"algorithms": [alg], "public_key_file": str(tmp_path / "pub.pem"), "audience": "ms"}
        sign_key = priv
    app, _gw, _keys = make_gateway(auth={"jwt": cfg})

    def token(**claims):
        base = {"sub": "svc-1", "aud": "ms", "exp": int(time.time()) + 60, "scope": "predict"}
        base.update(claims)
        return jwt.encode({k: v for k, v in base.items() if v is not None}, sign_key, algorithm=alg)

    return app, token


@pytest.mark.parametrize("alg", ["HS256", "RS256", "EdDSA"])
def test_jwt(make_gateway, monkeypatch, tmp_path, X, alg):
    import jwt

    app, token = _jwt_app(make_gateway, monkeypatch, tmp_path, alg)
    with TestClient(app) as c:
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(token())).status_code == 200
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(token(exp=int(time.time()) - 10))
                      ).status_code == 401
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(token(aud="other"))).status_code == 401
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(token(scope="monitor"))).status_code == 403
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(token(exp=None))).status_code == 401
        unsigned = jwt.encode({"sub": "x", "aud": "ms", "exp": int(time.time()) + 60, "scope": "predict"},
                              None, algorithm="none")
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(unsigned)).status_code == 401
        forged = jwt.encode({"sub": "x", "aud": "ms", "exp": int(time.time()) + 60, "scope": "predict"},
                            "f" * 40, algorithm="HS256")
        if alg != "HS256":
            assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(forged)).status_code == 401
        tampered = token()[:-4] + ("AAAA" if not token().endswith("AAAA") else "BBBB")
        assert c.post("/v1/predict", json={"inputs": X}, headers=bearer(tampered)).status_code == 401
