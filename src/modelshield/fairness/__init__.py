"""Group fairness: a vectorised metrics engine (:mod:`.metrics`), proxy detection (:mod:`.proxies`)
and the ``fairness`` audit check (:mod:`.check`)."""
