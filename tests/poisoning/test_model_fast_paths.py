"""The vectorised paths of activation clustering give the results of the plain ones they replaced: 2-means
with its restarts run together partitions like restarts run one after another (same k-means++ draws, same
Lloyd steps), and the prior test's normal tail equals scipy's."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from modelshield.poisoning.model import _excess, _two_means


def _sequential_two_means(Z, seed, n_init=4, iters=50):
    """The one-restart-at-a-time Lloyd of the earlier implementation (the reference)."""
    rng = np.random.default_rng(seed)
    best, best_inertia = np.zeros(len(Z), dtype=np.int64), np.inf
    sq = np.einsum("ij,ij->i", Z, Z)
    for _ in range(n_init):
        c0 = Z[rng.integers(len(Z))]
        d0 = np.maximum(sq - 2 * Z @ c0 + c0 @ c0, 0)
        c1 = Z[rng.choice(len(Z), p=d0 / d0.sum() if d0.sum() > 0 else None)]
        centres = np.stack([c0, c1])
        lab = np.zeros(len(Z), dtype=np.int64)
        for it in range(iters):
            d = sq[:, None] - 2 * Z @ centres.T + np.einsum("ij,ij->i", centres, centres)[None, :]
            new = d.argmin(axis=1)
            if np.array_equal(new, lab) and it > 0:
                break
            lab = new
            for k in (0, 1):
                if np.any(lab == k):
                    centres[k] = Z[lab == k].mean(axis=0)
        inertia = float(np.sum(np.min(d, axis=1)))
        if inertia < best_inertia and 0 < lab.sum() < len(lab):
            best, best_inertia = lab.copy(), inertia
    return best


def _inertia(Z, lab):
    return sum(float(((Z[lab == k] - Z[lab == k].mean(0)) ** 2).sum()) for k in (0, 1) if np.any(lab == k))


@pytest.mark.parametrize("case", range(60))
def test_two_means_matches_the_sequential_restarts(case):
    rng = np.random.default_rng(case)
    n, d = int(rng.integers(20, 300)), int(rng.integers(1, 11))
    Z = rng.normal(size=(n, d))
    if case % 2:
        Z[: n // 5] += 8.0  # a well separated sub-population
    if case % 5 == 0:
        Z = np.round(Z)  # ties
    ours, ref = _two_means(Z, case), _sequential_two_means(Z, case)
    assert 0 < ours.sum() < n
    # the same partition (its 0/1 naming may differ where two restarts tie) at the same inertia
    assert np.array_equal(ours, ref) or np.array_equal(ours, 1 - ref) or np.isclose(_inertia(Z, ours), _inertia(Z, ref))
    if case % 2:
        small = ours if ours.sum() <= n / 2 else 1 - ours
        assert np.array_equal(np.flatnonzero(small), np.arange(n // 5))


@pytest.mark.parametrize("n_k,n,m_k,m", [(250, 1257, 54, 540), (40, 398, 50, 171), (120, 1257, 60, 540), (5, 100, 5, 100)])
def test_prior_excess_tail_equals_scipy(n_k, n, m_k, m):
    share, p = _excess(n_k, n, m_k, m)
    pp, q = n_k / n, m_k / m
    pooled = (n_k + m_k) / (n + m)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    assert share == pytest.approx(1 - q / pp)
    assert p == pytest.approx(float(norm.sf((pp - q) / se)), rel=1e-9, abs=1e-300)
