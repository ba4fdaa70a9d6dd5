"""Runs a schedule on a live network: each fault applied and removed on time, recorded in the
history, and everything healed at the end.

Actions run in worker threads at their times, so a slow one (restarting a node takes a second
or more) does not push the rest of the schedule late; the actions on one node still run one
at a time in schedule order, and a fault is removed only after it was applied. On a clock
whose time is virtual (a `Scheduler`: the simulator's), there are no threads: each action is
a timer on that clock, run in the thread that drives the simulation, at its virtual time and
in schedule order, so a run replays exactly.

    schedule = Schedule.generate(env.seed, list(env.nodes), 30, kinds=("partition", "kill"))
    with NemesisRunner(env, schedule) as nemesis:
        ...                                 # the workload runs meanwhile
    # healed here: faults removed, nodes resumed or restarted, clocks back, liars honest
    nemesis.report()                        # what was applied, when, and what failed

Node faults (kill, pause, restart, clock skew, byzantine) go into the history as faults
(`history.fault("apply" | "remove", ...)`, named so a report draws them as spans); network
faults are recorded by the fabric itself. Every step is also an event `nemesis_step` with its
index in the schedule, and the schedule itself is the event `nemesis_schedule`, so a
history says exactly which schedule ran. A fault that cannot be applied (its node is down)
is recorded as `nemesis_error` and skipped; the run goes on.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from peerlab.clock import REAL_CLOCK, Cancellable, Clock, Scheduler
from peerlab.errors import PeerlabError
from peerlab.nemesis.faults import Byzantine, ClockSkew, NemesisTarget, Network
from peerlab.nemesis.schedule import Schedule, Step
from peerlab.node import DOWN_STATES

WORKERS = 8  # actions in flight at once (restarts are the slow ones)


@dataclass(frozen=True)
class _Turn:
    """An action's place in its node's queue: `previous` is set when the node's previous
    action is done; this one sets `done`."""

    previous: threading.Event | None
    done: threading.Event

    def wait(self) -> None:
        if self.previous is not None:
            self.previous.wait()


class NemesisRunner:
    """Applies `schedule` to `target` on time; `run()` blocks, `start()` runs it in a thread."""

    def __init__(
        self,
        target: NemesisTarget,
        schedule: Schedule,
        *,
        on_step: Callable[[dict[str, Any]], None] | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.target = target
        self.schedule = schedule
        self.on_step = on_step
        self.clock = clock
        self.log: list[dict[str, Any]] = []  # every apply / remove / error, in order
        self._active: dict[int, Step] = {}
        self._touched_clocks: set[str] = set()
        self._liars: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last_on_node: dict[str, threading.Event] = {}
        self._thread: threading.Thread | None = None
        self._healed = False
        self.started_at: float | None = None
        self._timers: list[Cancellable] = []  # on a virtual clock: the actions still to come
        self._finished = threading.Event()  # on a virtual clock: every action ran

    # ------------------------------------------------------------------ driving

    def start(self) -> NemesisRunner:
        if isinstance(self.clock, Scheduler):
            self._schedule(self.clock)
            return self
        self._thread = threading.Thread(target=self.run, name="peerlab-nemesis", daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> NemesisRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the schedule to end (and heal); False if it is still running."""
        if isinstance(self.clock, Scheduler) and self.started_at is not None:
            limit = self.schedule.duration + 3600 if timeout is None else timeout
            return self.clock.wait(self._finished, limit)
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, timeout: float = 120.0) -> None:
        """Stop early (or after the end) and heal; waits for the thread."""
        self._stop.set()
        for timer in self._timers:
            timer.cancel()
        if self._thread is not None:
            self._thread.join(timeout)
        if not self._healed:
            self.heal()

    def run(self) -> None:
        """Apply the schedule from this thread, then heal.

        Each action runs in a worker thread at its time, so a slow one (a restart takes a
        second or more) does not delay the rest of the schedule; actions on one node run one
        at a time, in schedule order, and a removal waits for its own application.
        """
        if isinstance(self.clock, Scheduler):
            self.start()
            self.wait()
            return
        self.started_at = self.clock.monotonic()
        self.target.record("event", "nemesis_schedule", self.schedule.to_dict())
        actions = self._actions()
        applied: dict[int, Future[None]] = {}
        pending: list[Future[None]] = []
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="peerlab-nemesis") as pool:
            try:
                for when, _, action, index in sorted(actions):
                    if self.clock.wait(self._stop, self.started_at + when - self.clock.monotonic()):
                        break
                    if action == "apply":
                        applied[index] = pool.submit(self._apply, index, self._queue(index))
                        pending.append(applied[index])
                    else:
                        pending.append(
                            pool.submit(self._remove, index, self._queue(index), applied[index])
                        )
                futures.wait(pending)
            finally:
                self._stop.set()  # actions not started yet stay undone
                futures.wait(pending)
                self.heal()

    def _actions(self) -> list[tuple[float, int, str, int]]:
        """(seconds into the run, order at a tie, apply | remove, step), in time order."""
        actions: list[tuple[float, int, str, int]] = []
        for index, step in enumerate(self.schedule.steps):
            actions.append((step.at, 1, "apply", index))
            if step.duration is not None:
                actions.append((step.end, 0, "remove", index))  # removes first at a tie
        return sorted(actions)

    def _schedule(self, clock: Scheduler) -> None:
        """Every action as a timer on the virtual clock, then the heal after the last."""
        self.started_at = clock.monotonic()
        self.target.record("event", "nemesis_schedule", self.schedule.to_dict())
        actions = self._actions()
        if not actions:
            self._end_virtual()
            return
        last = actions[-1]
        for action in actions:
            timer = clock.call_later(action[0], self._act_virtual, action, action is last)
            self._timers.append(timer)

    def _act_virtual(self, action: tuple[float, int, str, int], last: bool) -> None:
        if self._stop.is_set():
            return
        _, _, verb, index = action
        turn = _Turn(None, threading.Event())
        if verb == "apply":
            self._apply(index, turn)
        else:
            self._remove(index, turn)
        if last:
            self._end_virtual()

    def _end_virtual(self) -> None:
        self._stop.set()
        self.heal()
        self._finished.set()

    # ------------------------------------------------------------------ steps

    def _queue(self, index: int) -> _Turn:
        """Step `index`'s turn on its node: it waits for the node's previous action."""
        nodes = self.schedule.steps[index].fault.nodes()
        turn = _Turn(None, threading.Event())
        if nodes:
            with self._lock:
                turn = _Turn(self._last_on_node.get(nodes[0]), turn.done)
                self._last_on_node[nodes[0]] = turn.done
        return turn

    def _apply(self, index: int, turn: _Turn) -> None:
        try:
            turn.wait()
            if self._stop.is_set():
                return  # stopped early: what has not started stays undone
            step = self.schedule.steps[index]
            fault = step.fault
            try:
                fault.apply(self.target)
            except PeerlabError as exc:
                self._note("error", index, error=exc.message)
                return
            with self._lock:
                if isinstance(fault, ClockSkew):
                    self._touched_clocks.add(fault.node)
                if isinstance(fault, Byzantine):
                    self._liars.add(fault.node)
                if step.duration is not None:
                    self._active[index] = step
            self._note("apply", index)
        finally:
            turn.done.set()

    def _remove(
        self, index: int, turn: _Turn | None = None, applied: Future[None] | None = None
    ) -> None:
        try:
            if applied is not None:
                applied.result()
            if turn is not None:
                turn.wait()
            with self._lock:
                step = self._active.pop(index, None)
            if step is None:
                return  # never applied, or already removed
            try:
                step.fault.remove(self.target)
            except PeerlabError as exc:
                self._note("error", index, error=exc.message)
                return
            if isinstance(step.fault, Byzantine):
                with self._lock:
                    self._liars.discard(step.fault.node)
            self._note("remove", index)
        finally:
            if turn is not None:
                turn.done.set()

    def _note(self, action: str, index: int, *, error: str | None = None) -> None:
        step = self.schedule.steps[index]
        fault = step.fault.to_dict()
        elapsed = None if self.started_at is None else self.clock.monotonic() - self.started_at
        record: dict[str, Any] = {
            "action": action,
            "step": index,
            "at": step.at,
            "elapsed": elapsed,
            "fault": fault,
        }
        if error is not None:
            record["error"] = error
        self.log.append(record)
        with contextlib.suppress(PeerlabError):
            self.target.record("event", "nemesis_error" if error else "nemesis_step", record)
            if error is None and not isinstance(step.fault, Network):
                node = fault.get("node")
                named = {**fault, "name": f"{fault['kind']} {node}"}
                self.target.record("fault", action, named)
        if self.on_step is not None:
            self.on_step(record)

    # ------------------------------------------------------------------ healing

    def heal(self) -> None:
        """Remove every active fault, clear the network, bring every node back running,
        honest, on real time. Safe to call twice; errors are noted, not raised."""
        if self._healed:
            return
        self._healed = True
        for index in sorted(self._active, reverse=True):
            self._remove(index)
        attempts: list[tuple[str, Callable[[], None]]] = [("clear network", self.target.net.clear)]
        for node in sorted(self._liars):
            attempts.append((f"make {node} honest", _bind(self.target.lie, node, None)))
        for node in sorted(self._touched_clocks):
            attempts.append((f"reset {node}'s clock", _bind(self.target.skew, node, 0.0)))
        for description, attempt in attempts:
            self._heal_one(description, attempt)
        with contextlib.suppress(PeerlabError):
            states = {peer["name"]: peer["state"] for peer in self.target.peers()}
            for node, state in sorted(states.items()):
                if state == "paused":
                    self._heal_one(f"resume {node}", _bind(self.target.resume, node))
                elif state in DOWN_STATES:
                    self._heal_one(f"restart {node}", _bind(self.target.restart, node))
        with contextlib.suppress(PeerlabError):
            self.target.record(
                "event", "nemesis_healed", {"fingerprint": self.schedule.fingerprint()}
            )

    def _heal_one(self, description: str, attempt: Callable[[], None]) -> None:
        try:
            attempt()
        except PeerlabError as exc:
            self.log.append({"action": "heal_error", "what": description, "error": exc.message})

    def report(self) -> dict[str, Any]:
        """What happened: the schedule's fingerprint, counts, and every error."""
        counts: dict[str, int] = {}
        for record in self.log:
            counts[record["action"]] = counts.get(record["action"], 0) + 1
        return {
            "fingerprint": self.schedule.fingerprint(),
            "seed": self.schedule.seed,
            "steps": len(self.schedule.steps),
            "counts": counts,
            "errors": [r for r in self.log if "error" in r],
        }


def _bind(func: Callable[..., Any], *args: Any) -> Callable[[], None]:
    return lambda: func(*args)
