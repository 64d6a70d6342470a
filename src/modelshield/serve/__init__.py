"""The secure serving gateway: ``create_app(model, config)`` and its parts.

Heavy dependencies (FastAPI, SQLAlchemy, Redis, PyJWT, prometheus-client) are imported lazily by
the modules that need them; install them with ``pip install 'modelshield[serve]'``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServeConfig", "create_app", "load_config"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from modelshield.serve.app import create_app  # lazy (PEP 562): FastAPI and the gateway on first use

        return create_app
    if name in ("ServeConfig", "load_config"):
        from modelshield.serve import config  # lazy (PEP 562): pydantic and yaml on first use

        return getattr(config, name)
    raise AttributeError(name)
