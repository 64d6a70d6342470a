"""Authentication and authorization: 401/403, revocation, hashes only, constant time, bursts, JWT."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest
from fastapi.testclient import TestClient

import modelshield.serve.auth as auth_mod
from modelshield.errors import UserError
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
    with pytest.raises(AuthError) as bad:
        ks.verify(tok1[:-1] + ("A" if tok1[-1] != "A" else "B"))
    assert bad.value.status == 401 and bad.value.key_id == rec1.id
    with pytest.raises(UserError, match="unknown scope 'root'"):
        ks.create("c", ["root"])


def _outcome(ks, token):
    try:
        return ("accepted", ks.verify(token).key_id)
    except AuthError as exc:
        return ("refused", exc.status, exc.reason)


def test_verification_always_uses_constant_time_compare(tmp_path, monkeypatch):
    ks = KeyStore(tmp_path)
    rec, tok = ks.create("a", ["predict"])
    kid = tok.split("_")[1]
    calls = []
    real = auth_mod.hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth_mod.hmac, "compare_digest", spy)
    candidates = (tok, f"msk_{kid}_wrong", "msk_deadbeef_wrong", "garbage", tok + "x", f"msk_{kid}_")
    outcomes = [_outcome(ks, c) for c in candidates]
    # exactly the right token is accepted, as its own key; every other one is a 401 that names no secret
    assert outcomes[0] == ("accepted", rec.id)
    assert outcomes[1:] == [("refused", 401, "invalid API key")] * 5
    # one digest comparison per attempt, also for unknown ids and malformed keys
    assert calls == [(64, 64)] * len(candidates)


def test_known_and_unknown_ids_run_the_same_operations(tmp_path, monkeypatch):
    """Deterministic replacement of a timing-ratio test: the work done for a known id with a wrong secret,
    an unknown id and a malformed token is the same sequence of operations on same-sized inputs
    (one salted SHA-256 of the presented secret, one constant-time compare of two 64-hex digests)."""
    ks = KeyStore(tmp_path)
    _, tok = ks.create("a", ["predict"])
    kid = tok.split("_")[1]
    trace: list[tuple] = []
    real_digest, real_cmp = auth_mod._digest, auth_mod.hmac.compare_digest

    def digest(salt_hex, secret):
        trace.append(("sha256", len(bytes.fromhex(salt_hex)), len(secret)))
        return real_digest(salt_hex, secret)

    def cmp(a, b):
        trace.append(("compare_digest", len(a), len(b)))
        return real_cmp(a, b)

    monkeypatch.setattr(auth_mod, "_digest", digest)
    monkeypatch.setattr(auth_mod.hmac, "compare_digest", cmp)
    secret = "x" * 43
    traces = {}
    for name, token in {"known id, wrong secret": f"msk_{kid}_{secret}", "unknown id": f"msk_abcdef12_{secret}",
                        "not our prefix": f"xyz_{kid}_{secret}", "revoked-looking": f"msk_ffffffff_{secret}"}.items():
        trace.clear()
        assert _outcome(ks, token)[0] == "refused"
        traces[name] = list(trace)
    assert all(t == [("sha256", 16, 43), ("compare_digest", 64, 64)] for t in traces.values()), traces


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


@pytest.mark.parametrize(("block_s", "start"), [(5.0, 11.0), (0.25, 3.5), (300.0, 1e6)])
def test_a_block_ends_exactly_at_its_boundary_and_a_new_burst_blocks_again(block_s, start):
    now = [start]
    ft = FailureTracker(burst=2, window_s=10, block_s=block_s, clock=lambda: now[0])
    assert not ft.record_failure("c") and ft.record_failure("c")
    end = start + block_s
    now[0] = end - block_s / 1000
    assert ft.blocked_for("c") == pytest.approx(block_s / 1000) and "c" in ft.blocked()
    now[0] = end
    assert ft.blocked_for("c") == 0 and "c" not in ft.blocked()
    # a second burst after the block ended blocks again, whether or not anyone asked in between
    ft2 = FailureTracker(burst=2, window_s=10, block_s=block_s, clock=lambda: now[0])
    now[0] = start
    assert not ft2.record_failure("d") and ft2.record_failure("d")
    now[0] = end  # no blocked_for() call between the end of the block and the next failures
    assert not ft2.record_failure("d")
    assert ft2.record_failure("d")
    assert ft2.blocked_for("d") == pytest.approx(block_s)
    # while blocked, more failures do not restart or extend the block
    now[0] = end + block_s / 2
    assert not ft2.record_failure("d") and not ft2.record_failure("d")
    assert ft2.blocked_for("d") == pytest.approx(block_s / 2)


@pytest.mark.parametrize("max_clients", [1, 4, 50])
def test_memory_is_bounded_under_a_spray_of_addresses_and_the_active_client_is_kept(max_clients):
    now = [0.0]
    ft = FailureTracker(burst=3, window_s=60, block_s=30, clock=lambda: now[0], max_clients=max_clients)
    for i in range(20 * max_clients):
        now[0] += 0.001
        assert not ft.record_failure(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        assert len(ft._fails) <= max_clients
    # the spray did not block anyone (one failure each), and a client failing now is counted to the end
    assert ft.blocked() == {}
    now[0] += 1
    results = [ft.record_failure("attacker") for _ in range(3)]
    assert results == [False, False, True] and len(ft._fails) <= max_clients
    # blocks are bounded too: many blocked clients keep at most max_clients entries
    for i in range(3 * max_clients):
        for _ in range(3):
            ft.record_failure(f"b{i}")
    assert len(ft._blocked) <= max_clients and ft.blocked_for(f"b{3 * max_clients - 1}") > 0


def test_a_spray_smaller_than_the_bound_does_not_reset_an_attackers_count():
    now = [0.0]
    ft = FailureTracker(burst=4, window_s=60, block_s=30, clock=lambda: now[0], max_clients=100)
    assert not ft.record_failure("attacker") and not ft.record_failure("attacker")
    for i in range(98):  # fills the table to its bound, without passing it
        ft.record_failure(f"spray{i}")
    assert not ft.record_failure("attacker")
    assert ft.record_failure("attacker")  # the earlier failures still counted


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
