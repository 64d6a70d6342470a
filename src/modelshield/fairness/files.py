"""The fairness engines over data files: metrics of recorded decisions and proxy features.

>>> result = decision_fairness("preds.csv", target="label", prediction="pred", sensitive=["sex"])  # doctest: +SKIP
>>> result.disparities[0]["metric"], result.disparities[0]["value"]                              # doctest: +SKIP
>>> report = proxies_in_file("train.csv", sensitive=["sex"], target="label")                     # doctest: +SKIP

Both read the file with :mod:`modelshield.data.loaders` (one-line errors for an unknown column, with a
did-you-mean) and raise :class:`~modelshield.errors.ModelShieldError` subclasses with neutral messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelshield.data.loaders import from_frame, load_dataset, read_table, unknown_column
from modelshield.errors import DataError, FormatError, UserError
from modelshield.fairness.metrics import encode_groups, fairness_metrics
from modelshield.fairness.proxies import ProxyReport, find_proxies

__all__ = ["HEADLINE_DISPARITIES", "DecisionFairness", "decision_fairness", "proxies_in_file"]

#: the disparities a summary shows (the JSON has every one the engine computes)
HEADLINE_DISPARITIES = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
                        "equal_opportunity_difference")


@dataclass
class DecisionFairness:
    """Per-group rates and disparities of recorded decisions, one block per attribute and (with several
    attributes) their intersection."""

    groups: list[dict[str, Any]] = field(default_factory=list)
    disparities: list[dict[str, Any]] = field(default_factory=list)

    def headline(self) -> list[dict[str, Any]]:
        """The disparity rows of :data:`HEADLINE_DISPARITIES`, in file order."""
        return [r for r in self.disparities if r["metric"] in HEADLINE_DISPARITIES]

    def to_dict(self) -> dict[str, Any]:
        return {"groups": self.groups, "disparities": self.disparities}


def _coerce_pos_label(text: str | None, y: np.ndarray, target: str) -> Any:
    """``text`` as a value of the label column (a number when the labels are numbers)."""
    if text is None or not np.issubdtype(np.asarray(y).dtype, np.number):
        return text
    try:
        return type(np.asarray(y).flat[0].item())(text)
    except ValueError:
        raise UserError(f"favourable outcome {text!r} is not a value of {target}",
                        cli_hint="give one of the label column's values with --pos-label") from None


def decision_fairness(
    path: str | Path,
    *,
    target: str,
    prediction: str,
    sensitive: Sequence[str],
    pos_label: str | None = None,
    n_boot: int = 200,
    min_group_size: int = 30,
    intersections: bool = True,
    seed: int = 0,
) -> DecisionFairness:
    """Fairness metrics of the decisions in column ``prediction`` of a CSV or Parquet file, against the
    labels in ``target``, per group of each ``sensitive`` column and (``intersections``, several columns)
    of their intersection, with ``n_boot`` bootstrap intervals; groups under ``min_group_size`` rows are
    not compared. ``pos_label`` is the favourable outcome as text (default: 1)."""
    p = Path(path)
    frame = read_table(p)
    if len(frame) == 0:
        raise FormatError(f"{p}: no data rows")
    columns = [str(c) for c in frame.columns]
    if prediction not in columns:
        raise unknown_column(prediction, columns, "prediction", cli_hint="name the decisions with --prediction")
    sens = list(sensitive)
    ds = from_frame(frame, target=target, sensitive=sens, features=[prediction], name=p.name, source=str(p))
    if ds.y is None:  # pragma: no cover - from_frame reads the target column it was given
        raise DataError("decision fairness needs labels")
    pred, y = ds.X[:, 0], np.asarray(ds.y)
    pos = _coerce_pos_label(pos_label, y, target)
    if pred.dtype == object:  # text decisions: compare as text
        pred, y = pred.astype(str), y.astype(str)
        pos = None if pos is None else str(pos)
    views = [[a] for a in sens] + ([sens] if len(sens) > 1 and intersections else [])
    out = DecisionFairness()
    for v in views:
        r = fairness_metrics(y, pred, encode_groups(ds.sensitive, v), pos_label=pos, n_boot=n_boot,
                             min_group_size=min_group_size, seed=seed)
        out.groups.extend(r.group_table())
        out.disparities.extend(r.disparity_table())
    return out


def proxies_in_file(
    path: str | Path,
    *,
    sensitive: Sequence[str],
    target: str | None = None,
    features: Sequence[str] | None = None,
    max_rows: int = 10000,
    seed: int = 0,
) -> ProxyReport:
    """The features of a data file that reveal each ``sensitive`` column (:func:`find_proxies`); features
    default to every column but ``target`` and the sensitive ones, and must be numeric."""
    ds = load_dataset(path, target=target, sensitive=list(sensitive), features=list(features) if features else None)
    if not ds.is_numeric:
        raise DataError("proxy detection needs numeric features: encode categorical columns as codes",
                        cli_hint="or choose numeric ones with --features")
    return find_proxies(ds.X, ds.sensitive, feature_names=ds.feature_names, feature_types=ds.feature_types,
                        max_rows=max_rows, seed=seed)
