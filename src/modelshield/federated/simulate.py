"""In-process federated simulation (numpy only): the plan both backends run.

:func:`prepare` validates every option against the data before any training and returns a
:class:`FederatedPlan`; :func:`run` drives it round by round in this process, and the Flower backend
(:mod:`.flower`) drives the same plan from a Flower strategy and Flower clients.

A softmax-regression model or a one-hidden-layer MLP (:mod:`.models`) is trained by local SGD on N clients;
each round the participating clients' updates go through, in order: client clipping and distributed
Gaussian noise (DP), secure aggregation within fixed groups of ``group_size`` clients (:mod:`.secagg`; the
server sees group sums only), then the robust aggregator across the group means (:mod:`.aggregators`).
Malicious clients are chosen once (seeded) and follow the attack every round; they do not clip or add noise
(worst case). Every random draw of round ``r`` comes from a generator seeded by ``(seed, r)`` (and the
client), so the result does not depend on the order clients run in.

Attacks:

* ``label-flip``: train on labels ``n_classes - 1 - y``.
* ``sign-flip[:s]``: send ``-s`` times the honest update (default ``s = 4``).
* ``scale:λ``: send ``λ`` times a label-flipped update (boosted poisoning).
* ``backdoor[:boost]``: train on the client's data plus trigger-stamped copies labelled ``backdoor_target``
  and boost the update by ``boost`` (default ``clients / n_malicious``: model replacement, Bagdasaryan et
  al. 2020). The tabular trigger sets the 3 features least correlated with the label (on the training split)
  to -5 standard deviations (clean models send almost none of those rows to the target).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from modelshield.errors import OptionError, SecurityError, UserError

from .aggregators import AggregatorSpec, parse_aggregator
from .dp import client_noise_std, epsilon
from .dp import clip as clip_update
from .models import FlatModel, local_sgd, make_model
from .secagg import secure_group_sum

__all__ = [
    "ACCOUNTANT",
    "ConfigError",
    "FederatedConfig",
    "FederatedPlan",
    "RoundRecord",
    "SimulationResult",
    "prepare",
    "run",
    "simulate",
]

_TRIGGER_VALUE = -5.0
#: The privacy accountant behind ``epsilon`` (named in results).
ACCOUNTANT = "dp_accounting RDP accountant: Poisson-subsampled Gaussian, composed over rounds"


class ConfigError(OptionError):
    """A federated option that cannot be used; ``option`` names the :class:`FederatedConfig` field."""

    def __init__(self, message: str, *, option: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True, kw_only=True)
class FederatedConfig:
    clients: int = 20
    rounds: int = 20
    partition: str = "iid"
    aggregator: str = "fedavg"
    group_size: int = 1
    dropouts: int = 0
    fraction: float = 1.0
    dp_noise: float = 0.0
    clip: float | None = None
    delta: float = 1e-5
    malicious: float = 0.0
    attack: str | None = None
    byzantine: int | None = None
    backdoor_target: int = 1
    model: str = "logistic"
    hidden: int = 32
    local_epochs: int = 1
    lr: float = 0.1
    batch_size: int = 16
    test_size: float = 0.2
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class RoundRecord:
    round: int
    accuracy: float
    backdoor_success: float
    failures: int
    groups: int


@dataclass(frozen=True, kw_only=True)
class SimulationResult:
    rounds: list[RoundRecord]
    final_accuracy: float
    final_backdoor_success: float
    epsilon: float | None
    config: dict[str, object] = field(default_factory=dict)
    weights: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out.pop("weights")
        return out


def _parse_partition(text: str) -> float | None:
    if text == "iid":
        return None
    name, _, arg = text.partition(":")
    if name == "dirichlet":
        try:
            alpha = float(arg)
        except ValueError:
            alpha = -1.0
        if alpha > 0 and math.isfinite(alpha):
            return alpha
    raise ConfigError(f"partition must be 'iid' or 'dirichlet:ALPHA' with ALPHA > 0, got {text!r}",
                      option="partition")


def _parse_attack(text: str | None, clients: int, n_mal: int) -> tuple[str | None, float]:
    if text is None or text == "none":
        return None, 0.0
    name, _, arg = text.partition(":")
    try:
        val = float(arg) if arg else None
    except ValueError:
        raise ConfigError(f"bad attack parameter in {text!r}", option="attack") from None
    if name == "label-flip" and val is None:
        return name, 0.0
    if name == "sign-flip":
        return name, 4.0 if val is None else val
    if name == "scale" and val is not None:
        return name, val
    if name == "backdoor":
        return name, (clients / max(n_mal, 1)) if val is None else val
    raise ConfigError(f"attack must be label-flip, sign-flip[:s], scale:λ or backdoor[:boost], got {text!r}",
                      option="attack")


def _partition(y: np.ndarray, clients: int, alpha: float | None, rng: np.random.Generator) -> list[np.ndarray]:
    if alpha is None:
        parts = np.array_split(rng.permutation(len(y)), clients)
    else:
        buckets: list[list[int]] = [[] for _ in range(clients)]
        for cls in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == cls))
            cuts = (np.cumsum(rng.dirichlet(np.full(clients, alpha))) * len(idx)).astype(int)[:-1]
            for c, chunk in enumerate(np.split(idx, cuts)):
                buckets[c].extend(chunk.tolist())
        parts = [np.array(b, dtype=int) for b in buckets]
    for c, p in enumerate(parts):
        if len(p) == 0:
            raise ConfigError(
                f"the partition leaves client {c} without data ({len(y)} training rows, {clients} clients); "
                "use fewer clients or a larger Dirichlet alpha", option="partition"
            )
    return parts


def _check_scalars(cfg: FederatedConfig) -> None:
    for name in ("clients", "rounds", "group_size", "local_epochs", "batch_size", "hidden"):
        val = getattr(cfg, name)
        if not isinstance(val, int) or isinstance(val, bool) or val < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {val!r}", option=name)
    if cfg.group_size > cfg.clients:
        raise ConfigError(f"group size k={cfg.group_size} is larger than the number of clients ({cfg.clients})",
                          option="group_size")
    if not (isinstance(cfg.dp_noise, (int, float)) and math.isfinite(cfg.dp_noise) and cfg.dp_noise >= 0):
        raise ConfigError(f"the DP noise multiplier sigma must be >= 0, got {cfg.dp_noise!r}", option="dp_noise")
    if cfg.clip is not None and not (math.isfinite(cfg.clip) and cfg.clip > 0):
        raise ConfigError(f"the clipping norm C must be > 0, got {cfg.clip!r}", option="clip")
    if cfg.dp_noise > 0 and cfg.clip is None:
        raise ConfigError("DP noise needs a clipping norm C (the noise is sigma*C)", option="clip")
    if not 0.0 < cfg.delta < 1.0:
        raise ConfigError(f"delta must be in (0, 1), got {cfg.delta!r}", option="delta")
    if not 0.0 < cfg.fraction <= 1.0:
        raise ConfigError(f"fraction (per-round participation probability) must be in (0, 1], got "
                          f"{cfg.fraction!r}", option="fraction")
    if not 0.0 <= cfg.malicious < 1.0:
        raise ConfigError(f"malicious must be a fraction in [0, 1), got {cfg.malicious!r}", option="malicious")
    if cfg.group_size > 1 and (not isinstance(cfg.dropouts, int) or cfg.dropouts < 0
                               or 2 * cfg.dropouts >= cfg.group_size):
        raise ConfigError(f"secure aggregation needs 0 <= dropouts t < k/2: t={cfg.dropouts!r}, "
                          f"k={cfg.group_size}", option="dropouts")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ConfigError(f"the learning rate must be > 0, got {cfg.lr!r}", option="lr")
    if not 0.0 < cfg.test_size < 1.0:
        raise ConfigError(f"the held-out fraction must be in (0, 1), got {cfg.test_size!r}", option="test_size")


@dataclass(kw_only=True)
class FederatedPlan:
    """Everything a validated run needs: data split, partition, attackers, groups, trigger, model.

    A backend asks it for :meth:`participants` of a round, each participant's :meth:`client_update`,
    the round's :meth:`aggregate`, and :meth:`evaluate` of the global weights."""

    cfg: FederatedConfig
    model: FlatModel
    spec: AggregatorSpec
    xtr: np.ndarray
    ytr: np.ndarray
    xte: np.ndarray
    yte: np.ndarray
    xte_bd: np.ndarray
    parts: list[np.ndarray]
    bad: frozenset[int]
    attack: str | None
    attack_arg: float
    groups: list[list[int]]
    byzantine: int
    trigger: np.ndarray
    noise_std: float
    min_contrib: int
    classes: list[object]

    def initial_weights(self) -> np.ndarray:
        return self.model.init(np.random.default_rng((self.cfg.seed, 0)))

    def participants(self, r: int) -> list[int]:
        """Clients taking part in round ``r`` (Poisson sampling with probability ``fraction``)."""
        present = np.random.default_rng((self.cfg.seed, 1, r)).random(self.cfg.clients) < self.cfg.fraction
        return np.flatnonzero(present).tolist()

    def _stamp(self, x: np.ndarray) -> np.ndarray:
        x = x.copy()
        x[:, self.trigger] = _TRIGGER_VALUE
        return x

    def client_update(self, c: int, w: np.ndarray, r: int) -> np.ndarray:
        """Client ``c``'s update in round ``r`` from global weights ``w`` (attack, or clip + DP noise)."""
        rng = np.random.default_rng((self.cfg.seed, 2, r, c))
        x_c, y_c = self.xtr[self.parts[c]], self.ytr[self.parts[c]]
        is_bad, n_cls = c in self.bad, self.model.n_classes
        if is_bad and self.attack in ("label-flip", "scale"):
            y_c = n_cls - 1 - y_c
        if is_bad and self.attack == "backdoor":
            x_c = np.vstack([x_c, self._stamp(x_c)])
            y_c = np.concatenate([y_c, np.full(len(self.parts[c]), self.cfg.backdoor_target)])
        cfg = self.cfg
        u = local_sgd(self.model, w, x_c, y_c, epochs=cfg.local_epochs, lr=cfg.lr, batch=cfg.batch_size, rng=rng)
        if is_bad and self.attack == "sign-flip":
            return -self.attack_arg * u
        if is_bad and self.attack in ("scale", "backdoor"):
            return self.attack_arg * u
        if not is_bad:
            if cfg.clip is not None:
                u = clip_update(u, cfg.clip)
            if self.noise_std > 0:
                u = u + rng.normal(0.0, self.noise_std, size=u.shape)
        return u

    def aggregate(self, r: int, updates: Mapping[int, np.ndarray]) -> tuple[np.ndarray | None, int, int]:
        """Secure sum within each group, then the robust aggregator across group means.

        Returns ``(delta or None, failures, groups aggregated)``; a group with too few participants sits the
        round out (fail closed), a group whose secure sum fails counts as a failure."""
        k = self.cfg.group_size
        means, weights, failures = [], [], 0
        for g in self.groups:
            cohort = [c for c in g if c in updates]
            if len(cohort) < (max(2, self.min_contrib) if k > 1 else 1):
                continue
            stack = np.stack([np.asarray(updates[c], dtype=np.float64).ravel() for c in cohort])
            if k > 1:
                try:
                    total = secure_group_sum(stack, dropout_threshold=self.cfg.dropouts, round_tag=f"r{r}".encode())
                except SecurityError:
                    failures += 1
                    continue
            else:
                total = stack[0]
            means.append(total / len(cohort))
            weights.append(len(cohort))
        if not means:
            return None, failures + 1, 0
        try:
            delta = self.spec.fn(self.byzantine)(np.stack(means), np.asarray(weights, dtype=float))
        except UserError:
            return None, failures + 1, len(means)  # too few groups for the aggregator's constraint: no update
        return delta, failures, len(means)

    def evaluate(self, w: np.ndarray) -> tuple[float, float]:
        """Accuracy on the held-out rows and backdoor success (trigger-stamped non-target rows -> target)."""
        acc = float(np.mean(self.model.predict(w, self.xte) == self.yte))
        if not len(self.xte_bd):
            return acc, 0.0
        return acc, float(np.mean(self.model.predict(w, self.xte_bd) == self.cfg.backdoor_target))

    def epsilon(self) -> float | None:
        c = self.cfg
        if c.dp_noise <= 0:
            return None
        return epsilon(noise_multiplier=c.dp_noise, sample_rate=c.fraction, rounds=c.rounds, delta=c.delta)

    def config_dict(self) -> dict[str, object]:
        out: dict[str, object] = asdict(self.cfg)
        out.update(byzantine=self.byzantine, n_malicious=len(self.bad), trigger_features=self.trigger.tolist(),
                   secure_aggregation=self.cfg.group_size > 1, n_groups=len(self.groups),
                   train_rows=len(self.ytr), test_rows=len(self.yte), n_params=self.model.size)
        return out

    def result(self, records: list[RoundRecord], w: np.ndarray) -> SimulationResult:
        return SimulationResult(rounds=records, final_accuracy=records[-1].accuracy,
                                final_backdoor_success=records[-1].backdoor_success, epsilon=self.epsilon(),
                                config=self.config_dict(), weights=np.asarray(w, dtype=float).tolist())


