"""The simulator's event loop: virtual time and the timers that run on it.

Time is a float of virtual seconds that moves only when the loop runs: it jumps to the next
timer when nothing is due, so a simulated minute of idle nodes costs nothing. Timers fire in
the order (time, when they were set): the same timers set in the same order always fire in
the same order, which is what makes a run replay bit for bit. The loop runs only when
someone waits (`run_until`), in the waiting thread, one waiting thread at a time.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
from collections.abc import Callable
from typing import Any

from peerlab.errors import PeerlabError


class Timer:
    """A callback due at `when`; `cancel()` keeps it from running."""

    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class EventLoop:
    """Virtual time and its timers. `events` counts the callbacks run so far."""

    def __init__(self) -> None:
        self.now = 0.0
        self.events = 0
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self.lock = threading.RLock()  # held by the thread that runs the loop
        self.after: list[Callable[[], None]] = []  # called whenever a run ends

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run `callback(*args)` at virtual time `when` (now, if that has passed)."""
        if when != when:
            raise ValueError("a timer at NaN")
        if when < self.now:
            when = self.now
        timer = Timer(when, callback, args)
        heapq.heappush(self._heap, (when, next(self._order), timer))
        return timer

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run `callback(*args)` `delay` seconds from now (now, if it is not positive)."""
        return self.call_at(self.now + delay if delay > 0.0 else self.now, callback, *args)

    def next_time(self) -> float | None:
        """When the next live timer is due (None: none is set)."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_until(self, deadline: float, until: Callable[[], bool] | None = None) -> bool:
        """Run the timers due up to `deadline` (virtual seconds), stopping early once
        `until()` holds (checked after each timer); then the time is `deadline` unless it
        stopped early. Returns whether `until` held (False without one)."""
        with self.lock:
            try:
                return self._run(deadline, until)
            finally:
                for hook in self.after:
                    hook()

    def _run(self, deadline: float, until: Callable[[], bool] | None) -> bool:
        if until is not None and until():
            return True
        heap = self._heap
        pop = heapq.heappop
        while heap:
            when, _, timer = heap[0]
            if when > deadline:
                break
            pop(heap)
            if timer.cancelled:
                continue
            self.now = when
            self.events += 1
            timer.callback(*timer.args)
            if until is not None and until():
                return True
        if math.isfinite(deadline):
            self.now = max(self.now, deadline)
        return until() if until is not None else False

    def run_for(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        if seconds < 0 or math.isnan(seconds):
            raise PeerlabError(f"cannot run the simulation for {seconds} seconds")
        return self.run_until(self.now + seconds, until)
