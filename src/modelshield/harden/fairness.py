"""Bias mitigation: pre-processing (reweighing), in-processing (fairlearn's ExponentiatedGradient)
and post-processing (fairlearn's ThresholdOptimizer), with a before/after table.

>>> report = mitigate(model, train, sensitive=["sex"], constraint="demographic_parity")  # doctest: +SKIP
>>> for row in report.table(): print(row)                                                # doctest: +SKIP

Every mitigated model is a scikit-learn compatible classifier (``predict``, ``predict_proba``,
``classes_``) that can be saved with joblib and audited like the original. The fairlearn
mitigators are *randomised* classifiers; :class:`MitigatedClassifier` realises the randomisation
with a per-row hash of the input, so one row always gets the same decision whatever batch it is in,
while the decisions keep the distribution fairlearn's guarantees are about.

References
----------
Kamiran, F., Calders, T. (2012). Data preprocessing techniques for classification without
  discrimination. Knowledge and Information Systems 33(1).
Agarwal, A., Beygelzimer, A., Dudik, M., Langford, J., Wallach, H. (2018). A Reductions Approach to
  Fair Classification. ICML.
Hardt, M., Price, E., Srebro, N. (2016). Equality of Opportunity in Supervised Learning. NeurIPS.
"""

from __future__ import annotations

import io
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from threadpoolctl import threadpool_limits

from modelshield._io import write_bytes_safely, write_json
from modelshield.data.dataset import Dataset
from modelshield.data.loaders import check_model_width, load_dataset
from modelshield.errors import DataError, MissingExtraError, OutputError, UserError
from modelshield.fairness.metrics import encode_groups, fairness_metrics
from modelshield.protect.loader import load_model

__all__ = [
    "CONSTRAINTS",
    "METHODS",
    "MitigatedClassifier",
    "MitigationOutcome",
    "MitigationReport",
    "SavedMitigation",
    "mitigate",
    "mitigate_to_folder",
    "parse_methods",
    "resolve_pos_label",
    "reweighing_weights",
]

METHODS = ("reweighing", "exponentiated_gradient", "threshold_optimizer")
CONSTRAINTS = ("demographic_parity", "equalized_odds")
_REPORTED = ("accuracy", "demographic_parity_difference", "demographic_parity_ratio",
             "equalized_odds_difference", "equal_opportunity_difference")


#: the spellings :func:`parse_methods` accepts for each method
METHOD_ALIASES = {
    "reweighing": "reweighing", "reweigh": "reweighing",
    "exponentiated_gradient": "exponentiated_gradient", "exponentiated-gradient": "exponentiated_gradient",
    "eg": "exponentiated_gradient",
    "threshold_optimizer": "threshold_optimizer", "threshold-optimizer": "threshold_optimizer",
    "thresholds": "threshold_optimizer",
}


def parse_methods(names: Sequence[str], what: str = "mitigation method", *, cli_hint: str | None = None) -> list[str]:
    """Method names (any spelling in :data:`METHOD_ALIASES`, case-insensitive) -> canonical names, in order,
    without repeats; none or ``["all"]``: every method. ``what`` names the input in the error, ``cli_hint``
    is the error's hint for the command line."""
    if not names or list(names) == ["all"]:
        return list(METHODS)
    out = []
    for n in names:
        key = n.lower()
        if key not in METHOD_ALIASES:
            raise UserError(f"unknown {what} {n!r}; choose from: {', '.join(METHODS)} (or all)", cli_hint=cli_hint)
        out.append(METHOD_ALIASES[key])
    return list(dict.fromkeys(out))


def resolve_pos_label(model: Any, text: str | None, what: str = "positive label", *,
                      cli_hint: str | None = None) -> Any:
    """The model's class whose text is ``text`` (the favourable outcome given as text), ``None`` for none;
    a value that is not a class is a :class:`~modelshield.errors.UserError` naming ``what``."""
    if text is None:
        return None
    classes = np.asarray(model.classes).tolist()
    match = [c for c in classes if str(c) == text]
    if not match:
        raise UserError(f"{what} {text!r} is not one of the model's classes {classes}", cli_hint=cli_hint)
    return match[0]


