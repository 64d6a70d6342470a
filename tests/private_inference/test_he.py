"""Encrypted inference agrees with plaintext; the server never holds the secret key; tampering is refused."""

from __future__ import annotations

import numpy as np
import pytest

ts = pytest.importorskip("tenseal")

from modelshield.errors import IntegrityError, SecurityError  # noqa: E402
from modelshield.private_inference import _seal, evaluate_he, extract  # noqa: E402
from modelshield.private_inference.params import choose_params  # noqa: E402
from modelshield.protect.loader import load_model  # noqa: E402


def test_lr_pipeline_batched_agrees(raw_cancer):
    pipe, Xtr, Xte, _, yte = raw_cancer
    net = extract(load_model(pipe))
    r = evaluate_he(net, Xte[:60], yte[:60], fit_rows=Xtr)
    assert r["agreement"] == 1.0 and r["agreement_with_original_model"] == 1.0
    assert r["accuracy"] == r["plaintext_accuracy"] > 0.9
    assert r["max_logit_error"] < 0.05
    assert r["parameters"]["security_bits"] == 128 and r["parameters"]["poly_modulus_degree"] == 4096


def test_square_mlp_batched_agrees(sq_mlp, breast_cancer):
    Xtr, Xte, _, yte = breast_cancer
    net = extract(load_model(sq_mlp))
    r = evaluate_he(net, Xte[:80], yte[:80], fit_rows=Xtr)
    assert r["agreement"] == 1.0 and r["accuracy"] == r["plaintext_accuracy"]
    assert r["max_logit_error"] < 0.05
    assert r["parameters"]["depth"] == 3 and r["parameters"]["total_bits"] <= 218


def test_relu_mlp_polynomial_costs_reported(torch_mlp, breast_cancer):
    Xtr, Xte, _, yte = breast_cancer
    net = extract(load_model(torch_mlp))
    r = evaluate_he(net, Xte[:40], yte[:40], fit_rows=Xtr)
    # the encryption reproduces the polynomial network exactly (argmax); the polynomial's own cost is reported
    assert r["agreement"] == 1.0
    assert 0.0 <= r["agreement_with_original_model"] <= 1.0
    assert r["activations"][0]["activation"] == "relu" and r["activations"][0]["max_abs_error"] > 0


def test_server_context_has_no_secret_key():
    p = choose_params(1, 10.0)
    client = _seal.Client.create(p)
    blob = client.public_context_bytes()
    received = ts.context_from(blob)
    assert not received.has_secret_key() and not received.is_private()
    ev = _seal.Evaluator(blob)
    assert not ev.ctx.has_secret_key()
    # the client still decrypts what the server computed (it keeps the key, the server never had it)
    x = np.linspace(-2, 2, 16)
    ct = ev.load(client.encrypt_bytes(x))
    y = ev.rescale(ev.mul_scalar(ct, 3.0, ev.q_next(ct)))
    assert np.allclose(client.decrypt(client.load(ev.dump(y)), 16), 3 * x, atol=1e-3)
    # and the server refuses a context that carries a secret key (fail closed)
    private = ts.context(ts.SCHEME_TYPE.CKKS, p.poly_modulus_degree, coeff_mod_bit_sizes=list(p.coeff_mod_bit_sizes))
    with pytest.raises(SecurityError, match="secret key"):
        _seal.Evaluator(private.serialize(save_secret_key=True))


@pytest.mark.parametrize("where", ["request", "response"])
def test_tampered_ciphertext_refused(raw_cancer, where):
    from dataclasses import replace

    pipe, Xtr, Xte, _, yte = raw_cancer
    net = extract(load_model(pipe))

    def flip(msg):
        if msg.kind != where:
            return msg
        b = bytearray(msg.parts[-1])
        b[len(b) // 3] ^= 0x10
        return replace(msg, parts=(*msg.parts[:-1], bytes(b)))

    with pytest.raises(IntegrityError) as e:
        evaluate_he(net, Xte[:10], yte[:10], fit_rows=Xtr, transit=flip)
    assert e.value.exit_code == 3


@pytest.mark.slow
def test_square_mlp_per_sample_agrees(sq_mlp, breast_cancer):
    Xtr, Xte, _, yte = breast_cancer
    net = extract(load_model(sq_mlp))
    r = evaluate_he(net, Xte[:5], yte[:5], fit_rows=Xtr, mode="per-sample")
    assert r["agreement"] == 1.0 and r["max_logit_error"] < 0.1


@pytest.mark.parametrize("layout", ["packed", pytest.param("per-feature", marks=pytest.mark.slow)])
def test_layouts_agree(sq_mlp, breast_cancer, layout):
    from modelshield.private_inference import fit_activations
    from modelshield.private_inference.approx import approx_forward
    from modelshield.private_inference.he import batched_depth, run_batched, value_bound

    Xtr, Xte, _, _ = breast_cancer
    net = extract(load_model(sq_mlp))
    polys = fit_activations(net, Xtr)
    p = choose_params(batched_depth(net, polys), value_bound(net, polys, Xtr))
    X = np.asarray(Xte[:50], dtype=np.float64)
    r = run_batched(net, polys, X, p, layout=layout)
    ref = approx_forward(net, polys, X)
    assert r.extra["layout"] == layout
    assert np.array_equal(r.logits.argmax(1), ref.argmax(1)) and np.max(np.abs(r.logits - ref)) < 0.05


def test_packed_blocks_are_masked(sq_mlp, breast_cancer):
    """The client sees per-unit blocks only masked: each block is far from the unit's contribution, the
    blocks' sum is the logit."""
    from modelshield.private_inference import fit_activations
    from modelshield.private_inference.channel import open_sealed
    from modelshield.private_inference.he import HEClient, HEServer, batched_depth, value_bound
    from modelshield.private_inference.params import widen_last_prime

    Xtr, Xte, _, _ = breast_cancer
    net = extract(load_model(sq_mlp))
    polys = fit_activations(net, Xtr)
    p = widen_last_prime(choose_params(batched_depth(net, polys), value_bound(net, polys, Xtr)))
    assert p.coeff_mod_bit_sizes[0] == 60 and p.total_bits <= 218
    X = np.asarray(Xte[:20], dtype=np.float64)
    h = net.dense[0].shape[1]
    client, server = HEClient(p), HEServer(net, polys)
    resp = server.evaluate_packed(client.public_context(), client.session_key, client.request_packed(X, h), len(X),
                                  np.random.default_rng(1))
    part = open_sealed(client.session_key, resp, kind="response", seq=1)[0]
    blocks = client._c.decrypt(client._c.load(part), len(X) * h).reshape(h, len(X))
    d1, _, d2 = net.layers
    contrib = ((X @ d1.W + d1.b) ** 2 * d2.W[:, 0]).T  # (h, n): what each unit adds to logit 0
    contrib[0] += d2.b[0]
    assert np.allclose(blocks.sum(0), contrib.sum(0), atol=0.05)
    assert np.median(np.abs(blocks - contrib)) > 1000 * np.max(np.abs(contrib))
