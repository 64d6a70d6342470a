"""``modelshield audit`` from the command line: exit codes, reports, and every error path."""

from __future__ import annotations

import json
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest

from modelshield.cli import main


@pytest.fixture
def files(tmp_path, breast_cancer, sk_logreg):
    _, Xte, _, yte = breast_cancer
    df = pd.DataFrame(Xte, columns=[f"f{i}" for i in range(30)])
    df.insert(3, "group", np.where(np.arange(len(df)) % 2 == 0, "a", "b"))
    df["label"] = yte
    data = tmp_path / "test.csv"
    df.to_csv(data, index=False)
    model = tmp_path / "model.joblib"
    joblib.dump(sk_logreg, model)
    return tmp_path, model, data


def run(args, capsys):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


def test_audit_passes_and_writes_all_reports(files, capsys):
    tmp, model, data = files
    html, js, sarif = tmp / "r.html", tmp / "r.json", tmp / "r.sarif"
    rc, out, _ = run(["audit", model, "--data", data, "--target", "label", "--sensitive", "group", "--checks",
                      "baseline", "--trust", "--out", html, "--json", js, "--sarif", sarif, "--no-progress"], capsys)
    assert rc == 0, out
    doc = json.loads(js.read_text())
    assert doc["passed"] and doc["runs"][0]["results"][0]["metrics"]["accuracy"] > 0.9
    assert doc["runs"][0]["model"]["sha256"] and doc["runs"][0]["data"]["sensitive"] == ["group"]
    assert json.loads(sarif.read_text())["version"] == "2.1.0"
    assert "Model baseline" in html.read_text()
    assert "baseline" in out and "PASS" in out


def test_policy_failure_exits_1(files, capsys):
    tmp, model, data = files
    pol = tmp / "strict.yaml"
    pol.write_text("limits:\n  - baseline.accuracy >= 0.999\n")
    rc, out, _ = run(["audit", model, "-d", data, "-t", "label", "-s", "group", "-c", "baseline", "--trust",
                      "--policy", pol, "-o", tmp / "r.html", "--no-progress"], capsys)
    assert rc == 1 and "limit failed: baseline.accuracy >= 0.999" in out


@pytest.mark.parametrize(("mutate", "needle"), [
    (lambda t, m, d: ["audit", t / "nope.joblib", "-d", d, "-t", "label", "--trust"], "model file not found"),
    (lambda t, m, d: ["audit", m, "-d", t / "nope.csv", "-t", "label", "--trust"], "data file not found"),
    (lambda t, m, d: ["audit", m, "-d", d, "-t", "nolabel", "--trust"], "target column 'nolabel' is not in the data"),
    (lambda t, m, d: ["audit", m, "-d", d, "-t", "label", "--trust"], "--features"),  # 'group' is not a model feature
    (lambda t, m, d: ["audit", m, "-d", d, "-t", "label", "-s", "group", "--trust", "--policy", t / "bad.yaml"],
     "not valid YAML"),
    (lambda t, m, d: ["audit", m, "-d", d, "-t", "label", "-s", "group", "--trust", "-o", t / "no" / "dir" / "r.html"],
     "does not exist"),
    (lambda t, m, d: ["audit", t / "junk.bin", "-d", d, "-t", "label", "--trust"], "unsupported model format"),
    (lambda t, m, d: ["audit", m, "-d", d, "-t", "label", "-s", "group", "--trust", "-c", "bogus"], "unknown check"),
    (lambda t, m, d: ["audit", m, "-d", d, "-t", "label", "-s", "group", "--trust", "-O", "baseline"], "bad --option"),
    (lambda t, m, d: ["audit", m, "-d", d, "-t", "label", "-s", "group", "--trust", "-O", "nosuch.x=1"],
     "unknown check 'nosuch'"),
    (lambda t, m, d: ["audit", m, "-d", t / "badlabel.csv", "-t", "label", "-s", "group", "--trust"],
     "label 7 is not one of the model's classes"),
    (lambda t, m, d: ["audit", m, "-d", t / "nan.csv", "-t", "label", "-s", "group", "--trust"],
     "missing or non-finite value in row 3, feature 'f4'"),
    (lambda t, m, d: ["audit", m, "-d", d, "-t", "label", "-s", "group", "--trust", "--signature", d],
     "--signature needs --public-key"),
    (lambda t, m, d: ["audit", m, "-d", d, "-t", "label", "-s", "group", "--trust", "--key-file", t / "no.key"],
     "--key-file"),
    (lambda t, m, d: ["audit", m, "-d", d, "-t", "label", "-s", "group", "--trust", "--json", d, "--force"],
     "is also an input"),
    (lambda t, m, d: ["audit", m, "-d", d, "-t", "label", "-s", "group", "--trust", "--json", t / "x.html"],
     "must name different files"),
])
def test_bad_input_is_one_line_exit_2(files, capsys, mutate, needle):
    tmp, model, data = files
    (tmp / "bad.yaml").write_text("fail_on: [oops\n")
    (tmp / "junk.bin").write_bytes(b"\x07\x01garbage" * 50)
    df = pd.read_csv(data)
    df.assign(label=np.where(np.arange(len(df)) == 4, 7, df["label"])).to_csv(tmp / "badlabel.csv", index=False)
    df.assign(f4=np.where(np.arange(len(df)) == 2, np.nan, df["f4"])).to_csv(tmp / "nan.csv", index=False)
    before = data.read_bytes()
    rc, _, err = run([*mutate(tmp, model, data), "--no-progress", "-o", tmp / "x.html"]
                     if "-o" not in mutate(tmp, model, data) else [*mutate(tmp, model, data), "--no-progress"], capsys)
    assert rc == 2, err
    assert needle in _one_line_error(err)
    assert not (tmp / "x.html").exists()
    assert data.read_bytes() == before  # never written over, not even with --force


