"""CLI: ``theft verify-watermark|extraction|fingerprint`` and ``harden watermark``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelshield.cli import main

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def files(tmp_path_factory, breast_cancer):
    """A TorchScript MLP, a pickled scikit-learn model and NPZ train/test data on disk."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    d = tmp_path_factory.mktemp("theft-cli")
    Xtr, Xte, ytr, yte = breast_cancer
    np.savez(d / "train.npz", X=Xtr, y=ytr)
    np.savez(d / "test.npz", X=Xte, y=yte)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(30, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.as_tensor(Xtr)), torch.as_tensor(ytr)).backward()
        opt.step()
    torch.jit.save(torch.jit.script(net.eval()), d / "model.pt")
    joblib.dump(LogisticRegression(max_iter=500).fit(Xtr, ytr), d / "logreg.joblib")
    rng = np.random.default_rng(0)
    joblib.dump(LogisticRegression(max_iter=500).fit(Xtr, rng.permutation(ytr)), d / "other.joblib")
    from modelshield.protect.keys import write_signing_keypair

    write_signing_keypair(d / "owner.key", d / "owner.pub")
    return d


def _wm(files, tag):
    """The owner's proof options of 'harden watermark' (signing key in, commitment and key out)."""
    return ["--signing-key", str(files / "owner.key"), "--commitment-out", str(files / f"{tag}.commit.json"),
            "--key-out", str(files / f"{tag}.wmkey")]


def _proof(files, tag):
    """The verifier's options of 'theft verify-watermark' for the watermark made with ``_wm(files, tag)``."""
    return ["--commitment", str(files / f"{tag}.commit.json"), "--public-key", str(files / "owner.pub"),
            "--watermark-key", str(files / f"{tag}.wmkey")]


@pytest.fixture(scope="module")
def watermarked(files):
    rc = main(["harden", "watermark", str(files / "model.pt"), "--data", str(files / "train.npz"),
               "--out", str(files / "wm.pt"), "--triggers-out", str(files / "triggers.npz"),
               "--epochs", "15", "--lr", "0.01", "--trust", *_wm(files, "wm")])
    assert rc == 0
    return files / "wm.pt", files / "triggers.npz"


def test_harden_watermark_then_verify(files, watermarked, capsys):
    wm, trig = watermarked
    assert wm.is_file() and trig.is_file()
    assert (trig.stat().st_mode & 0o077) == 0  # the trigger set is a secret
    assert ((files / "wm.wmkey").stat().st_mode & 0o077) == 0  # so is the watermark key
    rc = main(["theft", "verify-watermark", str(wm), "--trust", "--triggers", str(trig), *_proof(files, "wm"),
               "--json", str(files / "v.json")])
    out = " ".join(capsys.readouterr().out.split())  # undo the console's line wrapping
    assert rc == 0, out
    assert "watermark verified" in out and "commitment signed" in out
    v = json.loads((files / "v.json").read_text())
    assert v["owned"] is True and v["p_value"] < 1e-6 and v["proof"] == "verified" and v["committed_at"]
    # the trigger file is optional: the watermark key re-derives it
    assert main(["theft", "verify-watermark", str(wm), "--trust", *_proof(files, "wm")]) == 0


def test_unwatermarked_model_is_not_verified(files, watermarked, capsys):
    _, trig = watermarked
    rc = main(["theft", "verify-watermark", str(files / "model.pt"), "--trust", "--triggers", str(trig),
               *_proof(files, "wm")])
    out = " ".join(capsys.readouterr().out.split())
    assert rc == 1
    assert "not detected" in out


