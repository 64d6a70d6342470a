"""Issue 15 B from the command line: ``modelshield attack`` and ``modelshield audit`` state and use a
threat model that does not overstate robustness (the [0, 1] box for pixel data, ``--bounds``,
``--bounds-file``, ``robustness.bounds``/``robustness.bounds_file``), refuse an eps that covers the
whole box, and give scikit-learn models a black-box attack by default."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelshield.checks.robustness import RobustnessCheck
from modelshield.cli import main
from modelshield.errors import UserError


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Digits scaled to [0, 1] (some pixels are 0 in every row), a TorchScript MLP and two
    scikit-learn models, as NPZ and CSV (columns p0..p63)."""
    import joblib
    import pandas as pd
    import torch
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("digits")
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=120, random_state=0, stratify=y)
    assert (Xte.max(axis=0) == 0).any()  # the pixels that the old default could never move
    np.savez(d / "test.npz", X=Xte, y=yte)
    np.savez(d / "train.npz", X=Xtr, y=ytr)
    cols = [f"p{i}" for i in range(64)]
    pd.DataFrame(Xte, columns=cols).assign(label=yte).to_csv(d / "test.csv", index=False)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.as_tensor(Xtr)), torch.as_tensor(ytr)).backward()
        opt.step()
    torch.jit.save(torch.jit.script(net.eval()), str(d / "mlp.pt"))
    joblib.dump(LogisticRegression(max_iter=300).fit(Xtr, ytr), d / "lr.joblib")
    joblib.dump(DecisionTreeClassifier(max_depth=8, random_state=0).fit(Xtr, ytr), d / "tree.joblib")
    return d


def _attack(d, *args):
    return ["attack", str(d / "mlp.pt"), "--trust", "--data", str(d / "test.npz"), "--steps", "20", *args]


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("eps", ["0.05", "0.1"])
def test_pixel_data_is_attacked_in_the_unit_box_by_default(digits, capsys, eps):
    """The default equals the stated [0, 1] box in raw units -- not std units in each pixel's observed
    range (robust accuracy 0.9+ where ART's PGD finds well under half at eps 0.1)."""
    runs = {}
    for label, extra in (("default", []), ("stated", ["--bounds", "0,1", "--units", "raw"]),
                         ("std-units", ["--units", "std"])):
        out = digits / f"pix-{label}-{eps}.json"
        rc = main(_attack(digits, "--eps", eps, "--json", str(out), *extra))
        captured = capsys.readouterr()
        assert rc == 0, captured.err
        runs[label] = json.loads(out.read_text())
        if label == "default":
            assert "threat model: L-inf, eps=" in captured.out and "raw units" in captured.out
            assert "warning" not in captured.err
    default, stated = runs["default"], runs["stated"]
    assert default["robust_accuracy"] == stated["robust_accuracy"]
    line = default["threat_model"]
    for needle in ("L-inf", f"eps={float(eps):g}", "raw units", "bounds [0, 1] on every feature", "inferred"):
        assert needle in line, line
    assert default["threat"]["units"] == "raw" and default["threat"]["box"] == [0.0, 1.0]
    assert default["threat"]["mutable"] == 64  # the never-lit pixels may move too
    # the unit box is the stronger threat model: never more robust than eps in each pixel's std
    assert default["robust_accuracy"] <= runs["std-units"]["robust_accuracy"]
    assert default["robust_accuracy"] < default["clean_accuracy"] - 0.15