def test_pickles_are_scanned_then_loaded_and_malicious_ones_refused(files, capsys):
    """No --trust: an ordinary scikit-learn joblib file is scanned and loaded through the restricted
    unpickler; a pickle with a payload is refused with exit 3 before anything is loaded."""
    from modelshield.demo import malicious_pickle_bytes

    tmp, model, data = files
    rc, _out, err = run(["audit", model, "-d", data, "-t", "label", "-s", "group", "-c", "baseline",
                        "-o", tmp / "r.html", "--no-progress"], capsys)
    assert rc == 0, err
    evil = tmp / "evil.joblib"
    evil.write_bytes(malicious_pickle_bytes("echo pwned"))
    rc, _, err = run(["audit", evil, "-d", data, "-t", "label", "-s", "group", "-o", tmp / "e.html"], capsys)
    assert rc == 3 and "os.system" in _one_line_error(err) and not (tmp / "e.html").exists()


def test_existing_report_is_not_clobbered(files, capsys):
    tmp, model, data = files
    html = tmp / "r.html"
    html.write_text("my notes")
    args = ["audit", model, "-d", data, "-t", "label", "-s", "group", "-c", "baseline", "--trust", "-o", html,
            "--no-progress"]
    rc, _, err = run(args, capsys)
    assert rc == 2 and "--force" in _one_line_error(err) and html.read_text() == "my notes"
    rc, _, _ = run([*args, "--force"], capsys)
    assert rc == 0 and "modelshield" in html.read_text()


def test_debug_shows_traceback(files):
    tmp, _, data = files
    p = subprocess.run([sys.executable, "-m", "modelshield", "--debug", "audit", tmp / "missing.pt", "-d", data],
                       capture_output=True, text=True, cwd=tmp)
    assert p.returncode == 2 and "Traceback" in p.stderr and "InputNotFoundError" in p.stderr
    p = subprocess.run([sys.executable, "-m", "modelshield", "audit", tmp / "missing.pt", "-d", data],
                       capture_output=True, text=True, cwd=tmp)
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_policy_show_and_validate(tmp_path, capsys):
    rc, out, _ = run(["policy", "show"], capsys)
    assert rc == 0 and "fail_on: high" in out
    good = tmp_path / "p.yaml"
    good.write_text("fail_on: medium\nlimits: ['privacy.auc <= 0.6']\n")
    rc, out, _ = run(["policy", "validate", good], capsys)
    assert rc == 0 and "valid" in out
    rc, out, _ = run(["policy", "show", good], capsys)
    assert "fail_on: medium" in out and "privacy.auc <= 0.6" in out
    bad = tmp_path / "b.yaml"
    bad.write_text("fail_on: awful\n")
    rc, _, err = run(["policy", "validate", bad], capsys)
    assert rc == 2 and "fail_on" in _one_line_error(err)


def test_usage_errors_exit_2(capsys):
    rc, _, _ = run(["audit", "--no-such-flag"], capsys)
    assert rc == 2
    rc, _, _ = run(["nonsense-command"], capsys)
    assert rc == 2


