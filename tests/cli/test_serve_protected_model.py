"""``modelshield serve`` takes the same loading flags as ``audit`` (issue 14.3): it serves an encrypted,
signed model through the secure loader (verify -> decrypt -> scan -> load, no ``--trust``), and refuses
(exit 3, nothing served) a model whose signature does not verify or whose key is wrong."""

from __future__ import annotations

import os
import subprocess
import time

import httpx
import joblib
import pytest
import yaml
from tests.serve.conftest import CLI, free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def protected(tmp_path, sk_logreg):
    """A joblib model encrypted under a master key and its container signed with an Ed25519 key."""
    joblib.dump(sk_logreg, tmp_path / "model.joblib")
    for args in (("protect", "keygen", "master.key"),
                 ("protect", "keygen", "signer.pem", "--type", "ed25519", "--public-out", "signer.pub.pem"),
                 ("protect", "keygen", "other.pem", "--type", "ed25519", "--public-out", "other.pub.pem"),
                 ("protect", "keygen", "wrong.key"),
                 ("protect", "encrypt", "model.joblib", "model.enc", "--key-file", "master.key"),
                 ("protect", "sign", "model.enc", "--private-key", "signer.pem")):
        r = cli(*args, cwd=tmp_path)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    assert (tmp_path / "model.enc.sig").is_file()
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state")}))
    return tmp_path


def serve(workdir, *flags: str) -> tuple[subprocess.Popen, int, object]:
    port = free_port()
    log = open(workdir / f"serve-{port}.log", "wb")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*CLI, "serve", "model.enc", "--config", "serve.yaml", "--port", str(port), *flags],
                            cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env)
    return proc, port, log


def test_serve_verifies_decrypts_and_serves_an_encrypted_signed_model(protected, breast_cancer, sk_logreg):
    r = cli("keys", "create", "--name", "app", "--config", "serve.yaml", "--json", cwd=protected)
    assert r.returncode == 0, r.stderr
    token = yaml.safe_load(r.stdout)["key"]
    proc, port, log = serve(protected, "--key-file", "master.key", "--public-key", "signer.pub.pem")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (protected / f"serve-{port}.log").read_text()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("server did not start")
        X = breast_cancer[1][:5]
        resp = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json={"inputs": X.tolist()},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json()["predictions"] == sk_logreg.predict(X).tolist()  # the decrypted model answers
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


@pytest.mark.parametrize("flags, needle", [
    (("--key-file", "master.key", "--public-key", "other.pub.pem"), "signature"),  # signed by someone else
    (("--key-file", "wrong.key", "--public-key", "signer.pub.pem"), "key"),         # wrong decryption key
])
def test_serve_refuses_before_serving(protected, flags, needle):
    r = cli("serve", "model.enc", "--config", "serve.yaml", "--port", str(free_port()), *flags, cwd=protected)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert needle in r.stderr.lower() and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2


def test_serve_an_encrypted_model_without_a_key_is_a_usage_error(protected):
    r = cli("serve", "model.enc", "--config", "serve.yaml", "--port", str(free_port()), cwd=protected)
    assert r.returncode == 2 and "is encrypted; give its key" in r.stderr and "--key-file" in r.stderr


def test_serve_signature_without_public_key_is_a_usage_error(protected):
    r = cli("serve", "model.enc", "--config", "serve.yaml", "--signature", "model.enc.sig", cwd=protected)
    assert r.returncode == 2 and "--signature needs --public-key" in r.stderr
