"""Our epsilon against Google's dp_accounting (RDP and PLD) and the issue's reference values."""

from __future__ import annotations

import pytest

from modelshield.errors import DataError
from modelshield.privacy.accounting import DEFAULT_ORDERS, calibrate_noise, compute_epsilon

dp_accounting = pytest.importorskip("dp_accounting")

SETTINGS = [  # (noise, sample rate, steps, delta)
    (1.0, 0.00256, 3910, 1e-5),
    (1.0, 256 / 60000, 2350, 1e-5),
    (1.5, 0.01, 1000, 1e-5),
    (0.8, 0.02, 500, 1e-6),
    (4.0, 0.1, 300, 1e-5),
]


def _event(noise, q, steps):
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(noise)), steps)


@pytest.mark.parametrize(("noise", "q", "steps", "delta"), SETTINGS)
def test_rdp_matches_dp_accounting(noise, q, steps, delta):
    from dp_accounting.rdp import rdp_privacy_accountant

    ref = rdp_privacy_accountant.RdpAccountant(list(DEFAULT_ORDERS))
    ref.compose(_event(noise, q, steps))
    ours = compute_epsilon(noise, q, steps, delta, "rdp").epsilon
    assert ours == pytest.approx(ref.get_epsilon(delta), rel=0.01)


@pytest.mark.parametrize(("noise", "q", "steps", "delta"), SETTINGS[:3])
def test_pld_matches_dp_accounting_and_is_tighter_than_rdp(noise, q, steps, delta):
    from dp_accounting.pld import pld_privacy_accountant

    ref = pld_privacy_accountant.PLDAccountant()
    ref.compose(_event(noise, q, steps))
    pld = compute_epsilon(noise, q, steps, delta, "pld").epsilon
    assert pld == pytest.approx(ref.get_epsilon(delta), rel=0.01)
    assert pld < compute_epsilon(noise, q, steps, delta, "rdp").epsilon


@pytest.mark.parametrize(("q", "steps", "rdp", "pld"), [
    (0.00256, 3910, 1.090259, 0.8159),
    (256 / 60000, 2350, 1.353420, 1.1013),
])
def test_reference_values_from_the_issue(q, steps, rdp, pld):
    assert compute_epsilon(1.0, q, steps, 1e-5, "rdp").epsilon == pytest.approx(rdp, rel=1e-5)
    assert compute_epsilon(1.0, q, steps, 1e-5, "pld").epsilon == pytest.approx(pld, rel=1e-3)


@pytest.mark.parametrize("accountant", ["rdp", pytest.param("pld", marks=pytest.mark.slow)])
def test_calibrated_noise_meets_the_target_and_is_tight(accountant):
    q, steps, delta = 0.02, 500, 1e-5
    sigma = calibrate_noise(2.0, delta, q, steps, accountant)
    eps = compute_epsilon(sigma, q, steps, delta, accountant).epsilon
    assert eps <= 2.0
    assert compute_epsilon(sigma * 0.98, q, steps, delta, accountant).epsilon > 2.0 * 0.99
    # more epsilon -> less noise
    assert calibrate_noise(4.0, delta, q, steps, accountant) < sigma


def test_bad_parameters_are_clear_errors():
    with pytest.raises(DataError, match="sample rate"):
        compute_epsilon(1.0, 1.5, 10, 1e-5)
    with pytest.raises(DataError, match="delta"):
        compute_epsilon(1.0, 0.1, 10, 0.0)
    with pytest.raises(DataError, match="noise"):
        compute_epsilon(-1.0, 0.1, 10, 1e-5)
    with pytest.raises(DataError, match="accountant"):
        compute_epsilon(1.0, 0.1, 10, 1e-5, "moments")
    with pytest.raises(DataError, match="not reachable"):
        calibrate_noise(1e-6, 1e-5, 1.0, 10_000, max_noise=50)
