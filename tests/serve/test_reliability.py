"""Reliability: property-based API testing (schemathesis), crash durability (kill -9), TLS and mTLS,
concurrent load from a second process with auth, limits and logging on."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from modelshield.serve.auditlog import AuditLog, load_or_create_key
from modelshield.serve.auth import KeyStore


def _fuzz(app, headers, max_examples):
    """Every operation of our OpenAPI spec, fed hypothesis-generated requests (bounded)."""
    from hypothesis import given

    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen = []
    for result in api.get_all_operations():
        op = result.ok()

        @given(case=op.as_strategy())
        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)
        def run(case):
            resp = case.call(headers=headers)
            assert resp.status_code < 500, (case.method, case.path, resp.status_code, resp.text[:300])
            seen.append((case.method, case.path, resp.status_code))

        run()
    return seen


def test_no_server_errors_for_generated_requests(make_gateway):
    app, _, keys = make_gateway(api_docs=True, limits={"rate_per_s": 10_000, "burst": 10_000, "max_batch": 64})
    seen = _fuzz(app, {"Authorization": f"Bearer {keys['admin']}"}, 20)
    statuses = {code for _, _, code in seen}
    paths = {p for _, p, _ in seen}
    assert {"/v1/predict", "/admin/keys", "/metrics", "/healthz"} <= paths
    assert 200 in statuses and 422 in statuses  # both valid and invalid inputs were generated


def test_no_server_errors_without_a_key(make_gateway):
    app, _, _ = make_gateway(api_docs=True)
    seen = _fuzz(app, {}, 5)
    for _, path, code in seen:
        if path.startswith(("/v1/", "/admin/", "/metrics")):
            assert code in (401, 429), (path, code)


# -- crash durability --------------------------------------------------------------------------


def _load(url, key, X, stop, acked, errors, lock):
    with httpx.Client(timeout=5) as c:
        i = 0
        while not stop.is_set() and i < 100_000:
            i += 1
            rows = X[(i * 3) % (len(X) - 3) :][:3].tolist()
            try:
                r = c.post(f"{url}/v1/predict", json={"inputs": rows}, headers={"Authorization": f"Bearer {key}"})
            except httpx.HTTPError:
                errors.append(i)
                if stop.is_set():
                    return
                time.sleep(0.01)
                continue
            if r.status_code == 200:
                with lock:
                    acked.append(r.headers["x-request-id"])


@pytest.mark.slow
def test_kill9_mid_load_then_restart_loses_no_acknowledged_request(server_setup, breast_cancer, tmp_path):
    srv = server_setup({"limits": {"rate_per_s": 100_000, "burst": 100_000}, "audit": {"durability": "full"}})
    _, key = KeyStore(tmp_path / "state").create("load", ["predict"])
    srv.start()
    X = breast_cancer[1]
    stop, lock = threading.Event(), threading.Lock()
    acked: list[str] = []
    errors: list[int] = []
    threads = [threading.Thread(target=_load, args=(srv.url, key, X, stop, acked, errors, lock)) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.kill9()  # mid-load: requests are in flight
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) >= 300
    n_acked = len(acked)

    # restart on the same state: the log is intact and holds every acknowledged request
    srv2 = server_setup({"limits": {"rate_per_s": 100_000, "burst": 100_000}})
    srv2.start()
    r = httpx.post(f"{srv2.url}/v1/predict", json={"inputs": X[:2].tolist()},
                   headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    srv2.stop()
    rc = subprocess.run([sys.executable, "-c", "from modelshield.cli import main; main()", "audit-log", "verify",
                         "--state-dir", str(tmp_path / "state")], capture_output=True, text=True, timeout=120)
    assert rc.returncode == 0, rc.stderr + rc.stdout
    assert "intact" in rc.stdout
    log = AuditLog(f"sqlite:///{tmp_path / 'state' / 'audit.db'}", load_or_create_key(tmp_path / "state" / "audit.key"))
    try:
        logged = log.request_ids()
    finally:
        log.close()
    missing = set(acked) - logged
    assert not missing, f"{len(missing)} of {n_acked} acknowledged requests are not in the log"
    assert r.headers["x-request-id"] in logged


@pytest.mark.slow
def test_concurrent_load_from_a_second_process(server_setup, tmp_path, breast_cancer):
    """A separate Python process loads the server with 4 threads; rate limits and logging stay exact."""
    import json

    # rate_log_interval_s 0: every refusal for the rate is logged (by default one per key and second is)
    srv = server_setup({"limits": {"rate_per_s": 0.001, "burst": 150, "rate_log_interval_s": 0}})
    _, key = KeyStore(tmp_path / "state").create("load", ["predict"])
    (tmp_path / "rows.json").write_text(json.dumps(breast_cancer[1][:100].tolist()))
    srv.start()
    script = f"""
