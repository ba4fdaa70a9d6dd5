"""The Environment: one running test network (nodes + fabric + seed + artifacts + reaper).

It is a context manager; the CLI's supervisor and the pytest plugin drive this same object.

    with Environment(seed=7) as env:
        env.start("syncpeer", peers=3)
        env.net.partition([["A"], ["B", "C"]])
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import string
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import psutil

from peerlab import log
from peerlab.addresses import AddressBlock
from peerlab.aio import LoopThread
from peerlab.backends.local import LocalBackend, ProcessSpec
from peerlab.backends.owners import Owner, Request, SocketOwners
from peerlab.errors import PeerlabError, UsageError
from peerlab.history import History
from peerlab.manifest import SystemSpec, node_fields, node_files, render
from peerlab.node import Node
from peerlab.reaper import Reaper, runtime_dir, sweep
from peerlab.rpc import rpc
from peerlab.seed import new_seed
from peerlab.systems import find_system, load_adapter
from peerlab.wait import wait_until

T = TypeVar("T")

# Nodes being started (spawned, not yet ready) at once: beyond this, forks and readiness
# probes only compete for the CPU with the nodes that are starting.
START_CONCURRENCY = 32


def _raise_file_limit() -> None:
    """Lift the soft limit on open files to the hard one: a thousand nodes behind the
    fabric need a few thousand sockets in this process."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def node_name(index: int) -> str:
    """A, B, ..., Z, AA, AB, ...: short names that read well in commands and logs."""
    letters = string.ascii_uppercase
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = letters[rest] + name
    return name


