"""Registries generated on the fly: small scikit-learn models, a data set, a registry.yaml, planted faults."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest


class _Evil:
    """Pickles to a call of os.system: the scanner must flag it and the loader refuse it (never loaded)."""

    def __reduce__(self):
        return (os.system, ("echo planted",))


def make_registry(root: Path, n: int = 3, *, seed: int = 0, faults: tuple[str, ...] = ()) -> Path:
    """``n`` models under ``root/teamK/`` sharing a hold-out set (``registry.yaml`` defaults), plus the planted
    ``faults``: ``garbage`` (random bytes named .pkl), ``malicious`` (a pickle calling os.system),
    ``weak`` (a constant model: fails an accuracy limit)."""
    import joblib
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    root.mkdir(parents=True, exist_ok=True)
    X, y = make_classification(240, 5, n_informative=4, n_redundant=0, random_state=seed)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    df["label"] = y
    df[120:].to_csv(root / "holdout.csv", index=False)
    df[:120].to_csv(root / "train.csv", index=False)
    (root / "registry.yaml").write_text("defaults: {data: holdout.csv, train: train.csv, target: label}\n")
    for i in range(n):
        sub = root / f"team{i % 2}"
        sub.mkdir(exist_ok=True)
        model = (LogisticRegression(C=0.5 + i) if i % 2 == 0 else
                 DecisionTreeClassifier(max_depth=2 + i, random_state=i)).fit(X[:120], y[:120])
        joblib.dump(model, sub / f"model{i:02d}.joblib")
    if "garbage" in faults:
        (root / "broken").mkdir(exist_ok=True)
        (root / "broken" / "garbage.pkl").write_bytes(np.random.default_rng(seed).bytes(256))
    if "malicious" in faults:
        (root / "broken").mkdir(exist_ok=True)
        (root / "broken" / "evil.pkl").write_bytes(pickle.dumps(_Evil()))
    if "weak" in faults:
        joblib.dump(DummyClassifier(strategy="constant", constant=0).fit(X[:120], y[:120]), root / "weak.joblib")
    return root


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return make_registry(tmp_path / "reg", 3)
