"""VirtualClock: peerlab's `Clock` on the simulator's virtual time.

Everything that reads the time or waits through a Clock (the history, the nemesis, churn,
`wait_until`, the assertion helpers) works unchanged on it: `sleep(s)` runs the simulation
for `s` virtual seconds, `wait(event, s)` runs it until the event is set. Wall time is a
fixed epoch plus the virtual seconds, so timestamps are the same in every run of a seed.
Timers set with `call_later` run in the thread that drives the simulation, between the
nodes' own events, which is how the nemesis and churn act on virtual time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from peerlab.sim.loop import EventLoop, Timer

EPOCH = 1_700_000_000.0  # 2023-11-14T22:13:20Z: the wall time of virtual time 0


class VirtualClock:
    """Wall time, monotonic time and waits, on the simulation's event loop."""

    virtual = True

    def __init__(self, loop: EventLoop | None = None, epoch: float = EPOCH) -> None:
        self.loop = loop or EventLoop()
        self.epoch = epoch

    def time(self) -> float:
        return self.epoch + self.loop.now

    def monotonic(self) -> float:
        return self.loop.now

    def sleep(self, seconds: float) -> None:
        self.loop.run_for(max(0.0, seconds))

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return self.loop.run_for(max(0.0, seconds), event.is_set)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run `callback(*args)` `delay` virtual seconds from now, in the driving thread."""
        return self.loop.call_later(delay, callback, *args)
