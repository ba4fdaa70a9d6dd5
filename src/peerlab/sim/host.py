"""What a simulated node gets from the simulator: its `Host`, one per life of the node.

A system joins the simulator with a class (named by its manifest's `launch.sim`) built as
`Node(host)` and told `start()` and, on a clean stop, `stop()`; everything it does goes
through the host, which is how the simulator owns its time, randomness and I/O:

    host.args, host.env        its launch arguments and environment (as a process gets them)
    host.name, host.address    its name and its address (what `{address}` renders to)
    host.now(), host.wall()    virtual monotonic seconds; its wall clock (skewed per node)
    host.random                a random.Random seeded from the run's seed, the node and life
    host.call_later(s, f, *a)  a timer (cancel() it); nothing else wakes a node up
    host.disk                  its files (`peerlab.sim.disk.Disk`): sync what must survive a crash
    host.log(line), host.error(text)    its stdout and stderr
    host.listen_udp(port, receive)      receive(data, source address) for datagrams to port
    host.send_udp(port, to, data)       a datagram from its port to "ip:port"
    host.serve_http(port, handle)       handle(request, peer, reply) for requests to port
                                        (request.method, .path, .headers, .body); call
                                        reply(status, headers, body) once, now or later
                                        (pace=(fast, piece, every): a body that trickles)
    host.request(to, method, path, headers, body, receiver)
                                        an exchange with "ip:port"; the receiver hears the
                                        head, the body's pieces, the end or an error

While the node is paused, everything meant for it (timers, datagrams, requests, answers)
waits and reaches it, in order, when it resumes; once its life ends, nothing does. An
exception raised in its code is written to its stderr and the node goes on, as an event
loop's exception handler would.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any, Protocol

from peerlab.sim.clock import VirtualClock
from peerlab.sim.disk import Disk
from peerlab.sim.loop import EventLoop, Timer
from peerlab.sim.network import Exchange, Network, Receiver, Request

Reply = Callable[[int, Mapping[str, str], bytes], None]
"""Send the answer: status, headers, body."""
Handler = Callable[[Request, str | None, Reply], None]
"""Serve a request from a peer's address (None: the test harness)."""


class SimNode(Protocol):
    """What a system's simulated node is to the simulator."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(eq=False)
class NodeSlot:
    """A node for the whole run, across its lives: its address, ports (number -> name),
    disk, clock skew, current life, and what it wrote that is not in its files yet."""

    name: str
    ip: str
    ports: dict[int, str]
    disk: Disk
    stdout: Path | None = None
    stderr: Path | None = None
    skew: float = 0.0
    host: Host | None = None
    node: SimNode | None = None
    lives: int = 0
    paused: bool = False
    backlog: list[tuple[Callable[..., Any], tuple[Any, ...]]] = field(default_factory=list)
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)


class Surroundings(Protocol):
    """What a host reaches of its world."""

    loop: EventLoop
    clock: VirtualClock
    network: Network
    dirty: dict[str, NodeSlot]


class Host:
    """One life of one simulated node."""

    def __init__(
        self,
        world: Surroundings,
        slot: NodeSlot,
        life: int,
        args: tuple[str, ...],
        env: Mapping[str, str],
        random: Random,
    ) -> None:
        self._world = world
        self._slot = slot
        self.life = life
        self.name = slot.name
        self.address = slot.ip
        self.args = args
        self.env = dict(env)
        self.random = random
        self.disk: Disk = slot.disk
        self.alive = True
        self.udp: dict[int, Callable[[bytes, str], None]] = {}
        self.http: dict[int, Handler] = {}

    # ------------------------------------------------------------------ time

    def now(self) -> float:
        return self._world.loop.now

    def wall(self) -> float:
        return self._world.clock.time() + self._slot.skew

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        return self._world.loop.call_later(delay, self.run, callback, *args)

    # ------------------------------------------------------------------ output

    def log(self, line: str) -> None:
        self._slot.out.append(line)
        self._world.dirty[self.name] = self._slot

    def error(self, text: str) -> None:
        self._slot.err.append(text)
        self._world.dirty[self.name] = self._slot

    # ------------------------------------------------------------------ network

    def listen_udp(self, port: int, receive: Callable[[bytes, str], None]) -> None:
        self.udp[port] = receive

    def send_udp(self, port: int, to: str, data: bytes) -> None:
        if self.alive:
            source = f"{self.address}:{port}"
            self._world.network.send_datagram(self.name, source, to, data)

    def serve_http(self, port: int, handle: Handler) -> None:
        self.http[port] = handle

    def request(
        self,
        to: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        receiver: Receiver,
    ) -> Exchange | None:
        """Open an exchange with `to`; None when nothing listens there (the receiver hears
        that it was refused)."""
        request = Request(method, path, dict(headers), body)
        return self._world.network.open(self.name, to, request, _Gated(self, receiver))

    # ------------------------------------------------------------------ the gate

    def run(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run node code now: later if the node is paused, never if its life ended."""
        if not self.alive:
            return
        if self._slot.paused:
            self._slot.backlog.append((callback, args))
            return
        try:
            callback(*args)
        except Exception:
            self.error(traceback.format_exc())


class _Gated:
    """A node's receiver behind its gate: answers wait while it is paused."""

    def __init__(self, host: Host, receiver: Receiver) -> None:
        self.host = host
        self.receiver = receiver

    def head(self, status: int, headers: Mapping[str, str]) -> None:
        self.host.run(self.receiver.head, status, headers)

    def data(self, chunk: bytes) -> None:
        self.host.run(self.receiver.data, chunk)

    def end(self) -> None:
        self.host.run(self.receiver.end)

    def error(self, reason: str) -> None:
        self.host.run(self.receiver.error, reason)
