"""Fixtures for the ML-BOM tests: a small ONNX model and a CSV data set written on the fly, a real
(in-process, two-check) audit report of them, a signing key pair and the offline CycloneDX 1.6 validator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SCHEMAS = Path(__file__).parent / "schemas"


@pytest.fixture(scope="session")
def cdx_validator():
    """A Draft-7 validator of the official CycloneDX 1.6 JSON schema (1.6.2 release), with its two
    referenced schemas served from the vendored copies: nothing is ever fetched (a lookup of any other
    URI raises)."""
    import jsonschema
    import referencing
    import referencing.exceptions

    docs = {n: json.loads((SCHEMAS / n).read_text(encoding="utf-8"))
            for n in ("bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json")}

    def no_network(uri: str):
        raise referencing.exceptions.NoSuchResource(uri)

    registry = referencing.Registry(retrieve=no_network).with_resources(
        (f"http://cyclonedx.org/schema/{n}", referencing.Resource.from_contents(d)) for n, d in docs.items())
    schema = docs["bom-1.6.schema.json"]
    return jsonschema.Draft7Validator(schema, registry=registry,
                                      format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def onnx_logreg(weights: np.ndarray, bias: np.ndarray) -> bytes:
    """A logistic-regression classifier as an ONNX graph (MatMul, Add, Softmax; opset 13)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("MatMul", ["X", "W"], ["z"]), helper.make_node("Add", ["z", "b"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    graph = helper.make_graph(
        nodes, "logreg", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, weights.shape[0]])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, weights.shape[1]])],
        [numpy_helper.from_array(weights.astype(np.float32), "W"), numpy_helper.from_array(bias.astype(np.float32), "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    """model.onnx (a logistic regression on 4 features), data.csv (label y = a + b > 0, a sensitive
    column 'sex'), other.onnx (another model), a signing key pair."""
    import pandas as pd

    from modelshield.protect.keys import write_signing_keypair

    d = tmp_path_factory.mktemp("bom")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 4)).astype(np.float32)
    w = np.array([[-2.0, 2.0], [-2.0, 2.0], [0.0, 0.0], [0.0, 0.0]])
    (d / "model.onnx").write_bytes(onnx_logreg(w, np.zeros(2)))
    (d / "other.onnx").write_bytes(onnx_logreg(-w, np.zeros(2)))
    df = pd.DataFrame(X, columns=list("abcd"))
    df["sex"] = rng.integers(0, 2, len(df))
    df["y"] = (X[:, 0] + X[:, 1] > 0).astype(int)
    df.to_csv(d / "data.csv", index=False)
    write_signing_keypair(d / "owner.key", d / "owner.pub")
    return d


@pytest.fixture(scope="session")
def report(files):
    """A real audit report (the artifact check; the data set described) of model.onnx on data.csv, written as JSON."""
    import modelshield as ms
    from modelshield.data.loaders import load_dataset

    model = ms.load_model(files / "model.onnx")
    data = load_dataset(files / "data.csv", target="y", sensitive=["sex"])
    rep = ms.audit(model, data, checks=["artifact"], model_path=files / "model.onnx", quick=True)
    path = files / "report.json"
    path.write_text(json.dumps(rep.to_dict(), default=str), encoding="utf-8")
    return path
