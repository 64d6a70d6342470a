"""Fixtures for the scanner tests: the generated corpus (built once per session, never loaded)."""

from __future__ import annotations

import pytest

from .corpus import Case, build


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Case]:
    root = tmp_path_factory.mktemp("scan-corpus")
    return {f"{c.expect}/{c.name}": c for c in build(root)}
