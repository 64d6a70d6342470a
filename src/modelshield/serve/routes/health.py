"""``GET /healthz`` (liveness, public) and ``GET /metrics`` (Prometheus; ``monitor`` scope unless
``metrics_public``)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from modelshield.serve.routes.common import AUTH_ERRORS, RouteContext


def register(app: FastAPI, ctx: RouteContext) -> None:
    gw = ctx.gateway

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics (monitor scope unless metrics_public)",
             responses={200: {"content": {"text/plain": {}}}, **AUTH_ERRORS})
    async def metrics(request: Request) -> Response:
        if not gw.config.metrics_public:
            p = await ctx.guard(request, "monitor", "/metrics")
            if isinstance(p, Response):
                return p
        try:  # the chain head, for a scraper to keep outside the database
            seq, h = await run_in_threadpool(gw.audit.head)
        except Exception:
            gw.metrics.audit_head.clear()
        else:
            gw.metrics.audit_head.clear()
            gw.metrics.audit_head.labels(h).set(seq)
        return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4")