class Environment:
    """A running network of nodes. Every resource it makes is registered with its reaper."""

    def __init__(
        self,
        name: str | None = None,
        *,
        seed: int | None = None,
        artifacts: Path | str | None = None,
        fabric: bool = True,
        workdir: Path | str | None = None,
        address_block: int | None = None,
    ) -> None:
        sweep()
        _raise_file_limit()
        self.id = f"{name or 'env'}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.name = name or "default"
        self.seed = new_seed() if seed is None else int(seed)
        self.artifacts = Path(artifacts) if artifacts is not None else None
        self.reaper = Reaper(self.id)
        self._closed = False
        try:
            if workdir is None:
                base = runtime_dir() / "envs"
                base.mkdir(exist_ok=True)
                self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=base))
                self.reaper.add_dir(self.workdir)
            else:
                self.workdir = Path(workdir)
                self.workdir.mkdir(parents=True, exist_ok=True)
            self.addresses = AddressBlock.lease(address_block, wait=10)
            self.reaper.add_callback("address lease", self.addresses.release)
            self.loop = LoopThread(f"peerlab-{self.name}")
            self.reaper.add_callback("event loop", self.loop.close)
            self.history = History(self.workdir / "history.jsonl")
            self.reaper.add_callback("history", self.history.close)
            self.backend = LocalBackend(self.reaper)
            self.reaper.add_callback("launcher", lambda: self.loop.run(self.backend.close(), 15))
            self._http: aiohttp.ClientSession | None = None
            self.nodes: dict[str, Node] = {}
            self.systems: dict[str, SystemSpec] = {}
            self.adapters: dict[str, Any] = {}
            # Per node, applied whenever it (re)starts: extra environment variables, and a
            # clock offset in seconds (nodes named here run under libfaketime; `skew`).
            self.node_env: dict[str, dict[str, str]] = {}
            self.clock_skews: dict[str, float] = {}
            self._faketime_nodes: set[str] = set()
            self._next_index = 0
            self.started_at = time.time()
            self.fabric: Any = None
            self.net: Any = None
            if fabric:
                self._start_fabric()
        except BaseException:
            self.reaper.close()
            raise

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> Environment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_fabric(self) -> None:
        from peerlab.fabric import Fabric, Network

        self.owners = SocketOwners(self._node_roots)
        self.reaper.add_callback("socket owners", self.owners.close)
        self.fabric = Fabric(self.seed, self.history, self.identify)
        self.net = Network(self.fabric, self._run_with_deadline, lambda: list(self.nodes))
        self.reaper.add_callback("fabric", lambda: self.loop.run(self.fabric.close(), 15))

    def _run_with_deadline(self, coro: Any, timeout: float) -> Any:
        return self.loop.run(coro, timeout)

    def run(self, coro: Any, timeout: float = 30.0, what: str = "") -> Any:
        """Run a coroutine on the environment's loop with a deadline."""
        return self.loop.run(coro, timeout, what=what)

    def close(self) -> None:
        """Stop every node and release every resource. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._stop_all(graceful=False)
        self.reaper.close()

    def handover(self) -> dict[str, Any]:
        """Leave the nodes running for another process to `adopt` (used by --peerlab-keep).

        The launcher lets go of its nodes; this Environment then releases everything else
        (proxies, loop, address lease) and returns what the adopter needs.
        """
        state = {
            "name": self.name,
            "seed": self.seed,
            "workdir": str(self.workdir),
            "fabric": self.fabric is not None,
            "address_block": self.addresses.block,
            "systems": {name: str(spec.source) for name, spec in self.systems.items()},
            "nodes": [
                {
                    "name": n.name,
                    "index": n.index,
                    "system": n.system.name,
                    "role": n.role,
                    "address": n.address,
                    "bind_address": n.bind_address,
                    "pid": n.pid,
                    "state": n.state,
                    "fields": n.fields,
                    "restarts": n.restarts,
                }
                for n in self.nodes.values()
            ],
            "faults": self.net.export() if self.net is not None else [],
            "node_env": self.node_env,
            "clock_skews": self.clock_skews,
        }
        self._closed = True
        self.loop.run(self.backend.close(detach=True), 15)
        for node in self.nodes.values():
            if node.pid is not None:
                self.reaper.forget_process(node.pid)
        self.reaper.keep_dir(self.workdir)
        self.reaper.close()
        return state

    @classmethod
    def adopt(cls, state: dict[str, Any], name: str) -> Environment:
        """Take over nodes that another process handed over, with their faults."""
        env = cls(
            name,
            seed=state["seed"],
            fabric=state["fabric"],
            workdir=state["workdir"],
            address_block=state["address_block"],
        )
        try:
            env.reaper.add_dir(env.workdir)
            env.node_env = state.get("node_env", {})
            env.clock_skews = state.get("clock_skews", {})
            env._faketime_nodes = set(env.clock_skews)
            for source in state["systems"].values():
                env.system(source)
            by_name = {spec.name: spec for spec in env.systems.values()}
            for raw in state["nodes"]:
                node_dir = env.workdir / "nodes" / raw["name"]
                node = Node(
                    name=raw["name"],
                    index=raw["index"],
                    system=by_name[raw["system"]],
                    role=raw["role"],
                    address=raw["address"],
                    bind_address=raw["bind_address"],
                    data_dir=node_dir / "data",
                    stdout_path=node_dir / "stdout.log",
                    stderr_path=node_dir / "stderr.log",
                    env=env,
                    pid=raw["pid"],
                    state=raw["state"],
                    restarts=raw["restarts"],
                    fields=raw["fields"],
                    started_at=time.time(),
                )
                env.nodes[node.name] = node
                env._next_index = max(env._next_index, node.index + 1)
                if node.pid is not None and node.alive:
                    env.reaper.add_process(node.pid)
                    node.exit_future = env.run(env._watch_exit(node.pid), 5)
                    node.exit_future.add_done_callback(env._exit_callback(node))
                if env.fabric is not None:
                    env.run(env._expose(node), 10)
            if env.net is not None:
                env.net.restore(state.get("faults", []))
        except BaseException:
            env.close()
            raise
        return env

    async def _watch_exit(self, pid: int) -> asyncio.Future[int]:
        """An exit future for a process this Environment did not start (adopted)."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def poll() -> None:
            while True:
                try:
                    if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                        break
                except psutil.NoSuchProcess:
                    break
                await asyncio.sleep(0.2)
            if not future.done():
                future.set_result(-1)

        self._watchers = getattr(self, "_watchers", [])
        self._watchers.append(asyncio.get_running_loop().create_task(poll()))
        return future

    # ----------------------------------------------------------------- nodes

    def system(self, name: str | SystemSpec) -> SystemSpec:
        spec = name if isinstance(name, SystemSpec) else find_system(name)
        if spec.name not in self.systems:
            self._check_installed(spec)
            self.systems[spec.name] = spec
            adapter = load_adapter(spec, self)
            if adapter is not None:
                self.adapters[spec.name] = adapter
        return self.systems[spec.name]

    @staticmethod
    def _check_installed(spec: SystemSpec) -> None:
        # Roles may run programs of their own (redis-sentinel next to redis-server).
        commands = spec.commands() if spec.mode == "exec" else spec.commands()[1:]
        for command in commands:
            program = command[0]
            if "{" not in program and shutil.which(program) is None:
                raise UsageError(
                    f"system {spec.name!r} needs the program {program!r}, which is not installed",
                    field="launch.command",
                    hint=f"install it (for example `apt-get install {spec.binary or program}`) "
                    "or put it on PATH",
                )

    def start(
        self,
        system: str | SystemSpec = "syncpeer",
        peers: int | Sequence[str] | None = None,
        *,
        role: str | None = None,
        wait: bool = True,
    ) -> list[Node]:
        """Start nodes of `system` (a count, or their names) and wait until all are ready.

        Without `peers`, a system whose roles have counts starts that layout (for Redis with
        Sentinel: 1 master, 2 replicas, 3 sentinels), any other system 3 nodes.
        """
        spec = self.system(system)
        roles: list[str | None]
        if peers is None and role is None and spec.layout:
            roles = [r for r, count in spec.layout for _ in range(count)]
            names = [node_name(self._next_index + i) for i in range(len(roles))]
        else:
            if spec.layout and role is None:
                layout = ", ".join(f"{r}: {count}" for r, count in spec.layout)
                raise UsageError(
                    f"system {spec.name!r} starts a layout of roles ({layout}), not a node count",
                    field="peers",
                    hint="drop the count to start the layout, or name a role for more nodes "
                    f"(one of: {', '.join(spec.roles)})",
                )
            if peers is None:
                peers = 3
            if isinstance(peers, int):
                if peers < 1:
                    raise UsageError(
                        f"peers is {peers}", field="peers", hint="start at least 1 peer"
                    )
                names = [node_name(self._next_index + i) for i in range(peers)]
            else:
                names = list(peers)
            roles = [role] * len(names)
        for name in names:
            if name in self.nodes:
                raise UsageError(
                    f"a node named {name!r} already exists",
                    field="name",
                    hint="choose another name",
                )
        if role is not None and role not in spec.roles:
            raise UsageError(
                f"system {spec.name!r} has no role {role!r}",
                field="role",
                hint=f"roles: {', '.join(spec.roles) or '(none)'}",
            )
        new = [self._make_node(spec, name, r) for name, r in zip(names, roles, strict=True)]
        # Each node's own fields first: the cluster-wide templates join them.
        for node in new:
            node.fields = self._node_fields(node, [])
        cluster = [n.fields for n in self.nodes.values() if n.system is spec]
        for node in new:
            node.fields = self._node_fields(node, cluster)
        try:
            self.run(
                self._start_nodes(new, wait),
                timeout=self._start_timeout(spec, len(new)),
                what=f"starting {len(new)} {spec.name} nodes",
            )
        except BaseException:
            for node in new:
                self._signal_exit(node, signal.SIGKILL, "failed")
            raise
        return new

    def _node_fields(self, node: Node, cluster: list[dict[str, Any]]) -> dict[str, Any]:
        return node_fields(
            node.system,
            name=node.name,
            index=node.index,
            address=node.address,
            bind=node.bind_address,
            data_dir=node.data_dir,
            seed=self.seed,
            role=node.role,
            cluster=cluster,
        )

    def add_node(
        self,
        system: str | SystemSpec | None = None,
        name: str | None = None,
        role: str | None = None,
        wait: bool = True,
    ) -> Node:
        spec = self.system(system or self._primary_system())
        return self.start(spec, [name] if name else 1, role=role, wait=wait)[0]

    def _primary_system(self) -> str:
        if not self.systems:
            raise UsageError(
                "no system has been started yet",
                field="system",
                hint="start nodes first or name the system",
            )
        return next(iter(self.systems))

    @staticmethod
    def _start_timeout(spec: SystemSpec, count: int) -> float:
        return spec.readiness.timeout + 30 + count * 0.2

    def _make_node(self, spec: SystemSpec, name: str, role: str | None) -> Node:
        index = self._next_index
        self._next_index += 1
        public = self.addresses.public(index)
        bind = self.addresses.bind(index) if self.fabric is not None else public
        node_dir = self.workdir / "nodes" / name
        data_dir = node_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        node = Node(
            name=name,
            index=index,
            system=spec,
            role=role,
            address=public,
            bind_address=bind,
            data_dir=data_dir,
            stdout_path=node_dir / "stdout.log",
            stderr_path=node_dir / "stderr.log",
            env=self,
        )
        self.nodes[name] = node
        return node

    async def _start_nodes(self, nodes: list[Node], wait: bool) -> None:
        first = [n for n in nodes if n.role and n.system.roles[n.role].start_first]
        rest = [n for n in nodes if n not in first]
        for batch in (first, rest):
            if not batch:
                continue
            for node in batch:
                self._check_ports_free(node)
                if self.fabric is not None:
                    await self._expose(node)
            limit = asyncio.Semaphore(START_CONCURRENCY)
            await asyncio.gather(*(self._launch(node, wait, limit) for node in batch))

    async def _launch(self, node: Node, wait: bool, limit: asyncio.Semaphore) -> None:
        async with limit:
            await self._spawn(node)
            if wait:
                await self._wait_ready(node)

    async def _expose(self, node: Node) -> None:
        for port in node.system.ports.values():
            if port.proxied:
                await self.fabric.expose(
                    node.name,
                    port.name,
                    port.protocol,
                    (node.address, port.port),
                    (node.bind_address, port.port),
                )

    def _check_ports_free(self, node: Node) -> None:
        for port in node.system.ports.values():
            kind = socket.SOCK_STREAM if port.protocol == "tcp" else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, kind) as probe:
                # Servers set SO_REUSEADDR; without it, connections in TIME_WAIT would
                # make a free port look taken.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((node.bind_address, port.port))
                except OSError:
                    raise UsageError(
                        f"port {port.name} ({port.protocol} {node.bind_address}:{port.port}) "
                        f"of node {node.name} is in use",
                        field=f"ports.{port.name}",
                        hint="a leftover process holds it: run `peerlab down --all`, or "
                        "change the port in the manifest",
                    ) from None

    def _process_spec(self, node: Node) -> ProcessSpec:
        spec = node.system
        role = spec.roles[node.role] if node.role else None
        # A role with a program of its own runs it by exec, without launch.args.
        command = role.command if role is not None and role.command else spec.command
        args = [] if command is not spec.command else [render(p, node.fields) for p in spec.args]
        if role is not None:
            args += [render(part, node.fields) for part in role.args]
        env = {k: render(v, node.fields) for k, v in spec.env.items()}
        if node.role:
            env.update({k: render(v, node.fields) for k, v in spec.roles[node.role].env.items()})
        env.update(
            {"PEERLAB_NODE": node.name, "PEERLAB_SEED": str(self.seed), "PYTHONUNBUFFERED": "1"}
        )
        env.update(self.node_env.get(node.name, {}))
        fork = spec.mode == "fork" and command is spec.command
        if node.name in self.clock_skews:
            from peerlab.nemesis.clock import preload_environment, write_skew

            write_skew(self._skew_file(node), self.clock_skews[node.name])
            env.update(preload_environment(self._skew_file(node)))
            fork = False  # LD_PRELOAD acts when a program starts: a forked child escapes it
            self._faketime_nodes.add(node.name)
        else:
            self._faketime_nodes.discard(node.name)
        return ProcessSpec(
            stdout=node.stdout_path,
            stderr=node.stderr_path,
            argv=[render(part, node.fields) for part in command] + args,
            entry=spec.entry if fork else None,
            args=args,
            env=env,
            cwd=str(node.data_dir),
            preload=spec.preload,
        )

    def _write_files(self, node: Node) -> None:
        """Write the manifest's files a node does not have yet (its own rewrites are kept)."""
        for name, text in node_files(node.system, node.role, node.fields).items():
            path = node.data_dir / name
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")

    async def _spawn(self, node: Node) -> None:
        self._write_files(node)
        node.state = "starting"
        node.returncode = None
        node.pid, node.exit_future = await self.backend.spawn(self._process_spec(node))
        node.started_at = time.time()
        node.exit_future.add_done_callback(self._exit_callback(node))
        self.history.event("node_started", node.name, pid=node.pid)

    def _exit_callback(self, node: Node) -> Callable[[asyncio.Future[int]], None]:
        pid = node.pid
        assert pid is not None
        return lambda future: self._on_exit(node, pid, future)

    def _on_exit(self, node: Node, pid: int, future: asyncio.Future[int]) -> None:
        if node.pid != pid:
            return
        node.returncode = future.result() if not future.cancelled() else None
        self.reaper.forget_process(pid)
        if node.state in ("starting", "running", "paused"):
            node.state = "exited"
            self.history.event("node_exited", node.name, returncode=node.returncode)

    async def _wait_ready(self, node: Node) -> None:
        readiness = node.system.readiness
        deadline = time.monotonic() + readiness.timeout
        assert node.exit_future is not None
        while True:
            if node.exit_future.done():
                node.state = "failed"
                raise PeerlabError(
                    f"node {node.name} ({node.system.name}) exited with code "
                    f"{node.returncode} before it was ready",
                    hint="its last output: "
                    + " | ".join((node.logs(5, "stderr") or node.logs(5))[-5:])
                    or "(none)",
                )
            if await self._probe(node):
                node.state = "running"
                return
            if time.monotonic() > deadline:
                raise PeerlabError(
                    f"node {node.name} ({node.system.name}) was not ready within "
                    f"{readiness.timeout:g}s ({readiness.type} probe)",
                    hint=f"see its logs in {node.stdout_path.parent}",
                )
            await asyncio.sleep(0.02)

    async def _probe(self, node: Node) -> bool:
        readiness = node.system.readiness
        if readiness.type == "none":
            return True
        if readiness.type == "log":
            assert readiness.pattern is not None
            import re

            pattern = re.compile(readiness.pattern)
            return any(pattern.search(line) for line in node.logs(200) + node.logs(200, "stderr"))
        assert readiness.port is not None
        port = node.system.ports[readiness.port].port
        if readiness.type == "tcp":
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(node.bind_address, port), 1
                )
            except (OSError, TimeoutError):
                return False
            writer.close()
            return True
        try:
            async with self.http_session().get(
                f"http://{node.bind_address}:{port}{readiness.path}",
                timeout=aiohttp.ClientTimeout(total=2),
            ) as response:
                return response.status < 300
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    def http_session(self) -> aiohttp.ClientSession:
        """The shared session, for code already running on the loop."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
            session = self._http
            self.reaper.add_callback("http client", lambda: self.loop.run(session.close(), 5))
        return self._http

    # ----------------------------------------------------------------- lookup

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise UsageError(
                f"unknown peer {name!r}",
                field="peer",
                hint=f"known peers: {', '.join(self.nodes) or '(none)'}",
            ) from None

    def __getitem__(self, name: str) -> Node:
        return self.node(name)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self.nodes.values()))

    def live_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.state == "running"]

    def adapter(self, system: str | None = None) -> Any:
        name = system or self._primary_system()
        if name not in self.adapters:
            raise UsageError(
                f"system {name!r} has no Python adapter",
                field="system",
                hint="this operation needs a system with an adapter (e.g. syncpeer)",
            )
        return self.adapters[name]

    def client(self, name: str) -> Any:
        node = self.node(name)
        return self.adapter(node.system.name).client(node)

    def identify(self, requests: Sequence[Request]) -> list[Owner | None]:
        """For each (protocol, source, destination) of a connection or datagram that reached
        a proxy at `destination`: who holds the source socket, a node or a process that is no
        node (`Owner(None)`), or None when no live process does. Searched among this
        environment's node process trees only (peerlab.backends.owners); the fabric asks
        for sources that are no node's bind address."""
        return self.owners.owners(requests)

    def _node_roots(self) -> dict[str, int]:
        return {n.name: n.pid for n in list(self.nodes.values()) if n.pid is not None and n.alive}

    def wait_until(
        self,
        condition: Callable[[], T],
        timeout: float = 10.0,
        *,
        what: str = "",
        describe: Callable[[], str] | None = None,
    ) -> T:
        return wait_until(condition, timeout, what=what or "condition", describe=describe)

    # ----------------------------------------------------------------- control (CLI too)

    def _signal_exit(self, node: Node, sig: signal.Signals, state: str) -> None:
        if node.pid is not None and node.state in ("starting", "running", "paused"):
            self.backend.signal(node.pid, signal.SIGCONT)
            self.backend.signal(node.pid, sig)
        node.state = state

    def _await_exit(self, node: Node, timeout: float) -> bool:
        future = node.exit_future
        if future is None:
            return True
        with contextlib.suppress(Exception):
            self.run(asyncio.wait_for(asyncio.shield(future), timeout), timeout + 1)
        return future.done()

    @rpc
    def kill(self, name: str) -> dict[str, Any]:
        """SIGKILL the node (its data stays; restart brings it back)."""
        node = self.node(name)
        self._signal_exit(node, signal.SIGKILL, "killed")
        self._await_exit(node, 5)
        self.history.event("node_killed", name)
        return node.describe()

    @rpc
    def stop(self, name: str) -> dict[str, Any]:
        """SIGTERM (or the manifest's stop signal), then SIGKILL after its timeout."""
        node = self.node(name)
        self._stop(node)
        self.history.event("node_stopped", name)
        return node.describe()

    def _stop(self, node: Node) -> None:
        if not node.alive:
            return
        sig = signal.Signals[node.system.stop_signal]
        self._signal_exit(node, sig, "stopped")
        if not self._await_exit(node, node.system.stop_timeout):
            self._signal_exit(node, signal.SIGKILL, "stopped")
            node.state = "stopped"
            self._await_exit(node, 5)

    @rpc
    def pause(self, name: str) -> dict[str, Any]:
        """SIGSTOP: the process is frozen, its sockets stay open."""
        node = self.node(name)
        if node.state != "running" or node.pid is None:
            raise UsageError(
                f"peer {name} is {node.state}, not running",
                field="peer",
                hint="only a running peer can be paused",
            )
        self.backend.signal(node.pid, signal.SIGSTOP)
        node.state = "paused"
        self.history.event("node_paused", name)
        return node.describe()

    @rpc
    def resume(self, name: str) -> dict[str, Any]:
        node = self.node(name)
        if node.state != "paused" or node.pid is None:
            raise UsageError(
                f"peer {name} is {node.state}, not paused",
                field="peer",
                hint="resume undoes `pause`",
            )
        self.backend.signal(node.pid, signal.SIGCONT)
        node.state = "running"
        self.history.event("node_resumed", name)
        return node.describe()

    @rpc
    def restart(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """Stop the node if it runs, start it again with its data kept, wait until ready."""
        node = self.node(name)
        self._stop(node)
        node.restarts += 1

        async def _again() -> None:
            await self._spawn(node)
            await self._wait_ready(node)

        self.run(
            _again(), timeout or self._start_timeout(node.system, 1), what=f"restarting {name}"
        )
        self.history.event("node_restarted", name)
        return node.describe()

    @staticmethod
    def _skew_file(node: Node) -> Path:
        return node.data_dir.parent / "clock-skew"

    @rpc
    def skew(self, name: str, seconds: float) -> dict[str, Any]:
        """Set the node's wall clock `seconds` ahead of real time (negative: behind).

        A node that runs under libfaketime follows within a second; a running node that does
        not is restarted once, data kept, to load it (name nodes in `clock_skews` before
        they start to avoid that). A stopped node gets the offset when it starts.
        """
        from peerlab.nemesis.clock import write_skew

        node = self.node(name)
        self.clock_skews[name] = float(seconds)
        write_skew(self._skew_file(node), float(seconds))
        if node.alive and name not in self._faketime_nodes:
            self.restart(name)
        self.history.event("clock_skewed", name, seconds=float(seconds))
        return {**node.describe(), "clock_skew": float(seconds)}

    @rpc
    def setenv(
        self, name: str, values: dict[str, str | None], restart: bool = True
    ) -> dict[str, Any]:
        """Set environment variables of the node (None unsets one) for its next start; with
        `restart` (the default), restart it now, data kept, so they apply."""
        node = self.node(name)
        extra = self.node_env.setdefault(name, {})
        for key, value in values.items():
            if value is None:
                extra.pop(key, None)
            else:
                extra[key] = str(value)
        if restart and node.alive:
            self.restart(name)
        return {**node.describe(), "env": dict(extra)}

    @rpc
    def add_peer(
        self, name: str | None = None, system: str | None = None, role: str | None = None
    ) -> dict[str, Any]:
        return self.add_node(system, name, role).describe()

    # ----------------------------------------------------------------- many nodes at once

    @rpc
    def add_peers(
        self, count: int, system: str | None = None, role: str | None = None
    ) -> list[dict[str, Any]]:
        """Start `count` more peers in parallel and wait until all are ready."""
        spec = self.system(system or self._primary_system())
        return [node.describe() for node in self.start(spec, count, role=role)]

    @rpc
    def stop_peers(self, names: list[str], kill: bool = False) -> list[dict[str, Any]]:
        """Stop (SIGTERM, then SIGKILL after the stop timeout) or kill several peers at once:
        all are signalled first, then all are awaited."""
        nodes = [self.node(name) for name in names]
        timeout = max((n.system.stop_timeout for n in nodes), default=0) + 10
        self.run(self._stop_many(nodes, kill), timeout, what=f"stopping {len(nodes)} peers")
        for node in nodes:
            self.history.event("node_killed" if kill else "node_stopped", node.name)
        return [node.describe() for node in nodes]

    @rpc
    def restart_peers(self, names: list[str], timeout: float | None = None) -> list[dict[str, Any]]:
        """Restart several peers at once (stopped first if running), data kept; wait ready."""
        nodes = [self.node(name) for name in names]
        if not nodes:
            return []
        stop_timeout = max(n.system.stop_timeout for n in nodes) + 10
        self.run(self._stop_many(nodes, False), stop_timeout, what=f"stopping {len(nodes)} peers")
        for node in nodes:
            node.restarts += 1

        async def relaunch() -> None:
            limit = asyncio.Semaphore(START_CONCURRENCY)
            await asyncio.gather(*(self._launch(node, True, limit) for node in nodes))

        self.run(
            relaunch(),
            timeout or self._start_timeout(nodes[0].system, len(nodes)),
            what=f"restarting {len(nodes)} peers",
        )
        for node in nodes:
            self.history.event("node_restarted", node.name)
        return [node.describe() for node in nodes]

    async def _stop_many(self, nodes: list[Node], kill: bool) -> None:
        live = [node for node in nodes if node.alive]
        for node in live:
            sig = signal.SIGKILL if kill else signal.Signals[node.system.stop_signal]
            self._signal_exit(node, sig, "killed" if kill else "stopped")

        async def settle(node: Node) -> None:
            if node.exit_future is None:
                return
            try:
                await asyncio.wait_for(asyncio.shield(node.exit_future), node.system.stop_timeout)
            except TimeoutError:
                if node.pid is not None:
                    self.backend.signal(node.pid, signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(node.exit_future), 5)

        await asyncio.gather(*(settle(node) for node in live))

    @rpc
    def inspect(self, name: str) -> dict[str, Any]:
        node = self.node(name)
        info = node.describe()
        adapter = self.adapters.get(node.system.name)
        if adapter is not None and node.state == "running" and hasattr(adapter, "inspect"):
            try:
                info["system_state"] = adapter.inspect(node)
            except PeerlabError as exc:
                info["system_state"] = {"error": str(exc)}
        return info

    @rpc
    def logs(self, name: str, lines: int = 50, stream: str = "stdout") -> list[str]:
        if stream not in ("stdout", "stderr"):
            raise UsageError(f"stream is {stream!r}", field="stream", hint="use stdout or stderr")
        return self.node(name).logs(lines, stream)

    @rpc
    def peers(self) -> list[dict[str, Any]]:
        return [node.describe() for node in self.nodes.values()]

    @rpc
    def status(self) -> dict[str, Any]:
        net = None
        if self.net is not None:
            with contextlib.suppress(Exception):
                net = self.net.show()
        return {
            "name": self.name,
            "id": self.id,
            "seed": self.seed,
            "workdir": str(self.workdir),
            "uptime_s": round(time.time() - self.started_at, 1),
            "systems": list(self.systems),
            "nodes": self.peers(),
            "net": net,
        }

    def state(self) -> dict[str, Any]:
        return {"status": self.status(), "history": str(self.history.path)}

    def _stop_all(self, graceful: bool) -> None:
        for node in self.nodes.values():
            if graceful:
                self._stop(node)
            else:
                self._signal_exit(node, signal.SIGKILL, "stopped")

    # ----------------------------------------------------------------- artifacts

    def save_artifacts(self, dest: Path | None = None, *, snapshot: bool = True) -> Path:
        """Copy node logs, the history and (optionally) each node's data dir to `dest`."""
        target = Path(dest or self.artifacts or Path("peerlab-results") / self.name)
        target.mkdir(parents=True, exist_ok=True)
        for node in self.nodes.values():
            node_target = target / "nodes" / node.name
            node_target.mkdir(parents=True, exist_ok=True)
            for path in (node.stdout_path, node.stderr_path):
                if path.exists():
                    shutil.copy2(path, node_target / path.name)
            if snapshot and node.data_dir.exists():
                shutil.copytree(
                    node.data_dir,
                    node_target / "data",
                    dirs_exist_ok=True,
                    ignore_dangling_symlinks=True,
                )
        if self.history.path and self.history.path.exists():
            shutil.copy2(self.history.path, target / "history.jsonl")
        log.info("artifacts_saved", path=str(target))
        return target

    # ----------------------------------------------------------------- observe (CLI too)

    @rpc
    def timeline(
        self,
        cursor: dict[str, Any] | None = None,
        filter: dict[str, Any] | None = None,
        tail: int | None = None,
        all_runs: bool = False,
    ) -> dict[str, Any]:
        """Merged timeline events since `cursor` that pass `filter` (EventFilter JSON).

        Events from before this Environment began are left out unless `all_runs`: a
        supervisor's work dir keeps the logs of earlier networks of the same name.
        """
        from dataclasses import replace

        from peerlab.observe import EventFilter, fetch

        event_filter = EventFilter.from_json(filter)
        floor = self.started_at - 1
        if not all_runs and (event_filter.since is None or event_filter.since < floor):
            event_filter = replace(event_filter, since=floor)
        return fetch(self.workdir, cursor, event_filter, tail)

    @rpc
    def record(self, entry: str, what: str, data: dict[str, Any] | None = None) -> None:
        """Add a fault (`entry` "fault", `what` "apply" or "remove") or an event (`entry`
        "event", `what` its name) to the history: for tools acting from outside, such as the
        CLI's nemesis."""
        if entry == "fault" and what in ("apply", "remove"):
            self.history.fault("apply" if what == "apply" else "remove", data or {})
        elif entry == "event":
            self.history.event(what, None, **(data or {}))
        else:
            raise UsageError(
                f"cannot record {entry!r} {what!r}",
                field="entry",
                hint='record ("fault", "apply" | "remove", fault) or ("event", name, data)',
            )

    def record_verdict(self, verdict: Any) -> None:
        """Keep a checker's verdict in the history, so results and reports show it."""
        self.history.event("verdict", None, **verdict.to_json())

    @rpc
    def snapshot_save(self, name: str, force: bool = False) -> dict[str, Any]:
        """Save every node's data dir, state and the active faults as snapshot `name`."""
        from peerlab import snapshot

        return snapshot.save(self, snapshot.snapshot_dir(name), force=force)

    @rpc
    def snapshot_restore(self, name: str, force: bool = False) -> dict[str, Any]:
        """Bring the network back to snapshot `name` (data dirs, running nodes, faults)."""
        from peerlab import snapshot

        return snapshot.restore(self, snapshot.snapshot_dir(name), force=force)

    @rpc
    def scenario_run(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a named scenario (see `peerlab.scenarios`) on this network."""
        from peerlab.scenarios import run_scenario

        return run_scenario(self, name, params).to_json()

    @rpc
    def results_save(self, dest: str, outcome: str | None = None, test: str | None = None) -> str:
        """Write this run's results folder (result.json, logs, timeline, JUnit) to `dest`."""
        from peerlab.report.results import write_results

        write_results(self, Path(dest), outcome=outcome, test=test)
        return dest
