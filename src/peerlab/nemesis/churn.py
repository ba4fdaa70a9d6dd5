"""Churn: every period, some live peers leave and some peers join, on a seeded schedule.

    churn = Churn(leave=2, join=2, every=30.0)
    runner = ChurnRunner(env, churn, seed=env.seed)
    runner.step()                       # one period now
    runner.run(periods=20)              # or: on its schedule, in this thread
    with runner.background(): ...       # or: on its schedule, while the test goes on

A leaving peer is stopped (SIGTERM; `kill=True`: SIGKILL), all of a period's leavers at
once. A joining peer is, unless `fresh`, one that left in an earlier period and comes back
with its data (restarted); when none is left to come back, or with `fresh`, a new peer is
started. Peers of the `protect_roles` roles (the bootstrap node) and the `protect`ed peers
never leave. Every choice draws from `derive_rng(seed, "churn")`, in name order, so the
same seed and the same network make the same choices. The target is a `ControlAPI`: an
Environment, or the CLI's handle on a running one. Periods are counted on `clock` (the
environment's): on a virtual clock, `background` churns from timers on that clock, in the
thread that drives the simulation, instead of from a thread of its own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from peerlab.api import ControlAPI
from peerlab.clock import REAL_CLOCK, Cancellable, Clock, Scheduler
from peerlab.errors import UsageError
from peerlab.seed import derive_rng


@dataclass(frozen=True)
class Churn:
    """`leave` peers leave and `join` peers join every `every` seconds."""

    kind: ClassVar[str] = "churn"
    leave: int = 2
    join: int = 2
    every: float = 30.0
    fresh: bool = False
    kill: bool = False
    protect: tuple[str, ...] = ()
    protect_roles: tuple[str, ...] = ("bootstrap",)

    def __post_init__(self) -> None:
        if self.leave < 0 or self.join < 0:
            raise UsageError(
                f"churn of leave={self.leave}, join={self.join}",
                field="leave",
                hint="leave and join are counts of peers, 0 or more",
            )
        if self.every <= 0:
            raise UsageError(
                f"churn period is {self.every}", field="every", hint="use a positive duration"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Churn:
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in raw.items() if k in names}
        for key in ("protect", "protect_roles"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


@dataclass
class ChurnStep:
    """What one period did."""

    period: int
    left: list[str]
    returned: list[str]
    added: list[str]
    seconds: float

    @property
    def joined(self) -> list[str]:
        return self.returned + self.added

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "joined": self.joined}


@dataclass
class ChurnRunner:
    """Applies a Churn to a target; `on_join` sees the names of each period's new peers."""

    target: ControlAPI
    churn: Churn
    seed: int
    on_join: Callable[[list[str]], None] | None = None
    record: Callable[[str, dict[str, Any]], None] | None = None
    steps: list[ChurnStep] = field(default_factory=list)
    clock: Clock = REAL_CLOCK

    def __post_init__(self) -> None:
        self.rng = derive_rng(self.seed, "churn")
        self._gone: list[str] = []  # peers that left and have not come back, oldest first

    def step(self) -> ChurnStep:
        """One period: the leavers stop together, then the joiners start together."""
        began = self.clock.monotonic()
        peers = self.target.peers()
        live = sorted(
            p["name"]
            for p in peers
            if p["state"] == "running"
            and p["name"] not in self.churn.protect
            and p.get("role") not in self.churn.protect_roles
        )
        left = sorted(self.rng.sample(live, min(self.churn.leave, len(live))))
        if left:
            self.target.stop_peers(left, kill=self.churn.kill)
        returned: list[str] = []
        if not self.churn.fresh:
            # Peers that left in an earlier period: the one that left now has not had the
            # time to be missed.
            candidates = sorted(name for name in self._gone if name not in left)
            returned = sorted(self.rng.sample(candidates, min(self.churn.join, len(candidates))))
            if returned:
                self.target.restart_peers(returned)
        self._gone = [name for name in self._gone if name not in returned] + left
        added: list[str] = []
        if self.churn.join > len(returned):
            added = [p["name"] for p in self.target.add_peers(self.churn.join - len(returned))]
            if self.on_join is not None:
                self.on_join(added)
        elapsed = self.clock.monotonic() - began
        step = ChurnStep(len(self.steps) + 1, left, returned, added, elapsed)
        self.steps.append(step)
        if self.record is not None:
            self.record("churn_step", step.to_dict())
        return step

    def run(
        self,
        periods: int | None = None,
        duration: float | None = None,
        stop: threading.Event | None = None,
        on_step: Callable[[ChurnStep], None] | None = None,
    ) -> list[ChurnStep]:
        """Step every `churn.every` seconds (the first after one period) until `periods`
        steps, `duration` seconds, or `stop` is set."""
        stop = stop or threading.Event()
        began = self.clock.monotonic()
        done: list[ChurnStep] = []
        while periods is None or len(done) < periods:
            due = began + (len(done) + 1) * self.churn.every
            if duration is not None and due - began > duration:
                break
            if self.clock.wait(stop, max(0.0, due - self.clock.monotonic())):
                break
            step = self.step()
            done.append(step)
            if on_step is not None:
                on_step(step)
        return done

    @contextlib.contextmanager
    def background(self, on_step: Callable[[ChurnStep], None] | None = None) -> Iterator[None]:
        """Churn on schedule in a thread while the block runs; stopped (and any error it
        hit raised) on leaving the block."""
        if isinstance(self.clock, Scheduler):
            with self._on_timers(self.clock, on_step):
                yield
            return
        stop = threading.Event()
        errors: list[BaseException] = []

        def loop() -> None:
            try:
                self.run(stop=stop, on_step=on_step)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=loop, name="peerlab-churn", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
        if errors:
            raise errors[0]

    @contextlib.contextmanager
    def _on_timers(
        self, clock: Scheduler, on_step: Callable[[ChurnStep], None] | None
    ) -> Iterator[None]:
        """`background` on a virtual clock: each period a timer of that clock."""
        timer: list[Cancellable] = []

        def period() -> None:
            step = self.step()
            if on_step is not None:
                on_step(step)
            timer[:] = [clock.call_later(self.churn.every, period)]

        timer.append(clock.call_later(self.churn.every, period))
        try:
            yield
        finally:
            for pending in timer:
                pending.cancel()
