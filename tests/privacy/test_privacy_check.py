"""The ``privacy`` audit check through the audit runner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelshield.checks.privacy import PrivacyCheck
from modelshield.data.dataset import Dataset
from modelshield.findings import CheckStatus, Severity
from modelshield.policy import Policy
from modelshield.runner import audit


def _run(model, data, train=None, quick=True, policy=None, options=None):
    rep = audit(model, data, train=train, checks=["privacy"], quick=quick, policy=policy,
                options={"privacy": {"n_shadows": 4, **(options or {})}})
    return rep.runs[0].results[0]


def test_leaky_model_gets_a_finding_with_metrics_figure_and_indices(noisy_tabular, leaky_forest):
    X_in, y_in, X_out, y_out = noisy_tabular[:4]
    res = _run(leaky_forest, Dataset(X=X_out, y=y_out), Dataset(X=X_in, y=y_in))
    assert res.status is CheckStatus.FINDINGS
    for key in ("auc", "tpr_at_0_1pct_fpr", "tpr_at_1pct_fpr", "rmia_auc", "lira_offline_tpr_at_1pct_fpr"):
        assert key in res.metrics
    assert res.metrics["tpr_at_1pct_fpr"] > 0.05
    leak = [f for f in res.findings if f.rule_id == "privacy.membership-inference"]
    assert leak and leak[0].severity >= Severity.MEDIUM
    fig = res.figures[0]
    assert fig.log_x and fig.log_y and fig.diagonal and fig.kind == "line"
    assert {s.name for s in fig.series} == {"loss", "lira_offline", "lira_online", "rmia"}
    rows = res.tables["most_exposed_records"]
    assert len(rows) == 10
    assert set(rows[0]) == {"rank", "train_row", "score"}  # indices only: no row contents
    assert all(0 <= r["train_row"] < len(X_in) for r in rows)
    res.to_dict()  # JSON-able


def test_show_rows_option_lists_values(noisy_tabular, leaky_forest):
    X_in, y_in, X_out, y_out = noisy_tabular[:4]
    res = _run(leaky_forest, Dataset(X=X_out, y=y_out), Dataset(X=X_in, y=y_in),
               options={"show_rows": True, "top_k": 3, "attacks": ["loss"]})
    row = res.tables["most_exposed_records"][0]
    assert row[f"x{0}"] == pytest.approx(X_in[row["train_row"], 0])


def test_blind_model_passes(noisy_tabular, blind_forest):
    X_in, y_in, X_out, y_out = noisy_tabular[:4]
    res = _run(blind_forest, Dataset(X=X_out, y=y_out), Dataset(X=X_in, y=y_in))
    assert not [f for f in res.findings if f.rule_id == "privacy.membership-inference"]
    assert res.metrics["auc"] < 0.6


def test_policy_thresholds_grade_the_finding(noisy_tabular, leaky_forest):
    X_in, y_in, X_out, y_out = noisy_tabular[:4]
    lenient = Policy(thresholds={f"privacy.{m}.{lvl}": 1.01 for m in ("tpr_at_1pct_fpr", "auc")
                                 for lvl in ("high", "medium", "low")})
    res = _run(leaky_forest, Dataset(X=X_out, y=y_out), Dataset(X=X_in, y=y_in), policy=lenient)
    assert not res.findings


def test_skipped_without_training_data(noisy_tabular, leaky_forest):
    X_out, y_out = noisy_tabular[2:4]
    res = _run(leaky_forest, Dataset(X=X_out, y=y_out))
    assert res.status is CheckStatus.SKIPPED and "--train" in res.skip_reason


def test_same_data_for_train_and_test_is_an_error_finding(noisy_tabular, leaky_forest):
    X_in, y_in = noisy_tabular[:2]
    ds = Dataset(X=X_in, y=y_in)
    res = _run(leaky_forest, ds, ds)
    assert res.status is CheckStatus.ERROR
    assert "held-out" in res.findings[0].detail


def test_pii_scan_of_text_data_without_a_model():
    frame = pd.DataFrame({
        "email": [f"user{i}@example.org" for i in range(30)],
        "note": ["call me at (555) 201-3344" if i % 3 == 0 else "no contact" for i in range(30)],
        "score": np.arange(30).astype(str),
    })
    ds = Dataset(X=frame.to_numpy(dtype=object), y=None, feature_names=list(frame.columns))
    check = PrivacyCheck()
    from modelshield.checks.base import AuditContext

    ctx = AuditContext(model=None, data=ds)
    assert check.applies(ctx)
    res = check.run(ctx)
    cols = {f.evidence["column"]: f for f in res.findings}
    assert set(cols) == {"email", "note"}
    assert cols["email"].evidence["cells"] == 30 and cols["note"].evidence["cells"] == 10
    assert "example.org" not in str(res.to_dict())  # values never reach the report
