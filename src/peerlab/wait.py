"""Waiting for a condition with a deadline, and saying what was waited for when it fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from peerlab.clock import REAL_CLOCK, Clock
from peerlab.errors import WaitTimeout

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float = 10.0,
    *,
    what: str = "condition",
    interval: float = 0.05,
    describe: Callable[[], str] | None = None,
    clock: Clock = REAL_CLOCK,
) -> T:
    """Poll `condition` until it returns a truthy value (returned) or `timeout` passes.

    Exceptions raised by `condition` count as "not yet" (a node may be restarting); the last
    one is reported if time runs out. `describe` tells what was last seen. On a virtual
    `clock`, the polls are virtual time too: the simulation runs between them.
    """
    deadline = clock.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = condition()
            if result:
                return result
            last_error = None
        except Exception as exc:
            last_error = exc
        if clock.monotonic() >= deadline:
            seen = describe() if describe else (f"last error: {last_error}" if last_error else "")
            raise WaitTimeout(f"waited {timeout:g}s for {what}" + (f"; {seen}" if seen else ""))
        clock.sleep(interval)
