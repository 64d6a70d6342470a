"""Each adapter against a real model of its framework."""

from __future__ import annotations

import http.server
import json
import threading

import numpy as np
import pytest

from modelshield.errors import DataError, UserError
from modelshield.models.base import Capability
from modelshield.models.callable import CallableModel
from modelshield.models.onnx import OnnxModel
from modelshield.models.remote import RemoteModel
from modelshield.models.sklearn import SklearnModel
from modelshield.models.torch import TorchModel
from modelshield.models.wrap import wrap_object
from modelshield.protect.loader import load_model


def test_sklearn_estimator(breast_cancer, sk_logreg):
    _, Xte, _, yte = breast_cancer
    m = load_model(sk_logreg)
    assert isinstance(m, SklearnModel) and m.framework == "sklearn"
    assert m.input_spec.shape == (30,)
    np.testing.assert_allclose(m.predict_proba(Xte), sk_logreg.predict_proba(Xte))
    np.testing.assert_array_equal(m.predict(Xte), sk_logreg.predict(Xte))
    assert (m.predict(Xte) == yte).mean() > 0.9
    assert Capability.PROBABILITIES in m.capabilities and not m.differentiable
    assert m.clone_unfitted() is not sk_logreg


def test_sklearn_pipeline_with_dataframe_names(breast_cancer):
    import pandas as pd
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    Xtr, Xte, ytr, _ = breast_cancer
    cols = [f"f{i}" for i in range(30)]
    pipe = make_pipeline(StandardScaler(), LinearSVC()).fit(pd.DataFrame(Xtr, columns=cols), ytr)
    m = load_model(pipe)
    assert m.input_spec.feature_names == tuple(cols)
    proba = m.predict_proba(Xte)  # decision_function -> softmax, no predict_proba on LinearSVC
    assert proba.shape == (len(Xte), 2) and np.allclose(proba.sum(1), 1)
    assert Capability.PROBABILITIES not in m.capabilities


def test_sklearn_regressor():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    m = wrap_object(Ridge().fit(X, y))
    assert m.task == "regression"
    np.testing.assert_allclose(m.predict(X[:5]), Ridge().fit(X, y).predict(X[:5]))


def test_torch_module_and_gradient(breast_cancer, torch_mlp):
    import torch

    _, Xte, _, yte = breast_cancer
    m = load_model(torch_mlp)
    assert isinstance(m, TorchModel) and m.differentiable and m.input_spec.shape == (30,)
    assert m.classes.tolist() == [0, 1]
    with torch.no_grad():
        ref = torch.softmax(torch_mlp(torch.as_tensor(Xte)), 1).numpy()
    np.testing.assert_allclose(m.predict_proba(Xte), ref, rtol=1e-5)
    assert (m.predict(Xte) == yte).mean() > 0.9
    g = m.gradient(Xte[:4], yte[:4])
    assert g.shape == (4, 30) and np.abs(g).sum() > 0
    # the gradient points uphill: a small step along it increases the loss
    def loss(X):
        return torch.nn.functional.cross_entropy(torch_mlp(torch.as_tensor(X)), torch.as_tensor(yte[:4]))
    assert loss(Xte[:4] + 0.01 * np.sign(g)).item() > loss(Xte[:4]).item()


def test_torchscript_file(tmp_path, breast_cancer, torch_mlp):
    import torch

    _, Xte, _, _ = breast_cancer
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(torch_mlp), str(path))
    m = load_model(path)
    assert m.format == "torchscript" and m.differentiable
    np.testing.assert_allclose(m.predict_proba(Xte), load_model(torch_mlp).predict_proba(Xte), rtol=1e-5)


def test_torch_conv_needs_input_shape():
    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(2 * 6 * 6, 10))
    m = TorchModel(net, input_shape=(1, 8, 8))
    assert m.predict_proba(np.zeros((3, 64), dtype=np.float32)).shape == (3, 10)  # flat rows are reshaped
    with pytest.raises(DataError):
        m.predict_proba(np.zeros((3, 10)))


