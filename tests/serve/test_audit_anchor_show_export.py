"""Issue 15 C.5(e) and C.6: the audit chain's head is anchored outside the database (file, /metrics,
webhook) and ``audit-log verify`` checks it by default; ``audit-log show|export`` read the log with
filters, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from modelshield.cli import main
from modelshield.serve.auditlog import AuditLog, AuditRecord, load_or_create_key, read_anchor, write_anchor


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    """``(audit config, config file)`` for a SQLite log in the state dir or a PostgreSQL table."""
    sd = tmp_path / "state"
    audit = {} if request.param == "sqlite" else dict(zip(("url", "table"), request.getfixturevalue("pg_url"),
                                                          strict=True))
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(yaml.safe_dump({"state_dir": str(sd), "audit": audit}))
    return audit, cfg


def _delete_newest(gw, n: int) -> None:
    eng = sa.create_engine(gw.config.audit_url)
    with eng.begin() as c:
        c.execute(sa.text(f'DELETE FROM "{gw.config.audit.table}" WHERE seq > '
                          f'(SELECT max(seq) FROM "{gw.config.audit.table}") - :n'), {"n": n})
    eng.dispose()


def _serve(make_gateway, breast_cancer, audit, n=12, **cfg):
    app, gw, keys = make_gateway(audit={**audit, "anchor_every_s": 0}, input={"policy": "log"},
                                 state_dir=str(cfg.pop("state_dir")), **cfg)
    with TestClient(app) as c:
        for i in range(n):
            assert c.post("/v1/predict", json={"inputs": breast_cancer[1][i : i + 1].tolist()},
                          headers=bearer(keys["predict"])).status_code == 200
    return gw  # closed by the lifespan: the final head is anchored


@pytest.mark.parametrize("n_deleted", [1, 3, 7])
def test_deleting_the_newest_records_is_detected_by_default(make_gateway, breast_cancer, store, tmp_path, capsys,
                                                           n_deleted):
    audit, cfg = store
    gw = _serve(make_gateway, breast_cancer, audit, state_dir=tmp_path / "state")
    anchor = read_anchor(gw.anchor_file, gw.config.audit.table)
    assert anchor is not None and (anchor.seq, anchor.hash) == gw.audit.last_head and anchor.seq == 12
    assert main(["audit-log", "verify", "--config", str(cfg)]) == 0
    assert "reaches record 12" in capsys.readouterr().err
    _delete_newest(gw, n_deleted)
    assert main(["audit-log", "verify", "--config", str(cfg)]) == 3  # no --expect-head needed
    err = capsys.readouterr().err
    assert f"records after {12 - n_deleted} are missing" in err
    # opting out says what is not checked
    assert main(["audit-log", "verify", "--config", str(cfg), "--no-anchor"]) == 0
    assert "would not be detected" in capsys.readouterr().err


def test_truncated_then_refilled_to_the_anchor_is_detected(make_gateway, breast_cancer, store, tmp_path, capsys):
    """Delete the newest records and append new ones up to the anchored seq: the hash at that seq differs."""
    audit, cfg = store
    gw = _serve(make_gateway, breast_cancer, audit, state_dir=tmp_path / "state")
    _delete_newest(gw, 4)
    log = AuditLog(gw.config.audit_url, load_or_create_key(gw.config.audit_key_file), table=gw.config.audit.table)
    for i in range(6):
        log.append(AuditRecord(kind="request", endpoint="/v1/predict", status=200, decision="ok", request_id=f"f{i}"))
    assert log.verify().ok  # a consistent, re-keyed chain on its own ...
    log.close()
    assert main(["audit-log", "verify", "--config", str(cfg), "--json"]) == 3  # ... but not the anchored one
    out = json.loads(capsys.readouterr().out)
    assert out["first_bad"] == 12 and "saved head" in out["reason"]


def test_the_gateway_anchors_periodically_and_on_metrics_and_the_webhook(make_gateway, breast_cancer, tmp_path):
    import http.server
    import threading

    got = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        app, gw, keys = make_gateway(audit={"anchor_every_s": 0.05}, input={"policy": "log"},
                                     webhook=f"http://127.0.0.1:{srv.server_port}/hook")
        with TestClient(app) as c:
            for i in range(3):
                c.post("/v1/predict", json={"inputs": breast_cancer[1][i : i + 1].tolist()},
                       headers=bearer(keys["predict"]))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                a = read_anchor(gw.anchor_file)
                if a is not None and a.seq == 3 and any(g.get("type") == "audit_anchor" for g in got):
                    break
                time.sleep(0.02)
            head = gw.audit.head()
            metrics = c.get("/metrics", headers=bearer(keys["monitor"])).text
    finally:
        srv.shutdown()
    assert read_anchor(gw.anchor_file).seq == 3  # written while the gateway ran, not only at shutdown
    hooks = [g for g in got if g.get("type") == "audit_anchor"]
    assert hooks and hooks[-1]["seq"] == 3 and hooks[-1]["hash"] == head[1]
    assert f'modelshield_audit_head_seq{{hash="{head[1]}"}} {float(head[0])}' in metrics
    assert metrics.count("modelshield_audit_head_seq{") == 1  # one series, not one per head seen


def test_the_admin_verify_endpoint_uses_the_anchor(make_gateway, breast_cancer, tmp_path):
    gw = _serve(make_gateway, breast_cancer, {}, state_dir=tmp_path / "s1")
    _delete_newest(gw, 2)
    app, _gw2, keys = make_gateway(state_dir=str(tmp_path / "s1"), audit={"anchor_every_s": 0})
    with TestClient(app) as c:
        v = c.get("/admin/audit/verify", headers=bearer(keys["admin"])).json()
    assert v["ok"] is False and v["anchor"]["seq"] == 12 and "missing" in v["reason"]


def test_anchors_only_move_forward_and_bad_anchor_files_are_clear_errors(tmp_path, capsys):
    p = tmp_path / "audit.anchor"
    h1, h2 = "a" * 64, "b" * 64
    assert write_anchor(p, 5, h1, table="t")
    assert not write_anchor(p, 4, h2, table="t")  # a truncated log cannot pull its anchor back
    assert write_anchor(p, 5, h2, table="u")  # tables are anchored separately
    assert read_anchor(p, "t").hash == h1 and read_anchor(p, "u").hash == h2 and read_anchor(p, "v") is None
    sd = tmp_path / "state"
    log = AuditLog(f"sqlite:///{sd / 'audit.db'}", load_or_create_key(sd / "audit.key"))
    log.append(AuditRecord(kind="request"))
    log.close()
    for bad in ("{not json", '{"anchors": []}', '{"anchors": {"modelshield_audit": {"seq": 1, "hash": "zz"}}}',
                '{"anchors": {"modelshield_audit": {"seq": "x", "hash": "' + "a" * 64 + '", "time": 0}}}'):
        (sd / "audit.anchor").write_text(bad)
        assert main(["audit-log", "verify", "--state-dir", str(sd)]) == 2, bad
        assert "anchor" in capsys.readouterr().err
    assert main(["audit-log", "verify", "--state-dir", str(sd), "--anchor", str(tmp_path / "none")]) == 2


# -- C.6: show and export ----------------------------------------------------------------------------

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
_KEYS = ["aaaa1111", "bbbb2222", None]
_DECISIONS = ["ok", "flagged", "rejected:rate", "rejected:auth_401", "rejected:rows", "create:aaaa1111"]
_KINDS = {"ok": "request", "flagged": "request", "rejected:rate": "request", "rejected:auth_401": "auth",
          "rejected:rows": "request", "create:aaaa1111": "admin"}


def _records(n=60):
    out = []
    for i in range(n):
        d = _DECISIONS[(i * 7) % len(_DECISIONS)]
        out.append(AuditRecord(kind=_KINDS[d], endpoint="/v1/predict", status=200 if d in ("ok", "flagged") else 429,
                               decision=d, key_id=_KEYS[i % 3] if d != "rejected:auth_401" else None,
                               client=f"10.0.0.{i % 5}", request_id=f"r{i}", n_rows=i, ts_us=T0 + i * 3_600_000_000,
                               output={"predictions": [i % 2]}, scores={"ood": i / 10}))
    return out


def _expected(recs, key=None, since=None, until=None, decision=None, kind=None):
    out = []
    for seq, r in enumerate(recs, 1):
        if key is not None and r.key_id != key:
            continue
        if since is not None and r.ts_us < since:
            continue
        if until is not None and r.ts_us >= until:
            continue
        if kind is not None and r.kind != kind:
            continue
        if decision is not None:
            if decision.endswith("*"):
                if not r.decision.startswith(decision[:-1]):
                    continue
            elif r.decision != decision and not r.decision.startswith(decision + ":"):
                continue
        out.append(seq)
    return out


def _iso(us):
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).isoformat()


_FILTERS = [
    {}, {"key": "aaaa1111"}, {"key": "bbbb2222", "decision": "ok"}, {"decision": "rejected"},
    {"decision": "rejected:rate"}, {"decision": "rej*"}, {"decision": "rejected:r*"}, {"kind": "admin"},
    {"since": T0 + 10 * 3_600_000_000}, {"until": T0 + 5 * 3_600_000_000},
    {"since": T0 + 20 * 3_600_000_000, "until": T0 + 40 * 3_600_000_000, "decision": "flagged"},
    {"key": "nobody"}, {"decision": "ok_"},
]


def _args(f, iso):
    a = []
    for k, v in f.items():
        if k in ("since", "until"):
            v = _iso(v) if iso else str(v / 1e6)
        a += [f"--{k}", str(v)]
    return a


@pytest.mark.parametrize("i", range(len(_FILTERS)))
def test_export_filters_match_a_plain_reading_of_the_records(store, tmp_path, capsys, i):
    audit, cfg = store
    conf = yaml.safe_load(cfg.read_text())
    sd = tmp_path / "state"
    log = AuditLog(audit.get("url", f"sqlite:///{sd / 'audit.db'}"), load_or_create_key(sd / "audit.key"),
                   table=audit.get("table", "modelshield_audit"))
    recs = _records()
    for r in recs:
        log.append(r)
    log.close()
    f = _FILTERS[i]
    want = _expected(recs, **f)
    for iso in (True, False):
        assert main(["audit-log", "export", "--config", str(cfg), *_args(f, iso)]) == 0
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert [r["seq"] for r in lines] == want, (f, iso)
    if want:
        first = lines[0]
        src = recs[want[0] - 1]
        assert first["client"] == src.client and first["output"] == src.output and first["scores"] == src.scores
        assert first["time"] == _iso(src.ts_us) and len(first["hash"]) == 64
    # show: the newest N of the same selection, oldest first; as a table or JSON lines
    assert main(["audit-log", "show", "--config", str(cfg), "-n", "5", "--json", *_args(f, True)]) == 0
    assert [json.loads(x)["seq"] for x in capsys.readouterr().out.splitlines()] == want[-5:]
    assert main(["audit-log", "show", "--config", str(cfg), "-n", "5", *_args(f, True)]) == 0
    out = capsys.readouterr()
    if want:
        assert all(str(s) in out.out for s in want[-5:]) and recs[want[-1] - 1].decision in out.out
    else:
        assert "no matching records" in out.err
    assert conf["state_dir"] == str(sd)


def test_export_to_a_file_and_bad_arguments(tmp_path, capsys):
    sd = tmp_path / "state"
    log = AuditLog(f"sqlite:///{sd / 'audit.db'}", load_or_create_key(sd / "audit.key"))
    recs = _records(10)
    for r in recs:
        log.append(r)
    log.close()
    out = tmp_path / "audit.jsonl"
    assert main(["audit-log", "export", "--state-dir", str(sd), "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 10 and "wrote 10 records" in capsys.readouterr().err
    assert main(["audit-log", "export", "--state-dir", str(sd), "-o", str(out)]) == 2  # exists
    assert main(["audit-log", "export", "--state-dir", str(sd), "-o", str(out), "--force", "--key", "aaaa1111"]) == 0
    assert [json.loads(x)["seq"] for x in out.read_text().splitlines()] == _expected(recs, key="aaaa1111") == [1, 7]
    for bad in (["--since", "yesterday"], ["--until", "2026-13-01"]):
        assert main(["audit-log", "export", "--state-dir", str(sd), *bad]) == 2
        assert "ISO 8601" in capsys.readouterr().err
    assert main(["audit-log", "show", "--state-dir", str(sd), "-n", "-1"]) == 2
    assert main(["audit-log", "show", "--state-dir", str(tmp_path / "empty")]) == 2
    assert "no audit log" in capsys.readouterr().err
