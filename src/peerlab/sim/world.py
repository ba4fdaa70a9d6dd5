"""The simulated world: its nodes and their lives, the network between them, virtual time.

A node has a slot for the whole run (name, address, ports, disk, clock skew, log buffers)
and a `Host` for each life: `start` builds the system's node on a new host, `kill` ends the
life at once and crashes its disk (what was not synced is lost), `stop` asks the node to
stop and keeps its whole disk (the process exited cleanly), `pause` holds everything meant
for it until `resume`. Every random choice comes from the run's seed: a node's life `n`
gets `derive_rng(seed, "sim-node", name, n)`.

The harness's requests (`request`) go straight to a node (no fault, no latency) and run the
simulation until the answer comes, or the timeout passes, in virtual seconds.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from peerlab.errors import PeerlabError
from peerlab.seed import derive_rng
from peerlab.sim.clock import VirtualClock
from peerlab.sim.disk import Blobs, Disk
from peerlab.sim.host import Host, NodeSlot
from peerlab.sim.network import Answer, Exchange, Network, Pace, Request

BACKLOG_LIMIT = 100_000  # what waits for a paused node at most (its socket buffers)


class Unreachable(PeerlabError):
    """The harness's request never reached the node (down, or refused)."""


class NoAnswer(PeerlabError):
    """The node did not answer the harness in time, or the connection broke."""