def test_onnx_from_sklearn_with_zipmap(tmp_path, breast_cancer, sk_logreg):
    from skl2onnx import to_onnx

    _, Xte, _, _ = breast_cancer
    onx = to_onnx(sk_logreg, Xte[:1].astype(np.float32))
    path = tmp_path / "m.onnx"
    path.write_bytes(onx.SerializeToString())
    m = load_model(path)
    assert isinstance(m, OnnxModel) and m.classes.tolist() == [0, 1]
    np.testing.assert_allclose(m.predict_proba(Xte), sk_logreg.predict_proba(Xte), atol=1e-5)


def test_onnx_from_torch_logits(tmp_path, breast_cancer, torch_mlp):
    import torch

    _, Xte, _, _ = breast_cancer
    path = tmp_path / "net.onnx"
    torch.onnx.export(torch_mlp, (torch.zeros(1, 30),), str(path), input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "n"}}, dynamo=False)
    m = load_model(path)
    np.testing.assert_allclose(m.predict_proba(Xte), load_model(torch_mlp).predict_proba(Xte), atol=1e-5)


class _Handler(http.server.BaseHTTPRequestHandler):
    model = None

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("Authorization") != "Bearer k":
            self.send_response(401)
            self.end_headers()
            return
        X = np.asarray(body["inputs"], dtype=np.float32)
        out = {"probabilities": self.model.predict_proba(X).tolist(), "classes": [0, 1]}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@pytest.fixture
def http_model(sk_logreg):
    _Handler.model = sk_logreg
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/predict"
    srv.shutdown()


def test_remote_model_over_real_http(http_model, breast_cancer, sk_logreg):
    _, Xte, _, _ = breast_cancer
    m = load_model(http_model, headers={"Authorization": "Bearer k"}, input_shape=(30,))
    assert isinstance(m, RemoteModel) and Capability.QUERY_ONLY in m.capabilities
    np.testing.assert_allclose(m.predict_proba(Xte), sk_logreg.predict_proba(Xte), atol=1e-6)
    assert m.classes.tolist() == [0, 1]
    assert m.query_count == len(Xte)
    bad = load_model(http_model, input_shape=(30,), classes=[0, 1])
    with pytest.raises(UserError, match="HTTP 401"):
        bad.predict_proba(Xte[:2])


def test_remote_model_label_only_transport():
    def transport(url, body, headers):
        X = np.asarray(json.loads(body)["inputs"])
        return json.dumps({"predictions": (X[:, 0] > 0).astype(int).tolist()}).encode()

    m = RemoteModel("http://model.invalid/p", classes=[0, 1], transport=transport)
    assert m.predict(np.array([[1.0], [-1.0]])).tolist() == [1, 0]
    assert Capability.PROBABILITIES not in m.capabilities


def test_callable_model_and_label_index():
    m = CallableModel(lambda X: np.c_[1 - X[:, 0], X[:, 0]], classes=["no", "yes"], n_features=1)
    assert m.predict(np.array([[0.2], [0.9]])).tolist() == ["no", "yes"]
    assert m.label_index(np.array(["yes", "no"])).tolist() == [1, 0]
    with pytest.raises(DataError, match="maybe"):
        m.label_index(np.array(["maybe"]))


def test_torchscript_infers_width_and_classes(torch_mlp):
    import torch

    m = TorchModel(torch.jit.script(torch_mlp))
    assert m.input_spec.shape == (30,) and m.classes.tolist() == [0, 1]


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_joblib_files_load_whatever_the_compression(tmp_path, breast_cancer, sk_logreg, compress):
    import joblib

    from modelshield.formats import detect_file_format as detect_format

    _, Xte, _, _ = breast_cancer
    path = tmp_path / "m.joblib"
    joblib.dump(sk_logreg, path, compress=compress)
    assert detect_format(path) == ("pickle" if compress == 0 else "joblib-compressed")
    np.testing.assert_allclose(load_model(path).predict_proba(Xte), sk_logreg.predict_proba(Xte))