def test_audit_encrypted_and_signed_model(files, capsys):
    """verify -> decrypt -> scan -> load, from the audit command line."""
    tmp, model, data = files
    key, priv, pub = tmp / "master.key", tmp / "sign.pem", tmp / "sign.pub.pem"
    enc = tmp / "model.enc"
    assert run(["protect", "keygen", key], capsys)[0] == 0
    assert run(["protect", "keygen", priv, "--type", "ecdsa-p256", "--public-out", pub], capsys)[0] == 0
    assert run(["protect", "encrypt", model, enc, "--key-file", key], capsys)[0] == 0
    assert run(["protect", "sign", enc, "--private-key", priv], capsys)[0] == 0
    base = ["audit", enc, "-d", data, "-t", "label", "-s", "group", "-c", "baseline", "--no-progress"]
    rc, _out, err = run([*base, "--key-file", key, "--public-key", pub, "-o", tmp / "ok.html"], capsys)
    assert rc == 0, err
    rc, _, err = run([*base, "-o", tmp / "nokey.html"], capsys)
    assert rc == 2 and "key" in _one_line_error(err)  # no key given: a usage error
    blob = bytearray(enc.read_bytes())
    blob[-40] ^= 1
    enc.write_bytes(bytes(blob))
    rc, _, err = run([*base, "--key-file", key, "--public-key", pub, "-o", tmp / "tampered.html"], capsys)
    assert rc == 3 and not (tmp / "tampered.html").exists()
    _one_line_error(err)


def test_audit_remote_endpoint_with_header(files, capsys, sk_logreg):
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.headers.get("Authorization") != "Bearer sekret":
                self.send_response(401)
                self.end_headers()
                return
            X = np.asarray(body["inputs"], dtype=float)
            data = json.dumps({"probabilities": sk_logreg.predict_proba(X).tolist(), "classes": [0, 1]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        tmp, _, data = files
        url = f"http://127.0.0.1:{srv.server_address[1]}/v1/predict"
        base = ["audit", url, "-d", data, "-t", "label", "-s", "group", "-c", "baseline", "--no-progress"]
        rc, _, err = run([*base, "-H", "Authorization: Bearer sekret", "-o", tmp / "ok.html"], capsys)
        assert rc == 0, err
        rc, _, err = run([*base, "-o", tmp / "no.html"], capsys)
        assert rc == 2 and "HTTP 401" in _one_line_error(err)
    finally:
        srv.shutdown()


def test_reports_are_written_all_or_nothing(files, capsys, monkeypatch):
    """A report that cannot be written (no permission, read-only file system) is exit 2 and leaves no other
    report behind: all of them are written to temp files first and renamed only when all succeeded."""
    import tempfile

    tmp, model, data = files
    real = tempfile.mkstemp

    def mkstemp(*a, **kw):
        if str(kw.get("prefix", "")).startswith(".r.sarif"):
            raise PermissionError(13, "Permission denied")
        return real(*a, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    rc, _, err = run(["audit", model, "-d", data, "-t", "label", "-s", "group", "-c", "baseline", "--trust",
                      "-o", tmp / "r.html", "--json", tmp / "r.json", "--sarif", tmp / "r.sarif", "--no-progress"],
                     capsys)
    assert rc == 2 and "cannot write" in _one_line_error(err) and "Permission denied" in err
    assert not any(tmp.glob("r.*")) and not any(tmp.glob(".r.*"))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_audit_key_file_permissions_warn_or_refuse_with_strict(files, capsys, mode):
    """A key file readable by group/others: one 'warning:' line (as ssh warns), exit 3 with --strict."""
    tmp, model, data = files
    key, enc = tmp / f"loose-{mode:o}.key", tmp / f"model-{mode:o}.enc"
    assert run(["protect", "keygen", key], capsys)[0] == 0
    assert run(["protect", "encrypt", model, enc, "--key-file", key], capsys)[0] == 0
    key.chmod(mode)
    base = ["audit", enc, "-d", data, "-t", "label", "-s", "group", "-c", "baseline", "--no-progress",
            "--key-file", key]
    rc, _, err = run([*base, "-o", tmp / f"warn-{mode:o}.html"], capsys)
    assert rc == 0, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert any(ln.startswith("warning:") and "is accessible by" in ln for ln in lines), err
    assert "KeyPermissionWarning" not in err and "warnings.warn" not in err  # not Python's warning format
    rc, _, err = run([*base, "--strict", "-o", tmp / f"strict-{mode:o}.html"], capsys)
    assert rc == 3 and not (tmp / f"strict-{mode:o}.html").exists()
    _one_line_error(err)
    key.chmod(0o600)
    rc, _, err = run([*base, "--strict", "-o", tmp / f"ok-{mode:o}.html"], capsys)
    assert rc == 0 and "warning" not in err, err
