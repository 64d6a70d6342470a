"""Client-level differential privacy for group-wise secure aggregation.

Each client clips its update to L2 norm ``C`` and adds Gaussian noise of variance
``sigma**2 * C**2 / (k - t)`` before masking (distributed noise): a group sum released by secure
aggregation has at least ``k - t`` contributors (fewer fails the round), so it carries noise of standard
deviation at least ``sigma * C``. Adding or removing one client changes exactly one group sum by at most
``C``; the groups are disjoint, so each round is a Gaussian mechanism with noise multiplier ``sigma`` on
the released group sums, and the robust aggregation across them is post-processing. Clients take part in a
round independently with probability ``q`` (Poisson sampling); ε over ``R`` rounds comes from the
``dp_accounting`` RDP accountant (Poisson-subsampled Gaussian, self-composed R times).

Assumes honest clients add their noise (a Byzantine client may add none: the privacy of the *honest*
clients still holds only if the honest survivors alone reach ``k - t``; we do not count on attackers' noise
in the documentation's figures -- see docs/federated.md).
"""

from __future__ import annotations

import numpy as np

from modelshield.errors import MissingExtraError, UserError

__all__ = ["RDP_ORDERS", "clip", "client_noise_std", "epsilon"]

#: RDP orders for the accountant (integers plus a few fractional ones that converge for q < 1).
RDP_ORDERS: tuple[float, ...] = (1.5, 1.75, *range(2, 65), 80, 96, 128, 256)


def clip(update: np.ndarray, c: float) -> np.ndarray:
    """Scale ``update`` down to L2 norm at most ``c``."""
    norm = float(np.linalg.norm(update))
    return update if norm <= c or norm == 0.0 else update * (c / norm)


def client_noise_std(sigma: float, c: float, min_contributors: int) -> float:
    """Per-client noise standard deviation so that ``min_contributors`` clients sum to ``sigma * C``."""
    if min_contributors < 1:
        raise UserError(f"a released sum needs at least 1 contributor, got {min_contributors}")
    return sigma * c / float(np.sqrt(min_contributors))


def epsilon(*, noise_multiplier: float, sample_rate: float, rounds: int, delta: float) -> float:
    """ε of ``rounds`` Poisson-subsampled Gaussian mechanisms (RDP accountant of ``dp_accounting``)."""
    if noise_multiplier <= 0:
        return float("inf")
    if not 0.0 < sample_rate <= 1.0:
        raise UserError(f"the sample rate must be in (0, 1], got {sample_rate}")
    if not 0.0 < delta < 1.0:
        raise UserError(f"delta must be in (0, 1), got {delta}")
    try:  # optional dependency (privacy extra): imported lazily
        import dp_accounting  # lazy: dp-accounting is slow to import; only the accountant needs it
        from dp_accounting import rdp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("dp-accounting", "privacy", "the federated privacy budget") from exc
    acc = rdp.RdpAccountant(orders=list(RDP_ORDERS))
    event = dp_accounting.PoissonSampledDpEvent(sample_rate, dp_accounting.GaussianDpEvent(noise_multiplier))
    acc.compose(dp_accounting.SelfComposedDpEvent(event, rounds))
    return float(acc.get_epsilon(delta))
