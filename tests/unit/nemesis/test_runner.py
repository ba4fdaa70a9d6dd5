"""The runner applies and removes faults on time, records them, survives failures, heals."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from peerlab.errors import PeerlabError, UsageError
from peerlab.nemesis.faults import Byzantine, ClockSkew, Kill, Network, Pause, Restart
from peerlab.nemesis.runner import NemesisRunner
from peerlab.nemesis.schedule import Schedule, Step
from peerlab.sim.clock import VirtualClock
from peerlab.wait import wait_until

PARTITION = {
    "kind": "partition",
    "name": "partition",
    "groups": [["A"], ["B", "C"]],
    "one_way": False,
    "duration": None,
}


class FakeNet:
    """The target's `net`: its calls are logged on the target, under net_* names."""

    def __init__(self, target: FakeTarget) -> None:
        self.target = target

    def apply(self, fault: dict[str, Any]) -> dict[str, Any]:
        return {"name": self.target.net_apply(fault)}

    def remove(self, name: str) -> None:
        self.target.net_remove(name)

    def clear(self) -> None:
        self.target.net_clear()


class FakeTarget:
    def __init__(self, refuse: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.net = FakeNet(self)
        self.calls: list[tuple[float, str, tuple[Any, ...]]] = []
        self.records: list[tuple[str, str, dict[str, Any]]] = []
        self.state = {"A": "running", "B": "running", "C": "running"}
        self.refuse = refuse
        self.began = time.monotonic()
        self.clock: VirtualClock | None = None

    def _call(self, name: str, *args: Any) -> None:
        if name in self.refuse:
            raise UsageError(f"{name} refused")
        now = self.clock.monotonic() if self.clock is not None else time.monotonic()
        self.calls.append((now - self.began, name, args))

    def kill(self, name: str) -> None:
        self._call("kill", name)
        self.state[name] = "killed"

    def restart(self, name: str) -> None:
        self._call("restart", name)
        self.state[name] = "running"

    def pause(self, name: str) -> None:
        self._call("pause", name)
        self.state[name] = "paused"

    def resume(self, name: str) -> None:
        self._call("resume", name)
        self.state[name] = "running"

    def skew(self, name: str, seconds: float) -> None:
        self._call("skew", name, seconds)

    def lie(self, name: str, mode: str | None) -> None:
        self._call("lie", name, mode)

    def net_apply(self, fault: dict[str, Any]) -> str:
        self._call("net_apply", fault["kind"])
        return str(fault["name"])

    def net_remove(self, name: str) -> None:
        self._call("net_remove", name)

    def net_clear(self) -> None:
        self._call("net_clear")

    def peers(self) -> list[dict[str, Any]]:
        return [{"name": name, "state": state} for name, state in self.state.items()]

    def record(self, entry: str, what: str, data: dict[str, Any]) -> None:
        self.records.append((entry, what, data))


def schedule(*steps: Step) -> Schedule:
    return Schedule(1, ("A", "B", "C"), 1.0, ("test",), steps)


def names(target: FakeTarget) -> list[str]:
    return [f"{name}{args[:1]}" for _, name, args in target.calls]


def test_faults_are_applied_and_removed_on_time_and_recorded() -> None:
    target = FakeTarget()
    plan = schedule(
        Step(0.0, 0.3, Kill("A")),
        Step(0.1, None, Restart("B")),
        Step(0.1, 0.1, Network(PARTITION)),
        Step(0.2, 0.2, ClockSkew("C", 3600.0)),
    )
    NemesisRunner(target, plan).run()
    times = {f"{name}{args[:1]}": at for at, name, args in reversed(target.calls)}
    expected = {
        "kill('A',)": 0.0,
        "restart('B',)": 0.1,
        "net_apply('partition',)": 0.1,
        "net_remove('partition',)": 0.2,
        "skew('C',)": 0.2,
        "restart('A',)": 0.3,
    }
    for call, at in expected.items():
        assert times[call] >= at - 0.01, ("never early", call, times[call])
    for earlier, later in itertools.pairwise(sorted(set(expected.values()))):
        last = max(times[c] for c, at in expected.items() if at == earlier)
        first = min(times[c] for c, at in expected.items() if at == later)
        assert last < first, ("in the plan's order", earlier, later, times)
    # On the plan's clock, not one step after another: a runner that waited out each step
    # before the next would restart A at 0.7 s or later (0.3 + 0.1 + 0.1 + 0.2).
    assert times["restart('A',)"] < 0.7, times
    assert ("skew", ("C", 0.0)) in [(n, a) for _, n, a in target.calls], "clock put back"
    assert target.records[0][:2] == ("event", "nemesis_schedule")
    faults = [(what, data["kind"]) for entry, what, data in target.records if entry == "fault"]
    assert ("apply", "kill") in faults and ("remove", "kill") in faults
    assert all(kind != "network" for _, kind in faults), "the fabric records its own faults"
    assert target.records[-1][1] == "nemesis_healed"


def test_a_refused_fault_is_noted_and_the_run_goes_on() -> None:
    target = FakeTarget(refuse={"pause"})
    runner = NemesisRunner(target, schedule(Step(0.0, 0.1, Pause("A")), Step(0.05, 0.1, Kill("B"))))
    runner.run()
    report = runner.report()
    assert report["counts"] == {"error": 1, "apply": 1, "remove": 1}
    assert "pause refused" in report["errors"][0]["error"]
    assert [r for r in target.records if r[1] == "nemesis_error"]


def test_stopping_early_heals_everything() -> None:
    target = FakeTarget()
    plan = schedule(
        Step(0.0, 30.0, Pause("A")),
        Step(0.0, 30.0, Byzantine("B", "replay")),
        Step(0.0, 30.0, Network(PARTITION)),
        Step(5.0, 1.0, Kill("C")),
    )
    runner = NemesisRunner(target, plan).start()
    wait_until(lambda: len(target.calls) >= 3, 5, what="the first three steps")
    runner.stop()
    calls = names(target)
    assert "kill('C',)" not in calls, "a step after the stop ran"
    assert {"resume('A',)", "lie('B',)", "net_remove('partition',)", "net_clear()"} <= set(calls)
    assert target.state == {"A": "running", "B": "running", "C": "running"}


def test_heal_restarts_nodes_left_down_even_when_removal_failed() -> None:
    class Stubborn(FakeTarget):
        def net_clear(self) -> None:
            raise PeerlabError("fabric is gone")

    target = Stubborn()
    target.state["C"] = "exited"
    runner = NemesisRunner(target, schedule())
    runner.run()
    assert "restart('C',)" in names(target)
    assert any(r.get("action") == "heal_error" for r in runner.log)


def test_a_slow_action_delays_only_its_own_node() -> None:
    class Slow(FakeTarget):
        def kill(self, name: str) -> None:
            time.sleep(1.0)  # the slow action itself, not a wait
            super().kill(name)

    target = Slow()
    plan = schedule(Step(0.0, 0.1, Kill("A")), Step(0.1, 0.2, Pause("B")))
    NemesisRunner(target, plan).run()
    times = {f"{name}{args[:1]}": at for at, name, args in target.calls}
    assert times["pause('B',)"] < 0.9, "B's pause waited for A's 1 s kill"
    assert times["restart('A',)"] > times["kill('A',)"], "A's removal overtook its kill"


def test_on_a_virtual_clock_the_schedule_runs_from_its_timers_at_exact_times() -> None:
    """No threads: each action is a timer on the clock, run by whoever waits on it, at its
    virtual time; the heal follows the last action; two runs act identically."""

    def one_run() -> list[tuple[float, str, tuple[Any, ...]]]:
        clock = VirtualClock()
        target = FakeTarget()
        target.began = 0.0
        target.clock = clock
        schedule = Schedule(
            1,
            ("A", "B", "C"),
            5.0,
            ("kill", "pause"),
            (Step(1.0, 2.0, Kill("B")), Step(1.5, 1.0, Pause("C"))),
        )
        threads = threading.active_count()
        with NemesisRunner(target, schedule, clock=clock) as nemesis:
            assert threading.active_count() == threads, "a thread started"
            assert target.calls == [], "nothing happens before the clock runs"
            assert nemesis.wait(10.0)
        return target.calls

    calls = one_run()
    assert [(at, name) for at, name, _ in calls[:4]] == [
        (1.0, "kill"),
        (1.5, "pause"),
        (2.5, "resume"),
        (3.0, "restart"),
    ]
    assert calls == one_run()
