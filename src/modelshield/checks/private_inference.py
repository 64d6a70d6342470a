"""The ``private_inference`` audit check: can this model run under homomorphic encryption, with which
parameters, and (option ``measure``) does the encrypted answer equal the plaintext one, at what latency?

Thin over :mod:`modelshield.private_inference`. By default it only plans (no encryption, milliseconds):
feasible or not, multiplicative depth, CKKS parameters against the 128-bit table, the polynomial
stand-ins' cost in accuracy, the expected latency from the fixed cost table. With ``measure=true`` it runs
batched CKKS inference on up to ``max_samples`` rows (needs the ``private`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from modelshield.checks.base import AuditContext, Check
from modelshield.errors import OptionError, UserError
from modelshield.findings import CheckResult, Finding, Severity
from modelshield.private_inference import evaluate_he, extract, plan
from modelshield.private_inference.network import Unsupported

__all__ = ["PrivateInferenceCheck"]


@dataclass(kw_only=True)
class PrivateInferenceCheck(Check):
    """Private-inference feasibility (HE plan) and, on request, encrypted accuracy and latency.

    Options
    -------
    measure : run encrypted (CKKS) inference on the held-out rows and compare with plaintext.
    max_samples : at most this many rows for the polynomial fit check and the measurement.
    degree : degree of the activation polynomials (1-4; default per activation).
    """

    name: ClassVar[str] = "private_inference"
    title: ClassVar[str] = "Private inference (HE)"
    description: ClassVar[str] = "Can the model run on encrypted inputs (CKKS), with which parameters and cost."

    measure: bool = False
    max_samples: int = 200
    degree: int | None = None

    def check_options(self) -> None:
        if self.max_samples < 1:
            raise OptionError("private_inference.max_samples must be >= 1")
        if self.degree is not None and not 1 <= self.degree <= 4:
            raise OptionError("private_inference.degree must be between 1 and 4")

    def _run(self, ctx: AuditContext) -> CheckResult:
        res = CheckResult(check=self.name)
        X = np.asarray(ctx.data.X, dtype=np.float64)[: self.max_samples]  # type: ignore[union-attr]
        y = None if ctx.data.y is None else np.asarray(ctx.data.y)[: self.max_samples]  # type: ignore[union-attr]
        try:
            net = extract(ctx.model)
            net.verify(ctx.model, X)
            p = plan(net, "he", X, y, degree=self.degree)
        except UserError as exc:  # Unsupported layer, infeasible depth: a finding, not a check error
            res.metrics["feasible"] = 0
            res.summary = f"not feasible under HE: {exc}"
            res.add(Finding(check=self.name, severity=Severity.INFO, title="Model cannot run under HE",
                            detail=str(exc), rule_id="private_inference.infeasible",
                            remediation="use a linear model or a small MLP with polynomial-friendly activations",
                            evidence={"reason": str(exc), "unsupported": isinstance(exc, Unsupported)}))
            return res
        q = p["parameters"]["batched"]
        res.metrics.update(feasible=1, depth=q["depth"], poly_modulus_degree=q["poly_modulus_degree"],
                           coeff_modulus_bits=q["total_bits"], security_bits=q["security_bits"],
                           estimated_ms_per_sample=p["estimate"]["batched"]["ms_per_sample"])
        if "approximation" in p:
            res.metrics["approximation_agreement"] = p["approximation"]["argmax_agreement_with_model"]
        res.tables["private_inference_layers"] = [
            {k: v for k, v in row.items() if k in ("index", "layer", "type", "supported", "how", "depth")}
            for row in p["layers"]]
        res.params = {"plan": p}
        summary = (f"feasible under HE: depth {q['depth']}, N={q['poly_modulus_degree']}, "
                   f"{q['total_bits']} of {q['max_bits_128']} bits (128-bit)")
        agree = res.metrics.get("approximation_agreement", 1.0)
        if agree < 1.0:
            res.add(Finding(check=self.name, severity=Severity.LOW, title="Polynomial activations change predictions",
                            detail=f"the polynomial stand-ins agree with the model on {agree:.1%} of the rows",
                            rule_id="private_inference.approximation", evidence={"agreement": agree},
                            remediation="raise the degree or train with x^2 activations"))
        if self.measure:
            r = evaluate_he(net, X, y, degree=self.degree)
            res.metrics.update({k: r[k] for k in ("agreement", "max_logit_error", "ms_per_sample")})
            if r["accuracy"] is not None:
                res.metrics.update(accuracy=r["accuracy"], plaintext_accuracy=r["plaintext_accuracy"])
            summary += f"; measured {r['ms_per_sample']} ms/sample, agreement {r['agreement']:.3f}"
            if r["agreement"] < 1.0:
                res.add(Finding(check=self.name, severity=Severity.MEDIUM, title="Encrypted predictions differ",
                                detail=f"encrypted vs plaintext argmax agreement {r['agreement']:.3f}",
                                rule_id="private_inference.mismatch", evidence={"agreement": r["agreement"]},
                                remediation="raise the scale (more bits) or lower the value range"))
        res.summary = summary
        return res

