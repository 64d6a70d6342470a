"""Paired, interleaved timing: the one measurement helper every benchmark uses.

A skeptic's measure of "X is r times Y" on a shared machine:

* **warm-up** rounds first (imports, caches, JIT, allocator), never counted;
* **interleaved rounds**: each round runs every case once, the order alternating between rounds
  (forward, reversed, ...) so drift in machine load hits both sides alike;
* **per-round ratios** against the baseline case of the *same* round (never best-of-N of one side divided
  by best-of-N of the other);
* reported as **median [min-max] over >= 5 rounds**, with the machine's load average before and after.

Usage::

    from benchmarks.paired import paired  # or: sys.path.insert(0, "benchmarks"); from paired import paired

    res = paired({"bare": f0, "ours": f1, "peer": f2}, baseline="bare", rounds=7)
    print(res.table())            # markdown: case | median time | ratio median [min-max]
    json.dump(res.to_dict(), fh)  # raw per-round seconds and ratios, load averages, machine
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PairedResult", "fmt_ratio", "machine", "paired"]

MIN_ROUNDS = 5


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                            "cpus": os.cpu_count(), "platform": platform.platform()}
    try:
        import numpy

        info["numpy"] = numpy.__version__
    except ImportError:  # pragma: no cover - numpy is a core dependency
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        pass
    return info


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return []


def fmt_ratio(stats: dict[str, float]) -> str:
    """``1.23 [1.10-1.40]`` from a summary with median/min/max."""
    return f"{stats['median']:.2f} [{stats['min']:.2f}-{stats['max']:.2f}]"


@dataclass
class PairedResult:
    baseline: str
    order: list[str]
    seconds: dict[str, list[float]]  # case -> one time per counted round
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # case -> last return value (for value checks)

    def ratios(self, case: str) -> list[float]:
        base = self.seconds[self.baseline]
        return [t / b for t, b in zip(self.seconds[case], base, strict=True)]

    def summary(self, case: str) -> dict[str, float]:
        r = self.ratios(case)
        return {"median": statistics.median(r), "min": min(r), "max": max(r),
                "median_s": statistics.median(self.seconds[case]), "rounds": len(r)}

    def table(self, *, inverse: bool = False, unit: str = "s") -> str:
        """Markdown: case | median time | time / baseline (or baseline / time with ``inverse``)."""
        head = f"| case | median ({unit}) | {'baseline / case' if inverse else 'case / baseline'} median [min-max] |"
        lines = [head, "|---|---:|---:|"]
        for case in self.order:
            r = self.ratios(case)
            if inverse:
                r = [1 / x for x in r]
            s = {"median": statistics.median(r), "min": min(r), "max": max(r)}
            lines.append(f"| {case} | {statistics.median(self.seconds[case]):.4g} | {fmt_ratio(s)} |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "rounds": len(self.seconds[self.baseline]),
                "seconds": self.seconds, "ratios": {c: self.ratios(c) for c in self.order},
                "summary": {c: self.summary(c) for c in self.order},
                "load_before": self.load_before, "load_after": self.load_after, "machine": self.machine}


def paired(cases: dict[str, Callable[[], Any]], *, baseline: str, rounds: int = 7, warmup: int = 1,
           timer: Callable[[], float] = time.perf_counter) -> PairedResult:
    """Time every case once per round, order alternating between rounds; ratios per round vs ``baseline``."""
    if baseline not in cases:
        raise ValueError(f"baseline {baseline!r} is not one of the cases {sorted(cases)}")
    if rounds < MIN_ROUNDS:
        raise ValueError(f"a paired measurement needs at least {MIN_ROUNDS} rounds, got {rounds}")
    order = list(cases)
    res = PairedResult(baseline=baseline, order=order, seconds={c: [] for c in order},
                       load_before=_load(), machine=machine())
    for w in range(warmup):
        for c in (order if w % 2 == 0 else order[::-1]):
            cases[c]()
    for r in range(rounds):
        for c in (order if r % 2 == 0 else order[::-1]):
            t0 = timer()
            res.outputs[c] = cases[c]()
            res.seconds[c].append(timer() - t0)
    res.load_after = _load()
    return res
