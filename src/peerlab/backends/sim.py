"""The sim backend: nodes are instances of their system's sans-IO core in this process, on
simulated links, on virtual time (`peerlab.sim`).

It brings its own world: the Environment's clock (a `VirtualClock`: waits run the
simulation), its fault plane (simulated links under the fabric's fault values) and the
harness's transport (requests delivered in process). A system runs here when its manifest
names its simulated node class (`launch.sim`); docs/sim.md says what the simulation tests,
what it cannot see, and how a system joins it.

Control maps to the simulated node's life: kill ends it at once and crashes its disk (what
was not synced is lost), terminate stops it cleanly (its disk is kept whole), pause holds
everything meant for it, resume lets it go on; clock skew moves its wall clock at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from peerlab.backends.base import Action, Addresses, BackendContext, Capabilities, Launch
from peerlab.errors import PeerlabError, UsageError
from peerlab.node import NodeHandle
from peerlab.sim.clock import VirtualClock
from peerlab.sim.network import Request
from peerlab.sim.plane import SimPlane
from peerlab.sim.world import World
from peerlab.transport import HttpAnswer, HttpRequest

if TYPE_CHECKING:
    import aiohttp

    from peerlab.backends.owners import Owner
    from peerlab.backends.owners import Request as Owned
    from peerlab.fabric.plane import FaultPlane
    from peerlab.node import Node

# Simulated addresses: labels in the range peerlab's networks use, never on a real wire.
FIRST_ADDRESS = (198 << 24) | (18 << 16)


def _address(index: int) -> str:
    value = FIRST_ADDRESS + index + 1
    return ".".join(str((value >> shift) & 255) for shift in (24, 16, 8, 0))


class SimTransport:
    """The harness's requests, delivered to simulated nodes in this process."""

    def __init__(self, world: World) -> None:
        self.world = world

    def _call(
        self, node: Node, port: str, request: HttpRequest, timeout: float, wait: bool
    ) -> HttpAnswer:
        sent = Request(request.method, request.path, dict(request.headers), request.body or b"")
        number = node.system.ports[port].port
        answer = self.world.request(node.name, number, sent, timeout, wait=wait)
        return HttpAnswer(answer.status, dict(answer.headers), answer.body)

    def request(self, node: Node, port: str, request: HttpRequest, timeout: float) -> HttpAnswer:
        return self._call(node, port, request, timeout, True)

    async def fetch(
        self, node: Node, port: str, request: HttpRequest, timeout: float
    ) -> HttpAnswer:
        return self._call(node, port, request, timeout, False)


