"""The Environment: one running test network, composed of its parts.

Nodes and their verbs (`peerlab.control`), where they run (a backend, `peerlab.backends`),
the network between them (a fault plane behind `env.net`), the systems and their adapters,
the history, the clock, the RPC namespaces (`peerlab.services`) and the reaper that cleans
up everything they make. A context manager; the CLI's supervisor and the pytest plugin
drive this same object.

    with Environment(seed=7) as env:
        env.start("syncpeer", peers=3)
        env.net.partition([["A"], ["B", "C"]])
        ...
"""

from __future__ import annotations

import contextlib
import os
import resource
import tempfile
import uuid
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from peerlab import backends
from peerlab.aio import LoopThread
from peerlab.artifacts import save_artifacts
from peerlab.backends.base import BackendContext
from peerlab.backends.owners import Owner, Request
from peerlab.clock import Clock
from peerlab.control import NodeControl
from peerlab.fabric import Network
from peerlab.history import History
from peerlab.manifest import SystemSpec
from peerlab.names import check_name, child
from peerlab.node import Node, NodeState, node_name
from peerlab.reaper import Reaper, sweep
from peerlab.rpc import rpc
from peerlab.seed import new_seed
from peerlab.services import Services
from peerlab.systems import Systems
from peerlab.systems.base import Adapter
from peerlab.wait import wait_until

T = TypeVar("T")

__all__ = ["Environment", "node_name"]


