"""Planted poisoning scenarios, generated on the fly: BadNets-style pixel trigger on digits, a rare
value combination on breast_cancer, and clean controls trained the same way."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split

from modelshield.models.torch import TorchModel
from modelshield.poisoning import _torch as T
from modelshield.poisoning.planted import Trigger, plant_trigger


@dataclass
class Scenario:
    name: str
    Xtr: np.ndarray
    ytr: np.ndarray
    Xte: np.ndarray
    yte: np.ndarray
    trigger: Trigger
    poisoned_rows: np.ndarray  # empty for a clean control
    model: TorchModel

    @property
    def attack_success(self) -> float:
        keep = self.yte != self.trigger.target
        return float(np.mean(self.model.predict(self.trigger.apply(self.Xte[keep])) == self.trigger.target))

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.model.predict(self.Xte) == self.yte))


def base_data(name: str, seed: int):
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        trig = Trigger.pixel_patch((8, 8), size=2, value=1.0, target=0)
    else:
        X, y = load_breast_cancer(return_X_y=True)
        X = (X - X.mean(0)) / X.std(0)
        trig = Trigger(features=(3, 17), values=(4.0, -3.0), target=1)  # a value combination no real row has
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    return Xtr, Xte, ytr, yte, trig


def build(name: str, seed: int, poisoned: bool, fraction: float = 0.1, trigger: Trigger | None = None) -> Scenario:
    Xtr, Xte, ytr, yte, trig = base_data(name, seed)
    trig = trigger or trig
    rows = np.empty(0, dtype=np.int64)
    if poisoned:
        pl = plant_trigger(Xtr, ytr, trig, fraction=fraction, seed=seed)
        Xtr, ytr, rows = pl.X, pl.y, pl.rows
    K = len(np.unique(ytr))
    module = T.train(T.make_mlp(Xtr.shape[1], K, seed=seed), Xtr, ytr, epochs=40, lr=3e-3, seed=seed)
    return Scenario(name=name, Xtr=Xtr, ytr=ytr, Xte=Xte, yte=yte, trigger=trig, poisoned_rows=rows,
                    model=TorchModel(module))


_CACHE: dict[tuple, Scenario] = {}


def scenario(name: str, seed: int, poisoned: bool) -> Scenario:
    key = (name, seed, poisoned)
    if key not in _CACHE:
        _CACHE[key] = build(name, seed, poisoned)
    return _CACHE[key]


@pytest.fixture(scope="session")
def get_scenario():
    return scenario


@pytest.fixture(scope="session")
def build_scenario():
    """``build`` itself (uncached): scenarios with another poisoned fraction or trigger."""
    return build