import threading, httpx, collections, json
rows = json.load(open({str(tmp_path / "rows.json")!r}))
codes = collections.Counter(); lock = threading.Lock()
def run(t):
    with httpx.Client(timeout=10) as c:
        for i in range(50):
            r = c.post("{srv.url}/v1/predict", json={{"inputs": [rows[(t * 50 + i) % len(rows)]]}},
                       headers={{"Authorization": "Bearer {key}"}})
            with lock: codes[r.status_code] += 1
ts = [threading.Thread(target=run, args=(t,)) for t in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(codes[200], codes[429], sum(codes.values()))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ok, limited, total = map(int, out.stdout.split())
    assert (ok, limited, total) == (150, 50, 200)  # the bucket grants exactly its burst under concurrency
    srv.stop()
    log = AuditLog(f"sqlite:///{tmp_path / 'state' / 'audit.db'}", load_or_create_key(tmp_path / "state" / "audit.key"))
    try:
        res = log.verify()
        decisions = [r["decision"] for r in log.iter_records()]
    finally:
        log.close()
    assert res.ok
    assert decisions.count("ok") + decisions.count("flagged") == 150 and decisions.count("rejected:rate") == 50


# -- TLS ---------------------------------------------------------------------------------------


def _cert(tmp_path, name, *, issuer=None, is_ca=False, san_ip=True):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    iss_name, iss_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(iss_name).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
         .not_valid_after(now + datetime.timedelta(hours=1))
         .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
    if san_ip:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                            critical=False)
    if not is_ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if san_ip else ExtendedKeyUsageOID.CLIENT_AUTH
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    cert = b.sign(iss_key, hashes.SHA256())
    cp, kp = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return cert, key, cp, kp


def test_tls_with_a_self_signed_certificate(server_setup, tmp_path):
    _, _, cp, kp = _cert(tmp_path, "server")
    srv = server_setup(extra=["--tls-cert", str(cp), "--tls-key", str(kp)], scheme="https")
    _, key = KeyStore(tmp_path / "state").create("tls", ["predict"])
    ctx = ssl.create_default_context(cafile=str(cp))
    srv.start(verify=ctx)
    r = httpx.post(f"{srv.url}/v1/predict", json={"inputs": [[0.0] * 30]},
                   headers={"Authorization": f"Bearer {key}"}, verify=ctx)
    assert r.status_code == 200 and "predictions" in r.json()
    assert r.http_version in ("HTTP/1.1", "HTTP/2")
    with pytest.raises(httpx.ConnectError):  # an unknown CA is refused by a verifying client
        httpx.get(f"{srv.url}/healthz", verify=ssl.create_default_context())
    with pytest.raises(httpx.HTTPError):  # and plain HTTP gets nothing from the TLS port
        httpx.get(f"http://127.0.0.1:{srv.port}/healthz", timeout=3)


def test_mutual_tls_requires_a_client_certificate(server_setup, tmp_path):
    ca_cert, ca_key, ca_path, _ = _cert(tmp_path, "ca", is_ca=True, san_ip=False)
    _, _, scp, skp = _cert(tmp_path, "server", issuer=(ca_cert, ca_key))
    _, _, ccp, ckp = _cert(tmp_path, "client", issuer=(ca_cert, ca_key), san_ip=False)
    srv = server_setup(extra=["--tls-cert", str(scp), "--tls-key", str(skp), "--tls-client-ca", str(ca_path)],
                       scheme="https")
    _, key = KeyStore(tmp_path / "state").create("mtls", ["predict"])
    with_cert = ssl.create_default_context(cafile=str(ca_path))
    with_cert.load_cert_chain(str(ccp), str(ckp))
    srv.start(verify=with_cert)
    r = httpx.post(f"{srv.url}/v1/predict", json={"inputs": [[0.0] * 30]},
                   headers={"Authorization": f"Bearer {key}"}, verify=with_cert)
    assert r.status_code == 200
    no_cert = ssl.create_default_context(cafile=str(ca_path))
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{srv.url}/healthz", verify=no_cert, timeout=5)
    assert np.isfinite(r.json()["probabilities"][0][0])
