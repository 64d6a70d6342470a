"""``/admin/*``: keys (``admin`` scope), dashboard data and alerts (``monitor`` scope), the audit log (``admin``).

Every route authenticates before it reads anything of the request; key changes are written to the audit log.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel as _Schema
from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from modelshield.errors import ModelShieldError
from modelshield.serve.auditlog import AuditRecord, read_anchor
from modelshield.serve.auth import SCOPES
from modelshield.serve.pipeline import Refusal, read_body
from modelshield.serve.routes.common import AUTH_ERRORS, ERR, RouteContext, client_of, refusal_response, reply


class KeyCreate(_Schema):
    """Body of ``POST /admin/keys``."""

    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(default_factory=lambda: ["predict"], min_length=1, max_length=3)
    rate_per_s: float | None = Field(None, gt=0, le=1e6)
    daily_rows: int | None = Field(None, gt=0, le=10**12)
    rows_per_s: float | None = Field(None, gt=0, le=1e9)


def register(app: FastAPI, ctx: RouteContext) -> None:
    gw, guard, new_id = ctx.gateway, ctx.guard, ctx.new_id

    async def log_admin(request: Request, key_id: str, decision: str, status: int) -> None:
        await gw.log(AuditRecord(kind="admin", endpoint="/admin/keys", status=status, decision=decision,
                                 key_id=key_id, client=request.client.host if request.client else None,
                                 request_id=new_id()))

    @app.get("/admin/keys", tags=["admin"], responses=AUTH_ERRORS)
    async def list_keys(request: Request) -> Response:
        p = await guard(request, "admin", "/admin/keys")
        if isinstance(p, Response):
            return p
        return reply(200, {"keys": [k.public() for k in gw.keys.list()]})

    key_create_body = {"required": True,
                       "content": {"application/json": {"schema": KeyCreate.model_json_schema()}}}

    @app.post("/admin/keys", tags=["admin"], responses={**AUTH_ERRORS, 413: ERR, 422: ERR},
              openapi_extra={"requestBody": key_create_body})
    async def create_key(request: Request) -> Response:
        # authenticate first, then read (at most max_body_bytes of) the body: an unauthenticated body is never read
        p = await guard(request, "admin", "/admin/keys")
        if isinstance(p, Response):
            return p
        raw = await read_body(request.headers, request.stream(), gw.config.limits.max_body_bytes)
        if isinstance(raw, Refusal):
            return refusal_response(await gw.refuse(raw, request_id=new_id(), client=client_of(request),
                                                    key=p.key_id, endpoint="/admin/keys"))
        try:
            spec = KeyCreate.model_validate_json(raw)
        except ValidationError as exc:
            e = exc.errors()[0]
            where = ".".join(str(x) for x in e["loc"]) or "body"
            return reply(422, {"detail": f"{where}: {e['msg']}"})
        bad = [s for s in spec.scopes if s not in SCOPES]
        if bad:
            return reply(422, {"detail": f"unknown scope {bad[0]!r}; choose from {', '.join(SCOPES)}"})
        rec, token = gw.keys.create(spec.name, spec.scopes, rate_per_s=spec.rate_per_s, daily_rows=spec.daily_rows,
                                    rows_per_s=spec.rows_per_s)
        await log_admin(request, p.key_id, f"create:{rec.id}", 201)
        return reply(201, {"key": token, **rec.public()})

    @app.delete("/admin/keys/{key_id}", tags=["admin"], responses={**AUTH_ERRORS, 404: ERR})
    async def revoke_key(request: Request, key_id: str) -> Response:
        p = await guard(request, "admin", "/admin/keys")
        if isinstance(p, Response):
            return p
        if gw.keys.get(key_id) is None:
            return reply(404, {"detail": "no such key"})
        rec = gw.keys.revoke(key_id)
        await log_admin(request, p.key_id, f"revoke:{rec.id}", 200)
        return reply(200, rec.public())

    @app.post("/admin/keys/{key_id}/unthrottle", tags=["admin"], responses=AUTH_ERRORS)
    async def unthrottle(request: Request, key_id: str) -> Response:
        p = await guard(request, "admin", "/admin/keys")
        if isinstance(p, Response):
            return p
        gw.clear_key(key_id)
        await log_admin(request, p.key_id, f"unthrottle:{key_id}"[:40], 200)
        return reply(200, {"key": key_id, "throttled": False})

    @app.get("/admin/stats", tags=["admin"], responses=AUTH_ERRORS, summary="Dashboard data (monitor scope)")
    async def stats(request: Request) -> Response:
        p = await guard(request, "monitor", "/admin/stats")
        if isinstance(p, Response):
            return p
        return reply(200, gw.snapshot())

    @app.get("/admin/alerts", tags=["admin"], responses=AUTH_ERRORS)
    async def alerts(request: Request) -> Response:
        p = await guard(request, "monitor", "/admin/alerts")
        if isinstance(p, Response):
            return p
        return reply(200, {"alerts": list(gw.alerts)})

    @app.get("/admin/audit/verify", tags=["admin"], responses=AUTH_ERRORS,
             summary="Verify the audit-log chain against the newest anchor (admin scope)")
    async def verify(request: Request) -> Response:
        p = await guard(request, "admin", "/admin/audit/verify")  # a full scan of the log: admin only
        if isinstance(p, Response):
            return p
        try:
            anchor = read_anchor(gw.anchor_file, gw.config.audit.table)
        except ModelShieldError as exc:
            return reply(200, {"ok": False, "reason": str(exc), "time": gw.clock()})
        res = await run_in_threadpool(
            lambda: gw.audit.verify(expect_head=None if anchor is None else (anchor.seq, anchor.hash)))
        gw.last_verify = {**res.as_dict(), "anchor": None if anchor is None else anchor.as_dict(), "time": gw.clock()}
        return reply(200, gw.last_verify)

    @app.get("/admin/audit/recent", tags=["admin"], responses=AUTH_ERRORS)
    async def recent(request: Request, n: int = 50) -> Response:
        p = await guard(request, "admin", "/admin/audit/recent")
        if isinstance(p, Response):
            return p
        rows = await run_in_threadpool(gw.audit.recent, max(1, min(n, 500)))
        return reply(200, {"records": rows})
