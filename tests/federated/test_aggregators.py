import numpy as np
import pytest

from modelshield.errors import UserError
from modelshield.federated import bulyan, fedavg, krum, median, multi_krum, parse_aggregator, trimmed_mean

U = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0], [100.0, -100.0]])


def test_fedavg_weighted_hand_case():
    assert np.allclose(fedavg([[0.0, 2.0], [4.0, 6.0]], weights=[3, 1]), [1.0, 3.0])
    assert np.allclose(fedavg(U), [22.0, 0.0])  # (1+2+3+4+100)/5, (10+20+30+40-100)/5


def test_median_and_trimmed_mean_hand_case():
    assert np.allclose(median(U), [3.0, 20.0])
    # beta=0.2, n=5: cut 1 per end -> column0 {2,3,4}, column1 {10,20,30}
    assert np.allclose(trimmed_mean(U, 0.2), [3.0, 20.0])
    assert np.allclose(trimmed_mean(U, 0.0), U.mean(axis=0))


def test_krum_multikrum_hand_case():
    pts = np.array([[0.0], [1.0], [2.0], [3.0], [50.0]])
    # f=1: n-f-2=2 nearest; scores 0:1+4=5, 1:1+1=2, 2:1+1=2, 3:1+4=5, 4:47^2+48^2 -> first min is index 1
    assert np.allclose(krum(pts, 1), [1.0])
    assert np.allclose(multi_krum(pts, 1, m=2), [1.5])
    assert np.allclose(multi_krum(pts, 1), [1.5])  # m = n - f = 4: mean of 0,1,2,3


def test_bulyan_hand_case():
    pts = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [1000.0]])  # n=7, f=1
    # theta=5 by repeated Krum keeps 0..5 minus one edge, never 1000; beta=3 closest to the median
    out = bulyan(pts, 1)
    assert 1.5 <= out[0] <= 3.5


@pytest.mark.parametrize("seed", range(5))
def test_robust_aggregators_ignore_f_outliers(seed):
    rng = np.random.default_rng(seed)
    honest = rng.normal(1.0, 0.1, size=(12, 6))
    evil = np.full((3, 6), -1e4)
    stack = np.vstack([honest, evil])
    assert np.abs(fedavg(stack) - 1.0).max() > 100  # the test can fail: plain mean is dragged away
    for out in (median(stack), trimmed_mean(stack, 0.2), krum(stack, 3), multi_krum(stack, 3), bulyan(stack, 3)):
        assert np.abs(out - 1.0).max() < 0.5


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: krum(np.zeros((4, 2)), 1), "n > 2f + 2"),
        (lambda: multi_krum(np.zeros((6, 2)), 2), "n > 2f + 2"),
        (lambda: bulyan(np.zeros((6, 2)), 1), "n >= 4f + 3"),
        (lambda: trimmed_mean(np.zeros((4, 2)), 0.5), "2*beta*n < n"),
        (lambda: fedavg(np.zeros((0, 2))), "0 clients"),
        (lambda: multi_krum(np.zeros((7, 2)), 1, m=7), "m <= n - f"),
        (lambda: parse_aggregator("foo"), "unknown aggregator"),
        (lambda: parse_aggregator("trimmed-mean:0.6"), "beta < 0.5"),
        (lambda: parse_aggregator("krum").check(6, 2), "n > 2f + 2"),
    ],
)
def test_constraints_one_line_user_error(call, needle):
    with pytest.raises(UserError) as info:
        call()
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_constraint_boundaries_pass():
    krum(np.random.default_rng(0).normal(size=(5, 2)), 1)  # 5 > 4
    bulyan(np.random.default_rng(0).normal(size=(7, 2)), 1)  # 7 >= 7
