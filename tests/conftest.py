"""Shared fixtures: small real models and data sets built on the fly (no downloads)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest


@pytest.fixture(scope="session")
def breast_cancer():
    """(X_train, X_test, y_train, y_test), standardised float32, from scikit-learn's bundled set."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    return (sc.transform(Xtr).astype(np.float32), sc.transform(Xte).astype(np.float32), ytr, yte)


@pytest.fixture(scope="session")
def sk_logreg(breast_cancer):
    from sklearn.linear_model import LogisticRegression

    Xtr, _, ytr, _ = breast_cancer
    return LogisticRegression(max_iter=500).fit(Xtr, ytr)


@pytest.fixture(scope="session")
def torch_mlp(breast_cancer):
    """A small trained PyTorch MLP (30 -> 16 -> 2, logits)."""
    import torch

    torch.manual_seed(0)
    Xtr, _, ytr, _ = breast_cancer
    net = torch.nn.Sequential(torch.nn.Linear(30, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    X = torch.as_tensor(Xtr)
    y = torch.as_tensor(ytr)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
    return net.eval()


# --------------------------------------------------------------------------------------------------
# Real services in CI. Locally a test that needs PostgreSQL, Redis or Chromium skips with the reason
# when the service is unreachable; in CI (CI=true, set by .ci/run) such a skip is turned into a
# failure, so a broken CI machine cannot silently drop the real-component tests.
# --------------------------------------------------------------------------------------------------
#: marker -> fixtures that need that service (a test using the fixture is marked automatically)
SERVICE_MARKERS: dict[str, tuple[str, ...]] = {
    "postgres": ("pg_url",),
    "redis": ("redis_url",),
    "browser": ("browser", "driver", "chrome"),
}


def in_ci() -> bool:
    """True when running in CI: ``CI`` is set to a true value (GitHub Actions, GitLab, .ci/run)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in SERVICE_MARKERS.items():
            if names.intersection(fixtures) and marker not in item.keywords:
                item.add_marker(getattr(pytest.mark, marker))


def service_markers(item) -> list[str]:
    return [m for m in SERVICE_MARKERS if item.get_closest_marker(m) is not None]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and in_ci()):
        return
    needs = service_markers(item)
    if not needs or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"{item.nodeid} needs {', '.join(needs)}, which CI must provide "
                       f"(CI=true refuses to skip it): {reason}")
