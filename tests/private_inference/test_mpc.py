from __future__ import annotations

import socket

import numpy as np
import pytest

pytest.importorskip("mpyc")

from modelshield.errors import UserError
from modelshield.private_inference import extract
from modelshield.private_inference.mpc import evaluate_mpc, fixed_point, threat_model
from modelshield.private_inference.network import Dense, Network
from modelshield.protect.loader import load_model


def test_lr_three_parties_equals_plaintext(raw_cancer):
    pipe, _, Xte, _, yte = raw_cancer
    net = extract(load_model(pipe))
    r = evaluate_mpc(net, Xte[:30], yte[:30], parties=3)
    assert r["agreement"] == 1.0 and r["accuracy"] == r["plaintext_accuracy"]
    assert len(r["bytes_sent"]) == 3 and all(b > 0 for b in r["bytes_sent"]) and r["rounds"] > 0
    assert r["threshold"] == 1 and r["threat_model"]["inputs_hidden"] and "warning" not in r
    assert r["fixed_point"] == fixed_point(net, Xte[:30]) and r["fixed_point"]["bits"] == 32
    assert len(r["peak_rss_bytes"]) == 3 and all(b > 10 * 2**20 for b in r["peak_rss_bytes"])


@pytest.mark.slow
def test_relu_mlp_three_parties_equals_plaintext(torch_mlp, breast_cancer):
    _, Xte, _, yte = breast_cancer
    net = extract(load_model(torch_mlp))
    r = evaluate_mpc(net, Xte[:20], yte[:20], parties=3)
    assert r["agreement"] == 1.0


@pytest.mark.parametrize("parties", [0, 1, 4, 7])
def test_party_count_refused(raw_cancer, parties):
    pipe, _, Xte, _, _ = raw_cancer
    with pytest.raises(UserError, match="2 or 3"):
        evaluate_mpc(extract(load_model(pipe)), Xte[:2], parties=parties)


def test_port_in_use_refused(raw_cancer):
    pipe, _, Xte, _, _ = raw_cancer
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(UserError, match="in use"):
            evaluate_mpc(extract(load_model(pipe)), Xte[:2], parties=3, port=port)


def test_wider_data_refused(raw_cancer):
    pipe, _, Xte, _, _ = raw_cancer
    with pytest.raises(UserError, match="features"):
        evaluate_mpc(extract(load_model(pipe)), np.hstack([Xte[:2], Xte[:2]]), parties=3)


def test_threshold_zero_shares_are_the_secret():
    """mpyc's own sharing (what ``mpc.input`` sends): degree t = (m-1)//2; with m = 2, t = 0 and every share
    equals the secret, with m = 3, t = 1 and a single share does not."""
    from mpyc import thresha
    from mpyc.finfields import GF

    field = GF(2**61 - 1)  # a Mersenne prime
    secret = field.array(np.array([123456789, 42, 7], dtype=object))
    two = thresha.np_random_split(field, secret, (2 - 1) // 2, 2)
    assert all(list(row) == [123456789, 42, 7] for row in two)
    three = thresha.np_random_split(field, secret, (3 - 1) // 2, 3)
    assert not any(list(row) == [123456789, 42, 7] for row in three)


def test_two_parties_refused_without_opt_in(raw_cancer):
    pipe, _, Xte, _, _ = raw_cancer
    with pytest.raises(UserError) as exc:  # refused before any party process starts
        evaluate_mpc(extract(load_model(pipe)), Xte[:2], parties=2)
    msg = str(exc.value)
    assert "threshold" in msg and "not hidden" in msg and "--" not in msg and "\n" not in msg
    assert "--allow-no-secrecy" in exc.value.cli_hint and "--parties 3" in exc.value.cli_hint


def test_threat_model_fields():
    three, two = threat_model(3), threat_model(2)
    assert three["threshold"] == 1 and three["inputs_hidden"] and three["honest_majority"]
    assert three["adversary"].startswith("semi-honest")
    assert two["threshold"] == 0 and not two["inputs_hidden"] and not two["honest_majority"]
    assert "not hidden" in two["note"]


def test_two_parties_opt_in_says_nothing_is_hidden(raw_cancer):
    pipe, _, Xte, _, yte = raw_cancer
    net = extract(load_model(pipe))
    r = evaluate_mpc(net, Xte[:4], yte[:4], parties=2, allow_no_secrecy=True)
    assert r["agreement"] == 1.0 and r["threshold"] == 0
    assert r["threat_model"]["inputs_hidden"] is False and "not hidden" in r["warning"]
    assert len(r["peak_rss_bytes"]) == 2 and all(b > 10 * 2**20 for b in r["peak_rss_bytes"])


def test_fixed_point_sized_from_the_values():
    small = Network([Dense(np.array([[0.5], [-0.25]]), np.array([0.1]))], source="test")
    X = np.array([[3.0, -2.0], [1.0, 1.0]])
    f = fixed_point(small, X)  # largest magnitude 3 -> 2 integer bits + 2 of headroom: mpyc's 32/16 suffices
    assert (f["bits"], f["fractional_bits"], f["integer_bits_needed"]) == (32, 16, 4)
    assert f["largest_magnitude_on_rows"] == 3.0
    wide = Network([Dense(np.array([[1e6], [1.0]]), np.array([0.0]))], source="test")
    g = fixed_point(wide, X)  # 3e6 needs 22 bits + 2: a wider word, mpyc's 16 fractional bits kept
    assert g["fractional_bits"] == 16 and g["bits"] == 1 + 24 + 16
    edge = fixed_point(small, np.array([[2.0**13 - 1, 0.0]]))  # 13 + 2 integer bits: 1 + 15 + 16 = 32 exactly
    assert edge["bits"] == 32 and fixed_point(small, np.array([[2.0**13 + 1, 0.0]]))["bits"] == 33
