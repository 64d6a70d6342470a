"""The ``robustness`` audit check: clean vs robust accuracy under attack, over an eps grid."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from modelshield.attacks import ATTACKS, AttackResult
from modelshield.attacks.detect import NoiseConsistencyDetector, detection_auc
from modelshield.attacks.evaluate import (
    Curve,
    default_attacks,
    default_eps_grid,
    reference_eps,
    robustness_curve,
    worst_case,
)
from modelshield.attacks.threat import DOMAIN_MARGIN, ThreatModel, _norm_name, parse_box
from modelshield.checks.base import Applies, AuditContext, Check
from modelshield.errors import UserError
from modelshield.findings import CheckResult, Figure, Finding, Series, Severity
from modelshield.models.base import Capability

__all__ = ["RobustnessCheck"]


def _default_budget(attack: str, quick: bool) -> int:
    """Queries per sample: Square runs once per eps, HopSkipJump once for the whole grid."""
    if attack == "hsj":
        return 200 if quick else 2000
    return 60 if quick else 1000


def _eps_text(grid: list[float], ref: float) -> str:
    """The eps part of the one-line threat model for a grid (``eps=0.1`` for a single value)."""
    if len(grid) == 1:
        return f"eps={ref:g}"
    return f"eps={ref:g} (grid {', '.join(f'{e:g}' for e in grid)})"


_REFS = (
    "Madry et al., Towards Deep Learning Models Resistant to Adversarial Attacks, ICLR 2018",
    "Croce & Hein, Reliable evaluation of adversarial robustness with an ensemble of diverse "
    "parameter-free attacks, ICML 2020",
    "https://atlas.mitre.org/techniques/AML.T0043",
)


@dataclass(kw_only=True)
class RobustnessCheck(Check):
    """Robust accuracy under evasion attacks, at the perturbation sizes that matter for the data.

    White-box attacks (FGSM, PGD, the APGD-CE + APGD-DLR + APGD-T ensemble) run on differentiable models;
    black-box Square (scores) and HopSkipJump (labels) on any other. The threat model is the strongest
    one still valid for the data (``ThreatModel.for_dataset``): data in ``[0, 1]`` (or ``[0, 255]``
    images) gets that box in raw units; tabular rows stay valid rows of the data's domain (the
    range of the evaluation and training data, widened by a margin), eps in per-feature standard
    deviations, integer features whole, categorical, binary and immutable features left alone.
    The result states the threat model in one line (``metrics["threat_model"]`` and the summary)
    and warns where it is narrower than the data's domain.

    Options
    -------
    eps : eps grid (default: from the data's scale, see ``evaluate.default_eps_grid``).
    reference_eps : the eps of the headline ``robust_accuracy`` (default: middle of the grid).
    norm : ``"inf"`` or ``"2"``.
    units : ``"auto"``, ``"std"`` (per-feature std) or ``"raw"`` (the data's units).
    bounds : one box ``"LO,HI"`` (or ``[LO, HI]``) for every feature; overrides ``bounds_file``.
    bounds_file : JSON/YAML schema of per-feature bounds (``threat.load_bounds_file``).
    bounds_margin : how far the inferred tabular domain reaches beyond the observed range
        (fraction of the range on each side).
    attacks : attack names (``fgsm pgd apgd apgd-ce apgd-dlr apgd-t square hsj``); default by capability.
    max_samples : samples attacked (stratified sample of the evaluation data); quick mode caps it.
    steps : iterations of the white-box attacks.
    query_budget : queries per sample for the black-box attacks.
    detector : also fit the noise-consistency detector and report its ROC AUC.
    """

    name: ClassVar[str] = "robustness"
    title: ClassVar[str] = "Adversarial robustness"
    description: ClassVar[str] = "Clean vs robust accuracy under white- and black-box evasion attacks."
    needs_labels: ClassVar[bool] = True
    tasks: ClassVar[frozenset[str]] = frozenset({"classification"})

    eps: list[float] | None = None
    reference_eps: float | None = None
    norm: str = "inf"
    units: str = "auto"
    bounds: str | list[float] | None = None
    bounds_file: str | None = None
    bounds_margin: float = DOMAIN_MARGIN
    attacks: list[str] | None = None
    max_samples: int = 500
    steps: int | None = None
    query_budget: int | None = None
    detector: bool = True

    def applies(self, ctx: AuditContext) -> Applies:
        base = super().applies(ctx)
        if not base:
            return base
        assert ctx.data is not None
        if not ctx.data.is_numeric:
            return Applies("needs numeric features")
        return Applies()

    def check_options(self) -> None:
        self._validate()

    def _validate(self) -> tuple[str, list[str] | None]:
        norm = _norm_name(self.norm)
        if self.attacks is not None:
            bad = [a for a in self.attacks if a not in ATTACKS]
            if bad:
                raise UserError(f"unknown attack {bad[0]!r} in robustness.attacks; expected: {', '.join(ATTACKS)}")
        if self.eps is not None and (not self.eps or any(not (e > 0 and math.isfinite(e)) for e in self.eps)):
            raise UserError("robustness.eps must be a non-empty list of positive numbers")
        if int(self.max_samples) < 2:
            raise UserError("robustness.max_samples must be >= 2")
        if self.units not in ("auto", "std", "raw"):
            raise UserError(f"robustness.units must be auto, std or raw, not {self.units!r}")
        if self.bounds is not None:
            try:
                parse_box(self.bounds)
            except UserError as exc:
                raise UserError(f"robustness.bounds: {exc}") from None
        if self.bounds_file is not None and not Path(self.bounds_file).is_file():
            raise UserError(f"robustness.bounds_file: {self.bounds_file} not found")
        if not (math.isfinite(self.bounds_margin) and self.bounds_margin >= 0):
            raise UserError("robustness.bounds_margin must be a finite number >= 0")
        return norm, self.attacks

    def _run(self, ctx: AuditContext) -> CheckResult:
        import torch  # lazy: torch is heavy; imported only where it runs

        norm, wanted = self._validate()
        model, data = ctx.model, ctx.data
        assert model is not None and data is not None and data.y is not None
        torch.set_num_threads(1)
        white = Capability.GRADIENTS in model.capabilities
        n_max = int(self.max_samples)
        if ctx.quick:
            n_max = min(n_max, 100 if white else 60)
        sample = data.sample(n_max, seed=ctx.seed)
        X, y = sample.X, sample.y
        assert y is not None
        steps = self.steps or (10 if ctx.quick else 20)
        budget = self.query_budget or _default_budget("square", ctx.quick)
        threat = ThreatModel.for_dataset(data, units=self.units, bounds=self.bounds, bounds_file=self.bounds_file,
                                         train=ctx.train, margin=self.bounds_margin, norm=norm, steps=steps,
                                         query_budget=budget)
        d = sample.n_features
        n_mut = int(threat.mutable.sum()) if threat.mutable is not None else d
        if self.eps:
            grid = sorted({float(e) for e in self.eps})
        else:  # the default grid stays inside the box (a ball covering the box measures nothing)
            limit = threat.eps_limit(d)
            grid = sorted({e for e in default_eps_grid(threat, n_mut) if e < limit}) or [limit / 4]
        ref = float(self.reference_eps) if self.reference_eps is not None else reference_eps(grid)
        if not any(math.isclose(ref, e) for e in grid):
            grid = sorted([*grid, ref])
        for e in grid:
            threat.check_eps(d, e, what="robustness.eps" if self.eps or self.reference_eps else "eps")
        names = list(wanted) if wanted is not None else default_attacks(model)
        skipped: dict[str, str] = {}
        runnable = []
        for a in names:
            cls, fixed = ATTACKS[a]
            try:
                cls(threat=threat, **fixed).check_model(model)
            except UserError as exc:
                skipped[a] = str(exc)
                continue
            runnable.append(a)
        out = self.result()
        line = threat.describe(eps=_eps_text(grid, ref))
        out.metrics["threat_model"] = line
        if not runnable:
            out.summary = "no attack applies: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
            out.findings.append(Finding(check=self.name, severity=Severity.INFO, rule_id="robustness.not-run",
                                        title="No requested attack applies to this model",
                                        detail=out.summary))
            out.summary += f". Threat model: {line}"
            self._threat_findings(out, threat)
            return out

        curves: list[Curve] = []
        for i, a in enumerate(runnable):
            opts = self._attack_options(a, ctx.quick)

            def prog(frac: float, msg: str, i: int = i) -> None:
                ctx.progress((i + frac) / (len(runnable) + (1 if self.detector else 0)), msg)

            b = self.query_budget or _default_budget(a, ctx.quick)
            curves.append(robustness_curve(model, X, y, a, threat, grid, seed=ctx.seed, budget=b,
                                           options=opts, progress=prog))
        self._fill(out, ctx, curves, grid, ref, threat, len(X), skipped)
        self._threat_findings(out, threat)  # after the headline finding
        if self.detector:
            ctx.progress(len(runnable) / (len(runnable) + 1), "adversarial-input detector")
            self._detector(out, ctx, model, data, sample.X, curves, ref)
        return out

    def _threat_findings(self, out: CheckResult, threat: ThreatModel) -> None:
        """One finding per warning of the threat model (narrower than the data's domain)."""
        for level, message in threat.warnings:
            low = level == "low"
            out.add(Finding(
                check=self.name, severity=Severity.LOW if low else Severity.INFO,
                rule_id="robustness.threat-model-narrower" if low else "robustness.threat-model-inferred",
                title=("The threat model is narrower than the data's domain" if low
                       else "The threat model's bounds are inferred from the data"),
                detail=f"{message}. Threat model: {threat.describe()}.",
                evidence={"bounds_source": threat.bounds_source, "units": threat.units},
                remediation=("State the features' valid range with robustness.bounds (one box) or "
                             "robustness.bounds_file (per feature); see docs/robustness.md.")))

    @staticmethod
    def _attack_options(attack: str, quick: bool) -> dict[str, Any]:
        if attack == "hsj":
            return {"max_iter": 15 if quick else 40, "init_evals": 20 if quick else 50}
        return {}

    # -- results ----------------------------------------------------------------------------
    def _fill(self, out: CheckResult, ctx: AuditContext, curves: list[Curve], grid: list[float], ref: float,
              threat: ThreatModel, n: int, skipped: dict[str, str]) -> None:
        units = {"raw": "raw units", "std": "per-feature std"}.get(threat.units, "scale units")
        norm_label = "L-inf" if threat.norm == "inf" else "L2"
        rows: list[dict[str, Any]] = []
        worst_acc: list[float] = []
        for j, e in enumerate(grid):
            for c in curves:
                r = c.results[j]
                rows.append({"attack": r.attack, "eps": e, "clean_accuracy": r.clean_accuracy,
                             "robust_accuracy": r.robust_accuracy, "success_rate": r.success_rate,
                             "median_perturbation": r.median_perturbation,
                             "queries_mean": float(r.queries.mean()), "seconds": r.seconds})
            worst_acc.append(float(np.mean(worst_case([c.results[j] for c in curves]))))
        out.tables["attacks"] = rows
        series = [Series(name=c.results[0].attack, x=list(grid), y=c.robust_accuracy) for c in curves]
        if len(curves) > 1:
            series.append(Series(name="worst case", x=list(grid), y=worst_acc))
        out.figures.append(Figure(
            title=f"Robust accuracy vs eps ({norm_label}, {units})", kind="line", series=series,
            x_label=f"eps ({units})", y_label="robust accuracy", y_range=(0.0, 1.0)))
        jr = next(j for j, e in enumerate(grid) if math.isclose(e, ref))
        at_ref = [c.results[jr] for c in curves]
        worst = worst_case(at_ref)
        clean = at_ref[0].clean_correct
        broken = clean & ~worst
        best_pert = np.full(n, np.inf)
        for r in at_ref:
            best_pert = np.where(r.success, np.minimum(best_pert, r.perturbation), best_pert)
        clean_acc = float(np.mean(clean))
        robust = float(np.mean(worst))
        m = out.metrics
        m["clean_accuracy"] = clean_acc
        m["robust_accuracy"] = robust
        m["reference_eps"] = ref
        m["attack_success_rate"] = float(broken.sum() / clean.sum()) if clean.any() else float("nan")
        m["median_perturbation"] = float(np.median(best_pert[broken])) if broken.any() else float("nan")
        m["queries_total"] = int(sum(r.total_queries for c in curves for r in c.results))
        m["samples"] = n
        for r in at_ref:
            m[f"robust_accuracy_{r.attack}"] = r.robust_accuracy
        if len(grid) > 1:  # mean robust accuracy over the grid (trapezoid rule)
            w = np.asarray(worst_acc)
            m["robust_accuracy_curve_mean"] = float(
                np.sum((w[1:] + w[:-1]) / 2 * np.diff(grid)) / (grid[-1] - grid[0]))
        out.params["threat"] = threat.to_dict()
        out.params["eps_grid"] = grid
        if skipped:
            out.params["skipped_attacks"] = skipped
        names = ", ".join(r.attack for r in at_ref)
        out.summary = (f"clean accuracy {clean_acc:.1%}, robust accuracy {robust:.1%} at eps={ref:g} "
                       f"({norm_label}, {units}; worst case of {names} on {n} samples). "
                       f"Threat model: {m['threat_model']}")
        high = ctx.threshold("robustness.robust_accuracy.high", 0.25)
        med = ctx.threshold("robustness.robust_accuracy.medium", 0.5)
        low = ctx.threshold("robustness.robust_accuracy.low", 0.75)
        sev = (Severity.HIGH if robust < high else Severity.MEDIUM if robust < med
               else Severity.LOW if robust < low else None)
        if sev is not None:
            out.add(Finding(
                check=self.name, severity=sev, rule_id="robustness.low-robust-accuracy",
                title=f"Robust accuracy falls to {robust:.0%} under small perturbations",
                detail=(f"Changing inputs by at most eps={ref:g} ({norm_label}, {units}) flips "
                        f"{m['attack_success_rate']:.0%} of the correct predictions: accuracy {clean_acc:.0%} -> "
                        f"{robust:.0%} (median perturbation {m['median_perturbation']:.3g}). "
                        f"Threat model: {m['threat_model']}."),
                evidence={"reference_eps": ref, "clean_accuracy": clean_acc, "robust_accuracy": robust,
                          "per_attack": {r.attack: r.robust_accuracy for r in at_ref}, "samples": n,
                          "threat_model": m["threat_model"]},
                remediation=("Adversarially train the model (modelshield harden adversarial, PGD or TRADES), "
                             "constrain or validate inputs, and monitor suspicious inputs with the "
                             "adversarial-input detector in the gateway."),
                references=_REFS))
        by = {r.attack: r.robust_accuracy for r in at_ref}
        grad = [by[k] for k in ("pgd", "apgd", "apgd-ce", "apgd-dlr") if k in by]
        if grad and "square" in by and by["square"] + 0.05 < min(grad):
            out.add(Finding(
                check=self.name, severity=Severity.MEDIUM, rule_id="robustness.gradient-masking",
                title="A black-box attack beats the gradient attacks: possible gradient masking",
                detail=(f"Square reaches {by['square']:.0%} robust accuracy vs {min(grad):.0%} for the "
                        "gradient-based attacks; the gradients may be obfuscated, so white-box numbers "
                        "overstate robustness."),
                evidence=by, references=("Athalye, Carlini & Wagner, Obfuscated Gradients Give a False "
                                         "Sense of Security, ICML 2018",)))

    def _detector(self, out: CheckResult, ctx: AuditContext, model: Any, data: Any, X: np.ndarray,
                  curves: list[Curve], ref: float) -> None:
        jr = next(j for j, e in enumerate(curves[0].eps) if math.isclose(e, ref))
        at_ref: list[AttackResult] = [c.results[jr] for c in curves]
        adv_rows = []
        taken = np.zeros(len(X), dtype=bool)
        for r in at_ref:
            pick = r.success & ~taken
            adv_rows.append(r.x_adv[pick])
            taken |= pick
        X_adv = np.concatenate(adv_rows) if adv_rows else X[:0]
        clean_ok = at_ref[0].clean_correct
        n_ref = 60 if ctx.quick else 300
        ref_src = ctx.train if ctx.train is not None else data
        X_ref = ref_src.sample(n_ref, seed=ctx.seed + 1).X
        det = NoiseConsistencyDetector(seed=ctx.seed, n_draws=8 if ctx.quick else 16).fit(model, X_ref)
        if len(X_adv) < 5 or clean_ok.sum() < 5:
            out.tables["detector"] = [{"detector": "noise-consistency", "roc_auc": None,
                                       "note": "too few adversarial examples to evaluate"}]
            return
        auc = detection_auc(det, X[clean_ok], X_adv)
        thr = det.threshold(0.05)
        tpr = float(np.mean(det.score(X_adv) > thr))
        out.metrics["detector_auc"] = auc
        out.metrics["detector_tpr_at_5pct_fpr"] = tpr
        out.tables["detector"] = [{"detector": "noise-consistency", "roc_auc": auc, "tpr_at_5pct_fpr": tpr,
                                   "clean": int(clean_ok.sum()), "adversarial": len(X_adv), **det.params()}]
