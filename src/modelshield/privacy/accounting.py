"""Privacy accounting for DP-SGD: the Poisson-subsampled Gaussian mechanism composed over steps.

Two accountants:

``"rdp"``
    Rényi DP (Mironov 2017; Mironov, Talwar & Zhang 2019), converted to (ε, δ) with the improved
    conversion of Balle et al. 2020 — the same analysis Opacus uses, so numbers agree with Opacus and
    with Google's ``dp_accounting`` ``RdpAccountant`` given the same orders.
``"pld"``
    Privacy-loss distributions (Koskela et al. 2020; Doroshenko et al. 2022) through Google's
    ``dp_accounting``; tighter than RDP. Needs the ``privacy`` extra.

:func:`calibrate_noise` finds the smallest noise multiplier that meets a target ε for a planned number
of steps, by bisection on the accountant (ε is monotone decreasing in the noise).

References
----------
.. [1] I. Mironov, "Rényi Differential Privacy", CSF 2017.
.. [2] I. Mironov, K. Talwar, L. Zhang, "Rényi Differential Privacy of the Sampled Gaussian
   Mechanism", arXiv:1908.10530, 2019.
.. [3] B. Balle et al., "Hypothesis Testing Interpretations and Rényi Differential Privacy",
   AISTATS 2020.
.. [4] V. Doroshenko et al., "Connect the Dots: Tighter Discrete Approximations of Privacy Loss
   Distributions", PETS 2022.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from modelshield.errors import DataError, MissingExtraError

__all__ = ["ACCOUNTANTS", "DEFAULT_ORDERS", "PrivacySpent", "calibrate_noise", "compute_epsilon", "rdp_epsilon"]

ACCOUNTANTS = ("rdp", "pld")

#: Rényi orders: Opacus's defaults (1.1 .. 10.9 in steps of 0.1, then 12 .. 63) plus a few large ones
#: for very small ε. Tests pin agreement with ``dp_accounting`` on the same orders.
DEFAULT_ORDERS: tuple[float, ...] = (
    *(1 + x / 10.0 for x in range(1, 100)),
    *range(12, 64),
    128,
    256,
)


@dataclass(frozen=True, kw_only=True)
class PrivacySpent:
    """An (ε, δ) guarantee and how it was computed."""

    epsilon: float
    delta: float
    accountant: str
    noise_multiplier: float
    sample_rate: float
    steps: int
    order: float | None = None  # the Rényi order that gave the bound (RDP only)


def _validate(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> None:
    if not (noise_multiplier > 0 and math.isfinite(noise_multiplier)):
        raise DataError(f"noise multiplier must be a positive number, got {noise_multiplier!r}")
    if not 0 < sample_rate <= 1:
        raise DataError(f"sample rate must be in (0, 1], got {sample_rate!r}")
    if int(steps) != steps or steps < 1:
        raise DataError(f"steps must be a positive integer, got {steps!r}")
    if not 0 < delta < 1:
        raise DataError(f"delta must be in (0, 1), got {delta!r}")


def rdp_epsilon(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    orders: Sequence[float] = DEFAULT_ORDERS,
) -> tuple[float, float]:
    """(ε, best order) for ``steps`` compositions of the subsampled Gaussian, by RDP."""
    from opacus.accountants.analysis import rdp as _rdp  # lazy: optional extra (opacus pulls in torch)

    _validate(noise_multiplier, sample_rate, steps, delta)
    rdp = _rdp.compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=int(steps),
                           orders=list(orders))
    with warnings.catch_warnings():  # "optimal order is the smallest/largest alpha": still a valid bound
        warnings.simplefilter("ignore", UserWarning)
        eps, order = _rdp.get_privacy_spent(orders=list(orders), rdp=rdp, delta=delta)
    return float(eps), float(order)


def _pld_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    try:  # lazy: optional extra 'privacy'
        import dp_accounting  # lazy: dp-accounting is the optional 'privacy' extra
        from dp_accounting.pld import pld_privacy_accountant
    except ImportError as exc:  # pragma: no cover - the privacy extra is installed in CI
        raise MissingExtraError("dp-accounting", "privacy", "the PLD accountant") from exc
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(sample_rate, dp_accounting.GaussianDpEvent(noise_multiplier)),
        int(steps),
    )
    acc = pld_privacy_accountant.PLDAccountant()
    acc.compose(event)
    return float(acc.get_epsilon(delta))


def compute_epsilon(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    accountant: str = "rdp",
) -> PrivacySpent:
    """The ε spent by DP-SGD with Poisson sampling at ``sample_rate`` for ``steps`` steps.

    Examples
    --------
    >>> round(compute_epsilon(1.0, 0.00256, 3910, 1e-5).epsilon, 4)
    1.0903
    """
    if accountant not in ACCOUNTANTS:
        raise DataError(f"unknown accountant {accountant!r}; expected one of {', '.join(ACCOUNTANTS)}")
    _validate(noise_multiplier, sample_rate, steps, delta)
    if accountant == "rdp":
        eps, order = rdp_epsilon(noise_multiplier, sample_rate, steps, delta)
        return PrivacySpent(epsilon=eps, delta=delta, accountant="rdp", noise_multiplier=noise_multiplier,
                            sample_rate=sample_rate, steps=int(steps), order=order)
    eps = _pld_epsilon(noise_multiplier, sample_rate, steps, delta)
    return PrivacySpent(epsilon=eps, delta=delta, accountant="pld", noise_multiplier=noise_multiplier,
                        sample_rate=sample_rate, steps=int(steps))


def calibrate_noise(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str = "rdp",
    *,
    tol: float = 1e-3,
    max_noise: float = 1000.0,
) -> float:
    """The smallest noise multiplier whose ε (by ``accountant``) is at most ``target_epsilon``.

    The answer is conservative: ``compute_epsilon(result, ...) <= target_epsilon`` always holds.
    Relative precision ``tol`` on the noise multiplier.
    """
    if not (target_epsilon > 0 and math.isfinite(target_epsilon)):
        raise DataError(f"target epsilon must be a positive number, got {target_epsilon!r}")
    _validate(1.0, sample_rate, steps, delta)

    def eps(sigma: float) -> float:
        return compute_epsilon(sigma, sample_rate, steps, delta, accountant).epsilon

    lo, hi = 0.0, 1.0
    if accountant == "pld":
        # RDP over-estimates epsilon, so the RDP-calibrated noise is enough for PLD: bracket with it
        # and spend the (slow) PLD evaluations only inside [hi / 2, hi]
        hi = calibrate_noise(target_epsilon, delta, sample_rate, steps, "rdp", tol=tol, max_noise=max_noise)
        lo = hi / 2
        if eps(lo) <= target_epsilon:
            lo = 0.0
    while eps(hi) > target_epsilon:
        lo, hi = hi, hi * 2
        if hi > max_noise:
            raise DataError(
                f"epsilon {target_epsilon} is not reachable with noise <= {max_noise} for "
                f"{steps} steps at sample rate {sample_rate:g}; train fewer steps or raise epsilon"
            )
    while hi - lo > tol * hi:
        mid = (lo + hi) / 2
        if mid > 0 and eps(mid) <= target_epsilon:
            hi = mid
        else:
            lo = mid
    return hi