def test_bounds_file_on_named_columns_and_flag_precedence(digits, capsys, tmp_path):
    spec = tmp_path / "bounds.yaml"
    spec.write_text("features:\n  p5: {lo: 0, hi: 0.5}\n  p6: {mutable: false}\n")
    base = ["attack", str(digits / "mlp.pt"), "--trust", "--data", str(digits / "test.csv"), "--target", "label",
            "--eps", "0.1", "--steps", "5", "--max-samples", "30"]
    out = tmp_path / "file.json"
    rc = main([*base, "--bounds-file", str(spec), "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    threat = json.loads(out.read_text())["threat"]
    assert threat["upper"][5] == 0.5 and threat["upper"][4] == 1.0 and threat["lower"][5] == 0.0
    assert threat["units"] == "raw" and threat["mutable"] == 63
    assert str(spec) in threat["bounds_source"]
    assert "narrower than the data" in capsys.readouterr().err  # p5 reaches above 0.5 in the data
    out2 = tmp_path / "flag.json"
    rc = main([*base, "--bounds-file", str(spec), "--bounds", "0,1", "--json", str(out2)])
    assert rc == 0, capsys.readouterr().err
    threat = json.loads(out2.read_text())["threat"]
    assert threat["box"] == [0.0, 1.0] and "overrides the bounds file" in threat["bounds_source"]


@pytest.mark.parametrize("args", [
    ["--eps", "1"],
    ["--eps", "1.5"],
    ["--bounds", "0,1", "--eps", "2"],
    ["--bounds", "-1,1", "--eps", "2"],
    ["--norm", "2", "--eps", "8"],  # the diagonal of the 64-pixel unit box
    ["--units", "std", "--eps", "1000"],
])
def test_an_eps_that_covers_the_whole_box_is_exit_2_in_one_line(digits, capsys, args):
    rc = main(_attack(digits, *args))
    err = capsys.readouterr().err
    assert rc == 2
    assert "cannot be meaningful" in _one_line_error(err)


@pytest.mark.parametrize("args,needle", [
    (["--bounds", "1,0"], "LO,HI"),
    (["--bounds", "zero,one"], "LO,HI"),
    (["--bounds-file", "missing.yaml"], "not found"),
])
def test_bad_bounds_are_exit_2_in_one_line(digits, capsys, args, needle):
    rc = main(_attack(digits, *args))
    assert rc == 2 and needle in _one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize("model", ["lr.joblib", "tree.joblib"])
@pytest.mark.parametrize("norm,expected", [("inf", "square"), ("2", "hsj")])
def test_scikit_learn_models_get_a_black_box_attack_by_default(digits, capsys, tmp_path, model, norm, expected):
    out = tmp_path / "bb.json"
    rc = main(["attack", str(digits / model), "--trust", "--data", str(digits / "test.npz"), "--norm", norm,
               "--eps", "0.1" if norm == "inf" else "1.0", "--max-samples", "20", "--queries", "60",
               "--json", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    res = json.loads(out.read_text())
    assert res["attack"] == expected and res["attack_chosen_by"] == "auto"
    assert f"{expected} (auto)" in captured.out


# -- the same through the audit's check options ----------------------------------------------
@pytest.mark.parametrize("opts", [{"bounds": "0,1"}, {"bounds": [0, 1]}, {"bounds_file": None},
                                  {"units": "raw", "bounds_margin": 0.25}])
def test_check_options_accept_bounds(opts):
    assert RobustnessCheck.from_options(opts)


@pytest.mark.parametrize("opts,needle", [
    ({"bounds": "1"}, "robustness.bounds"),
    ({"bounds": [2, 1]}, "robustness.bounds"),
    ({"bounds_file": "does/not/exist.yaml"}, "not found"),
    ({"bounds_margin": -0.1}, "bounds_margin must be a finite number"),
    ({"units": "pixels"}, "units"),
])
def test_bad_check_options_are_user_errors(opts, needle):
    with pytest.raises(UserError, match=needle):
        RobustnessCheck.from_options(opts)


@pytest.mark.parametrize("option,source", [
    ("robustness.bounds=0,1", "stated box [0, 1]"),
    ("robustness.bounds_file={spec}", "bounds file"),
    (None, "inferred: every value is in [0, 1]"),
])
def test_audit_states_the_threat_model_in_every_report(digits, capsys, tmp_path, option, source):
    spec = tmp_path / "b.json"
    spec.write_text(json.dumps({"default": {"lo": 0, "hi": 1}}))
    js, html, sarif = tmp_path / "r.json", tmp_path / "r.html", tmp_path / "r.sarif"
    args = ["audit", str(digits / "mlp.pt"), "--trust", "--data", str(digits / "test.npz"), "--checks",
            "robustness", "--quick", "--no-progress", "--option", "robustness.eps=[0.1]",
            "--option", "robustness.detector=false", "--json", str(js), "--out", str(html), "--sarif", str(sarif)]
    if option:
        args += ["--option", option.format(spec=spec)]
    rc = main(args)
    captured = capsys.readouterr()
    assert rc in (0, 1), captured.err
    res = json.loads(js.read_text())["runs"][0]["results"][0]
    line = res["metrics"]["threat_model"]
    assert "L-inf" in line and "eps=0.1" in line and "raw units" in line and source in line, line
    assert line in res["summary"]
    assert "Threat model" in " ".join(captured.out.split())
    assert "raw units" in html.read_text()
    graded = [f for f in res["findings"] if f["rule_id"] == "robustness.low-robust-accuracy"]
    assert graded and graded[0]["evidence"]["threat_model"] == line  # eps 0.1 breaks this MLP
    messages = [r["message"]["text"] for r in json.loads(sarif.read_text())["runs"][0]["results"]]
    assert any(line in m for m in messages)


def test_audit_warns_when_the_stated_box_is_narrower_than_the_data(digits, capsys, tmp_path):
    js = tmp_path / "r.json"
    rc = main(["audit", str(digits / "mlp.pt"), "--trust", "--data", str(digits / "test.npz"), "--checks",
               "robustness", "--quick", "--no-progress", "--option", "robustness.eps=[0.05]",
               "--option", "robustness.detector=false", "--option", "robustness.bounds=0,0.5",
               "--json", str(js), "--out", str(tmp_path / "r.html")])
    assert rc in (0, 1), capsys.readouterr().err
    findings = json.loads(js.read_text())["runs"][0]["results"][0]["findings"]
    narrower = [f for f in findings if f["rule_id"] == "robustness.threat-model-narrower"]
    assert narrower and narrower[0]["severity"] == "low"


@pytest.mark.parametrize("eps", ["[1.0]", "[0.1,2]"])
def test_audit_with_an_eps_that_covers_the_whole_box_is_exit_2(digits, capsys, tmp_path, eps):
    """An option that cannot be meaningful stops the audit with a usage error (OptionError), not a failed gate."""
    js = tmp_path / "r.json"
    rc = main(["audit", str(digits / "mlp.pt"), "--trust", "--data", str(digits / "test.npz"), "--checks",
               "robustness", "--quick", "--no-progress", "--option", f"robustness.eps={eps}",
               "--option", "robustness.detector=false", "--json", str(js)])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot be meaningful" in _one_line_error(err)
    assert not js.exists()
