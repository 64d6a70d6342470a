"""Executors: where the units of a registry audit run. ``local`` (this process, one after the other),
``processes`` (a local pool of worker processes) and ``ray`` (local Ray, or a cluster by address).

Every executor runs ``fn(item)`` for each item and hands back one :class:`Outcome` per item, in the items'
order, whatever order they finished in (so merging is deterministic). Faults are data, not exceptions:

* ``timeout`` — the item ran longer than ``timeout`` seconds. ``processes`` kills the worker (the other
  in-flight items are re-run, not blamed); ``ray`` force-cancels the task (Ray kills its worker); ``local``
  interrupts the call with ``SIGALRM`` in the main thread (Python code only: a call stuck inside C code is
  interrupted when it returns, so use ``processes`` for a hard bound);
* ``crashed`` — the worker process died (a segfault, ``os._exit``, the OOM killer). The item is retried once,
  alone, then reported (Ray: ``max_retries=1``);
* ``error`` — ``fn`` raised (the unit functions of this package catch their own faults; this is the last net).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from modelshield.errors import MissingExtraError, UserError

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "Outcome", "ProcessExecutor", "RayExecutor", "make_executor"]

EXECUTORS = ("local", "processes", "ray")

#: How long ``ray`` waits for a cluster address to answer before giving up (exit 2).
RAY_CONNECT_TIMEOUT_S = 10.0

DoneFn = Callable[[int, "Outcome"], None]


@dataclass
class Outcome:
    """The fate of one item: ``ok`` (``value`` is fn's return), ``error``, ``timeout`` or ``crashed``."""

    status: str
    value: Any = None
    message: str = ""
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _no_done(_i: int, _o: Outcome) -> None:
    return None


class Executor:
    """Runs a picklable function over items. Subclasses implement :meth:`run`."""

    name = "executor"

    def __init__(self, *, workers: int = 1, timeout: float | None = None) -> None:
        if workers < 1:
            raise UserError(f"workers must be at least 1, not {workers}", cli_hint="check --workers")
        if timeout is not None and timeout <= 0:
            raise UserError(f"the time bound must be positive, not {timeout}", cli_hint="check --timeout")
        self.workers = workers
        self.timeout = timeout

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "workers": self.workers, "timeout_s": self.timeout}

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any], on_done: DoneFn = _no_done) -> list[Outcome]:
        raise NotImplementedError

    def start(self) -> None:
        """Get ready before any work (connect to a cluster): a bad address fails here, not after discovery."""

    def close(self) -> None:
        """Release what the executor holds (pools, a Ray connection it opened)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Timeout(BaseException):
    """Raised by SIGALRM in :class:`LocalExecutor`: a BaseException, so a check's ``except Exception``
    (the error capture of ``Check.run``) does not swallow it."""


class LocalExecutor(Executor):
    """Today's behaviour: every item in this process, in order."""

    name = "local"

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any], on_done: DoneFn = _no_done) -> list[Outcome]:
        out: list[Outcome] = []
        alarm = (self.timeout is not None and hasattr(signal, "setitimer")
                 and threading.current_thread() is threading.main_thread())
        for i, item in enumerate(items):
            old = None
            try:
                if alarm:
                    old = signal.signal(signal.SIGALRM, _raise_timeout)
                    signal.setitimer(signal.ITIMER_REAL, float(self.timeout))  # type: ignore[arg-type]
                try:
                    o = Outcome("ok", fn(item))
                finally:
                    if alarm:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                        signal.signal(signal.SIGALRM, old)
            except _Timeout:
                o = Outcome("timeout", message=f"timed out after {self.timeout:g} s")
            except Exception as exc:
                o = Outcome("error", message=_one_line(exc), value=traceback.format_exc(limit=10))
            out.append(o)
            on_done(i, o)
        return out


def _raise_timeout(_signum: int, _frame: Any) -> None:
    raise _Timeout()


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0] if text.strip() else type(exc).__name__


def _warm_worker() -> None:
    """Pool initializer: import the heavy modules once per worker, before any item's clock starts."""
    import modelshield.protect.loader
    import modelshield.runner  # noqa: F401
    from modelshield.checks.registry import available_checks

    available_checks()  # imports every check module
    import sklearn.base  # noqa: F401  (every model adapter)

    with contextlib.suppress(ImportError):
        import torch  # noqa: F401  (Check.run seeds torch's generator: 4 s on a first import)


def _ping(_: Any = None) -> int:
    time.sleep(0.05)  # long enough that each worker takes one ping
    return os.getpid()


