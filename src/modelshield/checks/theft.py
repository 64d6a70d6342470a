"""The ``theft`` audit check: how cheaply can the model be copied through its API, and can the owner
prove a copy is theirs?

The extraction part simulates query-only attackers (:mod:`~modelshield.theft.extraction`);
the ownership part verifies a trigger-set watermark (option ``watermark_triggers``) and/or compares
a stored fingerprint (option ``fingerprint``) when the audit names one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from modelshield.checks.base import AuditContext, Check
from modelshield.errors import IntegrityError, UserError
from modelshield.findings import CheckResult, Figure, Finding, Series, Severity
from modelshield.theft.extraction import (
    OUTPUT_LABELS,
    ExtractionResult,
    simulate_extraction,
)
from modelshield.theft.fingerprint import Fingerprint
from modelshield.theft.watermark import open_claim

__all__ = ["TheftCheck", "extraction_options", "parse_budgets"]

QUICK_BUDGETS = (50, 200, 1000)
FULL_BUDGETS = (100, 1000, 10000)


def parse_budgets(text: str | None) -> list[int] | None:
    """Query budgets written ``100,1000,10_000``: positive integers; ``None`` when ``text`` is empty.
    A malformed list raises a one-line :class:`~modelshield.errors.UserError`."""
    if not text:
        return None
    try:
        out = [int(t.replace("_", "")) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UserError(f"bad query budgets {text!r}: expected integers like 100,1000,10000",
                        cli_hint="fix --budgets") from None
    if not out or min(out) < 1:
        raise UserError("query budgets must be positive integers", cli_hint="fix --budgets")
    return out


def extraction_options(
    *,
    budgets: str | list[int] | None = None,
    exposure: str = "unspecified",
    query_budget: int | None = None,
    serve_config: str | Path | None = None,
    api_outputs: str | None = None,
) -> dict[str, Any]:
    """The theft check's options for an extraction-risk run (only those given), validated by
    :meth:`TheftCheck.from_options` so that a bad value fails before any model or data is loaded."""
    opts = {k: v for k, v in {
        "budgets": parse_budgets(budgets) if isinstance(budgets, str) else budgets, "exposure": exposure,
        "query_budget": query_budget, "serve_config": None if serve_config is None else str(serve_config),
        "api_outputs": api_outputs}.items() if v is not None}
    TheftCheck.from_options(opts)
    return opts

#: What a deployment exposes to a would-be thief (option ``theft.exposure``).
EXPOSURES = ("unspecified", "public-unlimited", "rate-limited", "internal")

REFERENCES = (
    "Tramèr et al., Stealing Machine Learning Models via Prediction APIs, USENIX Security 2016",
    "Orekondy et al., Knockoff Nets: Stealing Functionality of Black-Box Models, CVPR 2019",
    "Jagielski et al., High Accuracy and High Fidelity Extraction of Neural Networks, USENIX Security 2020",
)


@dataclass(kw_only=True)
class TheftCheck(Check):
    """Extraction risk (fidelity/accuracy of a query-only surrogate vs. query budget, with and without
    output hardening) and ownership evidence (watermark, fingerprint).

    Options
    -------
    budgets : query budgets (default 100/1k/10k; 50/200/1000 in quick mode).
    strategies : attacker query distributions: ``random`` (uniform within bounds) and ``knockoff``
        (perturbed public rows). The held-out data is split in half: one half is the attacker's public
        pool, the other measures fidelity.
    outputs : API output modes to compare: ``probabilities``, ``top1``, ``rounded``.
    round_decimals : decimals of the ``rounded`` mode.
    surrogate : ``mlp`` (soft-label network), ``gbt`` (gradient boosting) or ``auto`` (gradient
        boosting for tabular data with discrete features, else the network).
    max_eval : at most this many evaluation rows.
    watermark_commitment : path to the owner's signed watermark commitment (JSON) to verify on the
        audited model; needs ``watermark_public_key`` and ``watermark_key``.
    watermark_public_key : the owner's public key (PEM) the commitment must be signed with.
    watermark_key : the owner's secret watermark key file (re-derives the trigger set).
    watermark_triggers : optional trigger-set NPZ; must be the committed set.
    watermark_alpha : significance level of the watermark test (default 1e-6).
    fingerprint : path to a fingerprint NPZ to compare with the audited model.

    exposure : what the deployment exposes to a would-be thief (the threat model of the grade):
        ``public-unlimited`` (anyone can send any number of queries), ``rate-limited`` (each attacker
        gets at most ``query_budget`` queries: count every key, account and address one attacker can
        obtain), ``internal`` (reachable only by insiders) or ``unspecified`` (default: the measurement
        assumes unlimited black-box access, and the grade is capped at MEDIUM because nothing says the
        model is public; the finding says so).
    query_budget : the most queries one attacker can send (with ``rate-limited``); it is added to the
        simulated budgets so that the grade uses a measurement at exactly that budget.
    api_outputs : what the deployed API returns (``probabilities``, ``top1`` or ``rounded``); by default
        the probabilities when the model has them (the stronger attacker).
    serve_config : a ``modelshield serve`` YAML config the model is deployed with: the exposure becomes
        ``rate-limited`` with ``query_budget = limits.daily_rows x attack_days x attacker_keys`` and the
        API outputs follow its ``outputs`` section (labels only, or rounded scores).
    attack_days, attacker_keys : how long and with how many keys one attacker queries (defaults 30
        days, 1 key: raise ``attacker_keys`` when keys are easy to obtain).

    Policy thresholds: ``theft.fidelity.high`` (0.9) and ``theft.fidelity.medium`` (0.75) grade the
    best fidelity reached through the deployment's outputs within the query budget the exposure
    allows: HIGH only when the exposure is ``public-unlimited`` or ``rate-limited`` and a copy of at
    least ``theft.fidelity.high`` fidelity fits in that budget. A copy no better than the
    constant-guess baseline (+1 point) is INFO whatever its fidelity (a model that predicts one class
    almost always is trivially "copied").
    """

    name: ClassVar[str] = "theft"
    title: ClassVar[str] = "Model theft: extraction risk and ownership"
    description: ClassVar[str] = (
        "Simulates query-only extraction attacks and reports surrogate fidelity vs. query budget; "
        "verifies watermarks and fingerprints when given."
    )
    tasks: ClassVar[frozenset[str]] = frozenset({"classification"})

    budgets: list[int] | None = None
    strategies: list[str] = field(default_factory=lambda: ["random", "knockoff"])
    outputs: list[str] = field(default_factory=lambda: ["probabilities", "top1", "rounded"])
    round_decimals: int = 1
    surrogate: str = "auto"
    max_eval: int = 2000
    watermark_commitment: str | None = None
    watermark_public_key: str | None = None
    watermark_key: str | None = None
    watermark_triggers: str | None = None
    watermark_alpha: float = 1e-6
    fingerprint: str | None = None
    exposure: str = "unspecified"
    query_budget: int | None = None
    api_outputs: str | None = None
    serve_config: str | None = None
    attack_days: int = 30
    attacker_keys: int = 1

    def check_options(self) -> None:
        if self.exposure not in EXPOSURES:
            raise UserError(f"option theft.exposure: {self.exposure!r} is not one of {', '.join(EXPOSURES)}")
        if self.attack_days < 1 or self.attacker_keys < 1:
            raise UserError("options theft.attack_days and theft.attacker_keys must be at least 1")
        if self.serve_config is not None and self.query_budget is None:
            if self.exposure not in ("unspecified", "rate-limited"):
                raise UserError(f"option theft.serve_config implies a rate-limited exposure, not {self.exposure}")
            return
        if self.query_budget is not None:
            if self.query_budget < 1:
                raise UserError("option theft.query_budget must be a positive number of queries")
            if self.exposure != "rate-limited":
                raise UserError("option theft.query_budget applies to theft.exposure=rate-limited only")
        elif self.exposure == "rate-limited":
            raise UserError("theft.exposure=rate-limited needs theft.query_budget (the most queries one "
                            "attacker can send, over every key it can obtain)")
        wm = {"watermark_commitment": self.watermark_commitment, "watermark_public_key": self.watermark_public_key,
              "watermark_key": self.watermark_key}
        if (any(wm.values()) or self.watermark_triggers) and not all(wm.values()):
            missing = ", ".join(f"theft.{k}" for k, v in wm.items() if not v)
            raise UserError(f"verifying a watermark needs the owner's signed commitment, public key and watermark "
                            f"key: missing {missing} (a trigger set alone proves nothing)")
        if not 0.0 < self.watermark_alpha < 1.0:
            raise UserError("option theft.watermark_alpha must lie strictly between 0 and 1")
        if self.api_outputs is not None and self.api_outputs not in OUTPUT_LABELS:
            raise UserError(f"option theft.api_outputs: {self.api_outputs!r} is not one of "
                            f"{', '.join(OUTPUT_LABELS)}")

    def from_serve_config(self) -> TheftCheck:
        """This check with the exposure, query budget and API outputs a serve config gives."""
        # imported here, not for a cycle: the serve config pulls in pydantic (~0.3 s), needed by this option only
        from modelshield.serve.config import load_config  # lazy: pulls in pydantic, yaml only when used

        assert self.serve_config is not None
        cfg = load_config(self.serve_config)
        out = cfg.outputs
        api, decimals = "probabilities", self.round_decimals
        if not out.probabilities or out.top_k == 1:
            api = "top1"
        elif out.decimals is not None:
            api, decimals = "rounded", int(out.decimals)
        budget = int(cfg.limits.daily_rows) * self.attack_days * self.attacker_keys
        return dataclasses.replace(self, exposure="rate-limited", query_budget=budget, api_outputs=api,
                                   round_decimals=decimals)

    def _run(self, ctx: AuditContext) -> CheckResult:
        assert ctx.model is not None and ctx.data is not None
        self.check_options()
        if self.serve_config is not None and self.query_budget is None:
            return self.from_serve_config()._run(ctx)
        result = self.result()
        budgets = list(self.budgets) if self.budgets else list(QUICK_BUDGETS if ctx.quick else FULL_BUDGETS)
        if self.query_budget is not None and self.query_budget not in budgets and self.query_budget < max(budgets):
            budgets = sorted([*budgets, int(self.query_budget)])
        outputs = list(self.outputs)
        if self.api_outputs is not None and self.api_outputs not in outputs:
            outputs.append(self.api_outputs)
        data = ctx.data
        if len(data) < 4:
            result.summary = "too few held-out rows to simulate extraction"
            return result
        seed = int(ctx.rng("theft").integers(2**31))
        public, evaluation = data.split(test_size=0.5, seed=seed % (2**31))
        if len(evaluation) > self.max_eval:
            evaluation = evaluation.sample(self.max_eval, seed=seed)

        def progress(frac: float, msg: str) -> None:
            ctx.progress(0.9 * frac, msg)

        res = simulate_extraction(
            ctx.model, public, evaluation, budgets=budgets, strategies=self.strategies, outputs=outputs,
            decimals=self.round_decimals, surrogate=self.surrogate, seed=seed,
            surrogate_steps=120 if ctx.quick else None, progress=progress,
        )
        self._report_extraction(ctx, res, result)
        if self.watermark_commitment:
            ctx.progress(0.92, "verifying the watermark")
            self._report_watermark(ctx, result)
        if self.fingerprint:
            ctx.progress(0.96, "comparing the fingerprint")
            self._report_fingerprint(ctx, result)
        ctx.progress(1.0, "done")
        return result

    # -- extraction -------------------------------------------------------------------------
    def _served(self, res: ExtractionResult) -> str:
        if self.api_outputs is not None and self.api_outputs in res.outputs:
            return self.api_outputs
        return "probabilities" if res.has_probabilities and "probabilities" in res.outputs else "top1"

    def _allowed_budget(self, res: ExtractionResult) -> int:
        """The largest simulated budget the declared exposure lets one attacker spend."""
        if self.exposure == "rate-limited" and self.query_budget is not None:
            within = [b for b in res.budgets if b <= self.query_budget]
            return max(within) if within else min(res.budgets)
        return max(res.budgets)

    def _threat_model(self, served: str, allowed: int, top: int) -> str:
        outputs = OUTPUT_LABELS[served]
        if self.exposure == "public-unlimited":
            return (f"declared exposure public-unlimited: anyone can query the API without limit and gets "
                    f"{outputs}; measured up to {top:,} queries")
        if self.exposure == "rate-limited":
            source = "declared exposure rate-limited"
            if self.serve_config is not None:
                source = (f"serve config {self.serve_config}: limits.daily_rows x {self.attack_days} days x "
                          f"{self.attacker_keys} key(s) (theft.attack_days, theft.attacker_keys)")
            text = (f"{source}: one attacker (over every key, account and address it can obtain) sends at most "
                    f"{self.query_budget:,} queries and gets {outputs}; graded at {allowed:,} queries")
            if self.query_budget is not None and self.query_budget > top:
                text += (" (the largest simulated budget; the allowed budget is larger, so a copy may be better "
                         "than measured)")
            return text
        if self.exposure == "internal":
            return (f"declared exposure internal: only insiders can query the model ({outputs}); an outside "
                    f"thief cannot run this attack")
        return (f"exposure not declared: measured assuming unlimited black-box query access with {outputs} "
                f"(up to {top:,} queries); graded at most MEDIUM because nothing says the model is public - "
                "set the option theft.exposure (public-unlimited, rate-limited with theft.query_budget, "
                "internal) to grade what the deployment exposes")

    def _report_extraction(self, ctx: AuditContext, res: ExtractionResult, result: CheckResult) -> None:
        served = self._served(res)
        top = max(res.budgets)
        best = res.best(served)
        assert best is not None
        allowed = self._allowed_budget(res)
        within = max((p for p in res.points if p.output == served and p.budget <= allowed),
                     key=lambda p: p.fidelity, default=None)
        assert within is not None
        threat = self._threat_model(served, allowed, top)
        m = result.metrics
        m["fidelity_at_max_budget"] = best.fidelity
        m["accuracy_at_max_budget"] = best.accuracy
        m["victim_accuracy"] = res.victim_accuracy
        m["fidelity_baseline"] = res.fidelity_baseline
        m["max_budget"] = top
        m["queries_used"] = res.queries_used
        m["best_strategy"] = best.strategy
        m["exposure"] = self.exposure
        m["api_outputs"] = served
        m["allowed_budget"] = allowed if self.exposure == "rate-limited" else None
        m["fidelity_within_allowed_budget"] = within.fidelity
        for o in res.outputs:
            b = res.best(o)
            if b is not None and o != served:
                m[f"fidelity_{o}_at_max_budget"] = b.fidelity
        high = ctx.threshold("theft.fidelity.high", 0.9)
        medium = ctx.threshold("theft.fidelity.medium", 0.75)
        reach = [p.budget for p in res.points if p.output == served and p.fidelity >= high]
        m["budget_to_high_fidelity"] = min(reach) if reach else None

        series = []
        for s in res.strategies:
            for o in res.outputs:
                c = res.curve(s, o)
                series.append(Series(name=f"{s} queries, {OUTPUT_LABELS[o]}", x=[p.budget for p in c],
                                     y=[p.fidelity for p in c]))
        series.append(Series(name="constant-guess baseline", x=res.budgets,
                             y=[res.fidelity_baseline] * len(res.budgets)))
        result.figures.append(Figure(
            title="Extraction fidelity vs. query budget", kind="line", series=tuple(series),
            x_label="queries to the prediction API", y_label="agreement with the model (held-out rows)",
            log_x=True, y_range=(0.0, 1.0)))
        if res.victim_accuracy is not None:
            acc = []
            for s in res.strategies:
                for o in res.outputs:
                    c = res.curve(s, o)
                    acc.append(Series(name=f"{s} queries, {OUTPUT_LABELS[o]}", x=[p.budget for p in c],
                                      y=[float(p.accuracy or 0.0) for p in c]))
            acc.append(Series(name="audited model", x=res.budgets, y=[res.victim_accuracy] * len(res.budgets)))
            result.figures.append(Figure(
                title="Surrogate accuracy vs. query budget", kind="line", series=tuple(acc),
                x_label="queries to the prediction API", y_label="accuracy on held-out labels", log_x=True,
                y_range=(0.0, 1.0)))
        result.tables["extraction"] = [p.to_row() for p in res.points]

        hardened = {o: res.best(o) for o in res.outputs if o != served}
        hard_txt = "; ".join(f"{OUTPUT_LABELS[o]}: {p.fidelity:.1%}" for o, p in hardened.items() if p)
        evidence: dict[str, Any] = {
            "fidelity": best.fidelity, "queries": top, "strategy": best.strategy,
            "baseline": res.fidelity_baseline, "surrogate_accuracy": best.accuracy,
            "victim_accuracy": res.victim_accuracy, "hardened": {o: p.fidelity for o, p in hardened.items() if p},
            "threat_model": threat, "exposure": self.exposure, "api_outputs": served,
            "allowed_budget": m["allowed_budget"], "fidelity_within_allowed_budget": within.fidelity,
        }
        detail = (
            f"Threat model: {threat}. "
            f"A {res.meta['surrogate'].upper()} surrogate trained on {top:,} {best.strategy} queries agrees with "
            f"the model on {best.fidelity:.1%} of {res.n_eval} held-out rows (a constant guess of the majority "
            f"prediction agrees on {res.fidelity_baseline:.1%})."
        )
        if best.accuracy is not None and res.victim_accuracy is not None:
            detail += f" Its accuracy is {best.accuracy:.1%} vs. {res.victim_accuracy:.1%} for the model."
        if self.exposure == "rate-limited":
            detail += (f" Within the declared budget ({allowed:,} queries simulated) the best copy reaches "
                       f"{within.fidelity:.1%}.")
        if hard_txt:
            detail += f" With hardened outputs the best fidelity is {hard_txt}."
        remediation = (
            "Limit queries per client (modelshield serve rate limits), return only the top-1 label or "
            "rounded scores, monitor for out-of-distribution query streams, and watermark or fingerprint "
            "the model so a copy can be recognised."
        )
        sev, title = self._grade(within.fidelity, best.fidelity, res.fidelity_baseline, high, medium,
                                 allowed=allowed, top=top, served=served)
        result.add(Finding(check=self.name, severity=sev, rule_id="theft.extraction.fidelity", title=title,
                           detail=detail, evidence=evidence, remediation=remediation, references=REFERENCES))
        worst_hard = max((p.fidelity for p in hardened.values() if p), default=None)
        if (worst_hard is not None and worst_hard >= medium and worst_hard >= best.fidelity - 0.02
                and best.fidelity > res.fidelity_baseline + 0.01):
            result.add(Finding(
                check=self.name, severity=Severity.LOW, rule_id="theft.extraction.hardening-ineffective",
                title="Output hardening barely slows extraction",
                detail=("Returning only labels or rounded scores leaves the surrogate's fidelity within 2 "
                        f"points of the unhardened API ({hard_txt})."),
                evidence={"hardened": evidence["hardened"], "unhardened": best.fidelity},
                remediation="Rely on query limits and ownership evidence rather than output rounding alone."))
        result.summary = (
            f"best surrogate fidelity {best.fidelity:.1%} after {top:,} queries "
            f"({best.strategy}); baseline {res.fidelity_baseline:.1%}; exposure {self.exposure}"
        )

    def _grade(self, fid: float, fid_top: float, baseline: float, high: float, medium: float, *,
               allowed: int, top: int, served: str) -> tuple[Severity, str]:
        """Severity and title of the extraction finding under the declared exposure.

        ``fid`` is the best fidelity within the budget the exposure allows, ``fid_top`` the best at the
        largest simulated budget."""
        how = OUTPUT_LABELS[served]
        if fid_top <= baseline + 0.01:
            return Severity.INFO, f"Extraction with {top:,} queries did no better than guessing the majority prediction"
        if self.exposure == "internal":
            sev = Severity.LOW if fid_top >= medium else Severity.INFO
            return sev, (f"An insider with {top:,} queries could copy the model ({fid_top:.0%} fidelity); "
                         "exposure declared internal")
        if self.exposure == "unspecified":
            if fid_top >= medium:
                return Severity.MEDIUM, (
                    f"Model can be copied with {top:,} queries ({fid_top:.0%} fidelity) if its API is open: "
                    f"assuming unlimited black-box access with {how} (exposure not declared)")
            return Severity.INFO, (f"Extraction with {top:,} queries reached {fid_top:.0%} fidelity "
                                   f"(assuming unlimited black-box access with {how})")
        where = (f"within the {allowed:,}-query budget" if self.exposure == "rate-limited"
                 else f"with {allowed:,} queries to a public API with no limit")
        if fid >= high:
            return Severity.HIGH, f"Model can be copied {where} ({fid:.0%} fidelity, {how})"
        if fid >= medium:
            return Severity.MEDIUM, f"Model largely copied {where} ({fid:.0%} fidelity, {how})"
        if self.exposure == "rate-limited" and fid_top >= medium:
            return Severity.LOW, (f"A copy needs more than the {allowed:,}-query budget: {fid:.0%} fidelity "
                                  f"within it, {fid_top:.0%} with {top:,} queries ({how})")
        return Severity.INFO, f"Extraction {where} reached {fid:.0%} fidelity ({how})"

    # -- ownership ----------------------------------------------------------------------------
    def _report_watermark(self, ctx: AuditContext, result: CheckResult) -> None:
        assert ctx.model is not None and self.watermark_commitment and self.watermark_public_key
        assert self.watermark_key
        try:  # a missing or unreadable file still stops the check (raised before the proof is opened)
            claim = open_claim(self.watermark_commitment, self.watermark_public_key, self.watermark_key,
                               self.watermark_triggers or None)
            v = claim.verify(ctx.model, alpha=self.watermark_alpha)
        except IntegrityError as exc:
            result.metrics["watermark_owned"] = False
            result.add(Finding(
                check=self.name, severity=Severity.HIGH, rule_id="theft.watermark.proof-refused",
                title="Watermark evidence refused: the commitment does not prove this trigger set",
                detail=f"{exc}. No agreement was measured: an unproven trigger set can be forged (labelled with "
                       "any model's own answers).",
                remediation="Use the commitment, public key and watermark key written by "
                            "'modelshield harden watermark'.", references=(REF_ADI,)))
            return
        result.metrics["watermark_p_value"] = v.p_value
        result.metrics["watermark_agreement"] = v.agreement
        result.metrics["watermark_owned"] = v.owned
        proof = (f"The commitment is signed by the given key (committed {v.created}) and the watermark key "
                 "re-derives the committed trigger set.")
        if v.owned:
            result.add(Finding(
                check=self.name, severity=Severity.INFO, rule_id="theft.watermark.verified",
                title=f"Ownership watermark verified (p = {v.p_value:.1e})",
                detail=(f"{proof} {v.matches} of {v.n} trigger inputs get their keyed secret label (chance "
                        f"{v.chance:.0%}); p is for one pre-committed key, so the claim is as early as the "
                        "commitment's publication."),
                evidence=v.to_dict(), references=(REF_ADI,)))
        else:
            result.add(Finding(
                check=self.name, severity=Severity.MEDIUM, rule_id="theft.watermark.missing",
                title="Watermark not detected in the audited model",
                detail=(f"{proof} Only {v.matches} of {v.n} trigger inputs get their secret label "
                        f"(p = {v.p_value:.2g}, alpha {v.alpha:g}): this is not the watermarked model, or the "
                        "watermark was removed."),
                evidence=v.to_dict(),
                remediation="Check that the deployed model is the one you watermarked (modelshield harden watermark).",
                references=(REF_ADI,)))

    def _report_fingerprint(self, ctx: AuditContext, result: CheckResult) -> None:
        assert ctx.model is not None and self.fingerprint is not None
        fp = Fingerprint.load(self.fingerprint)
        match = fp.compare(ctx.model)
        result.metrics["fingerprint_score"] = match.score
        result.metrics["fingerprint_match"] = match.derived
        result.add(Finding(
            check=self.name, severity=Severity.INFO if match.derived else Severity.MEDIUM,
            rule_id="theft.fingerprint.match" if match.derived else "theft.fingerprint.mismatch",
            title=("Fingerprint matches: the model is the fingerprinted one or derived from it"
                   if match.derived else "Fingerprint does not match the audited model"),
            detail=f"{match.matches} of {match.n} fingerprint points agree: {match.describe()}.",
            evidence=match.to_dict()))


REF_ADI = (
    "Adi et al., Turning Your Weakness Into a Strength: Watermarking Deep Neural Networks by Backdooring, "
    "USENIX Security 2018"
)