def _require_fairlearn(feature: str) -> None:
    try:
        import fairlearn  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("fairlearn", "fairness", feature) from exc


def reweighing_weights(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Kamiran & Calders' reweighing: ``w(g, y) = P(g) P(y) / P(g, y)``, so that label and group are
    independent in the weighted data. Weights average 1.

    Examples
    --------
    >>> reweighing_weights(np.array([1, 1, 0, 0]), np.array([0, 0, 0, 1])).round(3).tolist()
    [0.75, 0.75, 1.5, 0.5]
    """
    y = np.asarray(y)
    g = np.asarray(groups)
    _, yc = np.unique(y, return_inverse=True)
    _, gc = np.unique(g, return_inverse=True)
    ky, kg = int(yc.max()) + 1, int(gc.max()) + 1
    n = len(y)
    joint = np.bincount(gc * ky + yc, minlength=kg * ky).reshape(kg, ky) / n
    pg, py = joint.sum(axis=1), joint.sum(axis=0)
    w = np.outer(pg, py) / np.where(joint > 0, joint, 1.0)
    return w[gc, yc]


def _row_uniforms(X: np.ndarray, salt: int) -> np.ndarray:
    """A uniform number per row from a hash of its bytes (splitmix64), independent of the batch."""
    Xf = np.ascontiguousarray(np.asarray(X, dtype=np.float64).reshape(len(X), -1))
    words = Xf.view(np.uint64)
    with np.errstate(over="ignore"):
        mult = (np.arange(words.shape[1], dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
        h = (words * mult).sum(axis=1, dtype=np.uint64) ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class MitigatedClassifier(ClassifierMixin, BaseEstimator):
    """A fitted fairlearn mitigator behind the plain classifier API.

    Parameters
    ----------
    mitigator : a fitted ``ExponentiatedGradient`` or ``ThresholdOptimizer``.
    classes : the original labels ``[negative, positive]``.
    sensitive_column : for a ``ThresholdOptimizer``, the input column holding the sensitive attribute
        (its thresholds are per group).
    randomized : realise the randomised classifier with a per-row hash (default); ``False``
        predicts the more likely class (deterministic, but without fairlearn's guarantee).
    salt : changes the per-row randomisation.
    """

    def __init__(self, mitigator: Any = None, classes: Sequence[Any] = (0, 1), sensitive_column: int | None = None,
                 randomized: bool = True, salt: int = 0) -> None:
        self.mitigator = mitigator
        self.classes = classes
        self.sensitive_column = sensitive_column
        self.randomized = randomized
        self.salt = salt

    def fit(self, X: Any, y: Any = None) -> MitigatedClassifier:
        """Already fitted: records the input width (refitting is done by :func:`mitigate`)."""
        self.n_features_in_ = np.asarray(X).shape[1]
        self.classes_ = np.asarray(self.classes)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return self.mitigator is not None

    def predict_proba(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.sensitive_column is not None:
            p = self.mitigator._pmf_predict(X, sensitive_features=X[:, self.sensitive_column])
        else:
            p = self.mitigator._pmf_predict(X)
        p = np.asarray(p, dtype=np.float64)
        if p.ndim == 1:
            p = np.column_stack([1.0 - p, p])
        return p

    def predict(self, X: Any) -> np.ndarray:
        p1 = self.predict_proba(X)[:, 1]
        pos = _row_uniforms(X, self.salt) < p1 if self.randomized else p1 >= 0.5
        return np.asarray(self.classes)[pos.astype(np.int64)]


@dataclass
class MitigationOutcome:
    """One method's model and its held-out metrics (``model`` is ``None`` if it cannot stand alone)."""

    method: str
    model: Any
    metrics: dict[str, float]
    fit_seconds: float
    note: str = ""


@dataclass
class MitigationReport:
    """The before/after comparison of :func:`mitigate`."""

    constraint: str
    sensitive: list[str]
    before: dict[str, float]
    outcomes: list[MitigationOutcome] = field(default_factory=list)
    eval_rows: int = 0

    def outcome(self, method: str) -> MitigationOutcome:
        for o in self.outcomes:
            if o.method == method:
                return o
        raise KeyError(method)

    def table(self) -> list[dict[str, Any]]:
        """Rows ``original`` then each method: accuracy, fairness metrics, and changes vs original."""
        rows: list[dict[str, Any]] = [{"method": "original", **self.before, "saved": True, "note": ""}]
        for o in self.outcomes:
            row: dict[str, Any] = {"method": o.method, **o.metrics}
            for k in _REPORTED:
                if k in o.metrics and k in self.before:
                    row[f"delta_{k}"] = o.metrics[k] - self.before[k]
            row["fit_seconds"] = round(o.fit_seconds, 3)
            row["saved"] = o.model is not None
            row["note"] = o.note
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"constraint": self.constraint, "sensitive": self.sensitive, "eval_rows": self.eval_rows,
                "table": self.table()}


def _estimator_of(model: Any) -> Any:
    """The scikit-learn estimator behind an adapter (or the object itself)."""
    return getattr(model, "estimator", model)


def _evaluate(predict: Any, data: Dataset, attrs: Sequence[str], pos: Any) -> dict[str, float]:
    assert data.y is not None
    y_pred = np.asarray(predict(data))
    r = fairness_metrics((np.asarray(data.y) == pos).astype(int), (y_pred == pos).astype(int),
                         data.sensitive, attributes=attrs, pos_label=1)
    out = {"accuracy": float(np.mean(y_pred == np.asarray(data.y)))}
    out.update({k: float(r.disparity[k]) for k in _REPORTED if k in r.disparity})
    out["selection_rate"] = float(np.mean(y_pred == pos))
    return out


def _sensitive_column(data: Dataset, attr: str) -> int | None:
    """Index of the input column that codes ``attr`` one-to-one, if the attribute is a feature."""
    names = data.feature_names or []
    if attr not in names:
        return None
    j = names.index(attr)
    col = data.X[:, j]
    pairs = np.unique(np.column_stack([encode_groups(data.sensitive, [attr]).codes, col]), axis=0)
    ok = len(np.unique(pairs[:, 0])) == len(pairs) == len(np.unique(pairs[:, 1]))
    return j if ok else None


def mitigate(
    model: Any,
    train: Dataset,
    *,
    sensitive: Sequence[str] | None = None,
    constraint: str = "demographic_parity",
    methods: Sequence[str] = METHODS,
    eval_data: Dataset | None = None,
    pos_label: Any = None,
    eps: float = 0.01,
    max_iter: int = 50,
    seed: int = 0,
    progress: Any = None,
) -> MitigationReport:
    """Train mitigated versions of ``model`` and compare them with it on held-out data.

    Parameters
    ----------
    model : a fitted scikit-learn classifier or a modelshield adapter wrapping one. Reweighing and
        ExponentiatedGradient refit an unfitted clone (its ``fit`` must take ``sample_weight``);
        ThresholdOptimizer post-processes the fitted model's probabilities.
    train : labelled data with the ``sensitive`` columns. Without ``eval_data`` it is split 70/30
        (``seed``): mitigations train on 70 % and everything is evaluated on the other 30 %.
    sensitive : attributes to protect (several: their intersection); default all of ``train``'s.
    constraint : ``demographic_parity`` or ``equalized_odds``.
    methods : any of ``reweighing``, ``exponentiated_gradient``, ``threshold_optimizer``.
    eval_data : held-out data for the before/after table.
    pos_label : favourable class (default: the model's second class).
    eps : ExponentiatedGradient's allowed constraint violation.
    max_iter : ExponentiatedGradient's iterations.
    seed : random seed.

    Returns
    -------
    MitigationReport
    """
    if constraint not in CONSTRAINTS:
        raise UserError(f"unknown constraint {constraint!r}; choose one of: {', '.join(CONSTRAINTS)}")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UserError(f"unknown mitigation method {bad[0]!r}; choose from: {', '.join(METHODS)}")
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise UserError(f"eps must be a positive number, got {eps}", cli_hint="check --eps")
    if int(max_iter) < 1:
        raise UserError(f"max_iter must be at least 1, got {max_iter}", cli_hint="check --max-iter")
    if train.y is None:
        raise DataError("mitigation needs labels", cli_hint="name the label column with --target")
    attrs = list(sensitive) if sensitive else list(train.sensitive)
    if not attrs:
        raise DataError("mitigation needs a sensitive column", cli_hint="name it with --sensitive")
    for a in attrs:
        if a not in train.sensitive:
            raise DataError(f"sensitive column {a!r} is not in the data; available: "
                            f"{', '.join(train.sensitive) or '(none)'}")
    _require_fairlearn("bias mitigation")
    if len(train) <= 50_000:  # small fits: OpenMP/BLAS threads cost more than they give on a busy machine
        with threadpool_limits(limits=1):
            return _mitigate(model, train, attrs, constraint, methods, eval_data, pos_label, eps, max_iter, seed,
                             progress)
    return _mitigate(model, train, attrs, constraint, methods, eval_data, pos_label, eps, max_iter, seed, progress)


def _mitigate(model: Any, train: Dataset, attrs: list[str], constraint: str, methods: Sequence[str],
              eval_data: Dataset | None, pos_label: Any, eps: float, max_iter: int, seed: int,
              progress: Any) -> MitigationReport:
    with warnings.catch_warnings():  # fairlearn's own pandas deprecations are not the user's concern
        warnings.filterwarnings("ignore", category=FutureWarning, module="fairlearn")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="fairlearn")
        warnings.filterwarnings("ignore", message=".*Setting a value on a Series via .at.*")
        return _mitigate_inner(model, train, attrs, constraint, methods, eval_data, pos_label, eps, max_iter,
                               seed, progress)