class ProcessExecutor(Executor):
    """A local pool of ``workers`` processes (``concurrent.futures.ProcessPoolExecutor``, ``spawn``: no
    inherited threads or locks). At most ``workers`` items are in flight, so an item's clock starts when a
    worker takes it. A timed-out item's pool is killed and replaced; the other in-flight items run again."""

    name = "processes"

    def __init__(self, *, workers: int = 2, timeout: float | None = None, start_method: str = "spawn",
                 warm: bool = True) -> None:
        super().__init__(workers=workers, timeout=timeout)
        self.start_method = start_method
        self.warm = warm  # import modelshield's heavy modules in each worker at start (off: plain functions)
        self._pool: Any = None
        self.pools_started = 0

    def _new_pool(self) -> Any:
        self._kill_pool()
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context(self.start_method),
            initializer=_warm_worker if self.warm else None)
        # start and warm every worker now: start-up time must not count against the first items' timeout
        for f in [pool.submit(_ping) for _ in range(self.workers)]:
            f.result()
        self.pools_started += 1
        self._pool = pool
        return pool

    def _kill_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # ProcessPoolExecutor cannot cancel a running call: kill its workers (the only way to stop a hung
        # item; ``_processes`` is CPython's table of the pool's worker processes)
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(Exception):
                proc.kill()
        pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any], on_done: DoneFn = _no_done) -> list[Outcome]:
        results: list[Outcome | None] = [None] * len(items)
        strikes = [0] * len(items)  # worker deaths while the item ran alone
        grouped = [0] * len(items)  # worker deaths while the item ran beside others
        queue: deque[int] = deque(range(len(items)))
        suspects: deque[int] = deque()  # in flight when a worker died beside others: re-run alone
        pool = self._pool or self._new_pool()
        inflight: dict[Any, tuple[int, float, bool]] = {}  # future -> (index, started, alone)

        def finish(i: int, o: Outcome) -> None:
            o.attempts = strikes[i] + min(grouped[i], 1) + (0 if o.status == "crashed" else 1)
            results[i] = o
            on_done(i, o)

        while queue or suspects or inflight:
            # fill the workers: a suspect runs alone; nothing else starts while one runs
            alone_running = any(a for (_, _, a) in inflight.values())
            while not alone_running and len(inflight) < self.workers and (queue or suspects):
                if suspects:
                    if inflight:
                        break  # wait for the others to finish, then run the suspect alone
                    i = suspects.popleft()
                    inflight[pool.submit(fn, items[i])] = (i, time.monotonic(), True)
                    alone_running = True
                else:
                    i = queue.popleft()
                    inflight[pool.submit(fn, items[i])] = (i, time.monotonic(), self.workers == 1)
            wait_s = 0.5
            if self.timeout is not None and inflight:
                first_deadline = min(t for (_, t, _) in inflight.values()) + self.timeout
                wait_s = max(0.01, min(wait_s, first_deadline - time.monotonic()))
            done, _ = concurrent.futures.wait(list(inflight), timeout=wait_s,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
            broken: list[tuple[int, bool]] = []
            for fut in done:
                i, _, alone = inflight.pop(fut)
                try:
                    finish(i, Outcome("ok", fut.result()))
                except BrokenProcessPool:
                    broken.append((i, alone))
                except Exception as exc:
                    finish(i, Outcome("error", message=_one_line(exc)))
            if broken:  # a worker died: every item still in flight lost its worker too
                for i, _, alone in inflight.values():
                    broken.append((i, alone))
                inflight.clear()
                for i, alone in broken:
                    strikes[i] += 1 if alone else 0
                    grouped[i] += 0 if alone else 1
                    if alone:
                        if strikes[i] + min(grouped[i], 1) >= 2:  # it died alone after dying in a group, or twice
                            finish(i, Outcome("crashed", message="the worker process died while running it "
                                                                 "(retried once)"))
                        else:
                            suspects.append(i)
                    else:
                        suspects.append(i)  # one of these killed the worker: each runs again alone
                pool = self._new_pool()
                continue
            if self.timeout is not None:
                now = time.monotonic()
                late = [(f, i) for f, (i, t, _) in inflight.items() if now - t > self.timeout and not f.done()]
                if late:
                    for f, i in late:
                        inflight.pop(f)
                        finish(i, Outcome("timeout", message=f"timed out after {self.timeout:g} s (worker killed)"))
                    for _f, (i, _, alone) in list(inflight.items()):  # innocent bystanders: run again
                        (suspects if alone else queue).appendleft(i)
                    inflight.clear()
                    pool = self._new_pool()
        return [o if o is not None else Outcome("error", message="not run") for o in results]


def check_ray_address(address: str, timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Fail fast (exit 2) when a Ray address does not answer: ``ray.init`` itself may wait for minutes.
    ``auto`` and ``local`` are left to Ray."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"bad Ray address {address!r}: expected HOST:PORT or ray://HOST:PORT",
                        cli_hint="check --ray-address")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise UserError(f"Ray address {address} does not answer (within {timeout:g} s): "
                        f"{exc.strerror or type(exc).__name__}") from None


class RayExecutor(Executor):
    """Ray tasks: local Ray with ``workers`` CPUs when ``address`` is None, else the cluster at ``address``.
    Each item is a task with ``max_retries=1`` (a dead worker is retried once, then reported ``crashed``);
    a task past ``timeout`` is force-cancelled. A Ray this executor started is shut down by :meth:`close`."""

    name = "ray"

    def __init__(self, *, workers: int = 2, timeout: float | None = None, address: str | None = None,
                 connect_timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
        super().__init__(workers=workers, timeout=timeout)
        self.address = address
        self.connect_timeout = connect_timeout
        self._started = False
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._capacity = workers

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"address": self.address}

    def start(self) -> None:
        self._ensure()

    def _ensure(self) -> Any:
        if self.address and not self._started:
            check_ray_address(self.address, self.connect_timeout)  # before importing Ray (seconds)
        try:
            import ray  # optional extra: imported only when the ray executor is used
        except ImportError as exc:
            raise MissingExtraError("ray", "scale", "the ray executor") from exc
        if ray.is_initialized():
            return ray
        if self.address:
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         ignore_reinit_error=True)
            except Exception as exc:  # ConnectionError, RuntimeError: one line, exit 2
                raise UserError(f"cannot connect to Ray at {self.address}: {_one_line(exc)}") from None
            self._started = True
            self._capacity = max(1, int(ray.cluster_resources().get("CPU", self.workers)))
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="modelshield-ray-")
            # a short path: Ray's socket paths must fit in 107 bytes
            try:
                ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False,
                         _temp_dir=self._tmp.name, ignore_reinit_error=True)
            except Exception as exc:  # Ray's "node timed out during startup" on an overloaded machine
                self._tmp.cleanup()
                self._tmp = None
                raise UserError(f"a local Ray did not start: {_one_line(exc)}") from None
            self._started = True
            self._capacity = self.workers
        return ray

    def close(self) -> None:
        if self._started:
            import ray  # lazy: ray is the optional 'scale' extra

            ray.shutdown()
            self._started = False
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any], on_done: DoneFn = _no_done) -> list[Outcome]:
        ray = self._ensure()
        # lazy: ray is the optional 'scale' extra
        from ray.exceptions import GetTimeoutError, RayTaskError, TaskCancelledError, WorkerCrashedError

        remote = ray.remote(num_cpus=1, max_retries=1, retry_exceptions=False)(fn)
        results: list[Outcome | None] = [None] * len(items)
        queue: deque[int] = deque(range(len(items)))
        inflight: dict[Any, tuple[int, float]] = {}
        cancelled: set[int] = set()
        while queue or inflight:
            while queue and len(inflight) < self._capacity:  # bounded: a task's clock starts when it can run
                i = queue.popleft()
                inflight[remote.remote(items[i])] = (i, time.monotonic())
            wait_s = 0.5
            if self.timeout is not None:
                first = min(t for (_, t) in inflight.values()) + self.timeout
                wait_s = max(0.01, min(wait_s, first - time.monotonic()))
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=wait_s)
            for ref in ready:
                i, _ = inflight.pop(ref)
                try:
                    o = Outcome("ok", ray.get(ref, timeout=60))
                except (TaskCancelledError, GetTimeoutError):
                    o = Outcome("timeout", message=f"timed out after {self.timeout:g} s (task cancelled)")
                except WorkerCrashedError:
                    o = Outcome("crashed", message="the Ray worker died while running it (retried once)", attempts=2)
                except RayTaskError as exc:
                    o = Outcome("error", message=_one_line(exc.cause if exc.cause is not None else exc))
                except Exception as exc:
                    o = Outcome("error", message=_one_line(exc))
                if i in cancelled:
                    o = Outcome("timeout", message=f"timed out after {self.timeout:g} s (task cancelled)")
                results[i] = o
                on_done(i, o)
            if self.timeout is not None:
                now = time.monotonic()
                for ref, (i, t) in list(inflight.items()):
                    if now - t > self.timeout and i not in cancelled:
                        cancelled.add(i)
                        ray.cancel(ref, force=True, recursive=True)
        return [o if o is not None else Outcome("error", message="not run") for o in results]


def make_executor(name: str, *, workers: int | None = None, timeout: float | None = None,
                  address: str | None = None) -> Executor:
    """The executor called ``name`` (``local``, ``processes``, ``ray``); ``workers`` defaults to the CPUs."""
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
    if address and name != "ray":
        raise UserError("a Ray address applies to the ray executor only", cli_hint="--ray-address needs --executor ray")
    n = workers if workers is not None else (1 if name == "local" else max(1, os.cpu_count() or 1))
    if name == "local":
        if n != 1:
            raise UserError("the local executor runs one item at a time; several workers need the processes or ray "
                            "executor", cli_hint="--workers needs --executor processes or ray")
        return LocalExecutor(timeout=timeout)
    if name == "processes":
        return ProcessExecutor(workers=n, timeout=timeout)
    return RayExecutor(workers=n, timeout=timeout, address=address)