class SimBackend:
    """Simulated nodes of systems with a sans-IO core, on virtual time."""

    name = "sim"
    # Its nodes' files are logs, thousands of them, written and removed within a run: its
    # Environments keep their workdir in memory (peerlab.home.scratch_dir).
    scratch_in_memory = True
    capabilities = Capabilities(
        pause=True, clock_skew=True, exact_source=True, own_ports=True, virtual_time=True
    )

    @classmethod
    def make_clock(cls, seed: int) -> VirtualClock:
        return VirtualClock()

    def __init__(self, context: BackendContext) -> None:
        if not isinstance(context.clock, VirtualClock):
            raise UsageError(
                "the sim backend runs on its own virtual clock",
                field="clock",
                hint="leave Environment(clock=...) unset with backend='sim'",
            )
        if context.adopt is not None:
            raise UsageError(
                "a simulated network lives in the process that made it: it cannot be adopted",
                field="backend",
            )
        self.context = context
        self.world = World(context.seed, context.clock)
        self.world.on_exit = self._exited
        self._exits: dict[str, asyncio.Future[int | None]] = {}
        context.reaper.add_callback("simulated output", self.world.flush)

    # ------------------------------------------------------------------ the world it brings

    def fault_plane(self) -> FaultPlane:
        return SimPlane(self.world, self.context.history)

    def transport(
        self, run: Callable[..., Any], session: Callable[[], aiohttp.ClientSession]
    ) -> SimTransport:
        return SimTransport(self.world)

    # ------------------------------------------------------------------ nodes

    def addresses(self, index: int) -> Addresses:
        address = _address(index)
        return Addresses(address, address)

    def prepare(self, node: Node, launch: Launch) -> None:
        if launch.sim is None:
            raise UsageError(
                f"system {node.system.name!r} has no simulated node, so it cannot run on the "
                "sim backend",
                field="launch.sim",
                hint='name its sans-IO node class in the manifest: [launch] sim = "pkg.sim:Node" '
                "(docs/sim.md), or choose another backend",
            )
        node.stdout_path.parent.mkdir(parents=True, exist_ok=True)
        ports = {port.name: port.port for port in node.system.ports.values()}
        slot = self.world.add(
            node.name, node.bind_address, ports, node.stdout_path, node.stderr_path
        )
        for name, text in launch.files.items():
            if not slot.disk.exists(name):
                slot.disk.write(name, text.encode(), sync=True)

    async def expose(self, node: Node, plane: FaultPlane) -> None:
        for port in node.system.ports.values():
            if port.proxied:
                address = (node.address, port.port)
                await plane.expose(node.name, port.name, port.protocol, address, address)

    async def start(self, node: Node, launch: Launch) -> NodeHandle:
        assert launch.sim is not None
        # A process inherits its parent's environment, then the launch's variables.
        env = {**os.environ, **launch.env}
        self.world.skew(node.name, launch.clock_offset or 0.0)
        exited: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._exits[node.name] = exited
        self.world.start(node.name, launch.sim, tuple(launch.args), env)
        slot = self.world.slots[node.name]
        return NodeHandle(f"sim:{node.name}:{slot.lives}", exited, None, {"node": node.name})

    def _exited(self, name: str, code: int) -> None:
        exited = self._exits.pop(name, None)
        if exited is not None and not exited.done():
            exited.get_loop().call_soon_threadsafe(_resolve, exited, code)

    def act(self, handle: NodeHandle, action: Action, sig: signal.Signals | None = None) -> None:
        name = str(handle.state["node"])
        {
            "kill": self.world.kill,
            "terminate": self.world.stop,
            "pause": self.world.pause,
            "resume": self.world.resume,
        }[action](name)

    def set_clock(self, node: Node, seconds: float) -> bool:
        self.world.skew(node.name, seconds)
        return True

    def logs(self, node: Node, lines: int, stream: Literal["stdout", "stderr"]) -> list[str]:
        self.world.flush()
        return node.logs(lines, stream)

    def resources(self, handle: NodeHandle) -> dict[str, Any]:
        slot = self.world.slots[str(handle.state["node"])]
        return {"disk_kb": round(slot.disk.used() / 1000, 1), "lives": slot.lives}

    def identify(self, requests: Sequence[Owned]) -> list[Owner | None]:
        return [None] * len(requests)  # no real connection ever reaches a simulated node

    def export_data(self, node: Node, target: Path) -> None:
        disk = self.world.slots[node.name].disk
        target.mkdir(parents=True, exist_ok=True)
        for path in disk.paths():
            out = target / path
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(disk.read(path) or b"")

    def import_data(self, node: Node, source: Path) -> None:
        slot = self.world.slots[node.name]
        for path in list(slot.disk.paths()):
            slot.disk.delete(path, sync=True)
        for file in sorted(source.rglob("*")) if source.exists() else []:
            if file.is_file():
                slot.disk.write(file.relative_to(source).as_posix(), file.read_bytes(), sync=True)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "seed": self.context.seed, "first_address": _address(0)}

    def detach(self) -> dict[str, Any]:
        raise UsageError(
            "a simulated network lives in this process: it cannot be left running",
            field="--peerlab-keep",
            hint="the run replays from its seed: `pytest ... --peerlab-seed N`",
        )

    async def watch(self, saved: dict[str, Any]) -> NodeHandle:
        raise PeerlabError("a simulated node cannot be adopted")

    async def close(self, detach: bool = False) -> None:
        for name in list(self.world.slots):
            self.world.kill(name)
        self.world.flush()


def _resolve(future: asyncio.Future[int | None], code: int) -> None:
    if not future.done():
        future.set_result(code)
