"""Report content: JSON against our schema, SARIF against the official OASIS schema, HTML in Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import modelshield as ms
from modelshield.findings import Figure, Finding, Series
from modelshield.report.html import render_html
from modelshield.report.json import report_schema, to_json
from modelshield.report.svg import render_svg
from modelshield.report.write import report_sarif, write_reports

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture(scope="module")
def report(sk_logreg, breast_cancer):
    _, Xte, _, yte = breast_cancer
    rep = ms.audit(sk_logreg, ms.Dataset(X=Xte, y=yte, name="cancer"), checks=["baseline"], label="logreg")
    res = rep.runs[0].result("baseline")
    res.findings.append(Finding(check="baseline", severity="critical", title="Injected <script>alert(1)</script>",
                                detail="detail & more", location="models/x.pkl", offset=17,
                                references=("https://example.org/advisory", "CVE-2025-1716")))
    res.figures.append(Figure(title="Bars", kind="bar", series=[
        Series(name="rate", x=["a", "b"], y=[0.2, 0.5], lo=[0.1, 0.4], hi=[0.3, 0.6])]))
    res.figures.append(Figure(title="ROC", kind="line", log_x=True, log_y=True, diagonal=True,
                              series=[Series(name="attack", x=[1e-3, 1e-2, 1e-1, 1], y=[2e-3, 3e-2, 0.2, 1])]))
    res.tables["per_group"] = [{"group": "a", "rate": 0.25}, {"group": "b", "rate": 0.5}]
    rep.runs[0].gate = rep.policy.evaluate(rep.runs[0].results)
    return rep


def test_json_report_matches_schema_and_content(report):
    import jsonschema

    doc = json.loads(to_json(report))
    jsonschema.validate(doc, report_schema())
    assert doc["schema_version"] == "1.0" and doc["passed"] is False
    run = doc["runs"][0]
    assert run["label"] == "logreg" and run["model"]["framework"] == "sklearn"
    base = run["results"][0]
    assert base["check"] == "baseline" and 0.9 < base["metrics"]["accuracy"] <= 1
    assert any(f["severity"] == "critical" for f in base["findings"])
    assert doc["summary"]["severity_counts"]["critical"] == 1


def test_sarif_validates_against_official_schema(report):
    import jsonschema

    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    log = report_sarif(report)
    jsonschema.Draft4Validator(schema).validate(log)
    res = log["runs"][0]["results"]
    crit = next(r for r in res if r["properties"]["severity"] == "critical")
    assert crit["level"] == "error"
    assert crit["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/x.pkl"
    assert crit["locations"][0]["physicalLocation"]["region"]["byteOffset"] == 17
    rule = log["runs"][0]["tool"]["driver"]["rules"][crit["ruleIndex"]]
    assert rule["id"] == crit["ruleId"] and rule["properties"]["security-severity"] == "9.5"


def test_html_is_self_contained_and_escaped(report):
    html = render_html(report)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "<script" not in html.lower()  # no scripts at all
    for bad in ("http://", "https://"):  # no external assets: only reference links may mention URLs
        for line in html.splitlines():
            if bad in line and ("src=" in line or "<link" in line or "@import" in line):
                pytest.fail(f"external asset: {line}")
    assert html.count("<svg") == 3  # reliability diagram + bars + ROC
    assert "Executive summary" in html and "Findings by severity" in html and 'id="verdict"' in html
    assert "baseline.accuracy" in html


def test_svg_renders_error_bars_and_log_axes():
    bar = render_svg(Figure(title="t", kind="bar", series=[Series(name="s", x=["g1"], y=[0.5], lo=[0.4], hi=[0.6])]))
    assert bar.count('class="errbar"') == 3
    line = render_svg(Figure(title="t", kind="line", log_x=True, series=[Series(name="s", x=[0, 0.01, 0.1], y=[0, 1, 2])]))
    assert line.count("<circle") == 2  # x=0 cannot be shown on a log axis
    empty = render_svg(Figure(title="t", kind="line", series=[Series(name="s", x=[], y=[])]))
    assert "no data" in empty


def test_write_reports_never_clobbers(report, tmp_path):
    html = tmp_path / "r.html"
    html.write_text("precious")
    with pytest.raises(ms.errors.OutputError, match="already exists") as err:
        write_reports(report, html=html, json_path=tmp_path / "r.json")
    # the library's message names no CLI flag; the hint the CLI prints does
    assert "--force" not in str(err.value) and err.value.cli_message().endswith("; pass --force to overwrite it")
    assert html.read_text() == "precious" and not (tmp_path / "r.json").exists()
    write_reports(report, html=html, json_path=tmp_path / "r.json", force=True)
    assert "modelshield" in html.read_text()


def _console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


@pytest.mark.browser
def test_html_renders_in_chromium_without_console_errors(report, tmp_path, browser):
    page = tmp_path / "report.html"
    page.write_text(render_html(report))
    browser.get(page.as_uri())
    assert "FAIL" in browser.title
    assert browser.find_element("id", "verdict").text.lower() == "fail"
    svgs = browser.find_elements("css selector", "svg.chart")
    assert len(svgs) == 3 and all(s.size["width"] > 300 and s.size["height"] > 150 for s in svgs)
    assert _console_errors(browser) == []
    shot = Path("test-artifacts") / "report-screenshot.png"
    shot.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


@pytest.mark.browser
def test_console_error_detection_catches_errors(tmp_path, browser):
    """The console-error probe above must be able to fail: a page that logs an error is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('broken page')</script></body></html>")
    browser.get(page.as_uri())
    assert any("broken page" in e for e in _console_errors(browser))


def test_numpy_values_in_tables_render(report):
    report.runs[0].results[0].tables["np"] = [{"v": np.float64(0.123456), "n": np.int64(3)}]
    assert "0.1235" in render_html(report)
