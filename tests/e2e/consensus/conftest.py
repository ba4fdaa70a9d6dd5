"""etcd scenarios: a started cluster, and a seeded schedule of faults (partition, kill, pause)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from peerlab.env import Environment
from peerlab.seed import derive_rng
from peerlab.systems.etcd import EtcdAdapter
from peerlab.testing import require_program


@pytest.fixture
def etcd_cluster(peerlab_env: Environment) -> Callable[[int], EtcdAdapter]:
    """Start an etcd cluster of N members and wait for its first leader."""

    def start(members: int) -> EtcdAdapter:
        require_program("etcd", "etcd-server")
        peerlab_env.start("etcd", members)
        adapter = EtcdAdapter.of(peerlab_env, "etcd")
        adapter.wait_for_leader(20)
        return adapter

    return start


@dataclass
class Window:
    """A fault in force from `start` to `end` (monotonic ns since the history began)."""

    kind: str
    nodes: list[str]
    start: int
    end: int = 0


@dataclass
class FaultLog:
    windows: list[Window] = field(default_factory=list)

    def isolated(self) -> list[Window]:
        return [w for w in self.windows if w.kind == "partition"]


def _mark(env: Environment, what: str, nodes: list[str]) -> int:
    """Note a fault's edge in the history; its time is on the operations' clock."""
    return env.history.event(what, None, nodes=nodes).time


def run_faults(env: Environment, names: list[str], duration: float, label: str) -> FaultLog:
    """Partition a minority away, kill or pause a member, one fault at a time, for
    `duration` seconds on a schedule drawn from the run's seed; every fault is healed."""
    rng = derive_rng(env.seed, "etcd-nemesis", label)
    log = FaultLog()
    deadline = time.monotonic() + duration
    minority = (len(names) - 1) // 2
    # Each round applies every kind of fault once, in a seeded order; the first fault is a
    # partition, so even a short run has one. The sleeps are the schedule itself, not
    # waits for a state.
    kinds = [*rng.sample(["kill", "pause"], 2), "partition"]
    while True:
        if not kinds:
            kinds = rng.sample(["partition", "kill", "pause"], 3)
        kind = kinds.pop()
        time.sleep(rng.uniform(0.5, 1.5))
        # A fault holds at least 3 s: longer than two of a client's 1 s timeouts, so the
        # clients it cuts off start and finish operations inside it.
        remaining = deadline - time.monotonic() - 1
        if remaining < 3:
            break
        hold = min(rng.uniform(3.0, 5.0), remaining)
        if kind == "partition":
            cut = sorted(rng.sample(names, rng.randint(1, minority)))
            env.net.partition([cut, [n for n in names if n not in cut]])
            window = Window(kind, cut, _mark(env, "partition_in_force", cut))
            time.sleep(hold)
            window.end = _mark(env, "partition_healing", cut)
            env.net.heal()
        else:
            victim = rng.choice(names)
            window = Window(kind, [victim], _mark(env, f"{kind}_begins", [victim]))
            if kind == "kill":
                env.kill(victim)
                time.sleep(hold)
                window.end = _mark(env, f"{kind}_ends", [victim])
                env.restart(victim)
            else:
                env.pause(victim)
                time.sleep(hold)
                window.end = _mark(env, f"{kind}_ends", [victim])
                env.resume(victim)
        log.windows.append(window)
    return log


def save_json(env: Environment, name: str, data: Any) -> None:
    """Keep a figure with the test's artifacts (peerlab-results/<test>/)."""
    if env.artifacts is None:
        return
    env.artifacts.mkdir(parents=True, exist_ok=True)
    (env.artifacts / name).write_text(json.dumps(data, indent=2, default=str))


@pytest.fixture
def fault_schedule() -> Callable[[Environment, list[str], float, str], FaultLog]:
    """`run_faults`: a seeded schedule of partitions, kills and pauses."""
    return run_faults


@pytest.fixture
def keep_json() -> Callable[[Environment, str, Any], None]:
    """`save_json`: keep a figure next to the test's artifacts."""
    return save_json
