"""Across commands: a report or model output that names one of the command's inputs is refused, even with
--force (which may replace an old output, never the data, model, policy or key being used), and inputs a
user can plausibly get wrong are one line and exit 2."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

from modelshield.cli import main


@pytest.fixture
def work(tmp_path, breast_cancer, sk_logreg):
    Xtr, Xte, ytr, yte = breast_cancer
    cols = [f"f{i}" for i in range(30)]
    pd.DataFrame(Xtr, columns=cols).assign(label=ytr).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(Xte, columns=cols).assign(label=yte).to_csv(tmp_path / "test.csv", index=False)
    np.savez(tmp_path / "test.npz", X=Xte, y=yte)
    joblib.dump(sk_logreg, tmp_path / "m.joblib")
    (tmp_path / "pii.csv").write_text("email,age\na@example.com,31\nb@example.com,45\n")
    (tmp_path / "anon.yaml").write_text("columns:\n  email: pseudonymize\n")
    (tmp_path / "key.txt").write_text("k" * 32)
    return tmp_path


@pytest.mark.parametrize("args", [
    ["attack", "{m}", "--trust", "--data", "{d}/test.npz", "--save-adv", "{d}/test.npz", "--force"],
    ["attack", "{m}", "--trust", "--data", "{d}/test.npz", "--json", "{d}/test.npz", "--force"],
    ["attack", "{m}", "--trust", "--data", "{d}/test.npz", "--json", "{d}/a.out", "--save-adv", "{d}/a.out"],
    ["theft", "fingerprint", "create", "{m}", "--trust", "--data", "{d}/train.csv", "--target", "label",
     "--out", "{d}/train.csv", "--force"],
    ["theft", "extraction", "{m}", "--trust", "--data", "{d}/test.csv", "--target", "label",
     "--json", "{d}/test.csv", "--force"],
    ["privacy", "membership", "{m}", "--trust", "--train", "{d}/train.csv", "--test", "{d}/test.csv",
     "--target", "label", "--json", "{d}/train.csv", "--force"],
    ["privacy", "anonymize", "{d}/pii.csv", "{d}/out.csv", "--policy", "{d}/anon.yaml", "--key-file",
     "{d}/key.txt", "--json", "{d}/key.txt", "--force"],
    ["privacy", "anonymize", "{d}/pii.csv", "{d}/out.csv", "--policy", "{d}/anon.yaml", "--json",
     "{d}/anon.yaml", "--force"],
])
def test_an_output_never_replaces_an_input(work, capsys, args):
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
    rc = main([a.format(m=work / "m.joblib", d=work) for a in args])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "is also an input" in err or "must name different files" in err, err
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file() and p.name in before} == before


def test_plausible_mistakes_are_one_line_exit_2(work, capsys):
    (work / "trunc.joblib").write_bytes((work / "m.joblib").read_bytes()[:600])
    (work / "empty.npz").write_bytes(b"")
    (work / "header.csv").write_text("email,age\n")
    cases = [
        (["attack", "{d}/trunc.joblib", "--trust", "--data", "{d}/test.npz"], "cannot load"),
        (["theft", "fingerprint", "compare", "{d}/empty.npz", "{m}", "--trust"], "not a readable"),
        (["privacy", "scan-pii", "{d}/pii.csv", "--max-rows", "0"], "--max-rows"),
        (["privacy", "scan-pii", "{d}/header.csv"], "no data rows"),
        (["privacy", "anonymize", "{d}/pii.csv", "{d}/out.txt", "--policy", "{d}/anon.yaml"], ".csv or .parquet"),
        (["privacy", "membership", "{m}", "--trust", "--train", "{d}/train.csv", "--test", "{d}/test.csv",
          "--target", "label", "--shadows", "1"], "n_shadows"),
        (["privacy", "membership", "{m}", "--trust", "--train", "{d}/train.csv", "--test", "{d}/test.csv",
          "--target", "label", "--budget", "nan"], "shadow_budget_s"),
    ]
    for args, needle in cases:
        rc = main([a.format(m=work / "m.joblib", d=work) for a in args])
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1 and needle in lines[0], (args, err)


@pytest.mark.parametrize(("policy", "needle"), [
    ("columns:\n  age: {bucket: {width: -5}}\n", "bucket.width"),
    ("columns:\n  age: {bucket: {width: .nan}}\n", "bucket.width"),
    ("columns:\n  age: {bucket: {edges: [50, 18]}}\n", "must increase"),
    ("columns:\n  email: {mask: {keep_last: -2}}\n", "keep_last"),
    ("columns:\n  email: {generalize: {keep: -1}}\n", "generalize.keep"),
    ("{}\n", "changes nothing"),
])
def test_anonymization_policies_that_cannot_mean_anything_are_refused(work, capsys, policy, needle):
    (work / "bad.yaml").write_text(policy)
    rc = main(["privacy", "anonymize", str(work / "pii.csv"), str(work / "o.csv"), "--policy", str(work / "bad.yaml")])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and not (work / "o.csv").exists(), err


def test_python_api_names_what_it_takes(work, breast_cancer, sk_logreg):
    import modelshield as ms
    from modelshield.data.dataset import Dataset
    from modelshield.errors import UserError

    _, Xte, _, yte = breast_cancer
    rep = ms.audit(sk_logreg, Dataset(X=Xte, y=yte), checks="baseline")  # a name, not its characters
    assert [r.check for r in rep.runs[0].results] == ["baseline"]
    with pytest.raises(UserError, match="load_model"):
        ms.audit(str(work / "m.joblib"), Dataset(X=Xte, y=yte))
    with pytest.raises(UserError, match="load_dataset"):
        ms.audit(sk_logreg, str(work / "test.csv"))
    with pytest.raises(UserError, match="paths"):
        ms.scan(None)
