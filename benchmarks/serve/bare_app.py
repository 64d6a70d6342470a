"""The baseline: a minimal FastAPI endpoint calling predict, nothing else (no auth, limits, logging).

Run: ``uvicorn bare_app:app`` with ``MS_BENCH_MODEL=/path/model.joblib`` in the environment.
"""

from __future__ import annotations

import json
import os
from typing import Any

import joblib
import numpy as np
from fastapi import Body, FastAPI
from fastapi.responses import Response

model = joblib.load(os.environ["MS_BENCH_MODEL"])  # a file the benchmark itself wrote
classes = model.classes_
app = FastAPI()


@app.post("/v1/predict")
def predict(body: dict[str, Any] = Body(...)) -> Response:  # noqa: B008 - FastAPI idiom
    X = np.asarray(body["inputs"], dtype=np.float64)
    proba = model.predict_proba(X)
    out = {"predictions": classes[proba.argmax(1)].tolist(), "probabilities": proba.tolist(),
            "classes": classes.tolist()}
    return Response(json.dumps(out), media_type="application/json")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
