"""The gateway's HTTP routes, short functions over the :class:`~modelshield.serve.gateway.Gateway` and the
:class:`~modelshield.serve.pipeline.PredictPipeline`:

* :mod:`.predict` -- ``POST /v1/predict``;
* :mod:`.health` -- ``GET /healthz``, ``GET /metrics``;
* :mod:`.admin` -- ``/admin/keys``, ``/admin/stats``, ``/admin/alerts``, ``/admin/audit/*``;
* :mod:`.dashboard` -- the static dashboard at ``/dashboard``;
* :mod:`.common` -- JSON replies, refusals as responses, route authentication, the body-limit middleware.
"""
