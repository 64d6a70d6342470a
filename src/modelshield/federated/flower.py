"""Run a :class:`~.simulate.FederatedPlan` as a Flower simulation (flwr 1.42, Ray backend, all local).

Each Flower client (a SuperNode in the simulation, ``partition-id`` = the plan's client index) trains on
its own partition with :meth:`FederatedPlan.client_update` (the attack, or clipping and its share of DP
noise). The server's strategy, :class:`PlanStrategy`, does not average: its aggregate step calls the
engine -- secure sum within each group of k clients, the robust aggregator across group sums, the DP noise
already in the sums -- then evaluates the global model on the held-out rows. Participation (Poisson, rate
``fraction``) is decided per round from the plan's seeded draw, so this backend and the in-process engine
compute the same model (up to the fixed-point rounding of secure aggregation).

Not here: Flower's own SecAgg+ workflow (the group-wise secure sum is the engine's, run inside the
strategy's aggregate step) and a deployment across processes (SuperLink/SuperNode with TLS).

This module imports flwr at the top: import it through :func:`modelshield.federated.recipes.run_plan`,
which turns a missing flwr into :class:`~modelshield.errors.MissingExtraError`.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import ray
from flwr.client import ClientApp, NumPyClient
from flwr.common import Context, FitIns, Parameters, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import Strategy
from flwr.simulation import run_simulation

from modelshield.errors import SecurityError

from .simulate import FederatedPlan, RoundRecord, SimulationResult

__all__ = ["PlanClient", "PlanStrategy", "run_flower"]


class PlanClient(NumPyClient):
    """One simulated client: trains on partition ``cid`` of the plan when the round samples it."""

    def __init__(self, plan: FederatedPlan, cid: int) -> None:
        self.plan, self.cid = plan, cid

    def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict]:
        r = int(config["round"])
        if self.cid not in self.plan.participants(r):
            return [np.zeros(0)], 0, {"partition_id": self.cid, "participated": 0}
        u = self.plan.client_update(self.cid, np.asarray(parameters[0], dtype=np.float64), r)
        return [u], len(self.plan.parts[self.cid]), {"partition_id": self.cid, "participated": 1}


class PlanStrategy(Strategy):
    """A Flower strategy whose aggregate step is the engine's (secure group sums -> robust aggregator)."""

    def __init__(self, plan: FederatedPlan) -> None:
        self.plan = plan
        self.weights = plan.initial_weights()
        self.records: list[RoundRecord] = []

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        return ndarrays_to_parameters([self.weights])

    def configure_fit(self, server_round: int, parameters: Parameters,
                      client_manager: ClientManager) -> list[tuple[ClientProxy, FitIns]]:
        n = self.plan.cfg.clients
        clients = client_manager.sample(num_clients=n, min_num_clients=n)
        return [(c, FitIns(parameters, {"round": server_round})) for c in clients]

    def aggregate_fit(self, server_round: int, results: list, failures: list) -> tuple[Parameters | None, dict]:
        ups: dict[int, np.ndarray] = {}
        for _, res in results:
            if res.metrics.get("participated"):
                ups[int(res.metrics["partition_id"])] = parameters_to_ndarrays(res.parameters)[0]
        expected = set(self.plan.participants(server_round))
        if set(ups) != expected and not failures:
            raise SecurityError(f"round {server_round}: updates from clients {sorted(set(ups) ^ expected)} were "
                                "not expected or are missing")
        delta, n_fail, groups = self.plan.aggregate(server_round, ups)
        if delta is not None:
            self.weights = self.weights + delta
        acc, bd = self.plan.evaluate(self.weights)
        self.records.append(RoundRecord(round=server_round, accuracy=acc, backdoor_success=bd,
                                        failures=n_fail + len(failures), groups=groups))
        return ndarrays_to_parameters([self.weights]), {"accuracy": acc, "backdoor_success": bd}

    def configure_evaluate(self, server_round: int, parameters: Parameters, client_manager: ClientManager) -> list:
        return []  # evaluation is central, on the held-out rows, in aggregate_fit

    def aggregate_evaluate(self, server_round: int, results: list, failures: list) -> tuple[float | None, dict]:
        return None, {}

    def evaluate(self, server_round: int, parameters: Parameters) -> tuple[float, dict] | None:
        return None


#: Ray waits a fixed 30 s for its node to register; on a loaded machine that fails, so start-up is retried
RAY_START_ATTEMPTS = 3


def _start_ray(cpus: int) -> bool:
    """Start a local Ray instance unless one runs (retrying its start-up timeout); True when started here."""
    if ray.is_initialized():
        return False
    pythonpath = os.pathsep.join(sys.path)  # Ray workers must import modelshield as this process does
    for attempt in range(1, RAY_START_ATTEMPTS + 1):
        try:
            ray.init(num_cpus=cpus, num_gpus=0, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
            return True
        except Exception:  # Ray raises a bare Exception when its node times out during start-up
            ray.shutdown()
            if attempt == RAY_START_ATTEMPTS:
                raise
    return False


@contextmanager
def _temp_homes() -> Iterator[None]:
    """Ray's and Flower's state folders in a temporary folder (unless the caller set them)."""
    with tempfile.TemporaryDirectory(prefix="ms-flwr-") as tmp:
        old = {k: os.environ.get(k) for k in ("RAY_TMPDIR", "FLWR_HOME")}
        for k in old:
            os.environ.setdefault(k, os.path.join(tmp, k.lower()))
            os.makedirs(os.environ[k], exist_ok=True)
        try:
            yield
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def run_flower(plan: FederatedPlan, *, num_cpus: int | None = None) -> SimulationResult:
    """Run ``plan`` as a Flower simulation with ``plan.cfg.clients`` SuperNodes on a local Ray backend."""
    strategy = PlanStrategy(plan)

    def client_fn(context: Context) -> Any:
        return PlanClient(plan, int(context.node_config["partition-id"])).to_client()

    def server_fn(context: Context) -> ServerAppComponents:
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=plan.cfg.rounds))

    cpus = num_cpus or max(1, min(os.cpu_count() or 1, 4))
    backend_config: dict[str, Any] = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": cpus, "num_gpus": 0, "include_dashboard": False, "log_to_driver": False},
    }
    with _temp_homes():
        started = _start_ray(cpus)
        try:
            run_simulation(server_app=ServerApp(server_fn=server_fn), client_app=ClientApp(client_fn=client_fn),
                           num_supernodes=plan.cfg.clients, backend_config=backend_config)
        finally:
            if started and ray.is_initialized():
                ray.shutdown()
    logging.getLogger("flwr").handlers.clear()
    if len(strategy.records) != plan.cfg.rounds:
        raise SecurityError(f"the Flower simulation completed {len(strategy.records)} of {plan.cfg.rounds} rounds")
    return plan.result(strategy.records, strategy.weights)
