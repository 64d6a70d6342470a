"""In CI a test that needs a real service fails instead of skipping; locally it skips with the reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CASES = '''
import pytest

@pytest.fixture
def pg_url():
    pytest.skip("PostgreSQL not reachable (simulated)")

@pytest.fixture
def redis_url():
    pytest.skip("Redis not reachable (simulated)")

def test_uses_pg(pg_url):
    pass

def test_uses_redis(redis_url):
    pass

@pytest.mark.browser
def test_marked_browser():
    pytest.skip("chromium is not installed (simulated)")

@pytest.mark.postgres
def test_marked_postgres_in_body():
    pytest.skip("PostgreSQL not reachable (simulated)")

def test_plain_skip():
    pytest.skip("an ordinary skip stays a skip")

@pytest.mark.redis
@pytest.mark.xfail(reason="expected failure is not a skip")
def test_xfail():
    assert False
'''


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_cases.py").write_text(CASES)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n  browser: b\n  postgres: p\n  redis: r\n  slow: s\n  peers: x\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ci", ["true", "1"])
def test_service_skips_fail_in_ci(tmp_path, ci):
    proc = _run(tmp_path, ci)
    out = proc.stdout
    assert proc.returncode == 1, out
    # a skip in a fixture fails at set-up (ERROR), a skip in the body fails the test (FAILED)
    for name in ("test_uses_pg", "test_uses_redis"):
        assert f"ERROR test_cases.py::{name} - test_cases.py::{name} needs" in out, out
    for name in ("test_marked_browser", "test_marked_postgres_in_body"):
        assert f"FAILED test_cases.py::{name} - test_cases.py::{name} needs" in out, out
    assert "SKIPPED" in out and "an ordinary skip stays a skip" in out
    assert "XFAIL test_cases.py::test_xfail" in out
    assert "2 failed, 1 skipped, 1 xfailed, 2 errors" in out, out


@pytest.mark.parametrize("ci", [None, "false"])
def test_service_skips_stay_skips_locally(tmp_path, ci):
    proc = _run(tmp_path, ci)
    out = proc.stdout
    assert proc.returncode == 0, out
    assert "5 skipped, 1 xfailed in" in out, out
    assert "PostgreSQL not reachable (simulated)" in out
