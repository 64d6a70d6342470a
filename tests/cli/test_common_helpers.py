"""Rendering and output-path helpers shared by the CLI commands (cli/_common.py)."""

from __future__ import annotations

import pytest

from modelshield.cli import _common
from modelshield.errors import UserError


def test_print_table_renders_every_cell_and_aligns_the_named_columns(monkeypatch):
    from rich.console import Console

    rec = Console(record=True, width=100, highlight=False)
    monkeypatch.setattr(_common, "console", rec)
    _common.print_table("T", ("name", "value"), [("alpha", 1), ("b", 12345)], right=("value",))
    lines = rec.export_text().splitlines()
    assert lines[0].strip() == "T"
    row1 = next(line for line in lines if "alpha" in line)
    row2 = next(line for line in lines if " b " in line)
    # right-aligned numbers end in the same column; left-aligned names start in the same column
    assert row1.index("1") + 1 == row2.index("12345") + 5
    assert row1.index("alpha") == row2.index("b")


def test_parse_headers():
    assert _common.parse_headers(None) is None and _common.parse_headers([]) is None
    assert _common.parse_headers(["Authorization: Bearer a:b", " X-Y :  z "]) == {"Authorization": "Bearer a:b",
                                                                                  "X-Y": "z"}
    assert _common.parse_headers(["Empty:"]) == {"Empty": ""}
    for bad in ("no colon", ": value"):
        with pytest.raises(UserError, match=r"bad --header .*expected 'Name: value'"):
            _common.parse_headers([bad])
