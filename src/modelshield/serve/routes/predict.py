"""``POST /v1/predict``: the route over :class:`~modelshield.serve.pipeline.PredictPipeline`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelshield.serve.pipeline import ENDPOINT, Answer, PredictPipeline
from modelshield.serve.routes.common import ERR, client_of, refusal_response, reply


def register(app: FastAPI, pipeline: PredictPipeline) -> None:
    """Serve ``POST /v1/predict`` with one plain Starlette route, matched before every other route (no
    FastAPI dependency solving, no body model): registered once. Its OpenAPI description is added to the
    generated spec (a plain route has none of its own)."""

    async def predict(request: Request) -> Response:
        # the body stream is pulled only after authentication and the request-rate check
        out = await pipeline.run(request.headers, request.stream(), client_of(request))
        if isinstance(out, Answer):
            return reply(out.status, out.body, out.headers)
        return refusal_response(out)

    app.router.routes.insert(0, Route(ENDPOINT, predict, methods=["POST"], include_in_schema=False))
    generated = app.openapi
    operation = {"summary": "Predict a batch", "operationId": "predict_v1_predict_post", "tags": ["predict"],
                 "requestBody": _request_body(pipeline.gw.config.limits.max_batch),
                 "responses": {str(code): {"description": r["description"], **{k: v for k, v in r.items()
                                                                               if k != "description"}}
                               for code, r in _RESPONSES.items()}}

    def openapi() -> dict[str, Any]:
        spec = generated()  # FastAPI's, cached in app.openapi_schema
        spec.setdefault("paths", {}).setdefault(ENDPOINT, {})["post"] = operation
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _request_body(max_batch: int) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {
                "type": "object", "required": ["inputs"], "additionalProperties": True,
                "properties": {"inputs": {"type": "array", "maxItems": max_batch,
                                          "items": {"type": "array", "items": {"type": "number"}}}}}},
            "application/x-npy": {"schema": {"type": "string", "format": "binary"}},
        },
    }


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "predictions", "content": {"application/json": {"schema": {
        "type": "object", "required": ["predictions", "classes"],
        "properties": {"predictions": {"type": "array"}, "probabilities": {"type": "array"},
                       "top_k": {"type": "array"}, "classes": {"type": "array"}}}}}},
    401: {"description": "missing or invalid key", **ERR}, 403: {"description": "scope missing", **ERR},
    413: {"description": "body or batch too large", **ERR}, 422: {"description": "invalid input", **ERR},
    429: {"description": "rate limit, budget or block", **ERR},
    503: {"description": "audit log unavailable (fail closed)", **ERR},
}
