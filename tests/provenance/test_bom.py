"""The ML-BOM engine: schema validity, what each part says, refusals (fail closed) and the hash check."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from datetime import datetime, timezone
from importlib import metadata

import numpy as np
import pytest

from modelshield.errors import FormatError, InputNotFoundError, IntegrityError, UserError
from modelshield.formats import detect_format_bytes
from modelshield.provenance import build_bom, verify_bom
from modelshield.provenance.bom import installed_distributions

P = "modelshield:"


def props(component: dict, name: str) -> list[str]:
    return [p["value"] for p in component.get("properties", []) if p["name"] == P + name]


def prop(component: dict, name: str) -> str:
    (value,) = props(component, name)
    return value


def fixed(**kw):
    return build_bom(clock=lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
                     serial=uuid.UUID(int=7), **kw)


# -- schema ---------------------------------------------------------------------------------------


def test_full_bom_validates_against_the_official_schema(files, report, cdx_validator):
    from modelshield.protect.keys import load_private_key
    from modelshield.protect.signing import sign

    sig = sign(files / "model.onnx", load_private_key(files / "owner.key"), signature=files / "model.sig",
               force=True)
    bom = build_bom(files / "model.onnx", report, sig, data=[files / "data.csv"], public_key=files / "owner.pub")
    errors = [f"{list(e.path)}: {e.message}" for e in cdx_validator.iter_errors(bom)]
    assert errors == []
    assert bom["specVersion"] == "1.6" and bom["bomFormat"] == "CycloneDX"
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", bom["serialNumber"])


def test_the_schema_validator_is_live(files, cdx_validator):
    """Each corruption of a valid BOM is refused: the validation above can fail."""
    bom = build_bom(files / "model.onnx", dependencies="none")
    assert cdx_validator.is_valid(bom)
    breakers = [
        lambda b: b["metadata"]["component"].__setitem__("type", "ml-model"),
        lambda b: b["metadata"]["component"]["hashes"][0].__setitem__("alg", "SHA256"),
        lambda b: b["metadata"]["component"]["hashes"][0].__setitem__("content", "xyz"),
        lambda b: b.__setitem__("specVersion", 1.6),
        lambda b: b["metadata"]["component"]["properties"].append({"name": "x", "value": 3}),
        lambda b: b["metadata"]["component"]["modelCard"].__setitem__("unknown", {}),
    ]
    for brk in breakers:
        bad = copy.deepcopy(bom)
        brk(bad)
        assert not cdx_validator.is_valid(bad)


def test_cyclonedx_library_accepts_the_bom(files, report):
    """A second, independent validator: cyclonedx-python-lib's strict 1.6 JSON validator (its own copy of
    the schema)."""
    pytest.importorskip("cyclonedx")
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    v = JsonStrictValidator(SchemaVersion.V1_6)
    bom = build_bom(files / "model.onnx", report, data=[files / "data.csv"])
    assert v.validate_str(json.dumps(bom)) is None
    bom["metadata"]["component"]["hashes"][1]["alg"] = "SHA512"
    assert v.validate_str(json.dumps(bom)) is not None


# -- the model component --------------------------------------------------------------------------


def _model_family(d):
    """A family of model files in different formats -> the distributions expected as its framework."""
    import joblib
    import torch
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    joblib.dump(DecisionTreeClassifier(max_depth=2).fit(X, X[:, 0] > 0), d / "tree.joblib")
    joblib.dump(DecisionTreeClassifier(max_depth=2).fit(X, X[:, 1] > 0), d / "tree.joblib.z", compress=3)
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), d / "lin.pt")
    torch.save(torch.nn.Linear(3, 2).state_dict(), d / "sd.pt")
    np.save(d / "w.npy", rng.normal(size=(3, 3)))
    return {"model.onnx": ("onnx", ("onnx", "onnxruntime")),
            "tree.joblib": ("pickle", ("scikit-learn", "joblib", "numpy")),
            "tree.joblib.z": ("joblib-compressed", ("scikit-learn", "joblib", "numpy")),
            "lin.pt": ("torchscript", ("torch",)),
            "sd.pt": ("torch-zip", ("torch",)),
            "w.npy": ("npy", ("numpy",))}


def test_model_component_hashes_format_and_frameworks(files):
    PackageURL = pytest.importorskip("packageurl").PackageURL  # the reference purl encoder
    for name, (fmt, dists) in _model_family(files).items():
        path = files / name
        raw = path.read_bytes()
        bom = build_bom(path)
        comp = bom["metadata"]["component"]
        assert comp["type"] == "machine-learning-model"
        assert {h["alg"]: h["content"] for h in comp["hashes"]} == {
            "SHA-256": hashlib.sha256(raw).hexdigest(), "SHA-512": hashlib.sha512(raw).hexdigest()}
        assert prop(comp, "model:format") == fmt == detect_format_bytes(raw)
        assert prop(comp, "model:size") == str(len(raw))
        for dist in dists:
            assert prop(comp, f"framework:{dist}") == metadata.version(dist)
        # the model depends on exactly its frameworks and modelshield, by purl
        (dep,) = [d for d in bom["dependencies"] if d["ref"] == comp["bom-ref"]]
        want = {PackageURL(type="pypi", name=n, version=metadata.version(n)).to_string()
                for n in (*dists, "modelshield")}
        assert set(dep["dependsOn"]) == want


def test_dependencies_are_the_installed_distributions(files):
    bom = build_bom(files / "model.onnx")
    libs = {c["name"]: c for c in bom["components"] if c["type"] == "library"}
    expected = {}
    for dist in metadata.distributions():
        n = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        expected.setdefault(n, dist.version)
    assert {n: c["version"] for n, c in libs.items()} == expected
    assert dict(installed_distributions()) == expected
    for n, c in libs.items():
        assert c["purl"] == c["bom-ref"]
        assert re.fullmatch(r"pkg:pypi/[a-z0-9][a-z0-9.\-]*@[A-Za-z0-9.%\-]+", c["purl"]), c["purl"]
    assert libs["numpy"]["version"] == np.__version__
    assert not [c for c in build_bom(files / "model.onnx", dependencies="none")["components"]
                if c["type"] == "library"]
    with pytest.raises(UserError):
        build_bom(files / "model.onnx", dependencies="all")  # type: ignore[arg-type]


def test_fixed_clock_and_serial_make_the_bom_reproducible(files):
    a, b = fixed(model_path=files / "model.onnx"), fixed(model_path=files / "model.onnx")
    assert a == b
    assert a["metadata"]["timestamp"] == "2026-01-02T03:04:05Z"
    assert a["serialNumber"] == "urn:uuid:00000000-0000-0000-0000-000000000007"


# -- data sets and the audit ----------------------------------------------------------------------


def test_audit_results_and_data_sets_come_from_the_report(files, report):
    rep = json.loads(report.read_text())
    (run,) = rep["runs"]
    bom = build_bom(files / "model.onnx", report, data=[files / "data.csv"])
    comp = bom["metadata"]["component"]
    assert prop(comp, "audit:passed") == str(run["passed"]).lower()
    for res in run["results"]:
        assert prop(comp, f"audit:check:{res['check']}") == res["status"]
    counts = {s: 0 for s in ("critical", "high", "medium", "low", "info")}
    for res in run["results"]:
        for f in res["findings"]:
            counts[f["severity"]] += 1
    assert {s: int(prop(comp, f"audit:severity:{s}")) for s in counts} == counts
    metrics = {m["type"]: m["value"] for m in comp["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]}
    want = {f"{r['check']}.{k}": repr(v) for r in run["results"] for k, v in r["metrics"].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert metrics == want and want
    (data,) = [c for c in bom["components"] if c["type"] == "data"]
    raw = (files / "data.csv").read_bytes()
    assert {h["alg"]: h["content"] for h in data["hashes"]}["SHA-256"] == hashlib.sha256(raw).hexdigest()
    assert prop(data, "data:size") == str(len(raw))
    assert prop(data, "data:rows") == str(run["data"]["rows"])
    assert data["data"][0]["sensitiveData"] == run["data"]["sensitive"] == ["sex"]
    assert comp["modelCard"]["modelParameters"]["datasets"] == [{"ref": data["bom-ref"]}]
    (ref,) = comp["externalReferences"]
    assert ref["type"] == "component-analysis-report"
    assert ref["hashes"][0]["content"] == hashlib.sha256(report.read_bytes()).hexdigest()


def _synthetic_report(rng, sha):
    """A generated audit report: random checks, statuses and findings (the family for the property test)."""
    sevs = ["critical", "high", "medium", "low", "info"]
    results = []
    for i in range(int(rng.integers(1, 6))):
        findings = [{"severity": sevs[int(rng.integers(0, 5))]} for _ in range(int(rng.integers(0, 4)))]
        results.append({"check": f"check{i}", "status": ["passed", "findings", "skipped", "error"][int(rng.integers(0, 4))],
                        "metrics": {"m": float(rng.random()), "flag": True, "name": "x"}, "findings": findings})
    passed = bool(rng.integers(0, 2))
    return {"passed": passed, "runs": [{"label": "m", "model": {"sha256": sha}, "passed": passed,
                                        "gate": {"reasons": [] if passed else ["too many findings"]},
                                        "results": results}]}


def test_generated_reports_are_carried_faithfully(files):
    sha = hashlib.sha256((files / "model.onnx").read_bytes()).hexdigest()
    rng = np.random.default_rng(3)
    for _ in range(12):
        rep = _synthetic_report(rng, sha)
        comp = build_bom(files / "model.onnx", rep, dependencies="none")["metadata"]["component"]
        run = rep["runs"][0]
        assert prop(comp, "audit:passed") == ("true" if rep["passed"] else "false")
        assert props(comp, "audit:gate-reason") == run["gate"]["reasons"]
        for res in run["results"]:
            assert prop(comp, f"audit:check:{res['check']}") == res["status"]
        for s in ("critical", "high", "medium", "low", "info"):
            n = sum(f["severity"] == s for r in run["results"] for f in r["findings"])
            assert prop(comp, f"audit:severity:{s}") == str(n)
        perf = comp["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
        assert [m["type"] for m in perf] == [f"{r['check']}.m" for r in run["results"]]  # no bools, no text


def test_a_report_about_another_model_is_refused(files, report):
    with pytest.raises(IntegrityError, match="not about this model"):
        build_bom(files / "other.onnx", report)
    rep = json.loads(report.read_text())
    rep["runs"][0]["model"].pop("sha256")
    with pytest.raises(IntegrityError):  # nothing ties the report to the model: fail closed
        build_bom(files / "model.onnx", rep)
    rep["runs"][0]["model"]["sha256"] = hashlib.sha256(b"x").hexdigest()
    with pytest.raises(IntegrityError):
        build_bom(files / "model.onnx", rep)


def test_bad_reports_are_format_errors(files, tmp_path):
    (tmp_path / "r.json").write_text("{not json")
    with pytest.raises(FormatError, match=r"r\.json is not JSON$") as ei:
        build_bom(files / "model.onnx", tmp_path / "r.json")
    assert ei.value.cli_hint == "write one with 'modelshield audit --json'"
    for bad in ({"runs": []}, {"passed": True}, [], {"passed": True, "runs": "x"}):
        with pytest.raises(FormatError) as ei:
            build_bom(files / "model.onnx", bad)
        assert "--json" not in str(ei.value)
    sha = hashlib.sha256((files / "model.onnx").read_bytes()).hexdigest()
    rep = _synthetic_report(np.random.default_rng(0), sha)
    rep["runs"][0]["results"] = [{"check": "c", "status": "findings", "findings": [{"severity": "urgent"}]}]
    with pytest.raises(FormatError, match="severity"):
        build_bom(files / "model.onnx", rep)


def test_data_missing_or_given_twice(files):
    with pytest.raises(InputNotFoundError):
        build_bom(files / "model.onnx", data=[files / "nope.csv"])
    with pytest.raises(InputNotFoundError):
        build_bom(files / "missing.onnx")
    with pytest.raises(UserError, match="not a file"):
        build_bom(files)
    from modelshield.errors import DataError

    with pytest.raises(DataError):
        build_bom(files / "model.onnx", data=[files / "data.csv", files / "data.csv"])


# -- signatures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(files):
    from modelshield.protect.keys import load_private_key
    from modelshield.protect.signing import sign

    key = load_private_key(files / "owner.key")
    return (sign(files / "model.onnx", key, signature=files / "m.sig", force=True),
            sign(files / "other.onnx", key, signature=files / "o.sig", force=True))


def test_signature_reference_and_verification(files, signed):
    sig, _ = signed
    comp = build_bom(files / "model.onnx", signature=sig, public_key=files / "owner.pub")["metadata"]["component"]
    (ref,) = comp["externalReferences"]
    assert ref["type"] == "digital-signature"
    assert {h["alg"]: h["content"] for h in ref["hashes"]}["SHA-256"] == hashlib.sha256(sig.read_bytes()).hexdigest()
    assert prop(comp, "signature:covers-model-sha256") == "true"
    assert prop(comp, "signature:verified") == "true"
    unverified = build_bom(files / "model.onnx", signature=sig)["metadata"]["component"]
    assert prop(unverified, "signature:verified").startswith("no")


def test_signature_of_another_model_or_tampered_is_refused(files, signed, tmp_path):
    sig, other_sig = signed
    with pytest.raises(IntegrityError, match="another file"):
        build_bom(files / "model.onnx", signature=other_sig)
    from modelshield.protect.keys import write_signing_keypair

    write_signing_keypair(tmp_path / "k", tmp_path / "k.pub")
    with pytest.raises(IntegrityError):  # signed, but not by this key
        build_bom(files / "model.onnx", signature=sig, public_key=tmp_path / "k.pub")
    (tmp_path / "junk.sig").write_text('{"mediaType": "x"}')
    with pytest.raises(FormatError):
        build_bom(files / "model.onnx", signature=tmp_path / "junk.sig")
    with pytest.raises(UserError):
        build_bom(files / "model.onnx", public_key=files / "owner.pub")


# -- verify_bom -----------------------------------------------------------------------------------


def test_verify_matches_the_model_and_no_other(files, tmp_path):
    bom = build_bom(files / "model.onnx", dependencies="none")
    res = verify_bom(bom, files / "model.onnx")
    assert res.ok and {h.alg for h in res.hashes} == {"SHA-256", "SHA-512"}
    assert not verify_bom(bom, files / "other.onnx").ok
    raw = bytearray((files / "model.onnx").read_bytes())
    rng = np.random.default_rng(5)
    for pos in [0, len(raw) - 1, *rng.integers(0, len(raw), 6).tolist()]:  # one flipped bit anywhere
        bad = bytearray(raw)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        (tmp_path / "m.onnx").write_bytes(bytes(bad))
        r = verify_bom(bom, tmp_path / "m.onnx")
        assert not r.ok and not any(h.matches for h in r.hashes)
    (tmp_path / "m.onnx").write_bytes(bytes(raw) + b"\0")  # appended byte
    assert not verify_bom(bom, tmp_path / "m.onnx").ok


def test_verify_reads_files_and_checks_each_hash(files, tmp_path):
    bom = build_bom(files / "model.onnx", dependencies="none")
    path = tmp_path / "bom.json"
    path.write_text(json.dumps(bom))
    assert verify_bom(path, files / "model.onnx").ok
    only512 = copy.deepcopy(bom)
    only512["metadata"]["component"]["hashes"] = only512["metadata"]["component"]["hashes"][1:]
    assert verify_bom(only512, files / "model.onnx").ok
    edited = copy.deepcopy(bom)
    edited["metadata"]["component"]["hashes"][1]["content"] = "0" * 128  # SHA-256 still right
    res = verify_bom(edited, files / "model.onnx")
    assert not res.ok and [h.matches for h in res.hashes] == [True, False]


def test_verify_refuses_what_it_cannot_check(files, tmp_path):
    bom = build_bom(files / "model.onnx", dependencies="none")
    none = copy.deepcopy(bom)
    none["metadata"]["component"]["hashes"] = [{"alg": "MD5", "content": "0" * 32}]
    two = copy.deepcopy(bom)
    two["components"] = [copy.deepcopy(bom["metadata"]["component"])]
    zero = copy.deepcopy(bom)
    zero["metadata"]["component"]["type"] = "library"
    for bad in (none, two, zero, {"bomFormat": "SPDX"}, {"bomFormat": "CycloneDX", "specVersion": "2.0"}):
        with pytest.raises(FormatError):
            verify_bom(bad, files / "model.onnx")
    (tmp_path / "x.json").write_text("nope")
    with pytest.raises(FormatError):
        verify_bom(tmp_path / "x.json", files / "model.onnx")
    with pytest.raises(InputNotFoundError):
        verify_bom(bom, files / "gone.onnx")


def test_encrypted_model_is_described_as_such(files, tmp_path, cdx_validator):
    import secrets

    from modelshield.protect.crypto import encrypt_file

    enc = tmp_path / "model.onnx.enc"
    encrypt_file(files / "model.onnx", enc, key=secrets.token_bytes(32))
    bom = build_bom(enc, dependencies="none")
    comp = bom["metadata"]["component"]
    assert prop(comp, "model:format") == "modelshield-encrypted"
    assert prop(comp, "framework:cryptography") == metadata.version("cryptography")
    assert cdx_validator.is_valid(bom)
    assert verify_bom(bom, enc).ok and not verify_bom(bom, files / "model.onnx").ok
