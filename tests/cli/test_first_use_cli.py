"""First-use defects of the command line (issue 15 D.2, D.5, D.6, D.8): ``--version``, help text without
``<bool>``/``{model}``, piped output that never splits a word, unknown-column errors that list every column,
re-running an audit in the same folder, and the demo's exit code saying it ignores the gate."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from modelshield import __version__
from modelshield.cli import audit as audit_cli
from modelshield.cli import main
from modelshield.data.loaders import MAX_COLUMNS_SHOWN, from_frame
from modelshield.errors import DataError
from modelshield.findings import CheckResult, CheckStatus, Finding, Severity
from modelshield.policy import Policy
from modelshield.report.terminal import demo_note, print_summary
from modelshield.report.write import is_previous_report
from modelshield.runner import AuditReport, AuditRun

ROOT = Path(__file__).resolve().parents[2]


def run(args, capsys):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


# --- D.2: --version ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--version"], ["--debug", "--version"], ["--version", "--debug"],
                                  ["--version", "audit"], ["--version", "scan", "x"]])
def test_version_prints_the_version_and_exits_0(args, capsys):
    rc, out, err = run(args, capsys)
    assert rc == 0, err
    assert out.strip() == f"modelshield {__version__}" and not err


def test_version_from_a_fresh_process_and_setup_script_uses_it():
    p = subprocess.run([sys.executable, "-m", "modelshield", "--version"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "80"})
    assert p.returncode == 0 and p.stdout.strip() == f"modelshield {__version__}" and not p.stderr

def test_setup_script_last_line_shows_the_version(tmp_path):
    """scripts/setup.sh ends by printing the installed version: run its lines after the installs against
    this environment's modelshield (a fake venv whose bin/modelshield is this interpreter's CLI)."""
    script = (ROOT / "scripts/setup.sh").read_text().splitlines()
    start = max(i for i, ln in enumerate(script) if "pip" in ln or "PIP" in ln) + 1
    tail = "\n".join(["set -euo pipefail", *script[start:]])
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    exe = venv / "bin" / "modelshield"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} -m modelshield \"$@\"\n")
    exe.chmod(0o755)
    p = subprocess.run(["bash", "-c", tail], capture_output=True, text=True, env={**os.environ, "VENV": str(venv)})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == f"modelshield is installed in {venv} (modelshield {__version__})"
    assert "error" not in p.stdout + p.stderr


# --- D.8: help text ------------------------------------------------------------------------------------------

HELP_COMMANDS = [[], ["audit"], ["scan"], ["checks"], ["policy"], ["policy", "validate"], ["harden"],
                 ["harden", "dp"], ["harden", "fairness"], ["protect"], ["protect", "sign"], ["protect", "verify"],
                 ["attack"], ["privacy", "scan-pii"], ["theft", "fingerprint"], ["fairness", "metrics"], ["serve"], ["keys"]]


@pytest.mark.parametrize("words", HELP_COMMANDS, ids=lambda w: " ".join(w) or "modelshield")
def test_help_has_no_bool_type_and_no_braced_argument(words, capsys):
    rc, out, err = run([*words, "--help"], capsys)
    if rc == 2 and "No such command" in err:
        pytest.skip(f"no command {' '.join(words)}")
    assert rc == 0, err
    assert "<bool>" not in out, out
    usage = next(ln for ln in out.splitlines() if "Usage:" in ln)
    assert not re.search(r"\{\w+\}", usage), usage           # {model}
    for token in usage.split("[OPTIONS]", 1)[1].split():     # arguments in capitals: MODEL, [MODEL], PATHS...
        assert token.strip("[].").isupper(), usage


def test_arguments_are_in_capitals_in_usage_and_errors(capsys):
    rc, out, _ = run(["harden", "dp", "--help"], capsys)
    assert "harden dp [OPTIONS] MODEL" in out
    rc, out, _ = run(["audit", "--help"], capsys)
    assert "audit [OPTIONS] [MODEL]" in out
    rc, _, err = run(["harden", "dp"], capsys)
    assert rc == 2 and "'MODEL'" in _one_line_error(err)
    rc, _, err = run(["scan"], capsys)
    assert rc == 2 and "'PATHS'" in _one_line_error(err)


def test_flags_still_work_after_help_tidying(tmp_path, capsys):
    """the metavar change is display only: a flag still takes no value."""
    rc, _, err = run(["audit", "--demo", "x"], capsys)   # --demo is a flag, 'x' is MODEL -> a usage error
    assert rc == 2 and "--demo takes no MODEL" in err


# --- D.8: piped terminal report never splits a word ----------------------------------------------------------

_WORDS = ["demographic_parity_difference", "equalized_odds_difference", "tpr_at_1pct_fpr_lower",
          "robust_accuracy", "adversarially", "fingerprint_score", "x" * 45, "proxy_combined_auc"]


def _report(seed: int) -> AuditReport:
    rng = np.random.default_rng(seed)
    results = []
    for check in ("baseline", "fairness", "privacy", "robustness"):
        words = [str(w) for w in rng.choice(_WORDS, size=int(rng.integers(3, 25)))]
        summary = " ".join(f"{w} {rng.random():.3f}" for w in words)
        r = CheckResult(check=check, status=CheckStatus.FINDINGS, summary=summary, duration_s=float(rng.random()))
        title = " ".join(str(w) for w in rng.choice(_WORDS, size=int(rng.integers(2, 8))))
        r.findings.append(Finding(check=check, severity=Severity.HIGH, rule_id=f"{check}.x", title=title))
        results.append(r)
    pol = Policy.default()
    run_ = AuditRun(label=f"model-{seed}", model={"framework": "sklearn"}, data=None, results=results,
                    gate=pol.evaluate(results), seed=0, duration_s=1.0)
    return AuditReport(runs=[run_], policy=pol)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("width", [60, 80, 100])
def test_piped_summary_never_splits_a_word(seed, width):
    report = _report(seed)
    buf = io.StringIO()
    print_summary(report, Console(file=buf, width=width, highlight=False, color_system=None))
    text = buf.getvalue()
    tokens = set(re.findall(r"[\w.]+", text))
    for r in report.runs[0].results:
        for word in [*r.summary.split(), *r.findings[0].title.split()]:
            assert word in tokens, f"{word!r} split across lines in:\n{text}"
    for reason in report.runs[0].gate.reasons[:3]:
        assert reason in text.replace("\n", " ") or reason.split(":")[0] in text


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(("tty", "columns", "expected"), [(False, None, "piped"), (True, None, None),
                                                           (False, "100", None), (True, "100", None)])
def test_cli_consoles_are_wider_than_80_columns_when_piped(monkeypatch, tty, columns, expected):
    from modelshield.cli import _common

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    width = _common._width(_Stream(tty))
    assert width == (_common.PIPED_WIDTH if expected == "piped" else None)
    assert _common.PIPED_WIDTH >= 120


def test_piped_audit_output_from_a_subprocess_is_not_cut_at_80_columns(tmp_path):
    code = ("from modelshield.cli._common import console; "
            "console.print('demographic_parity_difference ' * 4)")  # 120 columns
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 1, p.stdout


def test_summary_on_a_terminal_still_fits_the_terminal():
    buf = io.StringIO()
    print_summary(_report(1), Console(file=buf, width=100, force_terminal=True, highlight=False, color_system=None))
    table_lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith(("┃", "│", "┏", "└"))]
    assert table_lines and max(len(ln) for ln in table_lines) <= 100


def test_summary_escapes_markup_in_titles():
    rep = _report(0)
    first = rep.runs[0].results[0]
    first.findings[0] = dataclasses.replace(first.findings[0], title="value [bold]not markup[/bold] and [x]")
    buf = io.StringIO()
    print_summary(rep, Console(file=buf, width=80, highlight=False, color_system=None))
    assert "[bold]not markup[/bold] and [x]" in buf.getvalue()


# --- D.8: an unknown column lists every column (or says how many are left out) -------------------------------

@pytest.mark.parametrize("n_cols", [3, 20, 21, 31, MAX_COLUMNS_SHOWN, MAX_COLUMNS_SHOWN + 1, 120])
@pytest.mark.parametrize("flag", ["target", "sensitive", "features"])
def test_unknown_column_lists_all_columns_or_counts_the_rest(n_cols, flag):
    rng = np.random.default_rng(n_cols)
    names = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=9)) + f"_{i}" for i in range(n_cols)]
    meant = names[n_cols // 2]
    typo = meant[:2] + meant[3:]  # one letter left out
    frame = pd.DataFrame(np.zeros((4, n_cols)), columns=names)
    kwargs = {"target": {"target": typo}, "sensitive": {"sensitive": [typo]}, "features": {"features": [typo]}}[flag]
    with pytest.raises(DataError) as exc:
        from_frame(frame, **kwargs)
    msg = str(exc.value)
    role = {"features": "feature"}.get(flag, flag)
    assert "\n" not in msg and msg.startswith(f"{role} column {typo!r}") and f"did you mean {meant!r}" in msg
    assert f"--{flag}" in (exc.value.cli_hint or "") and f"--{flag}" in exc.value.cli_message()
    shown = [n for n in names if re.search(rf"\b{n}\b", msg.split("columns are:")[1])]
    if n_cols <= MAX_COLUMNS_SHOWN:
        assert shown == names and "more" not in msg
    else:
        assert len(shown) == MAX_COLUMNS_SHOWN and f"… and {n_cols - MAX_COLUMNS_SHOWN} more" in msg


# --- D.6: a default report may be replaced, only if it is a modelshield report -------------------------------

@pytest.fixture
def files(tmp_path, breast_cancer, sk_logreg):
    _, Xte, _, yte = breast_cancer
    df = pd.DataFrame(Xte, columns=[f"f{i}" for i in range(30)])
    df["label"] = yte
    data = tmp_path / "test.csv"
    df.to_csv(data, index=False)
    model = tmp_path / "model.joblib"
    joblib.dump(sk_logreg, model)
    return tmp_path, model, data


def _audit(model, data, *extra):
    return ["audit", model, "-d", data, "-t", "label", "-c", "baseline", "--trust", "--no-progress", *extra]


def test_rerunning_an_audit_in_the_same_folder_replaces_the_default_report(files, capsys, monkeypatch):
    tmp, model, data = files
    monkeypatch.chdir(tmp)
    for i in range(3):
        rc, out, err = run(_audit(model, data), capsys)
        assert rc == 0, err
        assert "modelshield-report.html" in out
    assert 'name="generator" content="modelshield' in (tmp / "modelshield-report.html").read_text()


NOT_REPORTS = {
    "notes": "my notes\n",
    "other-html": "<!DOCTYPE html><html><head><title>mine</title></head><body>modelshield</body></html>",
    "generator-in-body": "<!DOCTYPE html><html><head></head><body><meta name=\"generator\" "
                         "content=\"modelshield 0.1\"></body></html>",
    "empty": "",
    "binary": "\x00\x01\x02",
}


@pytest.mark.parametrize("content", list(NOT_REPORTS.values()), ids=list(NOT_REPORTS))
def test_a_default_path_holding_anything_else_is_never_replaced(files, capsys, monkeypatch, content):
    tmp, model, data = files
    monkeypatch.chdir(tmp)
    (tmp / "modelshield-report.html").write_text(content)
    rc, _, err = run(_audit(model, data), capsys)
    assert rc == 2 and "not a modelshield report" in _one_line_error(err)
    assert (tmp / "modelshield-report.html").read_text() == content
    rc, _, err = run(_audit(model, data, "--force"), capsys)
    assert rc == 0, err


def test_a_symlink_at_the_default_path_is_not_followed(files, capsys, monkeypatch):
    tmp, model, data = files
    monkeypatch.chdir(tmp)
    assert run(_audit(model, data, "-o", "earlier.html"), capsys)[0] == 0
    (tmp / "modelshield-report.html").symlink_to(tmp / "earlier.html")
    rc, _, err = run(_audit(model, data), capsys)
    assert rc == 2 and "not a modelshield report" in _one_line_error(err)


def test_an_explicit_path_still_needs_force_even_over_a_report(files, capsys):
    tmp, model, data = files
    html = tmp / "r.html"
    assert run(_audit(model, data, "-o", html), capsys)[0] == 0
    rc, _, err = run(_audit(model, data, "-o", html), capsys)
    assert rc == 2 and "--force" in _one_line_error(err)
    js = tmp / "r.json"
    assert run(_audit(model, data, "-o", tmp / "a.html", "--json", js), capsys)[0] == 0
    rc, _, err = run(_audit(model, data, "-o", tmp / "b.html", "--json", js), capsys)
    assert rc == 2 and "--force" in _one_line_error(err)


@pytest.mark.parametrize("kind", ["html", "json", "sarif"])
def test_is_previous_report_recognises_each_kind_and_nothing_else(files, capsys, kind):
    tmp, model, data = files
    out = {"html": ["-o", tmp / "r.html"], "json": ["-o", tmp / "x.html", "--json", tmp / "r.json"],
           "sarif": ["-o", tmp / "y.html", "--sarif", tmp / "r.sarif"]}[kind]
    assert run(_audit(model, data, *out), capsys)[0] == 0
    mine = tmp / f"r.{kind}"
    assert is_previous_report(mine, kind)
    for other in ("html", "json", "sarif"):
        if other != kind:
            assert not is_previous_report(mine, other)
    if kind != "html":  # a JSON document from another tool
        doc = json.loads(mine.read_text())
        if kind == "json":
            doc["tool"]["name"] = "other"
        else:
            doc["runs"][0]["tool"]["driver"]["name"] = "other"
        mine.write_text(json.dumps(doc))
        assert not is_previous_report(mine, kind)
    assert not is_previous_report(tmp, kind)          # a folder
    assert not is_previous_report(tmp / "none", kind)  # missing


# --- D.5 (part): the demo says its exit code ignores the gate ------------------------------------------------

@pytest.mark.parametrize("failed", [0, 1, 3])
def test_demo_says_its_exit_code_ignores_the_gate(tmp_path, capsys, monkeypatch, failed):
    reports = []

    def fake_demo(config, _prog):
        policy = config.policy
        runs = []
        for i in range(4):
            res = CheckResult(check="artifact", status=CheckStatus.FINDINGS, summary="s")
            if i < failed:
                res.findings.append(Finding(check="artifact", severity=Severity.CRITICAL, rule_id="a.b", title="t"))
            runs.append(AuditRun(label=f"m{i}", model={"framework": "none"}, data=None, results=[res],
                                 gate=policy.evaluate([res]), seed=0, duration_s=0.0))
        rep = AuditReport(runs=runs, policy=policy)
        reports.append(rep)
        return rep

    monkeypatch.setattr(audit_cli, "_run_demo", fake_demo)
    rc, out, err = run(["audit", "--demo", "--out", tmp_path / "r.html", "--no-progress"], capsys)
    assert rc == 0, err
    note = out.strip().splitlines()[-1]
    assert "exit code ignores the gate" in note and "exits 1 when its gate fails" in note
    if failed:
        assert f"{failed} of 4 demo audits failed the gate ({', '.join(f'm{i}' for i in range(failed))})" in note
    else:
        assert "all 4 demo audits passed the gate" in note
    assert note == demo_note(reports[0])


def test_readme_documents_the_demo_exit_code_and_report_replacement():
    text = " ".join((ROOT / "README.md").read_text().replace("**", "").split())
    assert "exit code ignores the gate" in text
    assert "Re-running refuses to overwrite them" not in text
