"""Small torch helpers every engine may use (torch is imported inside each function: it stays optional for
``import modelshield``): a thread limit for tiny workloads and a seeded ReLU MLP."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["few_threads", "make_mlp"]


@contextlib.contextmanager
def few_threads(n: int = 1) -> Iterator[None]:
    """Run tiny torch workloads on ``n`` threads (faster than the default pool), then restore."""
    import torch  # lazy: torch is heavy; imported only where it runs

    before = torch.get_num_threads()
    if before > n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def make_mlp(n_in: int, n_out: int, hidden: tuple[int, ...] = (64, 64), seed: int = 0) -> Any:
    """A fresh ReLU MLP whose initial weights depend only on ``seed`` (the global RNG is left untouched)."""
    import torch  # lazy: torch is heavy; imported only where it runs

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[Any] = []
        width = n_in
        for h in hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
            width = h
        layers.append(torch.nn.Linear(width, n_out))
        return torch.nn.Sequential(*layers)