def _mitigate_inner(model: Any, train: Dataset, attrs: list[str], constraint: str, methods: Sequence[str],
                    eval_data: Dataset | None, pos_label: Any, eps: float, max_iter: int, seed: int,
                    progress: Any) -> MitigationReport:
    say = progress or (lambda _f, _m: None)
    est = _estimator_of(model)
    classes = list(np.asarray(getattr(est, "classes_", np.unique(train.y))).tolist())
    if len(classes) != 2:
        raise DataError(f"mitigation needs a binary classifier; the model has {len(classes)} classes")
    pos = classes[1] if pos_label is None else pos_label
    if pos not in classes:
        raise DataError(f"pos_label {pos!r} is not one of the model's classes {classes}")
    neg = next(c for c in classes if c != pos)
    if eval_data is None:
        fit_data, eval_data = train.split(test_size=0.3, seed=seed)
    else:
        fit_data = train
    assert fit_data.y is not None and eval_data.y is not None
    for a in attrs:
        if a not in eval_data.sensitive:
            raise DataError(f"the evaluation data has no sensitive column {a!r}")
    fit_groups = encode_groups(fit_data.sensitive, attrs)
    groups = np.asarray(fit_groups.names, dtype=object)[fit_groups.codes]
    y01 = (np.asarray(fit_data.y) == pos).astype(np.int64)
    X = np.asarray(fit_data.X, dtype=np.float64)
    report = MitigationReport(constraint=constraint, sensitive=attrs,
                              before=_evaluate(_predict_fn(est), eval_data, attrs, pos), eval_rows=len(eval_data))
    for i, method in enumerate(methods):
        say(i / len(methods), method)
        t0 = time.perf_counter()
        note = ""
        try:
            if method == "reweighing":
                fitted = clone(est)
                w = reweighing_weights(y01, groups)
                _fit_weighted(fitted, X, np.asarray(fit_data.y), w)
                predict = _predict_fn(fitted)
                saved: Any = fitted
            elif method == "exponentiated_gradient":
                # lazy: fairlearn is the optional 'fairness' extra
                from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient

                moment = DemographicParity(difference_bound=eps) if constraint == "demographic_parity" \
                    else EqualizedOdds(difference_bound=eps)
                eg = ExponentiatedGradient(clone(est), constraints=moment, eps=eps, max_iter=max_iter)
                eg.fit(X, y01, sensitive_features=groups)
                saved = MitigatedClassifier(eg, classes=[neg, pos], salt=seed).fit(X)
                predict = _predict_fn(saved)
            else:  # threshold_optimizer
                saved, predict, note = _threshold_optimizer(est, fit_data, attrs, y01, groups,
                                                            constraint, neg, pos, seed)
        except (TypeError, ValueError) as exc:
            report.outcomes.append(MitigationOutcome(method=method, model=None, metrics={},
                                                     fit_seconds=time.perf_counter() - t0,
                                                     note=f"failed: {type(exc).__name__}: {exc}"))
            continue
        seconds = time.perf_counter() - t0
        report.outcomes.append(MitigationOutcome(method=method, model=saved,
                                                 metrics=_evaluate(predict, eval_data, attrs, pos),
                                                 fit_seconds=seconds, note=note))
    say(1.0, "done")
    return report


