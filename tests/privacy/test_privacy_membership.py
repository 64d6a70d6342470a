"""Membership inference: metrics, attacks against a leaky and a blind model, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from modelshield.errors import DataError
from modelshield.models.callable import CallableModel
from modelshield.models.wrap import wrap_object
from modelshield.privacy.membership import (
    TrainingRecipe,
    find_overlap,
    membership_inference,
    roc_metrics,
)


def test_roc_metrics_perfect_reversed_and_random():
    labels = np.r_[np.ones(500), np.zeros(500)]
    perfect = roc_metrics(np.r_[np.arange(500) + 1000.0, np.arange(500)], labels)
    assert perfect.auc == 1.0 and perfect.tpr_at_1pct_fpr == 1.0 and perfect.tpr_at_0_1pct_fpr == 1.0
    rev = roc_metrics(np.r_[np.arange(500), np.arange(500) + 1000.0], labels)
    assert rev.auc == 0.0 and rev.tpr_at_1pct_fpr == 0.0
    rng = np.random.default_rng(0)
    rand = roc_metrics(rng.random(1000), labels)
    assert abs(rand.auc - 0.5) < 0.06 and rand.tpr_at_1pct_fpr < 0.05


def test_tpr_at_fpr_counts_false_positives():
    # 100 non-members, one scores above every member: 1 % FPR admits it, 0.1 % does not
    labels = np.r_[np.ones(10), np.zeros(100)]
    scores = np.r_[np.full(10, 5.0), 10.0, np.zeros(99)]
    res = roc_metrics(scores, labels)
    assert res.tpr_at_1pct_fpr == 1.0
    assert res.tpr_at_0_1pct_fpr == 0.0


def test_attacks_find_leakage_in_a_memorising_model(noisy_tabular, leaky_forest):
    X_in, y_in, X_out, y_out = noisy_tabular[:4]
    rep = membership_inference(wrap_object(leaky_forest), (X_in, y_in), (X_out, y_out), n_shadows=6,
                               n_jobs=1, seed=0)
    assert set(rep.attacks) == {"loss", "lira_offline", "lira_online", "rmia"}
    assert rep.n_shadows == 6
    for name in ("lira_offline", "rmia"):
        assert rep.attacks[name].auc > 0.7, name
        assert rep.attacks[name].tpr_at_1pct_fpr > 0.05, name
    assert rep.attacks["lira_online"].auc > 0.6
    # shadow-based attacks beat the plain loss attack at low FPR
    assert rep.best.name != "loss"
    assert rep.best.tpr_at_1pct_fpr >= rep.attacks["loss"].tpr_at_1pct_fpr
    exposed = rep.most_exposed(5)
    assert len(exposed) == 5 and all(0 <= i < len(X_in) for i, _ in exposed)
    scores = [s for _, s in exposed]
    assert scores == sorted(scores, reverse=True)


def test_attacks_see_nothing_when_members_were_not_trained_on(noisy_tabular, blind_forest):
    X_in, y_in, X_out, y_out = noisy_tabular[:4]
    rep = membership_inference(wrap_object(blind_forest), (X_in, y_in), (X_out, y_out), n_shadows=6,
                               n_jobs=1, seed=0)
    for name, res in rep.attacks.items():
        assert abs(res.auc - 0.5) < 0.08, name
        assert res.tpr_at_1pct_fpr < 0.06, name


def test_deterministic_under_seed(noisy_tabular, leaky_forest):
    X_in, y_in, X_out, y_out = noisy_tabular[:4]
    kw = dict(attacks=["lira_offline", "rmia"], n_shadows=4, n_jobs=2, seed=3)
    a = membership_inference(wrap_object(leaky_forest), (X_in, y_in), (X_out, y_out), **kw)
    b = membership_inference(wrap_object(leaky_forest), (X_in, y_in), (X_out, y_out), **kw)
    for name in a.attacks:
        np.testing.assert_array_equal(a.attacks[name].scores, b.attacks[name].scores)


def test_torch_shadows_with_a_recipe(breast_cancer, overfit_mlp):
    _, Xte, _, yte = breast_cancer
    net, y_used = overfit_mlp
    Xtr = breast_cancer[0]
    rep = membership_inference(wrap_object(net), (Xtr, y_used), (Xte, yte), attacks=["loss", "rmia"],
                               n_shadows=4, recipe=TrainingRecipe(epochs=100, lr=1e-2), n_jobs=1)
    assert rep.n_shadows == 4
    assert rep.attacks["rmia"].auc > 0.6
    assert rep.best.tpr_at_1pct_fpr > 0.03


def test_torch_shadows_deterministic_in_parallel(breast_cancer, overfit_mlp):
    Xtr, Xte, _, yte = breast_cancer
    net, y_used = overfit_mlp
    kw = dict(attacks=["lira_offline"], n_shadows=4, recipe=TrainingRecipe(epochs=20), n_jobs=2, seed=5)
    a = membership_inference(wrap_object(net), (Xtr, y_used), (Xte, yte), **kw)
    b = membership_inference(wrap_object(net), (Xtr, y_used), (Xte, yte), **kw)
    np.testing.assert_array_equal(a.attacks["lira_offline"].scores, b.attacks["lira_offline"].scores)


def test_shadow_budget_stops_early(noisy_tabular, leaky_forest):
    X_in, y_in, X_out, y_out = noisy_tabular[:4]
    rep = membership_inference(wrap_object(leaky_forest), (X_in, y_in), (X_out, y_out),
                               attacks=["lira_offline"], n_shadows=8, shadow_budget_s=0.0, n_jobs=1)
    assert rep.n_shadows == 2
    assert any("budget" in n for n in rep.notes)


def test_custom_trainer_is_used(noisy_tabular, leaky_forest):
    from sklearn.ensemble import RandomForestClassifier

    calls = []

    def trainer(X, y, seed):
        calls.append(len(X))
        est = RandomForestClassifier(n_estimators=5, random_state=seed).fit(X, y)
        return est.predict_proba

    X_in, y_in, X_out, y_out = noisy_tabular[:4]
    rep = membership_inference(wrap_object(leaky_forest), (X_in, y_in), (X_out, y_out),
                               attacks=["lira_offline"], n_shadows=4, trainer=trainer, n_jobs=1)
    # paired design: every row is IN exactly half of the shadows, so the sizes add up to 4 * 600 / 2
    assert len(calls) == 4 and sum(calls) == 1200 and all(240 < c < 360 for c in calls)
    assert rep.attacks["lira_offline"].auc > 0.6


# -- bad input ------------------------------------------------------------------------------
def test_overlapping_sets_are_refused_or_cleaned(noisy_tabular, leaky_forest):
    X_in, y_in, X_out, y_out = noisy_tabular[:4]
    model = wrap_object(leaky_forest)
    with pytest.raises(DataError, match="overlap"):
        membership_inference(model, (X_in, y_in), (X_in, y_in), attacks=["loss"])
    X_mix = np.vstack([X_out[:280], X_in[:20]])
    y_mix = np.r_[y_out[:280], y_in[:20]]
    assert find_overlap(X_in, y_in, X_mix, y_mix).sum() == 20
    rep = membership_inference(model, (X_in, y_in), (X_mix, y_mix), attacks=["loss"])
    assert rep.overlap == 20 and rep.n_nonmembers == 280
    assert any("also appear" in n for n in rep.notes)


def test_too_few_rows_and_missing_labels(noisy_tabular, leaky_forest):
    X_in, y_in, X_out, y_out = noisy_tabular[:4]
    model = wrap_object(leaky_forest)
    with pytest.raises(DataError, match="too few non-members"):
        membership_inference(model, (X_in, y_in), (X_out[:5], y_out[:5]))
    with pytest.raises(DataError, match="labels"):
        membership_inference(model, (X_in, None), (X_out, y_out))
    with pytest.raises(DataError, match="non-members"):
        membership_inference(model, (X_in, y_in), None)  # no held-out part at all
    with pytest.raises(DataError, match="unknown attack"):
        membership_inference(model, (X_in, y_in), (X_out, y_out), attacks=["nope"])
    # enough for the loss attack, too few for shadow models: skipped with a reason
    rep = membership_inference(model, (X_in[:15], y_in[:15]), (X_out[:15], y_out[:15]), n_jobs=1)
    assert set(rep.attacks) == {"loss"}
    assert any("shadow models need" in n for n in rep.notes)


def test_non_retrainable_model_runs_only_the_loss_attack(noisy_tabular, leaky_forest):
    X_in, y_in, X_out, y_out = noisy_tabular[:4]
    black_box = CallableModel(leaky_forest.predict_proba, classes=[0, 1], n_features=8)
    rep = membership_inference(black_box, (X_in, y_in), (X_out, y_out), n_jobs=1)
    assert set(rep.attacks) == {"loss"}
    assert any("cannot be retrained" in n for n in rep.notes)


def test_torchscript_mlp_is_rebuilt_for_shadows():
    import torch

    from modelshield.privacy.membership import rebuild_torchscript_mlp

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    scripted = torch.jit.script(net)
    eager = rebuild_torchscript_mlp(scripted)
    assert isinstance(eager, torch.nn.Sequential) and not isinstance(eager, torch.jit.ScriptModule)
    x = torch.randn(4, 5)
    torch.testing.assert_close(eager(x), scripted(x))
    odd = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.LayerNorm(7), torch.nn.Linear(7, 3)))
    assert rebuild_torchscript_mlp(odd) is None
    assert rebuild_torchscript_mlp(net) is None  # eager modules are cloned, not rebuilt


def test_overlap_with_text_labels():
    """Text labels (a model trained on 'yes'/'no'): rows match on features *and* label, whatever the label
    type on each side (this crashed with a numpy void-type promotion error)."""
    rng = np.random.default_rng(0)
    X_in = rng.normal(size=(30, 4))
    y_in = np.where(rng.random(30) > 0.5, "yes", "no")
    X_out = np.vstack([X_in[:5], rng.normal(size=(10, 4))])
    y_out = np.concatenate([y_in[:4], ["yes" if y_in[4] == "no" else "no"], np.full(10, "yes")])
    mask = find_overlap(X_in, y_in, X_out, y_out)
    assert mask.tolist() == [True] * 4 + [False] * 11  # the fifth row has the other label
    assert find_overlap(X_in, y_in.astype(object), X_out, y_out).tolist() == mask.tolist()
