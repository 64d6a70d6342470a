"""Fixtures for the gateway tests: apps on a temp state dir, real servers on loopback, services."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

REDIS_URL = os.environ.get("MODELSHIELD_TEST_REDIS", "redis://127.0.0.1:6379/15")
PG_URL = os.environ.get("MODELSHIELD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


#: how to run the CLI from tests: this interpreter, whatever the install layout
CLI = [sys.executable, "-c", "from modelshield.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def served_model(sk_logreg):
    from modelshield import load_model

    return load_model(sk_logreg)


@pytest.fixture
def make_gateway(tmp_path, served_model, breast_cancer):
    """Factory: ``make_gateway(**config) -> (app, gateway, keys)`` with keys for every scope."""
    from modelshield.serve.app import create_app
    from modelshield.serve.config import ServeConfig

    apps = []

    def make(reference=True, **cfg):
        cfg.setdefault("state_dir", str(tmp_path / f"state-{len(apps)}"))
        config = ServeConfig.model_validate(cfg)
        Xtr = breast_cancer[0]
        app = create_app(served_model, config, reference=Xtr if reference else None)
        gw = app.state.gateway
        keys = {s: gw.keys.create(f"{s}-user", [s])[1] for s in ("predict", "monitor", "admin")}
        apps.append(gw)
        return app, gw, keys

    yield make
    for gw in apps:
        with contextlib.suppress(Exception):
            gw.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def redis_url():
    try:
        import redis

        r = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        r.ping()
    except Exception as exc:  # any failure: the server is not there
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}")
    prefix = f"mstest:{uuid.uuid4().hex[:8]}:"
    yield REDIS_URL, prefix
    for k in r.scan_iter(f"{prefix}*"):
        r.delete(k)


@pytest.fixture
def pg_url():
    try:
        import sqlalchemy as sa

        eng = sa.create_engine(PG_URL, connect_args={"connect_timeout": 2})
        with eng.connect() as c:
            c.execute(sa.text("select 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}")
    table = f"ms_test_{uuid.uuid4().hex[:10]}"
    yield PG_URL, table
    with eng.begin() as c:
        c.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
    eng.dispose()


class Server:
    """``modelshield serve`` in a subprocess on a free loopback port."""

    def __init__(self, workdir: Path, model_path: Path, config: Path, extra: list[str] | None = None,
                 scheme: str = "http") -> None:
        self.workdir, self.model_path, self.config = workdir, model_path, config
        self.extra = extra or []
        self.port = free_port()
        self.scheme = scheme
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0, verify=None) -> Server:
        import httpx

        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        cmd = [*CLI, "serve", str(self.model_path), "--trust",
               "--config", str(self.config), "--port", str(self.port), *self.extra]
        self.log = open(self.workdir / f"server-{self.port}.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.workdir / f'server-{self.port}.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, verify=verify if verify is not None else True
                             ).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start in time")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with contextlib.suppress(Exception):
            self.log.close()


@pytest.fixture
def server_setup(tmp_path, sk_logreg, breast_cancer):
    """Write a model, reference data and a config; returns a factory of :class:`Server`."""
    import joblib
    import yaml

    model_path = tmp_path / "model.joblib"
    joblib.dump(sk_logreg, model_path)
    ref = tmp_path / "ref.npz"
    Xtr, _, ytr, _ = breast_cancer
    np.savez(ref, X=Xtr, y=ytr)
    servers: list[Server] = []

    def make(config: dict | None = None, extra: list[str] | None = None, scheme: str = "http") -> Server:
        cfg = {"state_dir": str(tmp_path / "state"), "reference": str(ref), **(config or {})}
        cpath = tmp_path / f"serve-{len(servers)}.yaml"
        cpath.write_text(yaml.safe_dump(cfg))
        s = Server(tmp_path, model_path, cpath, extra, scheme)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()
