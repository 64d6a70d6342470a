"""A black-box model behind an HTTP JSON endpoint (query-only).

Protocol: ``POST url`` with ``{"inputs": [[...], ...]}``; the response carries
``{"probabilities": [[...]], "classes": [...]}`` or, for label-only APIs, ``{"predictions": [...]}``.
This is the shape modelshield's own gateway answers with.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from modelshield.errors import UserError
from modelshield.models.base import BaseModel, Capability, InputSpec

__all__ = ["RemoteModel"]

Transport = Callable[[str, bytes, Mapping[str, str]], bytes]


def _urllib_transport(timeout: float) -> Transport:
    def send(url: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"remote model URL must be http(s): {url}")
        req = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - user-given URL
                return resp.read()
        except urllib.error.HTTPError as exc:
            raise UserError(f"remote model at {url} answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise UserError(f"cannot reach remote model at {url}: {exc}") from exc

    return send


class RemoteModel(BaseModel):
    """Query a model over HTTP. ``transport`` can be injected (tests need no network).

    Parameters
    ----------
    url : endpoint accepting ``POST {"inputs": ...}``
    classes : class labels, if the endpoint does not return them
    headers : e.g. ``{"Authorization": "Bearer KEY"}``
    n_features : input width, when known
    """

    framework = "remote"
    format = "http"

    def __init__(
        self,
        url: str,
        *,
        classes: list[Any] | np.ndarray | None = None,
        headers: Mapping[str, str] | None = None,
        n_features: int | None = None,
        batch_size: int = 256,
        timeout: float = 30.0,
        transport: Transport | None = None,
    ) -> None:
        self.url = url
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self._send = transport or _urllib_transport(timeout)
        self._label_only = False
        super().__init__(
            classes=classes,
            input_spec=InputSpec(shape=(n_features,) if n_features else None),
            capabilities=frozenset({Capability.QUERY_ONLY, Capability.PROBABILITIES}),
            batch_size=batch_size,
            source=url,
        )

    def _query(self, X: np.ndarray) -> dict[str, Any]:
        body = json.dumps({"inputs": np.asarray(X).tolist()}).encode()
        raw = self._send(self.url, body, self.headers)
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise UserError(f"remote model at {self.url} did not answer JSON") from exc
        if not isinstance(data, dict):
            raise UserError(f"remote model at {self.url} answered {type(data).__name__}, not an object")
        return data

    @property
    def classes(self) -> np.ndarray:
        if self._classes is None:
            n = self.input_spec.n_features
            if n is None:
                raise UserError("pass classes= or n_features= for a remote model")
            data = self._query(np.zeros((1, n)))
            if "classes" not in data:
                raise UserError(f"remote model at {self.url} does not report its classes; pass classes=")
            self._classes = np.asarray(data["classes"])
        return self._classes

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        data = self._query(X)
        if self._classes is None and "classes" in data:
            self._classes = np.asarray(data["classes"])
        if "probabilities" in data:
            return np.asarray(data["probabilities"], dtype=np.float64)
        if "predictions" in data:
            self._label_only = True
            self.capabilities = self.capabilities - {Capability.PROBABILITIES}
            pred = np.asarray(data["predictions"])
            return (pred[:, None] == self.classes[None, :]).astype(np.float64)
        raise UserError(f"remote model at {self.url} answered without 'probabilities' or 'predictions'")
