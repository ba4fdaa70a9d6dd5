"""The churn nemesis against a fake network: seeded choices, who may leave, who joins."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from peerlab.errors import UsageError
from peerlab.nemesis.churn import Churn, ChurnRunner
from peerlab.wait import wait_until


class FakeNetwork:
    def __init__(self, names: str, roles: dict[str, str] | None = None) -> None:
        self.state = {name: "running" for name in names}
        self.roles = roles or {}
        self.calls: list[tuple[str, Any]] = []

    def peers(self) -> list[dict[str, Any]]:
        return [{"name": n, "state": s, "role": self.roles.get(n)} for n, s in self.state.items()]

    def stop_peers(self, names: list[str], kill: bool = False) -> list[dict[str, Any]]:
        self.calls.append(("kill" if kill else "stop", names))
        for name in names:
            self.state[name] = "killed" if kill else "stopped"
        return []

    def restart_peers(self, names: list[str]) -> list[dict[str, Any]]:
        self.calls.append(("restart", names))
        for name in names:
            self.state[name] = "running"
        return []

    def add_peers(self, count: int) -> list[dict[str, Any]]:
        new = [f"N{len(self.state) + i}" for i in range(count)]
        self.calls.append(("add", new))
        self.state.update({name: "running" for name in new})
        return [{"name": name} for name in new]


def run(seed: int, churn: Churn, periods: int, names: str = "ABCDEFGHIJ") -> FakeNetwork:
    network = FakeNetwork(names, {"A": "bootstrap"})
    runner = ChurnRunner(network, churn, seed)
    for _ in range(periods):
        runner.step()
    return network


def test_same_seed_same_choices_other_seed_other_choices() -> None:
    churn = Churn(leave=2, join=2, every=1.0)
    assert run(7, churn, 5).calls == run(7, churn, 5).calls
    assert run(7, churn, 5).calls != run(8, churn, 5).calls


def test_leavers_come_back_before_new_peers_and_protected_peers_stay() -> None:
    network = FakeNetwork("ABCDEFGHIJ", {"A": "bootstrap"})
    added: list[list[str]] = []
    runner = ChurnRunner(
        network, Churn(leave=2, join=2, every=1.0, protect=("B",)), 3, on_join=added.append
    )
    first = runner.step()
    assert len(first.left) == 2 and first.returned == [] and len(first.added) == 2
    assert added == [first.added], "new peers are handed to on_join"
    second = runner.step()
    assert set(second.returned) == set(first.left), "those that left earlier come back first"
    assert second.added == []
    for step in runner.steps:
        assert not {"A", "B"} & set(step.left), "the bootstrap role and protected peers stay"
    assert sum(s == "running" for s in network.state.values()) == 10


def test_fresh_and_kill_modes() -> None:
    network = run(1, Churn(leave=1, join=1, every=1.0, fresh=True, kill=True), 3)
    kinds = [kind for kind, _ in network.calls]
    assert kinds == ["kill", "add"] * 3
    assert Churn.from_dict(Churn(fresh=True, protect=("A",)).to_dict()) == Churn(
        fresh=True, protect=("A",)
    )


def test_bad_values_and_the_schedule() -> None:
    with pytest.raises(UsageError):
        Churn(leave=-1)
    with pytest.raises(UsageError):
        Churn(every=0)
    runner = ChurnRunner(FakeNetwork("ABCDEF"), Churn(leave=1, join=1, every=0.05), 2)
    began = time.monotonic()
    steps = runner.run(periods=3)
    assert len(steps) == 3 and time.monotonic() - began >= 0.15
    stop = threading.Event()
    stop.set()
    assert runner.run(stop=stop) == []
    with runner.background():
        wait_until(lambda: len(runner.steps) >= 5, 5, what="five churn steps")
