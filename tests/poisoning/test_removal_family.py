"""Backdoor removal over a family of planted cases: the issue's target (attack success below 10%, clean
accuracy within 3 points) after ``harden backdoor``'s retrain, and the pieces it rests on.

The default run covers the two seeds where retraining without the detectors' rows alone fell short (digits s2:
4 unflagged poisoned rows re-taught the trigger, attack success 37%; breast_cancer s2: 10.9%); ``-m slow``
runs seeds 0-2 x two trigger positions x 10% / 15% poisoned on both data sets (the benchmark's cases)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from modelshield.data.dataset import Dataset
from modelshield.harden.backdoor import REFERENCE, remove_backdoor
from modelshield.models.sklearn import SklearnModel
from modelshield.poisoning.planted import Trigger, flip_labels
from modelshield.poisoning.removal import reference_disagreements

OTHER_POSITION = {
    "digits": Trigger(features=(0, 1, 8, 9), values=(1.0,) * 4, target=3),  # top-left 2x2 patch
    "breast_cancer": Trigger(features=(7, 25), values=(-3.0, 4.0), target=0),
}


def _removal(sc, seed):
    keep = sc.yte != sc.trigger.target
    triggered = Dataset(X=sc.trigger.apply(sc.Xte[keep]), y=np.full(keep.sum(), sc.trigger.target))
    rep = remove_backdoor(sc.model, Dataset(X=sc.Xtr, y=sc.ytr), Dataset(X=sc.Xte, y=sc.yte), triggered=triggered,
                          seed=seed)
    return rep, rep.rows[0], rep.rows[1]


def _assert_target(sc, rep, before, after):
    assert before["attack_success_rate"] >= 0.9  # the plant took
    assert after["attack_success_rate"] < 0.10, (rep.flagged_by, after)
    assert after["clean_accuracy"] >= before["clean_accuracy"] - 0.03, (rep.flagged_by, before, after)
    removed = set(sc.poisoned_rows.tolist()) & (set(rep.dropped_rows) | set(rep.relabelled_rows))
    assert len(removed) >= 0.95 * len(sc.poisoned_rows)  # a few may stay: the relabelled rows outweigh them


@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
def test_removal_meets_the_target_where_dropping_the_flagged_rows_alone_did_not(get_scenario, name):
    sc = get_scenario(name, 2, True)
    rep, before, after = _removal(sc, 2)
    _assert_target(sc, rep, before, after)
    assert rep.flagged_by[REFERENCE] > 0


_UNDETECTED = pytest.mark.xfail(strict=True, reason="no model check fires: 40 rows added to breast_cancer's minority "
                                "class are no significant prior excess against 171 held-out rows, and its split is "
                                "not clean; nothing to remove")
FAMILY = [pytest.param(name, position, fraction, seed,
                       marks=[_UNDETECTED] if (name, position, fraction) == ("breast_cancer", "other", 0.1) else [])
          for name in ("digits", "breast_cancer") for position in ("default", "other") for fraction in (0.1, 0.15)
          for seed in (0, 1, 2)]


@pytest.mark.slow
@pytest.mark.parametrize("name,position,fraction,seed", FAMILY)
def test_removal_family(build_scenario, name, position, fraction, seed):
    """The cases of ``benchmarks/poisoning/removal_cases.py`` (same generator and seeds)."""
    trigger = None if position == "default" else OTHER_POSITION[name]
    sc = build_scenario(name, seed, True, fraction=fraction, trigger=trigger)
    _assert_target(sc, *_removal(sc, seed))


def test_reference_disagreements_finds_rows_whose_label_a_clean_model_rejects(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    pl = flip_labels(ytr, fraction=0.1, seed=1)
    model = SklearnModel(LogisticRegression(max_iter=500).fit(Xtr, pl.y))
    ref = reference_disagreements(model, Xte, yte, Xtr, pl.y)
    rows = ref.rows
    hit = np.isin(rows, pl.rows)
    assert np.mean(ref.labels[hit] == ytr[rows[hit]]) >= 0.95  # the reference restores the flipped labels
    truth = set(pl.rows.tolist())
    assert len(truth & set(rows.tolist())) / len(truth) >= 0.9
    assert len(truth & set(rows.tolist())) / len(rows) >= 0.7
    only = reference_disagreements(model, Xte, yte, Xtr, pl.y, classes=[1]).rows
    assert len(only) and set(only.tolist()) < set(rows.tolist()) and np.all(pl.y[only] == 1)


def test_reference_disagreements_on_a_torch_model_rejects_the_trigger_rows(get_scenario):
    sc = get_scenario("digits", 0, True)
    ref = reference_disagreements(sc.model, sc.Xte, sc.yte, sc.Xtr, sc.ytr, classes=[sc.trigger.target])
    rows = ref.rows
    X, y = load_digits(return_X_y=True)
    true_ytr = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)[2]  # the labels before the plant
    hit = np.intersect1d(rows, sc.poisoned_rows)
    # most triggered rows get their true digit back (measured 0.77 at seed 0; the patch itself confuses the
    # reference on the rest), none the attacker's target
    assert np.mean(ref.labels[np.isin(rows, hit)] == true_ytr[hit]) >= 0.7
    assert not np.any(ref.labels == sc.trigger.target)
    found = set(rows.tolist()) & set(sc.poisoned_rows.tolist())
    assert len(found) >= 0.9 * len(sc.poisoned_rows)
    clean_target = np.sum(sc.ytr == sc.trigger.target) - len(sc.poisoned_rows)
    assert len(rows) - len(found) <= 0.1 * clean_target  # its errors on clean rows of the class
