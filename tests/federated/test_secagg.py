import numpy as np
import pytest

from modelshield.errors import SecurityError, UserError
from modelshield.federated import SecAggTranscript, secure_group_sum
from modelshield.federated.secagg import FRACTION_BITS, decode, encode, shamir_combine, shamir_split


@pytest.mark.parametrize(
    ("k", "t", "dropped"), [(2, 0, []), (3, 1, [2]), (5, 2, [0, 4]), (6, 2, [3]), (7, 3, [1, 2, 6])]
)
def test_unmasked_sum_equals_true_sum(k, t, dropped):
    x = np.random.default_rng(k).normal(scale=3.0, size=(k, 40))
    tr = SecAggTranscript()
    got = secure_group_sum(x, dropout_threshold=t, dropped=dropped, transcript=tr)
    alive = [i for i in range(k) if i not in dropped]
    # exact in the fixed-point ring: the sum of the encodings, decoded
    expect = decode(np.sum(np.stack([encode(x[i]) for i in alive]), axis=0, dtype=np.uint64))
    assert np.array_equal(got, expect)
    assert np.abs(got - x[alive].sum(axis=0)).max() < k * 2.0**-FRACTION_BITS
    assert sorted(tr.masked) == alive and tr.dropped == sorted(dropped)


def test_server_never_receives_both_shares_of_a_client():
    tr = SecAggTranscript()
    secure_group_sum(np.ones((5, 3)), dropout_threshold=2, dropped=[1], transcript=tr)
    kinds = {}
    for _holder, owner, kind in tr.revealed:
        kinds.setdefault(owner, set()).add(kind)
    assert kinds[1] == {"s"} and all(v == {"b"} for o, v in kinds.items() if o != 1)


def test_masked_vector_is_independent_of_its_update():
    n = 20000
    rng = np.random.default_rng(0)
    x = np.vstack([np.linspace(-5, 5, n), rng.normal(size=n), np.zeros(n)])
    tr = SecAggTranscript()
    secure_group_sum(x, dropout_threshold=1, transcript=tr)
    for i in range(3):
        seen = tr.masked[i].astype(np.float64)  # uniform on [0, 2^64) whatever the update
        r = np.corrcoef(seen, x[0])[0, 1]
        assert abs(r) < 5 / np.sqrt(n)
        # uniformity of the top byte: chi-square on 256 bins (p ~ 1e-6 cut-off: 255 dof -> 370)
        counts = np.bincount((tr.masked[i] >> np.uint64(56)).astype(np.int64), minlength=256)
        chi2 = ((counts - n / 256) ** 2 / (n / 256)).sum()
        assert chi2 < 370
    # the same statistics catch an unmasked vector (the test can fail)
    plain = encode(x[0]).astype(np.float64)
    assert abs(np.corrcoef(plain, x[0])[0, 1]) > 5 / np.sqrt(n)


@pytest.mark.parametrize(("k", "t"), [(3, 1), (5, 2), (7, 3)])
def test_dropouts_past_threshold_fail_loudly(k, t):
    x = np.ones((k, 4))
    secure_group_sum(x, dropout_threshold=t, dropped=range(t))  # t dropouts: fine
    with pytest.raises(SecurityError, match="more than the threshold"):
        secure_group_sum(x, dropout_threshold=t, dropped=range(t + 1))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"updates": np.ones((1, 3)), "dropout_threshold": 0}, "at least 2 clients"),
        ({"updates": np.ones((4, 3)), "dropout_threshold": 2}, "t < k/2"),
        ({"updates": np.ones((4, 3)), "dropout_threshold": -1}, "t < k/2"),
        ({"updates": np.ones((3, 3)), "dropout_threshold": 1, "dropped": [5]}, "not in the group"),
    ],
)
def test_bad_input(kwargs, needle):
    with pytest.raises(UserError, match=needle):
        secure_group_sum(**kwargs)


def test_shamir_threshold():
    secret = 2**255 + 12345
    shares = shamir_split(secret, 5, 3)
    assert shamir_combine(shares[:3]) == secret and shamir_combine(shares[2:]) == secret
    assert shamir_combine(shares[:2]) != secret
