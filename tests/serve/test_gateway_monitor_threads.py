"""The monitor thread mutates the monitors' state while request threads read it (the dashboard's
``/admin/stats``, re-evaluation, state saves): every reader must see a consistent state, never a
``dict mutated during iteration`` (a CI failure on a loaded machine)."""

from __future__ import annotations

import threading

import numpy as np

from modelshield.serve.monitors.base import Batch


def test_snapshots_and_saves_while_the_monitors_update_never_fail(make_gateway, breast_cancer):
    _, gw, _ = make_gateway(extraction={"signals_min_queries": 10})
    assert gw.signals is not None
    X = breast_cancer[1]
    proba = gw.model.predict_proba(X)
    rng = np.random.default_rng(0)
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                snap = gw.snapshot()
                assert isinstance(snap["extraction"]["signals"], dict)
                gw.reevaluate()
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for i in range(300):  # a new key per batch: every update inserts and reorders streams
            idx = rng.integers(0, len(X), 4)
            gw._process([Batch(X=X[idx], proba=proba[idx], key_id=f"k{i}", time=float(i))])
            if i % 50 == 0:
                gw.save_defence()
    finally:
        stop.set()
        for t in readers:
            t.join(10)
    assert not errors, repr(errors[0])
    assert len(gw.snapshot()["extraction"]["signals"]) >= 250
