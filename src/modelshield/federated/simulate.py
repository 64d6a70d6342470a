"""In-process federated simulation (numpy only; no Flower/Ray yet).

A softmax-regression model is trained by local SGD on N clients; each round the participating clients'
updates go through, in order: client clipping and distributed Gaussian noise (DP), secure aggregation
within fixed groups of ``group_size`` clients (:mod:`.secagg`; the server sees group sums only), then the
robust aggregator across the group means (:mod:`.aggregators`). Malicious clients are chosen once (seeded)
and follow the attack every round; they do not clip or add noise (worst case).

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
from dataclasses import asdict, dataclass, field

import numpy as np

from modelshield.errors import SecurityError, UserError

from .aggregators import parse_aggregator
from .dp import client_noise_std, epsilon
from .dp import clip as clip_update
from .secagg import secure_group_sum

__all__ = ["RoundRecord", "SimulationResult", "simulate"]

_TRIGGER_VALUE = -5.0


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

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


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
    raise UserError(f"partition must be 'iid' or 'dirichlet:ALPHA' with ALPHA > 0, got {text!r}")


def _parse_attack(text: str | None, clients: int, n_mal: int) -> tuple[str | None, float]:
    if text is None or text == "none":
        return None, 0.0
    name, _, arg = text.partition(":")
    try:
        val = float(arg) if arg else None
    except ValueError:
        raise UserError(f"bad attack parameter in {text!r}") from None
    if name == "label-flip" and val is None:
        return name, 0.0
    if name == "sign-flip":
        return name, 4.0 if val is None else val
    if name == "scale" and val is not None:
        return name, val
    if name == "backdoor":
        return name, (clients / max(n_mal, 1)) if val is None else val
    raise UserError(f"attack must be label-flip, sign-flip[:s], scale:λ or backdoor[:boost], got {text!r}")


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
            raise UserError(
                f"the partition leaves client {c} without data ({len(y)} training rows, {clients} clients); "
                "use fewer clients or a larger Dirichlet alpha"
            )
    return parts


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.argmax(x @ w[:-1] + w[-1], axis=1)


def _local_sgd(w0, x, y, n_classes, *, epochs, lr, batch, rng):
    w = w0.copy()
    onehot = np.eye(n_classes)[y]
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for s in range(0, len(y), batch):
            b = order[s : s + batch]
            p = _softmax(x[b] @ w[:-1] + w[-1])
            g = p - onehot[b]
            w[:-1] -= lr * x[b].T @ g / len(b)
            w[-1] -= lr * g.mean(axis=0)
    return w - w0


def simulate(
    X: object,
    y: object,
    *,
    clients: int = 20,
    rounds: int = 20,
    partition: str = "iid",
    aggregator: str = "fedavg",
    group_size: int = 1,
    dropouts: int = 0,
    fraction: float = 1.0,
    dp_noise: float = 0.0,
    clip: float | None = None,
    delta: float = 1e-5,
    malicious: float = 0.0,
    attack: str | None = None,
    byzantine: int | None = None,
    backdoor_target: int = 1,
    local_epochs: int = 1,
    lr: float = 0.1,
    batch_size: int = 16,
    test_size: float = 0.2,
    seed: int = 0,
) -> SimulationResult:
    """Simulate federated training; see the module docstring. Every option is validated before training."""
    X = np.asarray(X, dtype=np.float64)
    y_raw = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y_raw) or len(X) < 10:
        raise UserError(f"X must be 2-D with one label per row (at least 10 rows), got X{X.shape}, y{y_raw.shape}")
    for name, val in (("clients", clients), ("rounds", rounds), ("group_size", group_size)):
        if not isinstance(val, int) or isinstance(val, bool) or val < 1:
            raise UserError(f"{name} must be an integer >= 1, got {val!r}")
    if group_size > clients:
        raise UserError(f"group size k={group_size} is larger than the number of clients ({clients})")
    if not (isinstance(dp_noise, (int, float)) and math.isfinite(dp_noise) and dp_noise >= 0):
        raise UserError(f"the DP noise multiplier sigma must be >= 0, got {dp_noise!r}")
    if clip is not None and not (math.isfinite(clip) and clip > 0):
        raise UserError(f"the clipping norm C must be > 0, got {clip!r}")
    if dp_noise > 0 and clip is None:
        raise UserError("DP noise needs a clipping norm: pass clip=C (the noise is sigma*C)")
    if not 0.0 < fraction <= 1.0:
        raise UserError(f"fraction (per-round participation probability) must be in (0, 1], got {fraction!r}")
    if not 0.0 <= malicious < 1.0:
        raise UserError(f"malicious must be a fraction in [0, 1), got {malicious!r}")
    if group_size > 1 and (not isinstance(dropouts, int) or dropouts < 0 or 2 * dropouts >= group_size):
        raise UserError(f"secure aggregation needs 0 <= dropouts t < k/2: t={dropouts!r}, k={group_size}")
    alpha = _parse_partition(partition)
    spec = parse_aggregator(aggregator)

    rng = np.random.default_rng(seed)
    classes, y_all = np.unique(y_raw, return_inverse=True)
    n_classes = len(classes)
    if n_classes < 2:
        raise UserError("the labels have a single class")
    if not 0 <= backdoor_target < n_classes:
        raise UserError(f"backdoor_target must be a class index in 0..{n_classes - 1}")
    perm = rng.permutation(len(y_all))
    n_test = max(1, round(test_size * len(y_all)))
    te, tr = perm[:n_test], perm[n_test:]
    mu, sd = X[tr].mean(axis=0), X[tr].std(axis=0)
    sd[sd == 0] = 1.0
    xtr, xte = (X[tr] - mu) / sd, (X[te] - mu) / sd
    ytr, yte = y_all[tr], y_all[te]

    parts = _partition(ytr, clients, alpha, rng)
    n_mal = round(malicious * clients)
    attack_name, attack_arg = _parse_attack(attack, clients, n_mal)
    if attack_name is not None and n_mal == 0:
        raise UserError(f"attack {attack!r} needs malicious > 0 (a fraction of the {clients} clients)")
    bad = set(rng.choice(clients, size=n_mal, replace=False).tolist()) if attack_name else set()

    n_groups = clients // group_size
    groups = [g.tolist() for g in np.array_split(rng.permutation(clients), n_groups)]
    f = min(n_mal, n_groups) if byzantine is None else byzantine
    spec.check(n_groups, f)
    agg = spec.fn(f)

    corr = np.abs(np.nan_to_num([np.corrcoef(xtr[:, j], ytr)[0, 1] for j in range(xtr.shape[1])]))
    trigger = np.argsort(corr, kind="stable")[: min(3, xtr.shape[1])]

    def stamp(x: np.ndarray) -> np.ndarray:
        x = x.copy()
        x[:, trigger] = _TRIGGER_VALUE
        return x

    bd_rows = yte != backdoor_target
    xte_bd = stamp(xte[bd_rows])
    min_contrib = max(1, group_size - dropouts) if group_size > 1 else 1
    noise_std = client_noise_std(dp_noise, clip, min_contrib) if dp_noise > 0 else 0.0

    w = np.zeros((xtr.shape[1] + 1, n_classes))
    records: list[RoundRecord] = []
    for r in range(1, rounds + 1):
        present = rng.random(clients) < fraction
        group_means, weights, failures = [], [], 0
        for g in groups:
            cohort = [c for c in g if present[c]]
            if len(cohort) < (max(2, min_contrib) if group_size > 1 else 1):
                continue  # too few to aggregate securely: the group sits this round out (fail closed)
            ups = []
            for c in cohort:
                x_c, y_c = xtr[parts[c]], ytr[parts[c]]
                is_bad = c in bad
                if is_bad and attack_name in ("label-flip", "scale"):
                    y_c = n_classes - 1 - y_c
                if is_bad and attack_name == "backdoor":
                    x_c = np.vstack([x_c, stamp(x_c)])
                    y_c = np.concatenate([y_c, np.full(len(parts[c]), backdoor_target)])
                u = _local_sgd(w, x_c, y_c, n_classes, epochs=local_epochs, lr=lr, batch=batch_size, rng=rng)
                if is_bad and attack_name == "sign-flip":
                    u = -attack_arg * u
                elif is_bad and attack_name in ("scale", "backdoor"):
                    u = attack_arg * u
                elif not is_bad:
                    if clip is not None:
                        u = clip_update(u, clip)
                    if noise_std > 0:
                        u = u + rng.normal(0.0, noise_std, size=u.shape)
                ups.append(u.ravel())
            stack = np.stack(ups)
            if group_size > 1:
                try:
                    total = secure_group_sum(stack, dropout_threshold=dropouts, round_tag=f"r{r}".encode())
                except SecurityError:
                    failures += 1
                    continue
            else:
                total = stack[0]
            group_means.append(total / len(cohort))
            weights.append(len(cohort))
        if group_means:
            try:
                w = w + agg(np.stack(group_means), np.asarray(weights, dtype=float)).reshape(w.shape)
            except UserError:
                failures += 1  # too few groups this round for the aggregator's constraint: no update
        else:
            failures += 1
        acc = float(np.mean(_predict(w, xte) == yte))
        bd = float(np.mean(_predict(w, xte_bd) == backdoor_target)) if len(xte_bd) else 0.0
        records.append(
            RoundRecord(round=r, accuracy=acc, backdoor_success=bd, failures=failures, groups=len(group_means))
        )

    eps = epsilon(noise_multiplier=dp_noise, sample_rate=fraction, rounds=rounds, delta=delta) if dp_noise > 0 else None
    config = {
        "clients": clients,
        "rounds": rounds,
        "partition": partition,
        "aggregator": aggregator,
        "group_size": group_size,
        "dropouts": dropouts,
        "fraction": fraction,
        "dp_noise": dp_noise,
        "clip": clip,
        "delta": delta,
        "malicious": malicious,
        "attack": attack,
        "byzantine": f,
        "n_malicious": len(bad),
        "backdoor_target": backdoor_target,
        "trigger_features": trigger.tolist(),
        "seed": seed,
        "secure_aggregation": group_size > 1,
    }
    return SimulationResult(
        rounds=records,
        final_accuracy=records[-1].accuracy,
        final_backdoor_success=records[-1].backdoor_success,
        epsilon=eps,
        config=config,
    )
