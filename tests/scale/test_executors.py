"""Executors: every item gets one outcome, in item order; faults are outcomes, not exceptions."""

from __future__ import annotations

import time

import pytest

from modelshield.errors import UserError
from modelshield.scale.executors import LocalExecutor, ProcessExecutor, check_ray_address, make_executor
from modelshield.scale.testing import square


@pytest.mark.parametrize("items", [[3, 1, 2], list(range(7)), []])
def test_local_and_processes_same_values_in_item_order(items):
    with ProcessExecutor(workers=2, warm=False) as ex:
        got = ex.run(square, items)
    assert [o.value for o in got] == [x * x for x in items] == [o.value for o in LocalExecutor().run(square, items)]
    assert all(o.status == "ok" for o in got)


def test_processes_faults_become_outcomes_and_the_rest_still_run():
    items = [1, "hang", 2, "exit", 3, "raise", 4]
    seen: list[int] = []
    t0 = time.monotonic()
    with ProcessExecutor(workers=2, timeout=2.0, warm=False) as ex:
        got = ex.run(square, items, on_done=lambda i, o: seen.append(i))
    assert time.monotonic() - t0 < 60  # the hang was killed, not waited for (it sleeps an hour)
    assert [o.status for o in got] == ["ok", "timeout", "ok", "crashed", "ok", "error", "ok"]
    assert [o.value for o in got if o.ok] == [1, 4, 9, 16]
    assert got[3].attempts == 2  # a dead worker's item is retried once, then reported
    assert "RuntimeError" in got[5].message
    assert sorted(seen) == list(range(len(items)))


def test_a_crash_beside_others_does_not_blame_the_others():
    # the innocent items in flight when the worker died run again alone and succeed
    with ProcessExecutor(workers=2, warm=False) as ex:
        got = ex.run(square, [5, "exit", 6, 7])
    assert [o.status for o in got] == ["ok", "crashed", "ok", "ok"]
    assert [got[i].value for i in (0, 2, 3)] == [25, 36, 49]


def test_local_timeout_interrupts_python_code():
    got = LocalExecutor(timeout=0.5).run(square, [2, "hang", 3])
    assert [o.status for o in got] == ["ok", "timeout", "ok"]


@pytest.mark.parametrize(("name", "kw", "msg", "hint"), [
    ("threads", {}, "unknown executor", None),
    ("local", {"workers": 2}, "several workers need the processes or ray executor",
     "--workers needs --executor processes or ray"),
    ("processes", {"workers": 0}, "workers must be at least 1, not 0", "check --workers"),
    ("processes", {"timeout": -1.0}, "time bound must be positive", "check --timeout"),
    ("local", {"address": "127.0.0.1:6379"}, "a Ray address applies to the ray executor only",
     "--ray-address needs --executor ray"),
])
def test_bad_executor_arguments_are_user_errors(name, kw, msg, hint):
    with pytest.raises(UserError, match=msg) as ei:
        make_executor(name, **kw)
    assert "--" not in str(ei.value) and ei.value.cli_hint == hint


def _closed_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("form", ["127.0.0.1:{p}", "ray://127.0.0.1:{p}"])
def test_a_ray_address_that_does_not_answer_fails_fast(form):
    t0 = time.monotonic()
    with pytest.raises(UserError, match="does not answer"):
        check_ray_address(form.format(p=_closed_port()), timeout=2.0)
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("bad", ["no-port", "host:port", ":x"])
def test_a_malformed_ray_address_is_a_user_error(bad):
    with pytest.raises(UserError, match="bad Ray address") as ei:
        check_ray_address(bad)
    assert ei.value.cli_hint == "check --ray-address"
