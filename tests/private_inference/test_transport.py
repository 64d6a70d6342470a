"""he-serve / he-client: two processes on loopback; wrong key refused (exit 3); port in use (exit 2)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("tenseal")

from modelshield.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(proc) -> None:
    """Wait for he-serve's 'serving on' line (a probe connection would be served as the one client)."""
    line = proc.stdout.readline().decode()
    assert line.startswith("serving on"), line + proc.stderr.read().decode()


@pytest.fixture(scope="module")
def served(tmp_path_factory, sq_mlp, breast_cancer):
    import torch

    d = tmp_path_factory.mktemp("serve")
    torch.jit.save(torch.jit.script(sq_mlp), d / "sq.pt")
    _, Xte, _, yte = breast_cancer
    df = pd.DataFrame(Xte[:30], columns=[f"f{i}" for i in range(30)])
    df["label"] = yte[:30]
    df.to_csv(d / "rows.csv", index=False)
    assert main(["private", "session-key", str(d / "key")]) == 0
    (d / "other").write_bytes(b"x" * 32)
    return d


def _serve(d, port):
    proc = subprocess.Popen([sys.executable, "-m", "modelshield", "private", "he-serve", str(d / "sq.pt"), "--trust",
                             "--session-key-file", str(d / "key"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_listening(proc)
    return proc


def test_two_processes_agree_with_plaintext(served, sq_mlp, breast_cancer):
    import torch

    port = _free_port()
    proc = _serve(served, port)
    try:
        out = served / "client.json"
        rc = main(["private", "he-client", "--server", f"127.0.0.1:{port}", "--session-key-file",
                   str(served / "key"), "--data", str(served / "rows.csv"), "--target", "label", "--json", str(out)])
        assert rc == 0
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    got = json.loads(out.read_text())["predicted_index"]
    _, Xte, _, _ = breast_cancer
    with torch.no_grad():
        want = sq_mlp(torch.as_tensor(Xte[:30])).argmax(1).numpy()
    assert np.array_equal(np.asarray(got), want)


def test_wrong_session_key_refused_exit_3(served, capsys):
    port = _free_port()
    proc = _serve(served, port)
    try:
        rc = main(["private", "he-client", "--server", f"127.0.0.1:{port}", "--session-key-file",
                   str(served / "other"), "--data", str(served / "rows.csv"), "--target", "label"])
    finally:
        proc.kill()
        proc.wait()
    assert rc == 3 and "authentication" in capsys.readouterr().err


def test_port_in_use_exit_2(served, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc = main(["private", "he-serve", str(served / "sq.pt"), "--trust", "--session-key-file",
                   str(served / "key"), "--port", str(port)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "in use" in err and "\n" not in err


def test_short_session_key_exit_2(served, capsys):
    (served / "short").write_bytes(b"abc")
    rc = main(["private", "he-client", "--server", "127.0.0.1:1", "--session-key-file", str(served / "short"),
               "--data", str(served / "rows.csv")])
    assert rc == 2 and "32 bytes" in capsys.readouterr().err
