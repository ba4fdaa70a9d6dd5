"""Randomized chaos: seeded faults of every kind and seeded writes on five peers, then heal;
convergence, no lost acknowledged write and no sync loop must hold (TC-751, TC-752)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peerlab.env import Environment
from peerlab.nemesis.runner import NemesisRunner
from peerlab.nemesis.schedule import Schedule
from peerlab.systems.syncpeer import SyncpeerAdapter, SyncpeerClient
from peerlab.systems.syncpeer_checks import check_sync, explain
from peerlab.workload.files import FileWorkload, run_files

pytestmark = [pytest.mark.chaos, pytest.mark.sim]

PEERS = 5
KINDS = ("all",)  # every fault kind: processes, partitions, toxics, clock skew, byzantine
WRITE_TIMEOUT = 2.0  # a write to a frozen peer ends as "info" after this long


def run_chaos(
    env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter], seconds: float, mean_gap: float
) -> None:
    syncpeer_net(PEERS, skewable=True)
    names = sorted(env.nodes)
    schedule = Schedule.generate(
        env.seed,
        names,
        seconds,
        KINDS,
        mean_gap=mean_gap,
        fault_seconds=(0.5, 5.0),
        byzantine_modes=SyncpeerAdapter.byzantine.modes,
    )
    print("\n".join(schedule.describe()))  # shown with the failure, with the replay line
    clients = {name: SyncpeerClient(env, env.node(name), timeout=WRITE_TIMEOUT) for name in names}
    workload = FileWorkload(env.seed)
    with NemesisRunner(env, schedule, clock=env.clock) as nemesis:
        outcomes = run_files(
            workload,
            clients.__getitem__,
            lambda: [n.name for n in env.live_nodes()],
            seconds,
            clock=env.clock,
        )
        assert nemesis.wait(seconds + 120), "the nemesis did not finish its schedule"
    report = nemesis.report()
    print(f"writes: {outcomes}; nemesis: {report['counts']}; errors: {report['errors'][:5]}")
    assert sum(n for k, n in outcomes.items() if k.endswith(":ok")) > 0, "no write succeeded"
    assert all(node.state == "running" for node in env), [n.describe() for n in env]
    verdicts = check_sync(env, timeout=60)
    assert all(v.ok for v in verdicts), explain(verdicts)


def test_chaos_short(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-751: 8 s of mixed faults and writes on 5 peers (the short form `make test` runs),
    then heal: the peers converge, keep every acknowledged write, and loop nothing."""
    run_chaos(peerlab_env, syncpeer_net, 8.0, mean_gap=0.5)


def test_chaos_30s(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter], chaos_seed: int
) -> None:
    """TC-752: the same for 30 s, once per seed (`make chaos`: 20 seeds)."""
    run_chaos(peerlab_env, syncpeer_net, 30.0, mean_gap=0.8)
