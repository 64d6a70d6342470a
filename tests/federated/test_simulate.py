import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from modelshield.errors import UserError
from modelshield.federated import client_noise_std, epsilon, simulate

dp_accounting = pytest.importorskip("dp_accounting")

X, Y = load_breast_cancer(return_X_y=True)
KW = {"clients": 20, "rounds": 15, "seed": 0}


@pytest.fixture(scope="module")
def clean():
    return simulate(X, Y, **KW).final_accuracy


@pytest.mark.parametrize("attack", ["sign-flip", "scale:10"])
def test_fedavg_broken_robust_holds(clean, attack):
    assert clean > 0.9
    broken = simulate(X, Y, malicious=0.2, attack=attack, **KW)
    assert broken.final_accuracy < clean - 0.2
    held = [
        simulate(X, Y, malicious=0.2, attack=attack, aggregator=a, **KW).final_accuracy
        for a in ("multikrum", "median", "trimmed-mean:0.2")
    ]
    assert max(held) >= clean - 0.02


def test_backdoor_planted_in_fedavg_not_in_multikrum():
    bd = simulate(X, Y, malicious=0.2, attack="backdoor", **KW)
    clean_bd = simulate(X, Y, **KW).final_backdoor_success
    assert bd.final_backdoor_success > 0.8 > clean_bd
    mk = simulate(X, Y, malicious=0.2, attack="backdoor", aggregator="multikrum", **KW)
    assert mk.final_backdoor_success < 0.1


def test_secagg_groups_compose_with_robust_aggregation(clean):
    # 20 clients, k=2 -> 10 group sums; the median over groups with 4 attackers (f <= 4 groups)
    r = simulate(X, Y, malicious=0.2, attack="sign-flip", aggregator="median", group_size=2, **KW)
    assert r.config["secure_aggregation"] and all(rec.groups == 10 and rec.failures == 0 for rec in r.rounds)
    # 4 of 10 group sums are poisoned: the median is biased a few points (0.904 vs 0.956 at seed 0, FedAvg 0.44)
    assert r.final_accuracy >= clean - 0.06
    same = simulate(X, Y, group_size=2, **KW)  # clean run through SecAgg matches the plain one
    assert abs(same.final_accuracy - clean) <= 0.02


def test_dp_epsilon_matches_dp_accounting():
    r = simulate(X, Y, dp_noise=1.1, clip=1.0, fraction=0.5, group_size=4, dropouts=1, **KW)
    acc = dp_accounting.rdp.RdpAccountant(orders=[float(a) for a in range(2, 65)])
    acc.compose(dp_accounting.PoissonSampledDpEvent(0.5, dp_accounting.GaussianDpEvent(1.1)), KW["rounds"])
    ref = acc.get_epsilon(1e-5)
    assert r.epsilon is not None and 0 < r.epsilon <= ref * 1.0001 and r.epsilon >= ref * 0.9
    assert epsilon(noise_multiplier=2.0, sample_rate=0.5, rounds=15, delta=1e-5) < r.epsilon


def test_distributed_noise_reaches_sigma_c_per_group():
    rng = np.random.default_rng(0)
    sigma, c, k, t = 1.3, 0.5, 5, 2
    std = client_noise_std(sigma, c, k - t)
    sums = rng.normal(0.0, std, size=(200000, k - t)).sum(axis=1)  # the fewest contributors that unmask
    assert abs(sums.std() - sigma * c) < 0.01


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"clients": 400, "partition": "dirichlet:0.05"}, "without data"),
        ({"clients": 5, "group_size": 6}, "larger than the number of clients"),
        ({"dp_noise": -0.5, "clip": 1.0}, "sigma must be >= 0"),
        ({"clients": 6, "aggregator": "krum", "malicious": 0.34, "attack": "sign-flip"}, "n > 2f + 2"),
        ({"clients": 10, "aggregator": "bulyan", "malicious": 0.2, "attack": "sign-flip"}, "n >= 4f + 3"),
        ({"dp_noise": 1.0}, "clipping norm"),
        ({"partition": "zipf"}, "partition must be"),
        ({"attack": "sign-flip"}, "needs malicious > 0"),
        ({"malicious": 0.2, "attack": "nope"}, "attack must be"),
        ({"group_size": 4, "dropouts": 2}, "t < k/2"),
    ],
)
def test_bad_input_one_line(kwargs, needle):
    with pytest.raises(UserError) as info:
        simulate(X, Y, **{"rounds": 1, **kwargs})
    assert needle in str(info.value) and "\n" not in str(info.value)
