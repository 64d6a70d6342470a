"""Generated models for the proof tests: small torch MLPs trained on scikit-learn's digits, exported to
ONNX opset 13 here (nothing is downloaded or committed; keys are made in a temp folder)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest


def train_mlp(X: np.ndarray, y: np.ndarray, hidden: int, seed: int, steps: int = 120):
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt), yt).backward()
        opt.step()
    return net.eval()


def export_onnx(net, width: int, path: Path) -> Path:
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(net, torch.zeros(1, width), str(path), opset_version=13, input_names=["x"],
                          output_names=["logits"], dynamo=False)
    return path


@pytest.fixture(scope="session")
def onnx_mlp():
    """``make(X, y, hidden, seed, path, steps=120) -> (net, path)``: train an MLP and export it to ONNX."""

    def make(X, y, hidden, seed, path, steps=120):
        net = train_mlp(X, y, hidden, seed, steps)
        return net, export_onnx(net, X.shape[1], path)

    return make


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="session")
def zk_models(tmp_path_factory, digits):
    """Two 64-8-10 MLPs (different seeds, so different weights), their ONNX files and calibration data."""
    X, y = digits
    d = tmp_path_factory.mktemp("zk-models")
    nets = {name: train_mlp(X[:1000], y[:1000], 8, seed) for name, seed in (("a", 0), ("b", 1))}
    for name, net in nets.items():
        export_onnx(net, 64, d / f"{name}.onnx")
    np.savez(d / "calib.npz", X=X[1000:1064], y=y[1000:1064])
    return {"dir": d, "nets": nets, "X": X, "y": y}
