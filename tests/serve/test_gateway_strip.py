"""STRIP at the gateway: a backdoored digits model (BadNets 2x2 pixel trigger, 10% of the training rows
poisoned, target class 0) served with ``input.strip`` on; its clean overlays and threshold come from the
gateway's reference data (clean held-out rows). A triggered input is flagged, rejected or only logged per the
policy; a clean input passes; the audit log records the decision and the STRIP score."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from modelshield.errors import DataError, UserError
from modelshield.models.torch import TorchModel
from modelshield.poisoning import _torch as T
from modelshield.poisoning.planted import Trigger, plant_trigger
from modelshield.serve.app import create_app
from modelshield.serve.config import ServeConfig, load_config
from modelshield.serve.monitors.strip import StripDetector

TRIGGER = Trigger.pixel_patch((8, 8), size=2, value=1.0, target=0)


@pytest.fixture(scope="module")
def backdoored():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    pl = plant_trigger(Xtr, ytr, TRIGGER, fraction=0.1, seed=0)
    module = T.train(T.make_mlp(64, 10, seed=0), pl.X, pl.y, epochs=40, lr=3e-3, seed=0)
    model = TorchModel(module)
    ref, held, yheld = Xte[:400], Xte[400:], yte[400:]  # reference for the gateway; requests from the rest
    triggered = TRIGGER.apply(held[yheld != 0])
    assert np.mean(model.predict(triggered) == 0) > 0.9  # the backdoor works
    return model, ref, held, triggered


@pytest.fixture
def gateway(tmp_path, backdoored):
    model, ref, _, _ = backdoored
    made = []

    def make(strip: dict | None, policy: str = "log", **cfg):
        config = ServeConfig.model_validate({
            "state_dir": str(tmp_path / f"state-{len(made)}"),
            "input": {"policy": policy, "adversarial": False, **({"strip": strip} if strip is not None else {})},
            "drift": {"enabled": False}, "extraction": {"enabled": False}, **cfg})
        app = create_app(model, config, reference=ref)
        gw = app.state.gateway
        made.append(gw)
        return app, gw, gw.keys.create("user", ["predict"])[1]

    yield make
    for gw in made:
        with contextlib.suppress(Exception):
            gw.close()


def _post(client, key, rows):
    return client.post("/v1/predict", json={"inputs": np.asarray(rows).tolist()},
                       headers={"Authorization": f"Bearer {key}"})


def _last(gw) -> dict:
    rec = gw.audit.recent(1)[0]
    return {**rec, "scores": json.loads(rec["scores"]) if rec["scores"] else None}


def test_reject_mode_refuses_triggered_inputs_and_logs_the_refusal(gateway, backdoored):
    _, _, held, triggered = backdoored
    app, gw, key = gateway({"enabled": True, "policy": "reject", "seed": 0})
    assert "strip" in gw.defense.detectors and gw.defense.policies["strip"] == "reject"
    assert gw.defense.policies["ood"] == "log"  # the other detectors keep input.policy
    with TestClient(app) as c:
        r = _post(c, key, triggered[:1])
        assert r.status_code == 422 and "backdoor trigger (STRIP)" in r.json()["detail"]
        rec = _last(gw)
        assert rec["decision"] == "rejected:input_rejected" and rec["status"] == 422
        assert "strip" in rec["scores"]["flagged_by"]
        assert rec["scores"]["strip_max"] > gw.defense.thresholds["strip"]
        ok = _post(c, key, held[:1])
        assert ok.status_code == 200 and "x-input-flagged" not in ok.headers
        assert _last(gw)["decision"] == "ok"


def test_flag_mode_answers_and_marks_triggered_inputs(gateway, backdoored):
    _, _, held, triggered = backdoored
    app, gw, key = gateway({"enabled": True, "policy": "flag", "seed": 0})
    with TestClient(app) as c:
        r = _post(c, key, triggered[:3])
        assert r.status_code == 200 and r.headers.get("x-input-flagged") == "1"
        assert r.json()["predictions"] == [0, 0, 0]  # answered: flag does not change the answer
        rec = _last(gw)
        assert rec["decision"] == "flagged" and rec["scores"]["flagged_rows"] == 3
        r = _post(c, key, held[:3])
        assert r.status_code == 200 and "x-input-flagged" not in r.headers


def test_log_mode_records_the_score_only(gateway, backdoored):
    _, _, _, triggered = backdoored
    app, gw, key = gateway({"enabled": True, "seed": 0}, policy="log")  # strip.policy null: input.policy
    with TestClient(app) as c:
        r = _post(c, key, triggered[:1])
        assert r.status_code == 200 and "x-input-flagged" not in r.headers
    rec = _last(gw)
    assert rec["decision"] == "ok" and rec["scores"]["strip_max"] > gw.defense.thresholds["strip"]


def test_triggered_inputs_are_caught_and_clean_ones_pass_at_the_set_rate(gateway, backdoored):
    _, _, held, triggered = backdoored
    _, gw, _ = gateway({"enabled": True, "seed": 1})
    det = gw.defense.detectors["strip"]
    thr = gw.defense.thresholds["strip"]
    assert thr == det.calibrated_threshold  # STRIP's own threshold (calibration half), not the OOD quantile
    assert np.mean(det.score(triggered) > thr) >= 0.8  # measured 0.85-0.95 over split seeds 0-3
    assert np.mean(det.score(held) > thr) <= 0.03  # fpr 0.01 on the calibration half; held-out rows near it


def test_one_model_call_per_request_and_the_same_input_scores_the_same(gateway, backdoored):
    model, _, held, _ = backdoored
    _, gw, _ = gateway({"enabled": True, "overlays": 8, "seed": 2})
    before = model.query_count
    _, decision, proba = gw.screen_and_predict(held[:5])
    assert decision == "ok"
    assert model.query_count - before == (8 + 1) * 5  # the rows themselves lead the STRIP batch
    np.testing.assert_allclose(proba, model.predict_proba(held[:5]))
    det = gw.defense.detectors["strip"]
    np.testing.assert_array_equal(det.score(held[:5]), det.score(held[:5]))


def test_off_by_default_and_config_validation(gateway, tmp_path):
    _, gw, _ = gateway(None)
    assert "strip" not in gw.defense.detectors
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("input:\n  strip: {enabled: true, policy: reject, fpr: 0.02, overlays: 8}\n")
    sc = load_config(cfg).input.strip
    assert sc.enabled and sc.policy == "reject" and sc.fpr == 0.02 and sc.overlays == 8
    for bad in ("fpr: 0.7", "policy: drop", "overlays: 0", "unknown: 1"):
        cfg.write_text(f"input:\n  strip: {{{bad}}}\n")
        with pytest.raises(UserError, match=r"bad serve config: input\.strip"):
            load_config(cfg)


def test_too_few_or_no_reference_rows_is_a_clear_error(backdoored, tmp_path):
    model, ref, _, _ = backdoored
    with pytest.raises(DataError, match="at least 20 reference rows"):
        StripDetector(seed=0).fit(model, ref[:10])
    config = ServeConfig.model_validate({"state_dir": str(tmp_path / "s"), "input": {"strip": {"enabled": True}}})
    with pytest.raises(UserError, match=r"input\.strip needs reference data"):
        create_app(model, config, reference=None)
