from __future__ import annotations

import socket

import numpy as np
import pytest

pytest.importorskip("mpyc")

from modelshield.errors import UserError
from modelshield.private_inference import extract
from modelshield.private_inference.mpc import evaluate_mpc
from modelshield.protect.loader import load_model


def test_lr_three_parties_equals_plaintext(raw_cancer):
    pipe, _, Xte, _, yte = raw_cancer
    net = extract(load_model(pipe))
    r = evaluate_mpc(net, Xte[:30], yte[:30], parties=3)
    assert r["agreement"] == 1.0 and r["accuracy"] == r["plaintext_accuracy"]
    assert len(r["bytes_sent"]) == 3 and all(b > 0 for b in r["bytes_sent"]) and r["rounds"] > 0
    assert r["threshold"] == 1


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
