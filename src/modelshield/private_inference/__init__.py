"""Private inference: homomorphic encryption (TenSEAL CKKS) and secure multi-party computation (mpyc).

An engine package: it imports only models, protect, data and the base modules. The planner
(:func:`plan`) says up front whether a model fits and what it costs; :func:`run_he` and :func:`run_mpc`
run it and the callers compare the answers with the plaintext ones.
"""

from __future__ import annotations

from modelshield.private_inference.approx import PolyAct, fit_activations
from modelshield.private_inference.network import Network, Unsupported, extract
from modelshield.private_inference.params import CKKSParams, InfeasibleError, check_params, choose_params
from modelshield.private_inference.planner import plan

__all__ = ["CKKSParams", "InfeasibleError", "Network", "PolyAct", "Unsupported", "check_params", "choose_params",
           "evaluate_he", "extract", "fit_activations", "plan"]


def evaluate_he(*args, **kwargs):  # type: ignore[no-untyped-def]
    """See :func:`modelshield.private_inference.evaluate.evaluate_he`."""
    # lazy: the HE evaluation pulls in TenSEAL (optional extra)
    from modelshield.private_inference.evaluate import evaluate_he as _impl

    return _impl(*args, **kwargs)
