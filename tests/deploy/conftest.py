"""Fixtures for the deployment tests: a plain, an encrypted and a signed ONNX model, built on the fly."""

from __future__ import annotations

import secrets

import numpy as np
import pytest


def onnx_model(seed: int) -> bytes:
    """A small ONNX classifier (MatMul, Add, Softmax) with weights drawn from ``seed``."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("MatMul", ["X", "W"], ["z"]), helper.make_node("Add", ["z", "b"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    graph = helper.make_graph(
        nodes, "clf", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(rng.normal(size=(3, 2)).astype(np.float32), "W"),
         numpy_helper.from_array(np.zeros(2, np.float32), "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """``plain``: model.onnx; ``encrypted``: model.onnx.enc (key in ``key_hex``); ``signed``: signed.onnx
    with signed.onnx.sig and owner.pub (owner.key, the private key, lies beside them)."""
    from modelshield.protect.crypto import encrypt_file
    from modelshield.protect.keys import load_private_key, write_signing_keypair
    from modelshield.protect.signing import sign

    d = tmp_path_factory.mktemp("deploy-models")
    (d / "model.onnx").write_bytes(onnx_model(0))
    key = secrets.token_bytes(32)
    encrypt_file(d / "model.onnx", d / "model.onnx.enc", key=key)
    (d / "signed.onnx").write_bytes(onnx_model(1))
    write_signing_keypair(d / "owner.key", d / "owner.pub")
    sign(d / "signed.onnx", load_private_key(d / "owner.key"))
    return {"dir": d, "plain": d / "model.onnx", "encrypted": d / "model.onnx.enc", "key_hex": key.hex(),
            "signed": d / "signed.onnx", "signature": d / "signed.onnx.sig", "public_key": d / "owner.pub",
            "private_key": d / "owner.key"}
