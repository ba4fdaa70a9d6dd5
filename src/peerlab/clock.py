"""Time, as the rest of peerlab sees it: real on real backends, virtual in the simulator.

Everything that reads the time or waits (the history's timestamps, the fabric's timers, the
nemesis runner, `wait_until`) takes a `Clock`, so that a backend with virtual time can drive
the same code: there, sleeping means letting the simulation run until that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable


class Clock(Protocol):
    """Wall time (timestamps), monotonic time (deadlines and intervals), and waiting."""

    def time(self) -> float:
        """Seconds since the epoch, for timestamps."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for deadlines and intervals."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass (a virtual clock runs its simulation meanwhile)."""
        ...

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait until `event` is set or `seconds` pass; whether it was set."""
        ...


class Cancellable(Protocol):
    """A timer (or task) that can be stopped before it runs."""

    def cancel(self) -> object: ...


@runtime_checkable
class Scheduler(Clock, Protocol):
    """A clock whose time moves only while someone waits on it (virtual time): work that
    must happen at its times is set with `call_later` and runs in the waiting thread,
    instead of in a thread of its own."""

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Cancellable:
        """Run `callback(*args)` `delay` seconds of this clock from now."""
        ...


class RealClock:
    """The machine's clocks."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(max(0.0, seconds))


REAL_CLOCK = RealClock()
