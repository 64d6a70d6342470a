"""The gateway: :func:`create_app` puts authentication, limits, input defense, output hardening,
extraction and drift monitoring and a write-ahead audit log in front of any
:class:`~modelshield.models.base.BaseModel`.

Request path of ``POST /v1/predict`` (each refusal is logged before it is answered; refusals for the
request rate at most once per key per ``limits.rate_log_interval_s``, the rest counted)::

    client blocked? -> 429   authenticate -> 401   scope -> 403   key blocked -> 403
    request rate -> 429      (nothing of the body has been read so far)
    body size -> 413         daily bytes -> 429    parse -> 422   batch size -> 413
    rows/s and daily rows -> 429                   schema + OOD policy -> 422       predict
    output hardening -> audit log commit (fail closed: 503) -> 200 -> monitors (background thread)

Every route authenticates before it reads a body, and no route reads more than
``limits.max_body_bytes`` of one. The client address is the TCP peer's: ``X-Forwarded-For`` is
believed only from ``trusted_proxies`` (:func:`uvicorn_options`).

Screening and prediction share one model call when the adversarial detector's batch begins with the
request's rows, and run on the event loop for small requests whose mean CPU time is under
``inline_max_s`` (worker threads otherwise). Each response waits until its own audit record is
committed: on the event loop for a SQLite file, by the writer thread's group commit otherwise (see
:mod:`modelshield.serve.auditlog`). The monitors take what queued up every ``monitor_interval_s``.

Where it lives: the state and threads in :mod:`modelshield.serve.gateway`, the request path as named
steps in :mod:`modelshield.serve.pipeline` (callable without HTTP), the routes in
:mod:`modelshield.serve.routes`; this module only wires them together.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from typing import Any

import numpy as np

from modelshield.errors import MissingExtraError

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
except ImportError as _exc:  # pragma: no cover - optional extra
    raise MissingExtraError("fastapi", "serve", "the serving gateway") from _exc
from modelshield.models.base import BaseModel
from modelshield.serve.config import ServeConfig
from modelshield.serve.gateway import Gateway
from modelshield.serve.pipeline import ENDPOINT, PredictPipeline, request_ids
from modelshield.serve.routes import admin, dashboard, health, predict
from modelshield.serve.routes.common import BodyLimit, RouteContext

__all__ = ["Gateway", "create_app", "uvicorn_options"]


def uvicorn_options(config: ServeConfig) -> dict[str, Any]:
    """``uvicorn.run`` options for the client address: proxy headers only from ``trusted_proxies``.

    uvicorn believes ``X-Forwarded-For`` from 127.0.0.1 by default, so a client on the same host
    (or behind a local proxy that does not set the header) could name any address and never be
    blocked for failed authentications; the gateway turns that off unless proxies are configured.
    """
    if not config.trusted_proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(config.trusted_proxies)}


def create_app(model: BaseModel, config: ServeConfig | None = None, *, reference: np.ndarray | None = None,
               feature_names: list[str] | None = None, gateway: Gateway | None = None) -> FastAPI:
    """Build the FastAPI application serving ``model`` behind every protection in ``config``.

    The :class:`Gateway` is available as ``app.state.gateway``, the
    :class:`~modelshield.serve.pipeline.PredictPipeline` behind ``/v1/predict`` as ``app.state.pipeline``.
    """
    cfg = config or ServeConfig()
    gw = gateway or Gateway(model, cfg, reference=reference, feature_names=feature_names)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        previous = sys.getswitchinterval()
        if cfg.gil_switch_interval_s is not None:
            sys.setswitchinterval(cfg.gil_switch_interval_s)
        try:
            yield
        finally:
            sys.setswitchinterval(previous)
            gw.close()

    docs = cfg.api_docs  # off by default: the API description is public wherever it is served
    app = FastAPI(title="modelshield gateway", version="1", lifespan=lifespan,
                  description="Authenticated, rate-limited, audited predictions. "
                              "Send `Authorization: Bearer <key>`.",
                  docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
                  openapi_url="/openapi.json" if docs else None)
    # /v1/predict enforces the body limit itself (and logs the refusal with the key)
    app.add_middleware(BodyLimit, limit=cfg.limits.max_body_bytes, skip=(ENDPOINT,))
    ctx = RouteContext(gateway=gw, new_id=request_ids())  # one request-id source for every route
    app.state.gateway = gw
    app.state.pipeline = PredictPipeline(gw, new_id=ctx.new_id)
    predict.register(app, app.state.pipeline)
    health.register(app, ctx)
    admin.register(app, ctx)
    if cfg.dashboard:
        dashboard.register(app)

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> Response:  # no tracebacks to clients
        return JSONResponse({"detail": "internal error"}, status_code=500)

    return app