def prepare(X: object, y: object, cfg: FederatedConfig) -> FederatedPlan:
    """Validate ``cfg`` against the data and build the plan; raises :class:`ConfigError` (one line) first."""
    X = np.asarray(X, dtype=np.float64)
    y_raw = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y_raw) or len(X) < 10:
        raise UserError(f"X must be 2-D with one label per row (at least 10 rows), got X{X.shape}, y{y_raw.shape}")
    _check_scalars(cfg)
    model_name = cfg.model
    alpha = _parse_partition(cfg.partition)
    try:
        spec = parse_aggregator(cfg.aggregator)
    except UserError as exc:
        raise ConfigError(str(exc), option="aggregator") from None
    rng = np.random.default_rng(cfg.seed)
    classes, y_all = np.unique(y_raw, return_inverse=True)
    n_classes = len(classes)
    if n_classes < 2:
        raise ConfigError("the labels have a single class", option="target")
    if not 0 <= cfg.backdoor_target < n_classes:
        raise ConfigError(f"backdoor_target must be a class index in 0..{n_classes - 1}", option="backdoor_target")
    try:
        model = make_model(model_name, X.shape[1], n_classes, cfg.hidden)
    except UserError as exc:
        raise ConfigError(str(exc), option="model") from None
    perm = rng.permutation(len(y_all))
    n_test = max(1, round(cfg.test_size * len(y_all)))
    te, tr = perm[:n_test], perm[n_test:]
    mu, sd = X[tr].mean(axis=0), X[tr].std(axis=0)
    sd[sd == 0] = 1.0
    xtr, xte = (X[tr] - mu) / sd, (X[te] - mu) / sd
    ytr, yte = y_all[tr], y_all[te]

    parts = _partition(ytr, cfg.clients, alpha, rng)
    n_mal = round(cfg.malicious * cfg.clients)
    attack_name, attack_arg = _parse_attack(cfg.attack, cfg.clients, n_mal)
    if attack_name is not None and n_mal == 0:
        raise ConfigError(f"attack {cfg.attack!r} needs malicious > 0 (a fraction of the {cfg.clients} clients)",
                          option="malicious")
    bad = frozenset(rng.choice(cfg.clients, size=n_mal, replace=False).tolist()) if attack_name else frozenset()
    n_groups = cfg.clients // cfg.group_size
    groups = [g.tolist() for g in np.array_split(rng.permutation(cfg.clients), n_groups)]
    f = min(n_mal, n_groups) if cfg.byzantine is None else cfg.byzantine
    try:
        spec.check(n_groups, f)
    except UserError as exc:
        what = f"{n_groups} group sums of {cfg.group_size} clients" if cfg.group_size > 1 else "clients"
        raise ConfigError(f"{exc}; n counts {what}", option="aggregator") from None
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.abs(np.nan_to_num([np.corrcoef(xtr[:, j], ytr)[0, 1] for j in range(xtr.shape[1])]))
    trigger = np.argsort(corr, kind="stable")[: min(3, xtr.shape[1])]
    bd_rows = yte != cfg.backdoor_target
    xte_bd = xte[bd_rows].copy()
    xte_bd[:, trigger] = _TRIGGER_VALUE
    min_contrib = max(1, cfg.group_size - cfg.dropouts) if cfg.group_size > 1 else 1
    noise_std = client_noise_std(cfg.dp_noise, cfg.clip, min_contrib) if cfg.dp_noise > 0 and cfg.clip else 0.0
    return FederatedPlan(cfg=cfg, model=model, spec=spec, xtr=xtr, ytr=ytr, xte=xte, yte=yte, xte_bd=xte_bd,
                         parts=parts, bad=bad, attack=attack_name, attack_arg=attack_arg, groups=groups,
                         byzantine=f, trigger=trigger, noise_std=noise_std, min_contrib=min_contrib,
                         classes=classes.tolist())


def run(plan: FederatedPlan) -> SimulationResult:
    """Drive ``plan`` in this process, round by round."""
    w = plan.initial_weights()
    records: list[RoundRecord] = []
    for r in range(1, plan.cfg.rounds + 1):
        ups = {c: plan.client_update(c, w, r) for c in plan.participants(r)}
        delta, failures, n_groups = plan.aggregate(r, ups)
        if delta is not None:
            w = w + delta
        acc, bd = plan.evaluate(w)
        records.append(RoundRecord(round=r, accuracy=acc, backdoor_success=bd, failures=failures, groups=n_groups))
    return plan.result(records, w)


def simulate(X: object, y: object, **options: object) -> SimulationResult:
    """Simulate federated training in process; ``options`` are :class:`FederatedConfig` fields, all
    validated before training."""
    return run(prepare(X, y, FederatedConfig(**options)))  # type: ignore[arg-type]
