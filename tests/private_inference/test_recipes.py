"""private_inference.recipes without the CLI: reading a model and rows, session keys, addresses, the
transit hook, the loopback service's refusals, and the text renderings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelshield.errors import DataError, InputNotFoundError, UserError
from modelshield.private_inference.channel import Sealed
from modelshield.private_inference.recipes import (
    check_degree,
    describe_he,
    describe_mpc,
    describe_plan,
    parse_address,
    prepare,
    read_rows,
    read_session_key,
    serve_model,
    tamper_in_transit,
)
from modelshield.private_inference.transport import MIN_KEY_BYTES
from modelshield.protect.loader import load_model


@pytest.fixture(scope="module")
def lr(raw_cancer):
    pipe, _, Xte, _, yte = raw_cancer
    return load_model(pipe), Xte[:25], yte[:25]


@pytest.fixture
def table(tmp_path, lr):
    _, X, y = lr
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    df["label"] = y
    p = tmp_path / "rows.csv"
    df.to_csv(p, index=False)
    return p


@pytest.mark.parametrize("degree", [None, 1, 2, 3, 4])
def test_degrees_in_range_pass(degree):
    check_degree(degree)


@pytest.mark.parametrize("degree", [0, 5, -1])
def test_degrees_out_of_range_name_the_flag_in_the_hint_only(degree):
    with pytest.raises(UserError) as exc:
        check_degree(degree)
    assert str(degree) in str(exc.value) and "--" not in str(exc.value) and exc.value.cli_hint == "--degree"


def test_prepare_reads_the_chain_and_the_first_rows(lr, table):
    m, X, y = lr
    p = prepare(m, None, table, target="label", max_samples=10)
    assert p.X.shape == (10, 30) and np.allclose(p.X, X[:10]) and list(p.y) == list(y[:10])
    assert p.net.n_inputs == 30
    bare = prepare(m)
    assert bare.X is None and bare.y is None and bare.net.n_inputs == 30


def test_prepare_refuses_no_rows_and_unnamed_labels(lr, table):
    m, _, _ = lr
    with pytest.raises(UserError) as exc:
        prepare(m, None, table, target="label", max_samples=0)
    assert exc.value.cli_hint == "--max-samples" and "--" not in str(exc.value)
    with pytest.raises(DataError) as exc:
        prepare(m, None, table)  # the label column counted as a feature: 31 columns
    assert "31 features" in str(exc.value) and "--target" in exc.value.cli_hint and "--" not in str(exc.value)


def test_read_rows_refuses_missing_cells(lr, tmp_path):
    m, X, _ = lr
    net = prepare(m).net
    df = pd.DataFrame(X[:3], columns=[f"f{i}" for i in range(30)])
    df.iloc[1, 4] = np.nan
    df.to_csv(tmp_path / "gap.csv", index=False)
    with pytest.raises(DataError, match="missing or infinite"):
        read_rows(net, tmp_path / "gap.csv")


def test_tamper_flips_one_byte_of_a_request_only():
    req = Sealed("request", 0, (b"\x00" * 8, b"rest"), b"tag")
    out = tamper_in_transit(req)
    assert out.parts[1] == b"rest" and out.tag == b"tag"
    diff = [i for i, (a, b) in enumerate(zip(out.parts[0], req.parts[0])) if a != b]
    assert diff == [4] and out.parts[0][4] == 1
    other = Sealed("context", 0, (b"abc",), b"t")
    assert tamper_in_transit(other) is other
    assert tamper_in_transit(Sealed("request", 0, (), b"t")).parts == ()


def test_session_key_file(tmp_path):
    with pytest.raises(InputNotFoundError) as exc:
        read_session_key(tmp_path / "none")
    assert exc.value.cli_hint == "--session-key-file"
    (tmp_path / "short").write_bytes(b"x" * (MIN_KEY_BYTES - 1))
    with pytest.raises(UserError, match=f"{MIN_KEY_BYTES} bytes"):
        read_session_key(tmp_path / "short")
    (tmp_path / "ok").write_bytes(b"y" * MIN_KEY_BYTES)
    assert read_session_key(tmp_path / "ok") == b"y" * MIN_KEY_BYTES


@pytest.mark.parametrize(("text", "want"), [("127.0.0.1:8443", ("127.0.0.1", 8443)), ("::1:9", ("::1", 9)),
                                            ("host:0", ("host", 0))])
def test_parse_address(text, want):
    assert parse_address(text) == want


@pytest.mark.parametrize("text", ["8443", ":8443", "host:", "host:x1", "host:-1"])
def test_parse_address_refuses(text):
    with pytest.raises(UserError) as exc:
        parse_address(text)
    assert "HOST:PORT" in str(exc.value) and exc.value.cli_hint == "--server"


def test_serve_model_needs_rows_for_non_polynomial_activations(breast_cancer):
    from sklearn.neural_network import MLPClassifier

    Xtr, _, ytr, _ = breast_cancer
    mlp = MLPClassifier((4,), activation="tanh", max_iter=50, random_state=0).fit(Xtr, ytr)
    net = prepare(load_model(mlp)).net
    with pytest.raises(UserError) as exc:  # refused before any port is bound (port 1 would need root)
        serve_model(net, b"k" * 32, 1)
    assert "non-polynomial" in str(exc.value) and exc.value.cli_hint == "pass --data"
    with pytest.raises(UserError) as exc:
        serve_model(net, b"k" * 32, 1, rows=Xtr[:5], degree=7)
    assert exc.value.cli_hint == "--degree"


def test_describe_runs():
    base = {"samples": 4, "agreement": 1.0, "ms_per_sample": 2.5}
    he = describe_he({**base, "mode": "batched", "accuracy": 0.75, "plaintext_accuracy": 0.5,
                      "max_logit_error": 1e-4, "parameters": {"poly_modulus_degree": 8192,
                                                              "coeff_mod_bit_sizes": [60, 40, 60], "scale": 2 ** 40}})
    assert he.startswith("HE batched: 4 rows, accuracy 0.7500 (plaintext 0.5000), argmax agreement 1.0000")
    assert "N=8192 coeff [60, 40, 60]" in he and "2.5 ms/sample" in he
    mpc = describe_mpc({**base, "parties": 3, "threshold": 1, "accuracy": None, "plaintext_accuracy": None,
                        "bytes_sent": [1, 2, 3]})
    assert mpc == ("MPC 3 parties: 4 rows, accuracy n/a, agreement 1.0000, 2.5 ms/sample, "
                   "bytes sent per party [1, 2, 3]; threshold: 1, inputs hidden from any single party "
                   "(semi-honest parties, honest majority)")
    two = describe_mpc({**base, "parties": 2, "threshold": 0, "accuracy": None, "plaintext_accuracy": None,
                        "bytes_sent": [1, 2], "peak_rss_bytes": [3 * 2**20, 2**21]})
    assert two.endswith("[1, 2], peak RSS per party [3.0, 2.0] MiB; threshold: 0, inputs NOT hidden: each share "
                        "is the secret itself (a functional run only)")


def test_describe_plan_mpc_and_he(lr, table):
    from modelshield.private_inference import plan

    p = prepare(lr[0], None, table, target="label")
    mpc = describe_plan(plan(p.net, "mpc", p.X, p.y, parties=3))
    assert mpc[0].startswith("private inference plan (mpc):") and mpc[0].endswith("30 inputs -> 1 outputs: feasible")
    assert mpc[-1].startswith("  expected: ") and "(3 parties)" in mpc[-1]
    assert mpc[-2] == "  threshold: 1, inputs hidden from any single party (semi-honest parties, honest majority)"
    he = describe_plan(plan(p.net, "he", p.X, p.y))
    assert any(line.startswith("  batched: depth ") for line in he)
    assert any(line.startswith("  per_sample: depth ") for line in he)
    assert he[-1].startswith("  expected: batched ") and "per-sample" in he[-1]
    assert any("polynomials vs model" in line for line in he)