def test_verify_bad_inputs_exit_2(files, watermarked, capsys):
    wm, trig = watermarked
    proof = _proof(files, "wm")
    rc = main(["theft", "verify-watermark", str(wm), "--trust", "--triggers", str(files / "missing.npz"), *proof])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "trigger set not found" in err and "Traceback" not in err
    (files / "junk.npz").write_bytes(b"nope")
    assert main(["theft", "verify-watermark", str(wm), "--trust", "--triggers", str(files / "junk.npz"), *proof]) == 2
    (files / "junk.json").write_bytes(b"nope")
    rc = main(["theft", "verify-watermark", str(wm), "--trust", "--commitment", str(files / "junk.json"),
               *proof[2:]])
    assert rc == 2 and "commitment" in capsys.readouterr().err
    assert main(["theft", "verify-watermark", str(wm), "--trust", "--triggers", str(trig), *proof,
                 "--alpha", "2"]) == 2
    # a trigger set alone is no longer accepted: the proof options are required
    assert main(["theft", "verify-watermark", str(wm), "--trust", "--triggers", str(trig)]) == 2


def test_forged_or_tampered_watermark_evidence_exits_3(files, watermarked, capsys):
    """A trigger set labelled with the suspect's own answers, or an altered commitment, is refused."""
    from modelshield.protect.loader import load_model
    from modelshield.theft.watermark import TriggerSet

    wm, _trig = watermarked
    proof = _proof(files, "wm")
    X = np.random.default_rng(7).uniform(-3, 3, size=(60, 30)).astype(np.float32)
    for i, suspect in enumerate((wm, files / "model.pt")):  # the watermarked and an independent model
        answers = load_model(suspect, trust=True).predict_index(X)
        TriggerSet(X=X, labels=answers, n_classes=2).save(files / f"forged{i}.npz", overwrite=True)
        rc = main(["theft", "verify-watermark", str(suspect), "--trust", "--triggers", str(files / f"forged{i}.npz"),
                   *proof])
        cap = capsys.readouterr()
        assert rc == 3 and "refused" in cap.err and "verified" not in cap.out
    doc = json.loads((files / "wm.commit.json").read_text())
    import base64

    body = json.loads(base64.b64decode(doc["payload"]))
    body["created"] = "2001-01-01T00:00:00Z"
    doc["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    (files / "tampered.json").write_text(json.dumps(doc))
    rc = main(["theft", "verify-watermark", str(wm), "--trust", "--commitment", str(files / "tampered.json"),
               *proof[2:]])
    assert rc == 3 and "signature does not verify" in capsys.readouterr().err


def test_harden_watermark_never_clobbers_and_needs_torch(files, watermarked, capsys):
    wm, _trig = watermarked
    before = wm.read_bytes()
    rc = main(["harden", "watermark", str(files / "model.pt"), "--data", str(files / "train.npz"),
               "--out", str(wm), "--triggers-out", str(files / "t2.npz"), "--trust", *_wm(files, "t2")])
    assert rc == 2 and "already exists" in capsys.readouterr().err
    assert wm.read_bytes() == before and not (files / "t2.npz").exists()
    rc = main(["harden", "watermark", str(files / "logreg.joblib"), "--trust", "--data",
               str(files / "train.npz"), "--out", str(files / "x.pt"), "--triggers-out", str(files / "x.npz"),
               *_wm(files, "x")])
    assert rc == 2 and "PyTorch" in capsys.readouterr().err


def test_extraction_command(files, capsys):
    rc = main(["theft", "extraction", str(files / "model.pt"), "--trust", "--data", str(files / "test.npz"),
               "--quick", "--budgets", "50,300", "--json", str(files / "x.json")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "knockoff" in out and "fidelity" in out
    res = json.loads((files / "x.json").read_text())
    assert res["metrics"]["max_budget"] == 300 and res["metrics"]["fidelity_at_max_budget"] > 0.85
    assert main(["theft", "extraction", str(files / "model.pt"), "--trust", "--data", str(files / "test.npz"),
                 "--budgets", "ten"]) == 2


def test_fingerprint_create_and_compare(files, breast_cancer, capsys):
    """PyTorch owner through the CLI: references are trained automatically, the threshold is calibrated,
    independent models do not match, copies do."""
    from modelshield.harden.watermark import fine_tune, train_classifier

    Xtr, _, ytr, _ = breast_cancer
    fp = files / "fp.npz"
    # on this binary task independent MLPs agree with the owner on up to ~85% of the points: the
    # default 1% false-match rate cannot be reached, and creation says so instead of guessing
    rc = main(["theft", "fingerprint", "create", str(files / "model.pt"), "--trust", "--data",
               str(files / "train.npz"), "--target", "y", "--out", str(fp), "--points", "60"])
    err = capsys.readouterr().err
    assert rc == 2 and "false-match rate" in err and not fp.exists(), err
    rc = main(["theft", "fingerprint", "create", str(files / "model.pt"), "--trust", "--data",
               str(files / "train.npz"), "--target", "y", "--out", str(fp), "--points", "60",
               "--false-match-rate", "0.2"])
    out = " ".join(capsys.readouterr().out.split())
    assert rc == 0, out
    assert "8 independent references scored" in out and "false-match rate <=" in out
    owner = torch.jit.load(files / "model.pt")
    torch.jit.save(torch.jit.script(fine_tune(owner, Xtr[:40], ytr[:40], epochs=5, seed=1)), files / "tuned.pt")
    for s in (21, 22, 23):
        with torch.random.fork_rng():
            torch.manual_seed(s)
            net = torch.nn.Sequential(torch.nn.Linear(30, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
        torch.jit.save(torch.jit.script(train_classifier(net, Xtr, ytr, epochs=40, seed=s)), files / f"ind{s}.pt")
    for suspect, expect in [("model.pt", 0), ("tuned.pt", 0), ("ind21.pt", 1), ("ind22.pt", 1), ("ind23.pt", 1),
                            ("other.joblib", 1)]:
        rc = main(["theft", "fingerprint", "compare", str(fp), str(files / suspect), "--trust"])
        out = " ".join(capsys.readouterr().out.split())
        assert rc == expect, (suspect, out)
        assert "independent references scored" in out and "confidence" in out
    assert main(["theft", "fingerprint", "compare", str(fp), str(files / "model.pt"), "--trust",
                 "--threshold", "2"]) == 2


@pytest.mark.parametrize("args,match", [
    (["model.pt", "--data", "train.npz"], "needs --target"),
    (["model.pt", "--data", "train.npz", "--target", "y", "--references", "3"], "at least 5"),
    (["model.pt", "--data", "train.npz", "--target", "y", "--false-match-rate", "0"], "--false-match-rate"),
    # a deterministic learner on the same rows: its independent trainings are identical to it
    (["logreg.joblib", "--data", "train.npz", "--target", "y", "--points", "20"], "reproduce this model"),
])
def test_fingerprint_create_refuses_uncalibrated_fingerprints(files, capsys, args, match):
    out = files / "fp-refused.npz"
    argv = [str(files / a) if a.endswith((".pt", ".npz", ".joblib")) else a for a in args]
    rc = main(["theft", "fingerprint", "create", *argv, "--trust", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and match in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_harden_watermark_robustness_report(files, capsys):
    rc = main(["harden", "watermark", str(files / "model.pt"), "--trust", "--data", str(files / "train.npz"),
               "--out", str(files / "wm2.pt"), "--triggers-out", str(files / "t-rob.npz"), "--epochs", "10",
               "--lr", "0.01", "--n-triggers", "40", "--robustness", *_wm(files, "rob")])
    out = capsys.readouterr().out
    assert rc == 0, out
    for attack in ("none", "fine-tune-10%", "prune-30%", "distill"):
        assert attack in out
    assert "false-claim rate on 5 independent models" in out


def test_harden_watermark_from_scratch_on_a_saved_module(files, breast_cancer, capsys):
    """A pickled nn.Module (needs --trust), re-initialised and trained from scratch with the watermark."""
    net = torch.nn.Sequential(torch.nn.Linear(30, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    torch.save(net, files / "module.pt")
    rc = main(["harden", "watermark", str(files / "module.pt"), "--trust", "--reinit", "--data",
               str(files / "train.npz"), "--out", str(files / "module-wm.pt"), "--triggers-out",
               str(files / "module-t.npz"), "--epochs", "30", "--lr", "0.01", *_wm(files, "mod")])
    assert rc == 0, capsys.readouterr().err
    assert main(["theft", "verify-watermark", str(files / "module-wm.pt"), "--trust", "--triggers",
                 str(files / "module-t.npz"), *_proof(files, "mod")]) == 0
    from modelshield.harden.watermark import accuracy

    _, Xte, _, yte = breast_cancer
    trained = torch.load(files / "module-wm.pt", weights_only=False)
    assert accuracy(trained, Xte, yte) > 0.9


def test_harden_watermark_wrong_data_width_is_a_one_line_error(files, capsys):
    """Data of the wrong width for a saved nn.Module: exit 2 naming --features, nothing written."""
    net = torch.nn.Sequential(torch.nn.Linear(30, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    torch.save(net, files / "seq30.pth")
    Xtr = np.load(files / "train.npz")["X"]
    np.savez(files / "narrow.npz", X=Xtr[:, :15], y=np.load(files / "train.npz")["y"])
    for model in ("seq30.pth", "model.pt"):
        rc = main(["harden", "watermark", str(files / model), "--trust", "--data", str(files / "narrow.npz"),
                   "--out", str(files / "w-narrow.pth"), "--triggers-out", str(files / "t-narrow.npz"),
                   *_wm(files, "narrow")])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert "expects 30 features but the data has 15" in err and "--features" in err
        assert len(err.strip().splitlines()) == 1 and "internal error" not in err
        assert not (files / "w-narrow.pth").exists() and not (files / "t-narrow.npz").exists()
        assert not (files / "narrow.wmkey").exists() and not (files / "narrow.commit.json").exists()


def test_harden_watermark_that_does_not_embed_exits_1_and_writes_nothing(files, capsys):
    """One epoch, no extra epochs and a tiny learning rate cannot teach 100 random labels."""
    out, trig = files / "weak.pt", files / "weak.npz"
    rc = main(["harden", "watermark", str(files / "model.pt"), "--trust", "--data", str(files / "train.npz"),
               "--out", str(out), "--triggers-out", str(trig), "--epochs", "1", "--max-extra-epochs", "0",
               "--lr", "1e-5", *_wm(files, "weak")])
    cap = capsys.readouterr()
    assert rc == 1, cap.out + cap.err
    assert "watermark did not embed" in cap.err and "nothing was written" in cap.err and "--epochs" in cap.err
    assert len(cap.err.strip().splitlines()) == 1
    assert "after 1 epochs" in " ".join(cap.out.split())
    assert not out.exists() and not trig.exists() and not (files / "weak.commit.json").exists()


def test_harden_watermark_reports_extra_epochs(files, capsys):
    """--epochs is a minimum; any extra epochs are printed with the reason, bounded by --max-extra-epochs."""
    rc = main(["harden", "watermark", str(files / "model.pt"), "--trust", "--data", str(files / "train.npz"),
               "--out", str(files / "wm-extra.pt"), "--triggers-out", str(files / "t-extra.npz"), "--epochs", "1",
               "--max-extra-epochs", "30", "--lr", "0.01", "--n-triggers", "30", *_wm(files, "extra")])
    out = " ".join(capsys.readouterr().out.split())  # undo the console's line wrapping
    assert rc == 0, out
    import re

    m = re.search(r"after (\d+) epochs \(--epochs 1, then (\d+) more until the trigger labels were learned", out)
    assert m is not None, out
    assert int(m.group(1)) == 1 + int(m.group(2)) and 1 <= int(m.group(2)) <= 30
    assert "watermark verified" in out


def test_extraction_and_fingerprint_accept_comma_feature_lists(files, capsys):
    import pandas as pd

    Xte = np.load(files / "test.npz")["X"]
    cols = [f"f{i}" for i in range(30)]
    yte = np.load(files / "test.npz")["y"]
    pd.DataFrame(Xte, columns=cols).assign(extra=1.0, label=yte).to_csv(files / "wide.csv", index=False)
    rc = main(["theft", "extraction", str(files / "model.pt"), "--trust", "--data", str(files / "wide.csv"),
               "--quick", "--budgets", "50"])
    assert rc == 2 and "--features" in capsys.readouterr().err
    feats = ["--features", ",".join(cols[:20]), "--features", ",".join(cols[20:])]
    rc = main(["theft", "extraction", str(files / "model.pt"), "--trust", "--data", str(files / "wide.csv"),
               "--quick", "--budgets", "50", *feats])
    assert rc == 0, capsys.readouterr().err
    rc = main(["theft", "fingerprint", "create", str(files / "model.pt"), "--trust", "--data",
               str(files / "wide.csv"), "--target", "label", "--out", str(files / "fp-wide.npz"), "--points", "20",
               *feats])
    assert rc == 0, capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--trigger-batch", "0"], ["--trigger-jitter", "-1"], ["--trigger-jitter", "nan"]])
def test_harden_watermark_bad_embedding_options_exit_2(files, capsys, bad):
    rc = main(["harden", "watermark", str(files / "model.pt"), "--trust", "--data", str(files / "train.npz"),
               "--out", str(files / "bad-opt.pt"), "--triggers-out", str(files / "bad-opt.npz"), *bad,
               *_wm(files, "bad-opt")])
    err = capsys.readouterr().err
    assert rc == 2 and "--trigger" in err and not (files / "bad-opt.pt").exists(), err


def test_fingerprint_create_with_given_independent_models(files, breast_cancer, capsys):
    """--independent models (e.g. for a framework whose references cannot be trained here) calibrate it."""
    from modelshield.harden.watermark import train_classifier

    Xtr, _, ytr, _ = breast_cancer
    paths = []
    for s in range(31, 37):
        with torch.random.fork_rng():
            torch.manual_seed(s)
            net = torch.nn.Sequential(torch.nn.Linear(30, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
        idx = np.random.default_rng(s).choice(len(Xtr), len(Xtr) // 2, replace=False)
        torch.jit.save(torch.jit.script(train_classifier(net, Xtr[idx], ytr[idx], epochs=40, seed=s)),
                       files / f"given{s}.pt")
        paths += ["--independent", str(files / f"given{s}.pt")]
    out = files / "fp-given.npz"
    rc = main(["theft", "fingerprint", "create", str(files / "model.pt"), "--trust", "--data",
               str(files / "train.npz"), "--out", str(out), "--points", "60", "--false-match-rate", "0.2", *paths])
    text = " ".join(capsys.readouterr().out.split())
    assert rc == 0, text
    assert "6 independent references scored" in text
    # too few given models, no --target: refused
    rc = main(["theft", "fingerprint", "create", str(files / "model.pt"), "--trust", "--data",
               str(files / "train.npz"), "--out", str(files / "fp-few.npz"), *paths[:4]])
    err = capsys.readouterr().err
    assert rc == 2 and "at least 5 independent references" in err and not (files / "fp-few.npz").exists()


@pytest.mark.parametrize("args,expect", [
    ([], "unspecified"),
    (["--exposure", "public-unlimited"], "public-unlimited"),
    (["--exposure", "rate-limited", "--query-budget", "40"], "rate-limited"),
    (["--exposure", "internal", "--api-outputs", "top1"], "internal"),
])
def test_extraction_command_takes_the_exposure(files, capsys, args, expect):
    out = files / f"x-{expect}.json"
    rc = main(["theft", "extraction", str(files / "model.pt"), "--trust", "--data", str(files / "test.npz"),
               "--quick", "--budgets", "50,100", "--json", str(out), "--force", *args])
    assert rc == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    assert res["metrics"]["exposure"] == expect
    (f,) = [f for f in res["findings"] if f["rule_id"] == "theft.extraction.fidelity"]
    assert f["evidence"]["threat_model"]


@pytest.mark.parametrize("args,match", [
    (["--exposure", "public"], "not one of"),
    (["--exposure", "rate-limited"], "query_budget"),
    (["--api-outputs", "logits"], "not one of"),
])
def test_extraction_command_bad_exposure_exit_2(files, capsys, args, match):
    rc = main(["theft", "extraction", str(files / "model.pt"), "--trust", "--data", str(files / "test.npz"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and match in err and len(err.strip().splitlines()) == 1, err
