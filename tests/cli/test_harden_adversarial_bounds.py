"""``harden adversarial`` states its threat model like ``attack``: --bounds / --bounds-file / inferred box,
one line in the output and the report, and an eps that covers the whole box is refused (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelshield.cli import main


@pytest.fixture(scope="module")
def pixels(tmp_path_factory):
    import torch
    from sklearn.datasets import load_digits

    d = tmp_path_factory.mktemp("px")
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    Xt, yt = torch.as_tensor(X[:1200]), torch.as_tensor(y[:1200])
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt), yt).backward()
        opt.step()
    torch.jit.save(torch.jit.script(net.eval()), str(d / "mlp.pt"))
    np.savez(d / "train.npz", X=X[:300], y=y[:300])
    np.savez(d / "test.npz", X=X[1200:1400], y=y[1200:1400])
    return d


def _harden(pixels, *extra):
    return main(["harden", "adversarial", str(pixels / "mlp.pt"), "--trust", "--data", str(pixels / "train.npz"),
                 "--test", str(pixels / "test.npz"), "--epochs", "1", "--attack-steps", "2", "--force", *extra])


@pytest.mark.parametrize(("extra", "source"), [([], "inferred"), (["--bounds", "0,1"], "stated box")])
def test_threat_model_is_stated(pixels, capsys, extra, source):
    rep = pixels / f"rep-{len(extra)}.json"
    rc = _harden(pixels, "--eps", "0.05", "--out", str(pixels / "h.pt"), "--report", str(rep), *extra)
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "threat model" in out.out
    threat = json.loads(rep.read_text())["threat"]
    assert threat["units"] == "raw"  # pixels in [0, 1]: the image box, raw units
    assert threat["description"] and source in threat["bounds_source"]


@pytest.mark.parametrize(("extra", "msg"), [
    (["--eps", "1.0"], "cannot be meaningful"),
    (["--eps", "3", "--bounds", "0,2"], "cannot be meaningful"),
    (["--bounds", "1,0"], "--bounds"),
    (["--bounds", "zero,one"], "--bounds"),
])
def test_bad_threat_models_are_usage_errors(pixels, capsys, extra, msg):
    rc = _harden(pixels, "--out", str(pixels / "bad.pt"), *extra)
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and "Traceback" not in err
    assert not (pixels / "bad.pt").exists()
