"""The Ray executor: the same reports as local, faults as outcomes. Starts a local Ray (seconds): marked."""

from __future__ import annotations

import json

import pytest

from modelshield.scale import LocalExecutor, RayExecutor, audit_registry, write_outputs
from modelshield.scale.testing import square

from .conftest import make_registry

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]

TIMING = {"created", "duration_s", "wall_s", "seconds", "executor", "cache"}


def _strip(o):
    if isinstance(o, dict):
        return {k: _strip(v) for k, v in o.items() if k not in TIMING}
    if isinstance(o, list):
        return [_strip(v) for v in o]
    return o


def _jsons(result, out):
    write_outputs(result, out)
    return {p.relative_to(out).as_posix(): _strip(json.loads(p.read_text())) for p in sorted(out.rglob("*.json"))}


@pytest.fixture(scope="module")
def ray_executor():
    ex = RayExecutor(workers=2, timeout=20)
    ex.start()
    yield ex
    ex.close()


def test_ray_gives_the_same_reports_as_local(tmp_path, ray_executor):
    reg = make_registry(tmp_path / "reg", 2, faults=("malicious",))
    kw = {"checks": ["baseline", "robustness"], "quick": True, "seed": 3}
    local = audit_registry(reg, executor=LocalExecutor(), **kw)
    on_ray = audit_registry(reg, executor=ray_executor, **kw)
    assert _jsons(local, tmp_path / "a") == _jsons(on_ray, tmp_path / "b")
    assert [r.status for r in on_ray.rows] == ["fail", "pass", "pass"]


def test_ray_faults_are_outcomes(ray_executor):
    got = ray_executor.run(square, [2, "raise", 3, "exit", "hang", 4])
    assert [o.status for o in got] == ["ok", "error", "ok", "crashed", "timeout", "ok"]
    assert [o.value for o in got if o.ok] == [4, 9, 16]
