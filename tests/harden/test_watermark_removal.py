"""Issue 22 B.2: the strong embedding (more triggers, larger trigger share, jittered triggers) survives
the fine-tuning settings that remove the default embedding (see benchmarks/theft/README.md)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from modelshield.harden.watermark import accuracy, embed_watermark, fine_tune  # noqa: E402
from modelshield.theft.watermark import trigger_agreement  # noqa: E402


def _mlp(seed: int):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(30, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))


@pytest.fixture(scope="module")
def embeddings(breast_cancer):
    torch.set_num_threads(1)
    Xtr, _, ytr, _ = breast_cancer
    key = hashlib.sha256(b"removal test").digest()
    default = embed_watermark(_mlp(0), Xtr, ytr, key=key, n_triggers=100, epochs=30, seed=0)
    strong = embed_watermark(_mlp(0), Xtr, ytr, key=key, n_triggers=200, trigger_batch=64, trigger_jitter=0.5,
                             epochs=60, seed=0)
    return default, strong


@pytest.mark.slow
@pytest.mark.parametrize("batch", [16, 64])
@pytest.mark.parametrize("frac_seed", [0, 1])
def test_strong_embedding_survives_aggressive_fine_tuning(embeddings, breast_cancer, batch, frac_seed):
    Xtr, Xte, ytr, yte = breast_cancer
    default, strong = embeddings
    idx = np.random.default_rng(frac_seed).choice(len(Xtr), len(Xtr) // 2, replace=False)
    agree = {}
    for name, res in (("default", default), ("strong", strong)):
        tuned = fine_tune(res.module, Xtr[idx], ytr[idx], epochs=20, lr=1e-2, batch_size=batch, seed=frac_seed)
        v = trigger_agreement(tuned, res.triggers, alpha=1e-6)
        agree[name] = v.agreement
        if name == "strong":
            assert v.owned, v
            assert accuracy(tuned, Xte, yte) > 0.9
    assert agree["strong"] > agree["default"], agree