def _raise_file_limit() -> None:
    """Lift the soft limit on open files to the hard one: a thousand nodes behind the
    fabric need a few thousand sockets in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Environment(NodeControl):
    """A running network of nodes. Every resource it makes is registered with its reaper."""

    def __init__(
        self,
        name: str | None = None,
        *,
        seed: int | None = None,
        backend: str = backends.DEFAULT,
        artifacts: Path | str | None = None,
        fabric: bool = True,
        workdir: Path | str | None = None,
        clock: Clock | None = None,
        adopt: dict[str, Any] | None = None,
    ) -> None:
        backends.check(backend)
        if name is not None:
            check_name(name, "environment", "name", "default")
        backends.enter(backend)  # before this process starts a thread
        sweep()
        _raise_file_limit()
        self.id = f"{name or 'env'}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.name = name or "default"
        self.seed = new_seed() if seed is None else int(seed)
        self.artifacts = Path(artifacts) if artifacts is not None else None
        # A backend that simulates the world brings its own (virtual) time.
        clock = backends.clock(backend, self.seed) if clock is None else clock
        self.clock = clock
        self.reaper = Reaper(self.id)
        self.started_at = clock.time()
        self._closed = False
        try:
            if workdir is None:
                base = backends.scratch(backend) / "envs"
                base.mkdir(exist_ok=True)
                self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=base))
                self.reaper.add_dir(self.workdir)
            else:
                self.workdir = Path(workdir)
                self.workdir.mkdir(parents=True, exist_ok=True)
            self.loop = LoopThread(f"peerlab-{self.name}")
            self.reaper.add_callback("event loop", self.loop.close)
            self.history = History(self.workdir / "history.jsonl", clock)
            self.reaper.add_callback("history", self.history.close)
            self._http: aiohttp.ClientSession | None = None
            self.registry = Systems(self)
            context = BackendContext(
                self.id,
                self.workdir,
                self.reaper,
                self.history,
                clock,
                self.seed,
                fabric,
                lambda: self.nodes,
                adopt,
            )
            chosen = backends.create(backend, context)
            self.reaper.add_callback("backend", lambda: self.run(chosen.close(), 30))
            plane = backends.fault_plane(chosen, fabric, self.seed, self.history, self.identify)
            self.reaper.add_callback("fabric", lambda: self.run(plane.close(), 15))
            net = Network(plane, self.loop.run, lambda: list(self.nodes))
            self.transport = backends.transport(chosen, self.run, self.http_session)
            NodeControl.__init__(
                self,
                backend=chosen,
                net=net,
                registry=self.registry,
                history=self.history,
                run=self.run,
                transport=self.transport,
                clock=clock,
                workdir_nodes=lambda node: child(self.workdir / "nodes", node, "peer", "name"),
                seed=self.seed,
            )
            self.services = Services(self, self.started_at)
        except BaseException:
            self.reaper.close()
            raise

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> Environment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0, what: str = "") -> T:
        """Run a coroutine on the environment's loop with a deadline."""
        return self.loop.run(coro, timeout, what=what)

    def close(self) -> None:
        """Stop every node and release every resource. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.stop_all()
        self.reaper.close()

    def handover(self) -> dict[str, Any]:
        """Leave the nodes running for another process to `adopt` (used by --peerlab-keep):
        the backend lets go of them, this Environment releases everything else."""
        state = {
            "name": self.name,
            "seed": self.seed,
            "workdir": str(self.workdir),
            "fabric": self.net.enabled,
            "backend": self.backend.name,
            "backend_state": self.backend.detach(),
            "systems": {name: str(spec.source) for name, spec in self.systems.items()},
            "nodes": [node.record().to_json() for node in self.nodes.values()],
            "faults": self.net.export(),
            "node_env": self.node_env,
            "clock_skews": self.clock_skews,
            "versions": self.versions,
        }
        self._closed = True
        self.run(self.backend.close(detach=True), 15)
        self.reaper.keep_dir(self.workdir)
        self.reaper.close()
        return state

    # ----------------------------------------------------------------- systems

    @property
    def systems(self) -> dict[str, SystemSpec]:
        return self.registry.specs

    @property
    def adapters(self) -> dict[str, Adapter]:
        return self.registry.adapters

    def system(self, name: str | SystemSpec) -> SystemSpec:
        """The system `name` (built-in name, manifest path or spec), loaded for this run."""
        return self.registry.add(name)

    def add_node(
        self,
        system: str | SystemSpec | None = None,
        name: str | None = None,
        role: str | None = None,
        wait: bool = True,
    ) -> Node:
        spec = self.system(system) if system else self.registry.get(None)
        return self.start(spec, [name] if name else 1, role=role, wait=wait)[0]

    def adapter(self, system: str | None = None) -> Adapter:
        return self.registry.adapter(system)

    def client(self, name: str) -> Any:
        node = self.node(name)
        return self.adapter(node.system.name).client(node)

    def http_session(self) -> aiohttp.ClientSession:
        """The shared session, for code already running on the loop."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
            session = self._http
            self.reaper.add_callback("http client", lambda: self.run(session.close(), 5))
        return self._http

    # ----------------------------------------------------------------- nodes

    def __getitem__(self, name: str) -> Node:
        return self.node(name)

    def live_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.state == NodeState.RUNNING]

    def identify(self, requests: Sequence[Request]) -> list[Owner | None]:
        """For each (protocol, source, destination) of a connection or datagram that reached
        a proxy at `destination`: who holds the source socket, a node or a process that is no
        node (`Owner(None)`), or None when no live process does (the fabric then refuses it).
        The fabric asks for sources that are no node's bind address; the backend knows."""
        return self.backend.identify(requests)

    def wait_until(
        self,
        condition: Callable[[], T],
        timeout: float = 10.0,
        *,
        what: str = "",
        describe: Callable[[], str] | None = None,
    ) -> T:
        return wait_until(
            condition, timeout, what=what or "condition", describe=describe, clock=self.clock
        )

    # ----------------------------------------------------------------- records and status

    @rpc
    def status(self) -> dict[str, Any]:
        """The network: its name, seed, backend, systems, nodes and faults."""
        return {
            "name": self.name,
            "id": self.id,
            "seed": self.seed,
            "backend": self.backend.name,
            "workdir": str(self.workdir),
            "uptime_s": round(self.clock.time() - self.started_at, 1),
            "systems": list(self.systems),
            "byzantine": {
                name: list(adapter.byzantine.modes)
                for name, adapter in self.adapters.items()
                if adapter.byzantine is not None
            },
            "nodes": self.peers(),
            "net": self.net.show() if self.net.enabled else None,
        }

    def save_artifacts(self, dest: Path | None = None, *, snapshot: bool = True) -> Path:
        """Copy node logs, the history and (optionally) each node's data dir to `dest`."""
        target = Path(dest or self.artifacts or Path("peerlab-results") / self.name)
        return save_artifacts(self, target, snapshot=snapshot)
