from __future__ import annotations

import numpy as np
import pytest

from modelshield.errors import IntegrityError
from modelshield.private_inference.approx import fit_activations, poly_depth
from modelshield.private_inference.channel import new_session_key, open_sealed, seal
from modelshield.private_inference.network import Act, Dense, Network
from modelshield.private_inference.params import (
    MAX_COEFF_BITS_128,
    CKKSParams,
    InfeasibleError,
    check_params,
    choose_params,
)


def test_he_standard_table():
    assert {4096: 109, 8192: 218, 16384: 438, 32768: 881}.items() <= MAX_COEFF_BITS_128.items()


@pytest.mark.parametrize("depth", range(1, 26))
@pytest.mark.parametrize("bound", [1.0, 40.0, 5e3])
def test_chosen_params_are_secure_and_deep_enough(depth, bound):
    try:
        p = choose_params(depth, bound)
    except InfeasibleError:
        assert depth > 20  # only very deep circuits run out of 128-bit-secure modulus
        return
    check_params(p)
    assert p.total_bits <= MAX_COEFF_BITS_128[p.poly_modulus_degree]
    assert len(p.coeff_mod_bit_sizes) == depth + 2 and p.coeff_mod_bit_sizes[1:-1] == (p.scale_bits,) * depth
    assert 2 ** (p.coeff_mod_bit_sizes[0] - p.scale_bits) >= bound  # the result fits in the last prime


def test_too_deep_is_refused_with_numbers():
    with pytest.raises(InfeasibleError, match="128-bit") as e:
        choose_params(40, 10.0)
    assert e.value.exit_code == 2


def test_issue_fact_240_bits_at_8192_refused():
    with pytest.raises(InfeasibleError, match=r"240 bits exceeds .* 218"):
        check_params(CKKSParams(8192, (60, 40, 40, 40, 60), 40, 3))
    check_params(CKKSParams(8192, (60, 30, 30, 30, 60), 30, 3))


@pytest.mark.parametrize("kind", ["relu", "sigmoid", "tanh"])
def test_polynomial_error_shrinks_with_degree(kind, rng):
    net = Network([Dense(np.eye(3), np.zeros(3)), Act(kind), Dense(np.ones((3, 1)), np.zeros(1))], "t")
    X = rng.normal(size=(400, 3)) * 2
    errs = [fit_activations(net, X, d)[0].max_error for d in (1, 2, 4)]
    assert errs[0] > errs[1] >= errs[2] * 0.999 and errs[2] < 0.5
    assert [poly_depth(d) for d in (1, 2, 3, 4)] == [0, 1, 2, 2]


def test_square_is_exact(rng):
    net = Network([Dense(np.eye(2), np.zeros(2)), Act("square"), Dense(np.ones((2, 1)), np.zeros(1))], "t")
    (p,) = fit_activations(net, rng.normal(size=(10, 2)))
    assert p.exact and p.max_error == 0.0 and p.coeffs == (0.0, 0.0, 1.0)


def test_channel_detects_any_flipped_byte_and_replay(rng):
    key = new_session_key()
    parts = [bytes(rng.integers(0, 256, size=50, dtype=np.uint8)) for _ in range(3)]
    msg = seal(key, "request", 0, parts)
    assert open_sealed(key, msg, kind="request", seq=0) == tuple(parts)
    for i in range(3):
        for pos in rng.choice(50, size=5, replace=False):
            bad = bytearray(parts[i])
            bad[pos] ^= 1 << int(rng.integers(8))
            tampered = type(msg)(msg.kind, msg.seq, (*parts[:i], bytes(bad), *parts[i + 1:]), msg.tag)
            with pytest.raises(IntegrityError):
                open_sealed(key, tampered, kind="request", seq=0)
    with pytest.raises(IntegrityError):
        open_sealed(key, msg, kind="response", seq=0)  # reflected as a response
    with pytest.raises(IntegrityError):
        open_sealed(key, msg, kind="request", seq=1)  # replayed later
    with pytest.raises(IntegrityError):
        open_sealed(new_session_key(), msg, kind="request", seq=0)


@pytest.mark.parametrize("layers", [17, 20])  # depth 33, 39: beyond 881 bits at N=32768
def test_planner_refuses_a_depth_no_secure_parameters_allow(layers, rng):
    from modelshield.private_inference.planner import plan

    chain = []
    for k in range(layers):
        chain.append(Dense(np.eye(4) * 0.5, np.zeros(4)))
        if k < layers - 1:
            chain.append(Act("square"))
    net = Network(chain, "deep")
    with pytest.raises(InfeasibleError, match="128-bit") as e:
        plan(net, "he", rng.normal(size=(20, 4)))
    assert e.value.exit_code == 2


def test_planner_accepts_the_deepest_that_fits(rng):
    from modelshield.private_inference.planner import plan

    chain = []
    for k in range(8):  # depth 15 at scale 2^25..30: fits N=16384/32768
        chain.append(Dense(np.eye(4) * 0.5, np.zeros(4)))
        if k < 7:
            chain.append(Act("square"))
    p = plan(Network(chain, "deep"), "he", rng.normal(size=(20, 4)))
    q = p["parameters"]["batched"]
    assert q["depth"] == 15 and q["total_bits"] <= q["max_bits_128"] and q["poly_modulus_degree"] >= 16384
