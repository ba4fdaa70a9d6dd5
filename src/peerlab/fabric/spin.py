"""Adaptive busy polling: the proxies' loop keeps polling for a moment after it forwards
something, instead of going to sleep at once, when a CPU is idle anyway.

A round trip through a proxy wakes the proxy twice (the request comes in, the answer comes
back). On an idle machine, and most of all in a virtual machine, a process that sleeps in
`epoll_wait` gives its CPU back, and waking it again costs tens of microseconds: more than
the proxy's own work per message. So after each message forwarded straight through, the
loop polls its sockets without sleeping (a callback that schedules itself: the loop's
`epoll_wait` then has a zero timeout) until `window` seconds have passed with nothing to
forward; whatever arrives meanwhile is handled without a wake-up. This is haproxy's
`busy-polling`, bounded twice:

- in time: the loop sleeps again as soon as traffic pauses for `window`, so an idle network
  costs nothing and a message costs at most `window` of polling after it;
- by the machine: it spins only while at least `IDLE_CPUS` of the machine's CPUs have been
  idle (counting the time it spun itself as idle) over the last `CHECK` seconds, read from
  `/proc/stat`. On a busy machine every CPU is awake anyway, so a wake-up is cheap, and a
  spinning proxy would only take the CPU from the nodes: there it never spins. Without
  `/proc/stat` it never spins either.

The loop also places its thread by its traffic, at most once per `FOLLOW_GAP`, reading the
CPU a socket's bytes came in on (`SO_INCOMING_CPU`: for loopback and veth, the sender's CPU):
- a message (`Spinner.follow`, only while it may spin): the thread moves to that CPU, awake
  as the sender sends. Each hop of a conversation then wakes a process on a CPU that is
  awake, instead of making the kernel wake a sleeping one for it, which on a virtual
  machine costs about as much as the proxy's whole work per message;
- a bulk stream (`Spinner.sidestep`, busy machine or not): the thread moves off that CPU,
  if it runs there. The kernel likes to wake a reader where its writer runs; for a stream
  that makes the sender and the relay take turns on one CPU instead of copying in parallel.
A move pins the thread (to that CPU, or to all its CPUs but that one) and at once gives it
back all the CPUs it had: the thread stays where it was moved until the scheduler has a
reason to move it, and nothing it starts later (a thread, a node's process) inherits a pin.
Only CPUs the thread may already use are chosen, so a process limited by `taskset` or a
cgroup stays within its limit; with one CPU it never moves.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

WINDOW = 200e-6  # seconds of polling after the last message forwarded
CHECK = 0.25  # seconds between two readings of the machine's idle time
IDLE_CPUS = 0.75  # spin only while at least this many CPUs' worth of time was idle
STAT = "/proc/stat"
FOLLOW_GAP = 1e-3  # seconds between two moves of the loop's thread (to or off a CPU)
SO_INCOMING_CPU = getattr(socket, "SO_INCOMING_CPU", 49)  # Linux >= 3.19


def _unpin(cpus: set[int]) -> None:
    """Let this thread run on `cpus` again (on all the CPUs its cgroup allows, should some of
    those be gone meanwhile: the kernel keeps a mask within the cgroup's CPUs)."""
    try:
        os.sched_setaffinity(0, cpus)
    except OSError:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))


def _idle_ticks() -> tuple[int, int] | None:
    """(idle, total) clock ticks of all CPUs since boot; None when unknown."""
    try:
        with open(STAT, "rb") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != b"cpu":
        return None
    ticks = [int(value) for value in fields[1:9]]  # user .. steal; guests are in user
    return ticks[3] + ticks[4], sum(ticks)  # idle + iowait


class Spinner:
    """Keeps one event loop polling for `window` seconds after each `poke()`, while the
    machine has a CPU to spare."""

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self.cpus = os.cpu_count() or 1
        self.spins = 0  # spins started (each ends when traffic pauses)
        self.passes = 0  # polls made while spinning
        self.allowed = False  # the last reading found a CPU to spare
        self._last = 0.0  # when something was last forwarded
        self._began = 0.0  # when the running spin began
        self._loop: asyncio.AbstractEventLoop | None = None  # set while spinning
        self._spun = 0.0  # seconds spent spinning since the last reading
        self._checked = -CHECK  # when the machine was last read
        self.follows = 0  # moves of the loop's thread to its messages' CPU
        self.sidesteps = 0  # ... and off its bulk streams' CPU
        self._followed = -FOLLOW_GAP  # when the traffic's CPU was last looked at
        self._ticks = _idle_ticks() if window > 0 else None

    @property
    def last_poke(self) -> float:
        """When something was last forwarded, on `time.perf_counter`'s clock."""
        return self._last

    @property
    def spinning(self) -> bool:
        return self._loop is not None

    def poke(self, loop: asyncio.AbstractEventLoop) -> None:
        """Something was just forwarded on `loop`: keep it polling for a while."""
        now = time.perf_counter()
        self._last = now
        if self._loop is not None:
            return
        if now - self._checked >= CHECK:
            self._read(now)
        if self.allowed:
            self._loop = loop
            self._began = now
            self.spins += 1
            loop.call_soon(self._spin)

    def follow(self, source: socket.socket) -> None:
        """A message is about to be read from `source` on this loop: while the machine has
        a CPU to spare, move this thread to the CPU it came in on (at most once per
        `FOLLOW_GAP`), leaving the thread free to run on all the CPUs it had before."""
        if self.allowed:
            self._place(source, bulk=False)

    def sidestep(self, source: socket.socket) -> None:
        """A bulk stream is about to be read from `source` on this loop: move this thread
        off the CPU its bytes come in on, if it runs there (at most once per `FOLLOW_GAP`),
        so the sender and the relay copy in parallel instead of taking turns on one CPU."""
        self._place(source, bulk=True)

    def _place(self, source: socket.socket, bulk: bool) -> None:
        now = time.perf_counter()
        if now - self._followed < FOLLOW_GAP:
            return
        self._followed = now
        try:
            cpu = source.getsockopt(socket.SOL_SOCKET, SO_INCOMING_CPU)
            cpus = os.sched_getaffinity(0)
        except OSError:
            return
        if cpu not in cpus or len(cpus) < 2:
            return
        try:
            # Moves the thread before returning, unless it already runs within the mask.
            os.sched_setaffinity(0, cpus - {cpu} if bulk else {cpu})
        except OSError:
            return
        if bulk:
            self.sidesteps += 1
        else:
            self.follows += 1
        _unpin(cpus)

    def _spin(self) -> None:
        now = time.perf_counter()
        self.passes += 1
        if now - self._last < self.window and now - self._checked < CHECK:
            assert self._loop is not None
            self._loop.call_soon(self._spin)
            return
        self._loop = None
        self._spun += now - self._began

    def _read(self, now: float) -> None:
        """Whether the machine had `IDLE_CPUS` idle since the last reading (our spinning
        counted as idle: it would stop if asked)."""
        ticks = _idle_ticks() if self._ticks is not None else None
        elapsed = now - self._checked
        if ticks is None or self._ticks is None or ticks[1] <= self._ticks[1]:
            self.allowed = False
        else:
            idle, total = ticks[0] - self._ticks[0], ticks[1] - self._ticks[1]
            spare = idle / total * self.cpus + min(self._spun / elapsed, 1.0)
            self.allowed = spare >= IDLE_CPUS
        self._ticks, self._checked, self._spun = ticks, now, 0.0
