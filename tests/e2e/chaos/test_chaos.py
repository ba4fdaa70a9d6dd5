"""Randomized chaos: seeded faults of every kind and seeded writes on five peers, then heal;
convergence, no lost acknowledged write and no sync loop must hold (TC-751, TC-752). The
scenario is `peerlab.systems.syncpeer_chaos`, the same on real processes and on the
simulator."""

from __future__ import annotations

import pytest

from peerlab.clock import Scheduler
from peerlab.env import Environment
from peerlab.plan import Plan
from peerlab.systems.syncpeer_chaos import chaos
from peerlab.systems.syncpeer_checks import explain
from peerlab.testing import require_libfaketime

pytestmark = [pytest.mark.chaos, pytest.mark.sim]


def run_chaos(env: Environment, seconds: float, mean_gap: float) -> None:
    if not isinstance(env.clock, Scheduler):  # real processes take a skew with libfaketime
        require_libfaketime()
    ran = chaos(env, Plan("chaos", env.seed, {"seconds": seconds, "mean_gap": mean_gap}))
    assert ran.plan.steps is not None
    print(f"{len(ran.plan.steps)} faults, {ran.facts['writes']}; {ran.facts['nemesis']['counts']}")
    assert ran.facts["nemesis_finished"], "the nemesis did not finish its schedule"
    assert sum(n for k, n in ran.facts["writes"].items() if k.endswith(":ok")) > 0, "no write"
    assert set(ran.facts["states"].values()) == {"running"}, ran.facts["states"]
    assert all(v.ok for v in ran.verdicts), explain(ran.verdicts)


def test_chaos_short(peerlab_env: Environment) -> None:
    """TC-751: 8 s of mixed faults and writes on 5 peers (the short form `make test` runs),
    then heal: the peers converge, keep every acknowledged write, and loop nothing."""
    run_chaos(peerlab_env, 8.0, mean_gap=0.5)


def test_chaos_30s(peerlab_env: Environment, chaos_seed: int) -> None:
    """TC-752: the same for 30 s, once per seed (`make chaos`: 20 seeds)."""
    run_chaos(peerlab_env, 30.0, mean_gap=0.8)
