"""Reading the audit log in chunks: a chunk below one row is refused (it used to make `query` ignore `limit`
(chunk=-1 returned every record) or return nothing (chunk=0))."""

from __future__ import annotations

import pytest

from modelshield.errors import UserError
from modelshield.serve.auditlog import AuditLog, AuditRecord

KEY = b"k" * 32


@pytest.fixture
def log(tmp_path):
    lg = AuditLog(f"sqlite:///{tmp_path / 'a.db'}", KEY)
    for _ in range(7):
        lg.append(AuditRecord(kind="request", endpoint="/v1/predict", status=200, decision="ok"))
    yield lg
    lg.close()


@pytest.mark.parametrize("chunk", [0, -1, True, 2.0])
def test_a_chunk_below_one_row_is_refused(log, chunk):
    with pytest.raises(UserError, match=r"^audit log reads need a chunk of at least 1 row, not "):
        list(log.query(limit=5, chunk=chunk))
    with pytest.raises(UserError, match=r"^audit log reads need a chunk of at least 1 row, not "):
        list(log.iter_records(chunk=chunk))


@pytest.mark.parametrize("chunk", [1, 2, 5, 6, 2000])
def test_limit_holds_for_every_chunk_size(log, chunk):
    assert [r["seq"] for r in log.query(limit=5, chunk=chunk)] == [1, 2, 3, 4, 5]
    assert [r["seq"] for r in log.query(limit=5, chunk=chunk, newest_first=True)] == [7, 6, 5, 4, 3]
    assert [r["seq"] for r in log.iter_records(chunk=chunk)] == list(range(1, 8))
