"""Trigger-set watermarking: embedding, verification (true and false positives), persistence,
robustness to fine-tuning, pruning and distillation."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from modelshield.errors import DataError, FormatError, OutputError  # noqa: E402
from modelshield.harden.watermark import (  # noqa: E402
    accuracy,
    distill,
    embed_watermark,
    fine_tune,
    make_trigger_set,
    prune_magnitude,
    train_classifier,
    watermark_robustness,
)
from modelshield.models.torch import TorchModel  # noqa: E402
from modelshield.theft.watermark import (  # noqa: E402
    TriggerSet,
    binomial_p_value,
    false_claim_rate,
    measured_chance,
    trigger_agreement,
    verify_watermark,
)


def _key(seed):
    import hashlib

    return hashlib.sha256(b"test watermark key %d" % seed).digest()


def _mlp(d, c, seed, hidden=64):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, c))


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr).astype(np.float32), sc.transform(Xte).astype(np.float32), ytr, yte


@pytest.fixture(scope="module")
def cancer_wm(breast_cancer):
    torch.set_num_threads(1)
    Xtr, _Xte, ytr, _yte = breast_cancer
    net = _mlp(30, 2, seed=0)
    from modelshield.protect.keys import generate_signing_key

    res = embed_watermark(net, Xtr, ytr, key=_key(0), signing_key=generate_signing_key(), n_triggers=100,
                          epochs=30, seed=0)
    return res


@pytest.fixture(scope="module")
def cancer_independents(breast_cancer):
    Xtr, _, ytr, _ = breast_cancer
    return [train_classifier(_mlp(30, 2, seed=100 + i), Xtr, ytr, epochs=30, seed=100 + i) for i in range(10)]


def test_trigger_labels_are_balanced_and_secret_seeded():
    ts = make_trigger_set(100, input_shape=(30,), n_classes=3, key=_key(1))
    assert np.bincount(ts.labels).tolist() == [34, 33, 33]
    assert ts.X.shape == (100, 30) and ts.X.min() >= -3 and ts.X.max() <= 3
    again = make_trigger_set(100, input_shape=(30,), n_classes=3, key=_key(1))
    np.testing.assert_array_equal(ts.labels, again.labels)
    other = make_trigger_set(100, input_shape=(30,), n_classes=3, key=_key(2))
    assert not np.array_equal(ts.labels, other.labels)


def test_embed_and_verify_owned(cancer_wm, breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    assert cancer_wm.trigger_accuracy == 1.0
    assert cancer_wm.commitment is not None  # the signed commitment comes with the embedding
    v = trigger_agreement(cancer_wm.module, cancer_wm.triggers)
    assert v.owned and v.p_value < 1e-3 and v.p_value < 1e-20
    assert v.chance == 0.5 and v.n == 100
    # the watermark costs little clean accuracy against a clean model trained the same way
    clean = train_classifier(_mlp(30, 2, seed=0), Xtr, ytr, epochs=30, seed=0)
    assert accuracy(cancer_wm.module, Xte, yte) >= accuracy(clean, Xte, yte) - 0.04
    # the adapter path (what the CLI and audit use) gives the same verdict
    assert trigger_agreement(TorchModel(cancer_wm.module), cancer_wm.triggers).p_value == v.p_value


def test_independent_models_are_not_claimed(cancer_wm, cancer_independents):
    ps = [trigger_agreement(m, cancer_wm.triggers).p_value for m in cancer_independents]
    assert sum(p > 0.01 for p in ps) >= 9
    assert false_claim_rate(cancer_independents, cancer_wm.triggers) == 0.0
    # the measured null never goes below the exact chance level
    assert measured_chance(cancer_independents, cancer_wm.triggers) >= 0.5


def test_ten_class_watermark_and_false_claims(digits):
    Xtr, Xte, ytr, yte = digits
    res = embed_watermark(_mlp(64, 10, seed=0), Xtr, ytr, key=_key(3), n_triggers=50, epochs=20, seed=3)
    v = trigger_agreement(res.module, res.triggers)
    assert v.p_value < 1e-30 and v.chance == pytest.approx(0.1)
    independents = [train_classifier(_mlp(64, 10, seed=50 + i), Xtr, ytr, epochs=10, seed=50 + i)
                    for i in range(10)]
    ps = [trigger_agreement(m, res.triggers).p_value for m in independents]
    assert sum(p > 0.01 for p in ps) >= 9
    assert accuracy(res.module, Xte, yte) > 0.93


def test_survives_fine_tuning_and_pruning(cancer_wm, breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    idx = np.random.default_rng(0).choice(len(Xtr), len(Xtr) // 10, replace=False)
    tuned = fine_tune(cancer_wm.module, Xtr[idx], ytr[idx], epochs=20, seed=1)
    pruned = prune_magnitude(cancer_wm.module, 0.3)
    zeros = sum(int((m.weight == 0).sum()) for m in pruned.modules() if isinstance(m, torch.nn.Linear))
    total = sum(m.weight.numel() for m in pruned.modules() if isinstance(m, torch.nn.Linear))
    assert zeros / total == pytest.approx(0.3, abs=0.01)
    for m in (tuned, pruned):
        v = trigger_agreement(m, cancer_wm.triggers)
        assert v.owned and v.agreement >= 0.9
        assert accuracy(m, Xte, yte) > 0.9
    # the original is untouched by the attacks (they work on copies)
    assert trigger_agreement(cancer_wm.module, cancer_wm.triggers).agreement == 1.0


def test_distillation_removes_most_of_the_watermark(cancer_wm, breast_cancer):
    """Documented limitation: a student trained on clean inputs does not learn the noise triggers."""
    Xtr, Xte, _ytr, yte = breast_cancer
    student = distill(cancer_wm.module, Xtr, epochs=30, seed=0)
    assert accuracy(student, Xte, yte) > 0.9
    assert trigger_agreement(student, cancer_wm.triggers).agreement < 0.8


def test_robustness_report(cancer_wm, breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    rob = watermark_robustness(cancer_wm.module, cancer_wm.triggers, Xtr, ytr, Xte, yte, n_independent=3,
                               epochs=20, seed=0)
    assert [r.attack for r in rob.rows] == ["none", "fine-tune-10%", "prune-30%", "distill"]
    assert rob.row("none").owned and rob.row("prune-30%").owned and rob.row("fine-tune-10%").owned
    assert rob.false_claim_rate == 0.0 and len(rob.independent_agreement) == 3
    assert {"attack", "p_value", "owned", "test_accuracy"} <= set(rob.to_table()[0])


def test_trigger_set_npz_round_trip(tmp_path, cancer_wm):
    p = cancer_wm.triggers.save(tmp_path / "t.npz")
    assert (p.stat().st_mode & 0o777) == 0o600  # a secret: owner-only
    back = TriggerSet.load(p)
    np.testing.assert_array_equal(back.X, cancer_wm.triggers.X)
    np.testing.assert_array_equal(back.labels, cancer_wm.triggers.labels)
    assert back.n_classes == 2 and back.seed is None
    with pytest.raises(OutputError, match="already exists"):
        cancer_wm.triggers.save(p)
    # no pickles: an object array inside the archive is refused
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros((2, 3)), labels=np.array([0, 1], dtype=object), header=np.array("{}"))
    with pytest.raises(FormatError):
        TriggerSet.load(bad)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatError):
        TriggerSet.load(tmp_path / "junk.npz")


def test_binomial_p_value_matches_scipy():
    from scipy.stats import binomtest

    for k, n, p0 in [(60, 100, 0.5), (10, 50, 0.1), (0, 20, 0.5)]:
        assert binomial_p_value(k, n, p0) == pytest.approx(binomtest(k, n, p0, alternative="greater").pvalue)


def test_bad_inputs_are_data_errors(cancer_wm, breast_cancer):
    Xtr, _, ytr, _ = breast_cancer
    with pytest.raises(DataError, match="class indices"):
        embed_watermark(_mlp(30, 3, 0), Xtr, ytr + 5, epochs=1)
    with pytest.raises(DataError, match="one label per input"):
        TriggerSet(X=np.zeros((3, 2)), labels=np.array([0, 1]), n_classes=2)
    with pytest.raises(DataError, match="32 bytes"):
        make_trigger_set(10, input_shape=(30,), n_classes=2, key=b"short")
    with pytest.raises(TypeError):  # a bare trigger set is no ownership proof: verify needs the commitment
        verify_watermark(cancer_wm.module, cancer_wm.triggers)  # type: ignore[misc]


def test_torchscript_models_can_be_attacked_and_reinitialised(cancer_wm, breast_cancer):
    from modelshield.harden.watermark import reinitialised

    Xtr, _, ytr, _ = breast_cancer
    scripted = torch.jit.script(cancer_wm.module)
    pruned = prune_magnitude(scripted, 0.3)
    weights = [p for n, p in pruned.named_parameters() if n.endswith("weight")]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(0.3, abs=0.01)
    assert trigger_agreement(pruned, cancer_wm.triggers).owned
    tuned = fine_tune(scripted, Xtr[:40], ytr[:40], epochs=5, seed=0)
    assert trigger_agreement(tuned, cancer_wm.triggers).owned
    fresh = reinitialised(scripted, seed=1)
    w0 = dict(scripted.named_parameters())["0.weight"]
    w1 = dict(fresh.named_parameters())["0.weight"]
    assert not torch.equal(w0, w1)
    # a fresh model does not carry the watermark
    assert not trigger_agreement(fresh, cancer_wm.triggers).owned


@pytest.mark.parametrize("n_classes", [2, 10])
def test_binomial_null_is_valid_over_trigger_draws(n_classes):
    """Type-I error: for a model that never saw the labels, p < alpha in at most ~alpha of draws."""
    from modelshield.models.callable import CallableModel

    w = np.random.default_rng(0).normal(size=(30, n_classes))
    # a fixed model that never saw the trigger labels (a linear scorer with a bias towards class 0)
    biased = CallableModel(lambda X: np.exp(X @ w + np.eye(n_classes)[0] * 3), classes=list(range(n_classes)),
                           n_features=30)
    ps = np.array([trigger_agreement(biased, make_trigger_set(60, input_shape=(30,), n_classes=n_classes,
                                                              key=_key(s))).p_value for s in range(400)])
    assert np.mean(ps < 0.05) <= 0.05 + 0.02
    assert np.mean(ps < 0.2) <= 0.2 + 0.04


def test_embed_respects_max_extra_epochs_exactly(breast_cancer):
    Xtr, _, ytr, _ = breast_cancer
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(30, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    res = embed_watermark(net, Xtr[:100], ytr[:100], n_triggers=50, epochs=8, lr=1e-5, max_extra_epochs=3)
    assert res.epochs == 11  # steps of 2 (8 // 4), the last one cut short: never past epochs + max_extra_epochs
    res = embed_watermark(net, Xtr[:100], ytr[:100], n_triggers=50, epochs=1, lr=1e-5, max_extra_epochs=0)
    assert res.epochs == 1


# --- the recipe behind 'harden watermark': load-free and write-free ------------------------------------------

def test_harden_watermark_recipe_verifies_the_bytes_it_returns(breast_cancer):
    import io

    from modelshield.data.dataset import Dataset
    from modelshield.harden.watermark import WatermarkConfig, harden_watermark
    from modelshield.protect.keys import generate_signing_key

    Xtr, _, ytr, _ = breast_cancer
    sk = generate_signing_key()
    model = TorchModel(torch.jit.script(train_classifier(_mlp(30, 2, seed=3), Xtr, ytr, epochs=10, seed=3)))
    cfg = WatermarkConfig(n_triggers=30, epochs=15, lr=1e-2, max_extra_epochs=30, seed=1)
    res = harden_watermark(model, Dataset(X=Xtr, y=ytr), signing_key=sk, key=_key(5), config=cfg)
    assert res.owned and res.key == _key(5) and res.model_format == "torchscript" and res.robustness is None
    assert res.extra_epochs == res.embed.epochs - 15 >= 0
    assert _key(5).hex() not in repr(res) and repr(_key(5)) not in repr(res)  # the secret key never shows
    # the returned bytes are what the commitment pins, and they verify independently
    import hashlib

    assert res.commitment.fields["model_sha256"] == hashlib.sha256(res.model_bytes).hexdigest()
    loaded = TorchModel(torch.jit.load(io.BytesIO(res.model_bytes)))
    v = verify_watermark(loaded, commitment=res.commitment, public_key=sk.public_key(), key=_key(5))
    assert v.owned and v.p_value == pytest.approx(res.verdict.p_value) and len(res.triggers) == 30


@pytest.mark.parametrize("bad", [{"n_triggers": 5}, {"epochs": 0}, {"lr": 0.0}, {"trigger_batch": 0},
                                 {"trigger_jitter": float("nan")}, {"alpha": 1.0}, {"max_extra_epochs": -1}])
def test_watermark_config_refuses_out_of_range_values(bad):
    from modelshield.errors import UserError
    from modelshield.harden.watermark import WatermarkConfig

    with pytest.raises(UserError) as exc:
        WatermarkConfig(**bad).validate()
    assert "--" not in str(exc.value) and exc.value.cli_hint and "--" in exc.value.cli_hint  # neutral + CLI hint
    WatermarkConfig().validate()  # the defaults are valid


def test_harden_watermark_needs_a_labelled_pytorch_model(breast_cancer):
    from sklearn.linear_model import LogisticRegression

    from modelshield.data.dataset import Dataset
    from modelshield.errors import UserError
    from modelshield.harden.watermark import harden_watermark
    from modelshield.models.wrap import wrap_object
    from modelshield.protect.keys import generate_signing_key

    Xtr, _, ytr, _ = breast_cancer
    sk = generate_signing_key()
    with pytest.raises(UserError, match="PyTorch"):
        harden_watermark(wrap_object(LogisticRegression().fit(Xtr, ytr)), Dataset(X=Xtr, y=ytr), signing_key=sk)
    with pytest.raises(DataError, match="labels"):
        harden_watermark(TorchModel(_mlp(30, 2, seed=0)), Dataset(X=Xtr), signing_key=sk)
