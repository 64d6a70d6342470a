"""Issue 22 C: fingerprints are calibrated on independent trainings with a stated false-match rate.

Families: reference-score samples (threshold properties), too few references, a learner whose
independent trainings reproduce it, and a generated model family (independent models: other seeds,
architectures, data; derived: fine-tuned, pruned, distilled, extracted) scored against the stated rate.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import binom

from modelshield.errors import DataError
from modelshield.models.sklearn import SklearnModel
from modelshield.theft.fingerprint import (
    MIN_REFERENCES,
    Fingerprint,
    calibrate_threshold,
    create_fingerprint,
    extracted_references,
    modified_references,
    retrained_references,
)

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("m", [5, 8, 20])
def test_threshold_states_a_bounded_false_match_rate(seed, m):
    rng = np.random.default_rng(seed)
    mu, sd = rng.uniform(0.3, 0.7), rng.uniform(0.02, 0.08)
    scores = np.clip(rng.normal(mu, sd, size=m), 0, 1)
    cal = calibrate_threshold(scores, [0.95, 0.97], 200, false_match_rate=0.01)
    assert cal["threshold"] > scores.max() and cal["empirical_matches"] == 0
    assert cal["false_match_rate"] <= 0.01 + 1e-12 or cal["threshold"] == 1.0
    assert 0 < cal["empirical_upper"] < 1  # Clopper-Pearson bound of 0 of m
    stricter = calibrate_threshold(scores, [], 200, false_match_rate=1e-4)
    assert stricter["threshold"] >= cal["threshold"]


@pytest.mark.parametrize("m", [5, 10])
def test_stated_bound_covers_the_true_false_match_rate(m):
    """Coverage: over many reference draws, the true rate exceeds the stated bound in <= ~5% (95% confidence)."""
    from scipy.stats import norm

    rng = np.random.default_rng(m)
    misses = 0
    for _ in range(300):
        mu, sd = rng.uniform(0.3, 0.6), rng.uniform(0.03, 0.08)
        cal = calibrate_threshold(rng.normal(mu, sd, size=m), [], 200, false_match_rate=0.01)
        misses += norm.sf(cal["threshold"], mu, sd) > cal["false_match_rate"]
    assert misses / 300 <= 0.05 + 0.03


def test_more_references_give_a_tighter_threshold():
    rng = np.random.default_rng(0)
    few = calibrate_threshold(rng.normal(0.5, 0.04, 5), [], 200)["threshold"]
    many = calibrate_threshold(rng.normal(0.5, 0.04, 200), [], 200)["threshold"]
    assert many < few


@pytest.mark.parametrize("n_refs", [0, 1, MIN_REFERENCES - 1])
def test_too_few_references_are_refused(breast_cancer, sk_logreg, n_refs):
    Xtr, *_ = breast_cancer
    with pytest.raises(DataError, match=f"at least {MIN_REFERENCES} independent"):
        create_fingerprint(sk_logreg, Xtr, n_points=20, independent=[sk_logreg] * n_refs)


def test_uncalibrated_fingerprint_cannot_match(breast_cancer, sk_logreg):
    Xtr, *_ = breast_cancer
    fp = Fingerprint(X=Xtr[:10], labels=sk_logreg.predict(Xtr[:10]), n_classes=2)
    with pytest.raises(DataError, match="no calibration"):
        fp.compare(sk_logreg)
    assert fp.compare(sk_logreg, threshold=0.9).derived  # an explicit threshold is the caller's claim


def test_learner_whose_independent_trainings_reproduce_it_is_refused(breast_cancer, sk_logreg):
    """A deterministic learner on the same rows is its own independent training: no fingerprint."""
    Xtr, _, ytr, _ = breast_cancer
    refs = retrained_references(SklearnModel(sk_logreg), Xtr, ytr, n=6, seed=0)
    with pytest.raises(DataError, match="reproduce this model"):
        create_fingerprint(sk_logreg, Xtr, n_points=40, independent=refs, seed=0)


def _mlp(d, c, seed, hidden=32):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, c))


@pytest.fixture(scope="module")
def digits_family():
    """A PyTorch owner on digits, its fingerprint (references trained automatically), and a generated
    family of independent and derived models."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from modelshield.data.dataset import Dataset
    from modelshield.harden.watermark import distill, fine_tune, prune_magnitude, train_classifier
    from modelshield.models.torch import TorchModel
    from modelshield.theft.extraction import knockoff_queries, query_victim, train_surrogate

    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, _ = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    Xtr, Xte = sc.transform(Xtr).astype(np.float32), sc.transform(Xte).astype(np.float32)
    owner = train_classifier(_mlp(64, 10, 0), Xtr, ytr, epochs=20, seed=0)
    om = TorchModel(owner)
    refs = retrained_references(om, Xtr, ytr, n=8, seed=0, epochs=20)
    derived_refs = extracted_references(om, Xtr, seed=0) + modified_references(om, Xtr, ytr, seed=0)
    fp = create_fingerprint(om, Xtr, independent=refs, derived=derived_refs, n_points=150, seed=0)
    rng = np.random.default_rng(1)
    half = rng.choice(len(Xtr), len(Xtr) // 2, replace=False)
    independent = {f"seed-{s}": train_classifier(_mlp(64, 10, s), Xtr, ytr, epochs=20, seed=s) for s in (11, 12, 13)}
    independent |= {f"width-{h}": train_classifier(_mlp(64, 10, 20 + h, hidden=h), Xtr, ytr, epochs=20, seed=h)
                    for h in (16, 64)}
    independent |= {f"half-data-{s}": train_classifier(_mlp(64, 10, s), Xtr[half], ytr[half], epochs=20, seed=s)
                    for s in (14, 15)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sklearn.neural_network import MLPClassifier

        independent["sklearn-mlp"] = MLPClassifier((32,), random_state=0, max_iter=200).fit(Xtr, ytr)
    idx = rng.choice(len(Xtr), len(Xtr) // 10, replace=False)  # other rows and seeds than the references'
    Q = knockoff_queries(Dataset(X=Xte), 3000, np.random.default_rng(9), noise=0.2)
    answers, _ = query_victim(om, Q)
    derived = {
        "fine-tuned-10%": fine_tune(owner, Xtr[idx], ytr[idx], epochs=10, seed=1),
        "fine-tuned-lr1e-2": fine_tune(owner, Xtr[idx], ytr[idx], epochs=5, lr=1e-2, seed=2),
        "pruned-30%": prune_magnitude(owner, 0.3),
        "pruned-50%": prune_magnitude(owner, 0.5),
        "distilled": distill(owner, Xtr, epochs=20, seed=3),
    }
    extracted = train_surrogate(Q, answers, 10, seed=99)
    return fp, owner, independent, derived, extracted


def _score(fp, m):
    if hasattr(m, "predict_index") and not isinstance(m, torch.nn.Module):
        return float(np.mean(m.predict_index(fp.X) == fp.labels))
    return fp.compare(m).score


@pytest.mark.slow
def test_independent_models_match_no_more_than_the_stated_rate(digits_family):
    fp, _, independent, _, _ = digits_family
    cal = fp.meta["calibration"]
    assert len(cal["independent_scores"]) == 8 and cal["false_match_rate"] <= 0.01 + 1e-12
    scores = {k: _score(fp, m) for k, m in independent.items()}
    false_matches = sum(s >= fp.threshold for s in scores.values())
    # what the stated rate allows in this many trials (99.9% quantile of the binomial)
    assert false_matches <= binom.ppf(0.999, len(scores), cal["false_match_rate"]), (fp.threshold, scores)


@pytest.mark.slow
def test_derived_models_match(digits_family):
    fp, owner, _, derived, extracted = digits_family
    assert fp.compare(owner).score == 1.0
    matches = {name: fp.compare(m) for name, m in derived.items()}
    info = (fp.threshold, {k: round(v.score, 3) for k, v in matches.items()}, _score(fp, extracted),
            fp.meta["calibration"]["derived_scores"])
    for match in matches.values():
        assert match.derived, info
        assert match.independent_tail < 0.01
    # an extracted copy scores far above the independent references, even where it is below threshold
    cal = fp.meta["calibration"]
    assert _score(fp, extracted) > max(cal["independent_scores"])


@pytest.mark.slow
def test_compare_reports_the_score_distribution(digits_family):
    fp, owner, independent, _, _ = digits_family
    text = fp.compare(independent["seed-11"]).describe()
    assert "independent references scored" in text and "false-match rate" in text and "confidence" in text
    d = fp.compare(owner).to_dict()
    assert d["derived"] and d["calibration"]["independent_scores"] and d["independent_tail"] < 1e-6
