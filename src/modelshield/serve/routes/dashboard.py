"""``/dashboard``: the static dashboard (its data comes from ``/admin/stats``), with a strict CSP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"

_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _Dashboard(StaticFiles):
    async def get_response(self, path: str, scope: Any) -> Response:
        resp = await super().get_response(path, scope)
        for name, value in _HEADERS.items():
            resp.headers[name] = value
        return resp


def register(app: FastAPI) -> None:
    """Mount the dashboard at ``/dashboard`` (when its files are installed)."""
    if DASHBOARD_DIR.is_dir():
        app.mount("/dashboard", _Dashboard(directory=str(DASHBOARD_DIR), html=True), name="dashboard")