class _Collect:
    """The harness's receiver: the whole answer, or why there is none."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: Mapping[str, str] = {}
        self.body: list[bytes] = []
        self.problem: str | None = None
        self.finished = False

    def head(self, status: int, headers: Mapping[str, str]) -> None:
        self.status, self.headers = status, headers

    def data(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def end(self) -> None:
        self.finished = True

    def error(self, reason: str) -> None:
        self.problem, self.finished = reason, True


class World:
    """Every simulated node of one Environment, and what runs them."""

    def __init__(self, seed: int, clock: VirtualClock | None = None) -> None:
        self.seed = seed
        self.clock = clock or VirtualClock()
        self.loop = self.clock.loop
        self.blobs = Blobs()
        self.slots: dict[str, NodeSlot] = {}
        self._endpoints: dict[str, tuple[str, int]] = {}
        self.network = Network(self.loop, seed, self)
        self.on_exit: Callable[[str, int], None] | None = None
        self.dirty: dict[str, NodeSlot] = {}  # nodes with output not yet written
        self.loop.after.append(self.flush)
        self._classes: dict[str, type[Any]] = {}

    # ------------------------------------------------------------------ nodes

    def add(
        self,
        name: str,
        ip: str,
        ports: Mapping[str, int],
        stdout: Path | None = None,
        stderr: Path | None = None,
    ) -> NodeSlot:
        """A node's slot (kept if it exists: a node keeps its disk across starts)."""
        slot = self.slots.get(name)
        if slot is None:
            numbers = {number: port for port, number in ports.items()}
            slot = self.slots[name] = NodeSlot(name, ip, numbers, Disk(self.blobs))
            for number in numbers:
                self._endpoints[f"{ip}:{number}"] = (name, number)
        slot.stdout, slot.stderr = stdout, stderr
        return slot

    def start(self, name: str, entry: str, args: tuple[str, ...], env: Mapping[str, str]) -> None:
        """Start a new life of `name`: the system's node class `entry` ("module:Class"),
        built on a new host and started. PeerlabError when it fails to start."""
        slot = self.slots[name]
        if slot.host is not None:
            raise PeerlabError(f"simulated node {name} is already running")
        slot.lives += 1
        random = derive_rng(self.seed, "sim-node", name, slot.lives)
        host = Host(self, slot, slot.lives, args, env, random)
        slot.host, slot.paused = host, False
        try:
            slot.node = self._class(entry)(host)
            slot.node.start()
        except Exception as exc:
            host.error(traceback.format_exc())
            self._end(slot, 1, crash=False)
            raise PeerlabError(
                f"simulated node {name} failed to start: {exc}",
                hint=f"its traceback is in {slot.stderr}",
            ) from None
        finally:
            self.flush()

    def _class(self, entry: str) -> type[Any]:
        found = self._classes.get(entry)
        if found is None:
            module, _, attr = entry.partition(":")
            try:
                found = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise PeerlabError(
                    f"cannot load the simulated node class {entry!r}: {exc}",
                    hint="launch.sim in the manifest names a `module:Class` (docs/sim.md)",
                ) from None
            self._classes[entry] = found
        return found

    def kill(self, name: str) -> None:
        """End the node's life at once; its disk keeps only what it synced."""
        slot = self.slots[name]
        if slot.host is not None:
            self._end(slot, -9, crash=True)

    def stop(self, name: str) -> None:
        """Stop the node cleanly: it is told to stop, and its disk keeps everything."""
        slot = self.slots[name]
        host = slot.host
        if host is None:
            return
        self.resume(name)
        if slot.node is not None:
            host.run(slot.node.stop)
        self._end(slot, 0, crash=False)
        self.flush()

    def _end(self, slot: NodeSlot, code: int, *, crash: bool) -> None:
        host = slot.host
        if host is not None:
            host.alive = False
        slot.host, slot.node, slot.paused = None, None, False
        slot.backlog.clear()
        if crash:
            slot.disk.crash()
        else:
            slot.disk.sync_all()
        self.network.node_down(slot.name)
        if self.on_exit is not None:
            self.on_exit(slot.name, code)

    def pause(self, name: str) -> None:
        slot = self.slots[name]
        if slot.host is not None:
            slot.paused = True

    def resume(self, name: str) -> None:
        """Let a paused node go on: what waited for it reaches it now, in order."""
        slot = self.slots[name]
        if not slot.paused:
            return
        slot.paused = False
        backlog, slot.backlog = slot.backlog, []
        host = slot.host
        for callback, args in backlog:
            if host is None or not host.alive or slot.paused:
                break
            host.run(callback, *args)

    def skew(self, name: str, seconds: float) -> None:
        self.slots[name].skew = seconds

    # ------------------------------------------------------------------ what the network asks

    def resolve(self, address: str) -> tuple[str, str] | None:
        found = self._endpoints.get(address)
        return None if found is None else (found[0], str(found[1]))

    def running(self, node: str) -> bool:
        return self.slots[node].host is not None

    def ip_of(self, node: str) -> str:
        return self.slots[node].ip

    def deliver_datagram(self, node: str, port: str, data: bytes, source: str) -> None:
        slot = self.slots[node]
        host = slot.host
        if host is None:
            return
        receive = host.udp.get(int(port))
        if receive is None:
            return
        if slot.paused and len(slot.backlog) >= BACKLOG_LIMIT:
            return  # the socket buffer is full: the datagram is lost
        host.run(receive, data, source)

    def deliver_request(self, exchange: Exchange) -> None:
        slot = self.slots[exchange.dst]
        host = slot.host
        if host is None:
            exchange.fail("connection reset by peer")
            return
        host.run(self._serve, host, exchange)

    @staticmethod
    def _serve(host: Host, exchange: Exchange) -> None:
        handle = host.http.get(int(exchange.port))
        if handle is None:
            exchange.fail("connection refused")
            return

        def reply(
            status: int, headers: Mapping[str, str], body: bytes, pace: Pace | None = None
        ) -> None:
            exchange.reply(Answer(status, headers, body, pace))

        handle(exchange.request, exchange.peer, reply)

    # ------------------------------------------------------------------ the harness

    def request(
        self, name: str, port: int, request: Request, timeout: float, *, wait: bool = True
    ) -> Answer:
        """The harness asks node `name` on `port`; runs the simulation (when `wait`) until
        the answer, at most `timeout` virtual seconds. Unreachable when the node is down or
        nothing serves the port; NoAnswer when no answer comes in time."""
        slot = self.slots.get(name)
        if slot is None or slot.host is None:
            raise Unreachable(f"simulated node {name} is not running")
        collect = _Collect()
        exchange = self.network.open_to(None, name, str(port), request, collect)
        if wait:
            self.loop.run_for(timeout, lambda: collect.finished)
        else:
            self.flush()
        if not collect.finished:
            exchange.cancel()
            raise NoAnswer(
                f"{request.method} {request.path} on {name}: no answer within {timeout:g}s"
                + ("" if wait else " (it needs virtual time to pass)")
            )
        if collect.problem is not None:
            refused = "refused" in collect.problem
            raise (Unreachable if refused else NoAnswer)(
                f"{request.method} {request.path} on {name}: {collect.problem}"
            )
        return Answer(collect.status, collect.headers, b"".join(collect.body))

    # ------------------------------------------------------------------ output

    def flush(self) -> None:
        """Write what the nodes logged to their stdout and stderr files."""
        dirty, self.dirty = self.dirty, {}
        for slot in dirty.values():
            for lines, path, end in ((slot.out, slot.stdout, "\n"), (slot.err, slot.stderr, "")):
                if lines and path is not None:
                    with path.open("a", encoding="utf-8") as handle:
                        handle.write(end.join(lines) + end)
                    lines.clear()
