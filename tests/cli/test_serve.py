"""CLI: ``keys create|list|revoke``, ``audit-log verify`` and ``serve`` argument checks."""

from __future__ import annotations

import json
import sqlite3

import pytest

from modelshield.cli import main
from modelshield.serve.auditlog import AuditLog, AuditRecord, load_or_create_key
from modelshield.serve.auth import KeyStore


def test_keys_create_list_revoke(tmp_path, capsys):
    sd = str(tmp_path / "state")
    assert main(["keys", "create", "--name", "alice", "--scope", "predict", "--scope", "monitor",
                 "--state-dir", sd]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("msk_") and "cannot be shown again" in out.err
    kid = token.split("_")[1]
    assert KeyStore(sd).verify(token).scopes == frozenset({"predict", "monitor"})
    assert token.split("_", 2)[2] not in (tmp_path / "state" / "keys.json").read_text()

    assert main(["keys", "list", "--state-dir", sd, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["id"] == kid and "hash" not in listed[0] and "salt" not in listed[0]
    assert main(["keys", "list", "--state-dir", sd]) == 0
    assert "alice" in capsys.readouterr().out

    assert main(["keys", "revoke", kid, "--state-dir", sd]) == 0
    assert json.loads(_run(capsys, ["keys", "list", "--state-dir", sd, "--json"]))[0]["revoked"]
    assert main(["keys", "revoke", "ffffffff", "--state-dir", sd]) == 2
    assert "no key with id" in capsys.readouterr().err


def _run(capsys, args):
    assert main(args) == 0
    return capsys.readouterr().out


def test_keys_bad_input_is_exit_2(tmp_path, capsys):
    sd = str(tmp_path)
    assert main(["keys", "create", "--name", "x", "--scope", "root", "--state-dir", sd]) == 2
    assert "unknown scope" in capsys.readouterr().err
    assert main(["keys", "create", "--name", "x", "--rate", "-1", "--state-dir", sd]) == 2
    (tmp_path / "bad.yaml").write_text("limits: {rate_per_s: -5}\n")
    assert main(["keys", "list", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "limits.rate_per_s" in capsys.readouterr().err
    (tmp_path / "typo.yaml").write_text("limitz: {}\n")
    assert main(["keys", "list", "--config", str(tmp_path / "typo.yaml")]) == 2


def test_state_dir_from_config_and_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MODELSHIELD_STATE_DIR", str(tmp_path / "env"))
    assert main(["keys", "create", "--name", "e"]) == 0
    assert (tmp_path / "env" / "keys.json").is_file()
    (tmp_path / "c.yaml").write_text("state_dir: fromcfg\n")
    assert main(["keys", "create", "--name", "c", "--config", str(tmp_path / "c.yaml")]) == 0
    assert (tmp_path / "fromcfg" / "keys.json").is_file()  # relative to the config file


def _log(tmp_path, n=10):
    sd = tmp_path / "state"
    log = AuditLog(f"sqlite:///{sd / 'audit.db'}", load_or_create_key(sd / "audit.key"))
    for i in range(n):
        log.append(AuditRecord(kind="request", endpoint="/v1/predict", status=200, decision="ok", request_id=str(i)))
    head = log.head()
    log.close()
    return sd, head


def test_audit_log_verify_intact_and_tampered(tmp_path, capsys):
    sd, head = _log(tmp_path)
    assert main(["audit-log", "verify", "--state-dir", str(sd)]) == 0
    assert "intact: 10 records" in capsys.readouterr().out
    assert main(["audit-log", "verify", "--state-dir", str(sd), "--expect-head", f"{head[0]}:{head[1]}"]) == 0
    capsys.readouterr()
    con = sqlite3.connect(sd / "audit.db")
    con.execute("UPDATE modelshield_audit SET status = 500 WHERE seq = 4")
    con.commit()
    con.close()
    assert main(["audit-log", "verify", "--state-dir", str(sd)]) == 3
    err = capsys.readouterr().err
    assert "record 4" in err and "edited" in err
    assert main(["audit-log", "verify", "--state-dir", str(sd), "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["first_bad"] == 4


def test_audit_log_verify_detects_truncation_with_saved_head(tmp_path, capsys):
    sd, head = _log(tmp_path)
    con = sqlite3.connect(sd / "audit.db")
    con.execute("DELETE FROM modelshield_audit WHERE seq > 7")
    con.commit()
    con.close()
    assert main(["audit-log", "verify", "--state-dir", str(sd)]) == 0
    capsys.readouterr()
    assert main(["audit-log", "verify", "--state-dir", str(sd), "--expect-head", f"{head[0]}:{head[1]}"]) == 3
    assert "records after 7 are missing" in capsys.readouterr().err


def test_audit_log_verify_errors(tmp_path, capsys):
    assert main(["audit-log", "verify", "--state-dir", str(tmp_path)]) == 2
    assert "no audit log" in capsys.readouterr().err
    sd, _ = _log(tmp_path, 1)
    (sd / "audit.key").unlink()
    assert main(["audit-log", "verify", "--state-dir", str(sd)]) == 2
    assert "key not found" in capsys.readouterr().err
    assert main(["audit-log", "verify", "--state-dir", str(sd), "--expect-head", "x"]) == 2


@pytest.mark.parametrize("args,msg", [
    (["--tls-cert", "c.pem"], "both --tls-cert and --tls-key"),
    (["--tls-client-ca", "ca.pem"], "needs --tls-cert"),
    (["--tls-cert", "nope.pem", "--tls-key", "nope.key"], "TLS file not found"),
])
def test_serve_rejects_bad_tls_arguments(tmp_path, capsys, args, msg):
    model = tmp_path / "m.bin"
    model.write_bytes(b"not a model")
    assert main(["serve", str(model), "--state-dir", str(tmp_path), *args]) == 2
    assert msg in capsys.readouterr().err


def test_serve_missing_model_and_config(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "none.onnx"), "--state-dir", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "none.onnx"), "--config", str(tmp_path / "no.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_serve_port_in_use_and_text_reference_are_usage_errors(tmp_path, capsys):
    import socket

    import joblib
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    from modelshield.cli import main

    X, y = load_breast_cancer(return_X_y=True)
    model = tmp_path / "m.joblib"
    joblib.dump(LogisticRegression(max_iter=200).fit(X, y), model)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        rc = main(["serve", str(model), "--state-dir", str(tmp_path / "s"), "--port", str(busy.getsockname()[1])])
        err = capsys.readouterr().err
        assert rc == 2 and "cannot listen on 127.0.0.1" in err and "gateway on" not in err
    finally:
        busy.close()
    ref = tmp_path / "ref.csv"
    frame = pd.DataFrame(X[:20], columns=[f"f{i}" for i in range(30)])
    frame["f2"] = frame["f2"].astype(object)
    frame.loc[0, "f2"] = "Female"
    frame.to_csv(ref, index=False)
    rc = main(["serve", str(model), "--state-dir", str(tmp_path / "s2"), "--reference", str(ref), "--port", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and "non-numeric" in err and "Traceback" not in err


def test_keys_list_says_when_a_state_dir_has_no_keys(tmp_path, capsys):
    from modelshield.cli import main

    assert main(["keys", "list", "--state-dir", str(tmp_path / "typo")]) == 0
    assert "no keys in" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()  # listing never creates the state folder


def test_reference_with_missing_values_is_one_clear_error(tmp_path, capsys):
    """A reference file with a blank cell or NaN: exit 2, one line naming the file, row and column."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    model = tmp_path / "m.joblib"
    joblib.dump(LogisticRegression(max_iter=200).fit(X, y), model)
    ref = tmp_path / "ref.csv"
    frame = pd.DataFrame(X[:40], columns=[f"f{i}" for i in range(30)])
    frame.loc[2, "f4"] = np.nan  # written as an empty cell
    frame.to_csv(ref, index=False)
    rc = main(["serve", str(model), "--state-dir", str(tmp_path / "s"), "--reference", str(ref), "--port", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "ref.csv" in err and "row 3, column 5" in err and "Traceback" not in err


def test_a_state_dir_that_cannot_be_created_is_exit_2(tmp_path, capsys):
    blocker = tmp_path / "model.joblib"
    blocker.write_bytes(b"x")  # a file where the state folder's parent should be
    assert main(["keys", "create", "--name", "x", "--state-dir", str(blocker / "state")]) == 2
    err = capsys.readouterr().err
    assert "cannot create the state directory" in err and err.count("\n") == 1


def test_verify_with_another_key_hints_at_the_key(tmp_path, capsys):
    sd, _ = _log(tmp_path, 3)
    other = tmp_path / "other.key"
    other.write_bytes(b"o" * 32)
    assert main(["audit-log", "verify", "--url", f"sqlite:///{sd / 'audit.db'}", "--key-file", str(other)]) == 3
    assert "not the key the log was written with" in capsys.readouterr().err
