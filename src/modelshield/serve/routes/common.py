"""What every route shares: JSON replies, refusals as responses, route authentication, the body limit."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelshield.serve.auditlog import compact_json
from modelshield.serve.pipeline import Refusal

if TYPE_CHECKING:
    from modelshield.serve.auth import Principal
    from modelshield.serve.gateway import Gateway

#: the OpenAPI description of an error answer (``{"detail": "..."}``)
ERR: dict[str, Any] = {"content": {"application/json": {"schema": {
    "type": "object", "properties": {"detail": {"type": "string"}}}}}}
#: the refusals of a route that authenticates
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {401: ERR, 403: ERR, 429: ERR}


def reply(status: int, payload: dict[str, Any] | str, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response; ``payload`` may already be serialised (the predict body, logged verbatim)."""
    body = payload if isinstance(payload, str) else compact_json(payload)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def refusal_response(refusal: Refusal) -> Response:
    """A refusal as HTTP: its status, ``{"detail": message}`` and its headers."""
    return reply(refusal.status, {"detail": refusal.message}, refusal.headers)


def client_of(request: Request) -> str:
    """The TCP peer's address (``-`` when the server does not know it)."""
    return request.client.host if request.client else "-"


@dataclass(frozen=True)
class RouteContext:
    """The gateway and the app's request-id source, as the routes use them."""

    gateway: Gateway
    new_id: Callable[[], str]

    async def guard(self, request: Request, scope: str, endpoint: str) -> Principal | Response:
        """Authenticate before anything else: the principal, or the refusal (counted and logged) as a response."""
        p = self.gateway.authenticate(request.headers.get("authorization"), client_of(request), scope)
        if isinstance(p, Refusal):
            return refusal_response(await self.gateway.refuse(p, request_id=self.new_id(), client=client_of(request),
                                                              key=None, endpoint=endpoint))
        return p


class _BodyTooLarge(HTTPException):
    """A body grew past ``max_body_bytes`` while a route read it (any route)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body exceeds {limit} bytes")


class BodyLimit:
    """ASGI middleware: no route reads more than ``limit`` bytes of a request body.

    It only counts what a route pulls (routes authenticate first and read afterwards), so an
    unauthenticated request's body is never read at all. ``/v1/predict`` enforces the same limit
    itself (and logs the refusal with the key).
    """

    def __init__(self, app: ASGIApp, limit: int, skip: tuple[str, ...] = ()) -> None:
        self.app, self.limit, self.skip = app, limit, skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.skip:
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge(self.limit)
            return msg

        async def watch(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted, watch)
        except _BodyTooLarge as exc:
            if started:
                raise
            await JSONResponse({"detail": exc.detail}, status_code=413)(scope, receive, send)