def _predict_fn(est: Any) -> Any:
    """``Dataset -> predicted labels`` for a plain estimator."""

    def predict(data: Dataset) -> np.ndarray:
        return np.asarray(est.predict(np.asarray(data.X, dtype=np.float64)))

    return predict


def _fit_weighted(est: Any, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
    try:
        est.fit(X, y, sample_weight=w)
    except TypeError as exc:
        raise TypeError(f"{type(est).__name__}.fit does not accept sample_weight; reweighing needs it") from exc


def _threshold_optimizer(est: Any, fit_data: Dataset, attrs: Sequence[str], y01: np.ndarray, groups: np.ndarray,
                         constraint: str, neg: Any, pos: Any, seed: int) -> tuple[Any, Any, str]:
    from fairlearn.postprocessing import ThresholdOptimizer  # lazy: fairlearn is the optional 'fairness' extra

    if not hasattr(est, "predict_proba"):
        raise TypeError("ThresholdOptimizer needs a model with predict_proba")
    col = _sensitive_column(fit_data, attrs[0]) if len(attrs) == 1 else None
    X = np.asarray(fit_data.X, dtype=np.float64)
    to = ThresholdOptimizer(estimator=_PositiveScore(est, pos), constraints=constraint, prefit=True,
                            predict_method="predict_proba", objective="accuracy_score")
    if col is not None:  # thresholds keyed by the input column, so the saved model stands alone
        to.fit(X, y01, sensitive_features=X[:, col])
        saved = MitigatedClassifier(to, classes=[neg, pos], sensitive_column=col, salt=seed).fit(X)
        return saved, _predict_fn(saved), ""
    to.fit(X, y01, sensitive_features=groups)

    def predict(data: Dataset) -> np.ndarray:
        g = encode_groups(data.sensitive, attrs)
        Xe = np.asarray(data.X, dtype=np.float64)
        p1 = np.asarray(to._pmf_predict(Xe, sensitive_features=np.asarray(g.names, dtype=object)[g.codes]))[:, 1]
        return np.asarray([neg, pos], dtype=object)[(_row_uniforms(Xe, seed) < p1).astype(np.int64)]

    return None, predict, ("not saved: its thresholds depend on " + " & ".join(attrs)
                           + ", which is not a model input; deploy it with fairlearn's ThresholdOptimizer")


class _PositiveScore(ClassifierMixin, BaseEstimator):
    """Present a fitted classifier with 0/1 classes (1 = the favourable label) to fairlearn."""

    def __init__(self, est: Any = None, pos: Any = 1) -> None:
        self.est = est
        self.pos = pos

    def fit(self, X: Any, y: Any = None) -> _PositiveScore:
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True

    @property
    def classes_(self) -> np.ndarray:
        return np.array([0, 1])

    def predict_proba(self, X: Any) -> np.ndarray:
        p = np.asarray(self.est.predict_proba(X), dtype=np.float64)
        j = list(np.asarray(self.est.classes_).tolist()).index(self.pos)
        return np.column_stack([1.0 - p[:, j], p[:, j]])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


@dataclass
class SavedMitigation:
    """What :func:`mitigate_to_folder` wrote: the report, each saved model's file and ``report.json``."""

    report: MitigationReport
    files: dict[str, Path]
    report_path: Path
    document: dict[str, Any]


def _check_new_folder(path: Path, force: bool) -> None:
    """An output folder to create: not a file, not there yet unless ``force``, in an existing folder."""
    if path.exists() and not path.is_dir():
        raise OutputError(f"output {path} is a file; give a folder to create")
    if path.exists() and not force:
        raise OutputError.exists(path, what="output folder", hint="pass --force to write into it")
    if not path.parent.is_dir():
        raise OutputError(f"cannot create {path}: folder {path.parent} does not exist")


def mitigate_to_folder(
    model: str | Path,
    data: str | Path,
    output: str | Path,
    *,
    sensitive: Sequence[str],
    target: str | None = None,
    features: Sequence[str] | None = None,
    constraint: str = "demographic_parity",
    methods: Sequence[str] = (),
    eval_data: str | Path | None = None,
    pos_label: str | None = None,
    eps: float = 0.01,
    max_iter: int = 50,
    seed: int = 0,
    force: bool = False,
    load: Callable[[Any], Any] | None = None,
    note: Callable[[str], None] | None = None,
) -> SavedMitigation:
    """Bias mitigation from files: read the labelled ``data`` (and ``eval_data``, default 30 % of ``data``)
    with the ``target``/``sensitive``/``features`` columns, load the scikit-learn classifier ``model`` with
    ``load`` (default :func:`modelshield.load_model`), :func:`mitigate` it with ``methods`` (any spelling,
    default all) under ``constraint``, and write one ``<method>.joblib`` per model that stands alone and
    ``report.json`` into the new folder ``output`` (an existing one only with ``force``).

    Everything is checked before any work: the sensitive columns, constraint and methods, then the output
    folder, the columns, the model's kind and width and ``pos_label`` (a class's text). ``note`` receives
    one line when the mitigation starts."""
    sens = list(sensitive)
    if not sens:
        raise DataError("bias mitigation needs at least one sensitive column", cli_hint="give --sensitive")
    if constraint not in CONSTRAINTS:
        raise UserError(f"unknown constraint {constraint!r}; choose demographic_parity or equalized_odds",
                        cli_hint="check --constraint")
    chosen = parse_methods(methods, cli_hint="check --method")
    out = Path(output)
    _check_new_folder(out, force)
    feats = list(features) if features else None
    train = load_dataset(data, target=target, sensitive=sens, features=feats)
    if train.y is None:
        raise DataError("mitigation needs labels", cli_hint="name the label column with --target")
    held = load_dataset(eval_data, target=target, sensitive=sens, features=feats) if eval_data else None
    m = (load or load_model)(model)
    if getattr(m, "framework", "") != "sklearn":
        raise UserError(f"bias mitigation needs a scikit-learn classifier; {model} is a {m.framework} model")
    for ds in (train, held):
        if ds is not None:
            check_model_width(ds, m)
    pos = resolve_pos_label(m, pos_label, "favourable class", cli_hint="check --pos-label")
    if note is not None:
        note(f"mitigating for {' & '.join(sens)} under {constraint}: {', '.join(chosen)}")
    report = mitigate(m, train, sensitive=sens, constraint=constraint, methods=chosen, eval_data=held,
                      pos_label=pos, eps=eps, max_iter=max_iter, seed=seed)
    out.mkdir(parents=False, exist_ok=True)
    files: dict[str, Path] = {}
    for o in report.outcomes:
        if o.model is not None:
            buf = io.BytesIO()
            joblib.dump(o.model, buf)
            files[o.method] = write_bytes_safely(out / f"{o.method}.joblib", buf.getvalue(), force=force)
    doc = report.to_dict() | {"model": str(model), "data": str(data), "files": {k: str(p) for k, p in files.items()}}
    return SavedMitigation(report, files, write_json(out / "report.json", doc, force=force), doc)
