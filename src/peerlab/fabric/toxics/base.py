"""What every toxic is built from: the chunk it transforms, its per-connection stub, its base.

A toxic is a small dataclass whose fields are its API attributes, plus one transform per
protocol it supports:

- TCP: `pipe(stub, chunk)`, an async generator that yields what goes on down the chain. The
  chunks of one stream pass the chain one after the other, so a toxic that waits delays
  everything behind it, as on a real byte stream. An empty chunk is the end of the stream.
- UDP: `deliver(stub)`, the delays (seconds) after which each copy of a datagram is sent;
  an empty list drops it.

The stub holds what belongs to one connection (its random generator, counters, timers) and
lets the toxic wait, close or reset the connection. Waits end early when the toxic is
removed, and the toxic then lets its data through: removing a toxic never drops data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from peerlab.errors import UsageError


@dataclass(slots=True)
class Chunk:
    """Bytes read from one side of a connection; empty `data` marks the end of the stream."""

    data: bytes
    time: float  # time.monotonic() when it was read; toxics that delay it move it later


class Control(Protocol):
    """The connection a stub belongs to, as its toxics may end it."""

    def close(self) -> None: ...

    def reset(self) -> None: ...


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


class Stub:
    """One toxic's state on one stream of one connection (or UDP flow)."""

    def __init__(self, rng: random.Random, enabled: bool, control: Control | None = None) -> None:
        self.rng = rng
        self.enabled = enabled  # the toxicity draw for this connection
        self.removed = False
        self.state: dict[str, Any] = {}
        self._control = control
        self._loop = asyncio.get_running_loop()
        self._waiters: set[asyncio.Future[bool]] = set()
        self._timers: list[asyncio.TimerHandle] = []

    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, when: float) -> bool:
        """Wait until `now()` reaches `when` (may be infinite); False if the toxic was removed.

        Never wakes early: the loop's timers tick in milliseconds and may fire up to one
        early, so the wait goes on until the deadline has really passed.
        """
        while not self.removed:
            remaining = when - time.monotonic()
            if remaining <= 0:
                return True
            waiter: asyncio.Future[bool] = self._loop.create_future()
            timer = (
                self._loop.call_later(remaining, _resolve, waiter, True)
                if math.isfinite(remaining)
                else None
            )
            self._waiters.add(waiter)
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
                self._waiters.discard(waiter)
        return False

    async def sleep(self, seconds: float) -> bool:
        """Wait `seconds`; False if the toxic was removed meanwhile."""
        return await self.sleep_until(time.monotonic() + seconds)

    def later(self, seconds: float, callback: Callable[[], None]) -> None:
        """Run `callback` after `seconds` unless the toxic is removed or changed first."""
        self._timers.append(self._loop.call_later(seconds, callback))

    def close(self) -> None:
        """End the connection with a normal close (FIN) on both sides."""
        if self._control is not None:
            self._control.close()

    def reset(self) -> None:
        """End the connection abruptly (RST) on both sides."""
        if self._control is not None:
            self._control.reset()

    def detach(self) -> None:
        """The toxic's settings changed: drop its timers (it attaches again)."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def remove(self) -> None:
        """The toxic is gone from this stream: wake its waits so held data flows on."""
        self.removed = True
        self.detach()
        for waiter in list(self._waiters):
            _resolve(waiter, False)


@dataclass
class Toxic:
    """Base of every toxic. Attributes are numbers >= 0; `int` fields take whole numbers."""

    type: ClassVar[str]

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            whole = field.type == "int"
            number = isinstance(value, int if whole else (int, float))
            if isinstance(value, bool) or not number or not math.isfinite(value) or value < 0:
                kind = "a whole number" if whole else "a number"
                raise UsageError(
                    f"attribute {field.name!r} of toxic {self.type!r} is {value!r}",
                    field=field.name,
                    hint=f"it must be {kind} >= 0",
                )
        self.check()

    def check(self) -> None:
        """Rules between attributes, for toxics that have some."""

    def attributes(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def supports(cls, protocol: str) -> bool:
        """Whether the toxic has a transform for `protocol` ("tcp" or "udp")."""
        if protocol == "tcp":
            return cls.pipe is not Toxic.pipe
        return cls.deliver is not Toxic.deliver

    def attach(self, stub: Stub) -> None:
        """The toxic starts on a stream (a connection opened, or the toxic was added)."""

    def rate_cap(self) -> float | None:
        """TCP: the bytes per second it lets through at most; None if it does not cap them.

        With `hold_time`, it sizes how much a stream keeps in flight (see stream.py).
        """
        return None

    def hold_time(self) -> float:
        """TCP: the seconds it keeps data by design before passing it on (a latency)."""
        return 0.0

    def pipe(self, stub: Stub, chunk: Chunk) -> AsyncGenerator[Chunk, None]:
        """TCP: what `chunk` becomes, yielded in order (see the module docstring)."""
        raise NotImplementedError

    def deliver(self, stub: Stub) -> list[float]:
        """UDP: the delay of each copy of a datagram; [] drops it."""
        raise NotImplementedError


def check_percent(toxic: Toxic, percent: float) -> None:
    """Percent attributes are at most 100."""
    if percent > 100:
        raise UsageError(
            f"attribute 'percent' of toxic {toxic.type!r} is {percent}",
            field="percent",
            hint="a percentage is between 0 and 100",
        )
