"""Registry audits: deterministic merge whatever the executor, faults as rows, the cache, the outputs."""

from __future__ import annotations

import json

import pytest

from modelshield.errors import OutputError
from modelshield.policy import Policy
from modelshield.scale import LocalExecutor, ProcessExecutor, ResultCache, audit_registry, write_outputs
from modelshield.scale.testing import FaultyUnits
from modelshield.scale.units import result_from_dict

from .conftest import make_registry

TIMING = {"created", "duration_s", "wall_s", "seconds", "executor", "cache"}


def strip_timing(obj):
    if isinstance(obj, dict):
        return {k: strip_timing(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [strip_timing(v) for v in obj]
    return obj


def outputs_json(result, out) -> dict[str, object]:
    write_outputs(result, out)
    return {p.relative_to(out).as_posix(): strip_timing(json.loads(p.read_text()))
            for p in sorted(out.rglob("*.json"))}


CHECKS = ["baseline", "robustness"]


@pytest.mark.parametrize("start", [
    "fork",  # workers inherit this process's imports: seconds (the default run)
    pytest.param("spawn", marks=pytest.mark.slow),  # the CLI's way: each worker imports torch (15-20 s here)
])
def test_same_seed_same_reports_local_and_processes(tmp_path, start):
    reg = make_registry(tmp_path / "reg", 2, faults=("malicious",))
    kw = {"checks": CHECKS, "quick": True, "seed": 7}
    local = audit_registry(reg, executor=LocalExecutor(), **kw)
    with ProcessExecutor(workers=2, start_method=start) as ex:
        procs = audit_registry(reg, executor=ex, **kw)
    a, b = outputs_json(local, tmp_path / "a"), outputs_json(procs, tmp_path / "b")
    assert len(a) == 1 + 3  # the summary and one report per model
    assert a == b
    rows = {r["name"]: r for r in a["summary.json"]["models"]}
    assert rows["broken/evil.pkl"]["status"] == "fail"  # planted: scanner finding and loader refusal
    assert all(rows[n]["status"] == "pass" for n in rows if n != "broken/evil.pkl")
    # a different seed changes the attack draws: the comparison above can fail
    other = audit_registry(reg, executor=LocalExecutor(), checks=CHECKS, quick=True, seed=8)
    assert outputs_json(other, tmp_path / "c") != a


def test_faults_are_error_rows_and_the_rest_is_audited_local(tmp_path):
    reg = make_registry(tmp_path / "reg", 3, faults=("garbage",))
    faults = FaultyUnits({"team0/model00.joblib": "raise", "team1/model01.joblib:baseline": "hang"}, hang_s=600)
    res = audit_registry(reg, executor=LocalExecutor(timeout=5), checks=["baseline"], unit_fn=faults)
    rows = {r.name: r for r in res.rows}
    assert [rows[n].status for n in sorted(rows)] == ["error", "error", "pass", "error"]
    assert "injected fault" in rows["team0/model00.joblib"].error
    assert "timeout" in rows["team1/model01.joblib"].error
    hung = {r.check: r for r in res.reports[[r.name for r in res.rows].index("team1/model01.joblib")].runs[0].results}
    assert hung["artifact"].status.value == "passed" and hung["baseline"].status.value == "error"
    assert "FormatError" in rows["broken/garbage.pkl"].error
    assert not res.passed


@pytest.mark.slow
def test_faults_are_error_rows_and_the_rest_is_audited_processes(tmp_path):
    reg = make_registry(tmp_path / "reg", 3, faults=("garbage",))
    faults = FaultyUnits({"team0/model00.joblib": "raise", "team1/model01.joblib": "hang"}, hang_s=600)
    with ProcessExecutor(workers=2, timeout=8) as ex:
        res = audit_registry(reg, executor=ex, checks=["baseline"], unit_fn=faults)
    rows = {r.name: r for r in res.rows}
    assert rows["team0/model00.joblib"].status == "error" and "injected fault" in rows["team0/model00.joblib"].error
    assert rows["team1/model01.joblib"].status == "error" and "timeout" in rows["team1/model01.joblib"].error
    assert rows["broken/garbage.pkl"].status == "error"  # unreadable: the loader cannot parse it
    assert rows["team0/model02.joblib"].status == "pass"
    assert not res.passed  # errors fail the gate under the default policy (errors_fail)
    lenient = Policy.from_mapping({"errors_fail": False})
    with ProcessExecutor(workers=1, timeout=8) as ex:
        res2 = audit_registry(reg, executor=ex, checks=["baseline"], policy=lenient,
                              unit_fn=FaultyUnits({"team1/model01.joblib": "exit"}))
    rows2 = {r.name: r for r in res2.rows}
    assert rows2["team1/model01.joblib"].status == "error" and "died" in rows2["team1/model01.joblib"].error
    assert rows2["team0/model00.joblib"].status == "pass"


def test_unreadable_file_is_an_error_row(tmp_path):
    reg = make_registry(tmp_path / "reg", 1)
    bad = reg / "team0" / "model00.joblib"
    bad.chmod(0)
    try:
        if bad.stat().st_mode and __import__("os").access(bad, __import__("os").R_OK):
            pytest.skip("running as root: permissions do not stop reads")
        res = audit_registry(reg, executor=LocalExecutor(), checks=["baseline"])
    finally:
        bad.chmod(0o644)
    (row,) = res.rows
    assert row.status == "error" and "unreadable" in row.error


def test_limits_fail_a_weak_model(tmp_path):
    reg = make_registry(tmp_path / "reg", 1, faults=("weak",))
    pol = Policy.from_mapping({"limits": ["baseline.accuracy >= 0.7"]})
    seen: list[tuple[int, int, str]] = []
    res = audit_registry(reg, executor=LocalExecutor(), checks=["baseline"], policy=pol,
                         on_progress=lambda done, total, name: seen.append((done, total, name)))
    # the progress bar's feed: once per model, counting up to the registry's size
    assert [d for d, _, _ in seen] == [1, 2] and {t for _, t, _ in seen} == {2}
    assert sorted(n for _, _, n in seen) == ["team0/model00.joblib", "weak.joblib"]
    rows = {r.name: r for r in res.rows}
    assert rows["weak.joblib"].status == "fail" and "baseline.accuracy" in rows["weak.joblib"].reasons[0]
    assert rows["team0/model00.joblib"].status == "pass"


def test_the_cache_answers_unchanged_models_and_recomputes_changed_ones(tmp_path):
    reg = make_registry(tmp_path / "reg", 2)
    cache = ResultCache(tmp_path / "c.sqlite")
    first = audit_registry(reg, executor=LocalExecutor(), checks=["baseline"], cache=cache)
    assert first.cache["hits"] == 0 and first.cache["computed"] == 4 and not any(r.cached for r in first.rows)
    second = audit_registry(reg, executor=LocalExecutor(), checks=["baseline"], cache=cache)
    assert second.cache == {**second.cache, "hits": 4, "computed": 0} and all(r.cached for r in second.rows)
    a, b = outputs_json(first, tmp_path / "a"), outputs_json(second, tmp_path / "b")
    a.pop("summary.json"), b.pop("summary.json")  # the summary says which rows were cached
    assert a == b  # a cached result is the same report
    # change one model: only its units run again
    import joblib
    from sklearn.tree import DecisionTreeClassifier

    X = [[0.0] * 5, [1.0] * 5]
    joblib.dump(DecisionTreeClassifier(max_depth=1).fit(X, [0, 1]), reg / "team1" / "model01.joblib")
    third = audit_registry(reg, executor=LocalExecutor(), checks=["baseline"], cache=cache)
    assert third.cache["hits"] == 2 and third.cache["computed"] == 2  # its scan and its baseline
    assert [r.cached for r in third.rows] == [True, False]
    # a model moved to another path is new work too (its results name their file)
    (reg / "team0" / "model00.joblib").rename(reg / "team0" / "moved.joblib")
    moved = audit_registry(reg, executor=LocalExecutor(), checks=["baseline"], cache=cache)
    assert moved.cache["hits"] == 2 and moved.cache["computed"] == 2
    # a new seed is new work
    fourth = audit_registry(reg, executor=LocalExecutor(), checks=["baseline"], cache=cache, seed=1)
    assert fourth.cache["hits"] == 0


def test_errors_are_not_cached(tmp_path):
    reg = make_registry(tmp_path / "reg", 1)
    cache = ResultCache(tmp_path / "c.sqlite")
    audit_registry(reg, executor=LocalExecutor(), checks=["baseline"], cache=cache,
                   unit_fn=FaultyUnits({"team0/model00.joblib": "raise"}))
    assert len(cache) == 0
    res = audit_registry(reg, executor=LocalExecutor(), checks=["baseline"], cache=cache)
    assert res.rows[0].status == "pass" and not res.rows[0].cached


def test_results_survive_the_json_round_trip(tmp_path):
    reg = make_registry(tmp_path / "reg", 1, faults=("malicious",))
    res = audit_registry(reg, executor=LocalExecutor(), checks=["baseline", "robustness"], quick=True)
    results = [r for rep in res.reports for r in rep.runs[0].results]
    assert {r.check for r in results} >= {"artifact", "baseline", "robustness", "loader"}
    assert any(r.figures for r in results) and any(r.findings for r in results)
    for r in results:
        assert result_from_dict(r.to_dict()).to_dict() == r.to_dict()


def test_output_folder_rules(tmp_path):
    reg = make_registry(tmp_path / "reg", 1)
    res = audit_registry(reg, executor=LocalExecutor(), checks=["baseline"])
    out = tmp_path / "out"
    write_outputs(res, out)
    write_outputs(res, out)  # an earlier registry audit's folder is replaced
    html = (out / "summary.html").read_text()
    assert 'href="models/0000-team0_model00.joblib.html"' in html
    assert (out / "models" / "0000-team0_model00.joblib.html").is_file()
    assert (out / "models" / "0000-team0_model00.joblib.json").is_file()
    sarif = json.loads((out / "summary.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"output folder .* exists and holds other files$") as ei:
        write_outputs(res, other)
    assert "--force" in (ei.value.cli_hint or "")
    with pytest.raises(OutputError, match="does not exist"):
        write_outputs(res, tmp_path / "no" / "out")


def test_hugging_face_cache_audit_scans_weights_and_audits_loadable_models(tmp_path):
    from .test_sources import _hf_cache, _safetensors

    reg = make_registry(tmp_path / "reg", 1)
    hub = _hf_cache(tmp_path / "hub", {"acme/tab": {"model.joblib": (reg / "team0" / "model00.joblib").read_bytes()},
                                       "acme/w": {"model.safetensors": _safetensors()}})
    res = audit_registry(hub, executor=LocalExecutor(), checks=["baseline"])
    rows = {r.name: r for r in res.rows}
    tab, w = rows["acme/tab@a1b2c3d4a1b2"], rows["acme/w@a1b2c3d4a1b2"]
    assert tab.status == "pass" and w.status == "pass" and "scanned, not loaded" in w.note
    results = {r.check: r for r in res.reports[[r.name for r in res.rows].index(w.name)].runs[0].results}
    assert results["artifact"].status.value == "passed"  # the weights file was scanned (through its symlink)
    assert results["baseline"].status.value == "skipped" and "safetensors" in results["baseline"].skip_reason


def test_an_unchanged_report_is_kept_and_a_changed_one_rewritten(tmp_path):
    reg = make_registry(tmp_path / "reg", 1)
    out = tmp_path / "out"
    kw = {"executor": LocalExecutor(), "checks": ["baseline"]}
    write_outputs(audit_registry(reg, **kw), out)
    page = out / "models" / "0000-team0_model00.joblib.json"
    page.write_text(page.read_text().replace('"created"', '"created" ', 1))  # same content, marked
    write_outputs(audit_registry(reg, **kw), out)
    assert '"created" ' in page.read_text()  # the same report: not rendered again
    strict = Policy.from_mapping({"limits": ["baseline.accuracy >= 0.999"]})
    res = audit_registry(reg, policy=strict, **kw)
    write_outputs(res, out)
    doc = json.loads(page.read_text())
    assert '"created" ' not in page.read_text() and doc["passed"] is False  # the gate changed: rewritten
    assert json.loads((out / "summary.json").read_text())["models"][0]["status"] == "fail"


def test_missing_registered_data_is_an_error_row_not_a_crash(tmp_path):
    reg = make_registry(tmp_path / "reg", 2)
    (reg / "team1" / "registry.yaml").write_text("defaults: {data: gone.csv, target: label}\n")
    res = audit_registry(reg, executor=LocalExecutor(), checks=["baseline"])
    rows = {r.name: r for r in res.rows}
    assert rows["team1/model01.joblib"].status == "error" and "gone.csv" in rows["team1/model01.joblib"].error
    assert rows["team0/model00.joblib"].status == "pass"
