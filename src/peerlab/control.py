"""Node control: starting nodes, and every verb that acts on them afterwards.

`NodeControl` owns an Environment's node table and drives its backend: start (in parallel
batches, start-first roles before the rest), kill, stop, pause, resume, restart, clock
skew, environment variables, and their many-node forms. Its `@rpc` methods are the `env`
namespace that the CLI reaches through the supervisor. Calls may come from several threads
(the nemesis runs actions in parallel, the supervisor serves calls on a pool): the table is
guarded by one lock and each node by its own, so actions on one node are serialised while
different nodes proceed side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from peerlab.backends.base import Backend, Launch
from peerlab.checkers.verdict import Verdict
from peerlab.clock import Clock, Scheduler
from peerlab.errors import PeerlabError, UsageError
from peerlab.fabric.network import Network
from peerlab.history import History
from peerlab.init_step import run_init
from peerlab.launching import check_launchable, plan_launch
from peerlab.manifest import SystemSpec, cluster_fields, node_fields
from peerlab.names import check_name
from peerlab.nemesis.faults import skew_seconds
from peerlab.node import Node, NodeHandle, NodeState, node_name
from peerlab.observe.stamps import save as save_stamps
from peerlab.readiness import wait_ready, wait_ready_virtual
from peerlab.rpc import rpc
from peerlab.systems import Systems
from peerlab.transport import Transport

Run = Callable[..., Any]
PEERS_AT_ONCE = 32  # nodes whose resources are asked at the same time


class NodeControl:
    """The nodes of one Environment and the verbs that act on them."""

    def __init__(
        self,
        *,
        backend: Backend,
        net: Network,
        registry: Systems,
        history: History,
        run: Run,
        transport: Transport,
        clock: Clock,
        workdir_nodes: Callable[[str], Any],
        seed: int,
    ) -> None:
        self.backend = backend
        self.net = net
        self.registry = registry
        self.history = history
        self._run = run
        self.transport = transport
        self.clock = clock
        self._node_dir = workdir_nodes
        self.seed = seed
        self.nodes: dict[str, Node] = {}
        # Per node, applied whenever it (re)starts: extra environment variables, and a
        # clock offset in seconds (`skew`).
        self.node_env: dict[str, dict[str, str]] = {}
        self.clock_skews: dict[str, float] = {}
        self.versions: dict[str, str] = {}  # node -> its system's version (manifest [versions])
        self._next_index = 0
        self._table = threading.RLock()
        self._locks: dict[str, threading.RLock] = {}

    # ------------------------------------------------------------------ lookup

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise UsageError(
                f"unknown peer {name!r}",
                field="peer",
                hint=f"known peers: {', '.join(self.nodes) or '(none)'}",
            ) from None

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self.nodes.values()))

    @contextlib.contextmanager
    def _locked(self, *names: str) -> Iterator[None]:
        """Hold the locks of the named nodes (in one order, so two callers never deadlock)."""
        with self._table:
            locks = [self._locks.setdefault(name, threading.RLock()) for name in sorted(names)]
        with contextlib.ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            yield

    # ------------------------------------------------------------------ starting

    def start(
        self,
        system: str | SystemSpec = "syncpeer",
        peers: int | Sequence[str] | None = None,
        *,
        role: str | None = None,
        wait: bool = True,
        version: str | Mapping[str, str] | None = None,
    ) -> list[Node]:
        """Start nodes of `spec` (a count, or their names) and wait until all are ready.

        Without `peers`, a system whose roles have counts starts that layout (for Redis with
        Sentinel: 1 master, 2 replicas, 3 sentinels), any other system 3 nodes. `version`
        names the system's version (its manifest's `[versions]`) of every node started, or
        maps node names to versions; `self.versions` keeps them, so nodes named there
        before they start get theirs too.
        """
        spec = self.registry.add(system)
        check_launchable(spec, self.backend.capabilities, self.backend.name)
        with self._table:
            names, roles = self._plan(spec, peers, role)
            chosen = dict.fromkeys(names, version) if isinstance(version, str) else version
            for name, wanted in (chosen or {}).items():
                self.versions[name] = spec.check_version(wanted)
            for name in names:
                if name in self.versions:
                    spec.check_version(self.versions[name])
            new = [self._make_node(spec, name, r) for name, r in zip(names, roles, strict=True)]
            # Each node's own fields first: the init step and the fields all nodes share
            # use them.
            alone = cluster_fields(spec, [])
            for node in new:
                node.fields = self._node_fields(node, alone)
        try:
            with self._locked(*names):
                if spec.init is not None:
                    self._run(
                        self._init_nodes(new),
                        timeout=spec.init.timeout + 30,
                        what=f"the init step of {len(new)} {spec.name} nodes",
                    )
                with self._table:
                    cluster = [n.fields for n in self.nodes.values() if n.system is spec]
                    shared = cluster_fields(spec, cluster)
                    for node in new:
                        node.fields = self._node_fields(node, shared)
                for batch in _batches(new):
                    self._run(
                        self._start_nodes(batch, wait),
                        timeout=start_timeout(spec, len(batch)),
                        what=f"starting {len(batch)} {spec.name} nodes",
                    )
                    if wait:
                        self._ready_on_virtual_time(batch)
        except BaseException:
            for node in new:
                self._end(node, "kill", NodeState.FAILED)
            raise
        return new

    def _plan(
        self, spec: SystemSpec, peers: int | Sequence[str] | None, role: str | None
    ) -> tuple[list[str], list[str | None]]:
        roles: list[str | None]
        if peers is None and role is None and spec.layout:
            roles = [r for r, count in spec.layout for _ in range(count)]
            names = [node_name(self._next_index + i) for i in range(len(roles))]
            self._check_room(len(names))
            return names, roles
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
                raise UsageError(f"peers is {peers}", field="peers", hint="start at least 1 peer")
            names = [node_name(self._next_index + i) for i in range(peers)]
        else:
            names = [check_name(name, "peer", "name") for name in peers]
        self._check_room(len(names))
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
        return names, [role] * len(names)

    def _check_room(self, count: int) -> None:
        """Refuse more nodes than the backend has addresses for, before any is made."""
        try:
            self.backend.addresses(self._next_index + count - 1)
        except PeerlabError as exc:
            raise UsageError(
                f"{count} more nodes do not fit: {exc.message}",
                field="peers",
                hint="start fewer peers",
            ) from None

    async def _init_nodes(self, nodes: list[Node]) -> None:
        """Every new node's init step, side by side; its captures join the node's fields."""
        limit = asyncio.Semaphore(self.backend.capabilities.parallel_starts)

        async def one(node: Node) -> None:
            async with limit:
                node.fields.update(await run_init(node, self.seed))

        await asyncio.gather(*(one(node) for node in nodes))

    def _node_fields(self, node: Node, shared: dict[str, Any]) -> dict[str, Any]:
        init = node.system.init
        captures = init.capture if init is not None else {}
        return node_fields(
            node.system,
            name=node.name,
            index=node.index,
            address=node.address,
            bind=node.bind_address,
            data_dir=node.data_dir,
            seed=self.seed,
            role=node.role,
            shared=shared,
            version=self.versions.get(node.name),
            captured={k: v for k, v in node.fields.items() if k in captures},
        )

    def _make_node(self, spec: SystemSpec, name: str, role: str | None) -> Node:
        index = self._next_index
        self._next_index += 1
        addresses = self.backend.addresses(index)
        node_dir = self._node_dir(name)
        node = Node(
            name=name,
            index=index,
            system=spec,
            role=role,
            address=addresses.public,
            bind_address=addresses.bind,
            data_dir=node_dir / "data",
            stdout_path=node_dir / "stdout.log",
            stderr_path=node_dir / "stderr.log",
        )
        self.nodes[name] = node
        return node

    async def _start_nodes(self, batch: list[Node], wait: bool) -> None:
        for node in batch:
            logs = node.system.logs
            save_stamps(node.stdout_path.parent, logs.timestamp, logs.format)
            self.backend.prepare(node, self._launch_plan(node))
            await self.backend.expose(node, self.net.plane)
        limit = asyncio.Semaphore(self.backend.capabilities.parallel_starts)
        await asyncio.gather(*(self._launch(node, wait, limit) for node in batch))

    async def _launch(self, node: Node, wait: bool, limit: asyncio.Semaphore) -> None:
        async with limit:
            await self._spawn(node)
            if wait and not isinstance(self.clock, Scheduler):
                await wait_ready(node, self.backend, self.transport)

    def _ready_on_virtual_time(self, nodes: list[Node]) -> None:
        """On virtual time, readiness is waited for here, in the thread that drives the
        simulation (its waits make the time pass), not on the loop: `wait_ready_virtual`."""
        if isinstance(self.clock, Scheduler):
            wait_ready_virtual(nodes, self.backend, self.transport, self.clock, self._run)

    def _launch_plan(self, node: Node) -> Launch:
        return plan_launch(
            node,
            seed=self.seed,
            extra_env=self.node_env.get(node.name, {}),
            clock_offset=self.clock_skews.get(node.name),
        )

    async def _spawn(self, node: Node) -> None:
        launch = self._launch_plan(node)
        self.backend.prepare(node, launch)
        node.state = NodeState.STARTING
        node.returncode = None
        handle = await self.backend.start(node, launch)
        self._track(node, handle)
        node.started_at = self.clock.time()
        self.history.event("node_started", node.name, pid=node.pid)

    def _track(self, node: Node, handle: NodeHandle) -> None:
        node.handle = handle
        handle.exited.add_done_callback(lambda future: self._on_exit(node, handle, future))

    def _on_exit(self, node: Node, handle: NodeHandle, future: asyncio.Future[int | None]) -> None:
        if node.handle is not handle:
            return  # an earlier incarnation
        node.returncode = future.result() if not future.cancelled() else None
        if node.alive:
            node.state = NodeState.EXITED
            self.history.event("node_exited", node.name, returncode=node.returncode)

    async def adopt_node(self, node: Node, saved: dict[str, Any] | None) -> None:
        """Watch a node another process started (a handover) as if this one had, and put
        it behind the fault plane; `saved` is its handle's JSON (None: it is not running)."""
        if saved is not None:
            self._track(node, await self.backend.watch(saved))
        await self.backend.expose(node, self.net.plane)

    def add(self, node: Node) -> None:
        """Put an adopted node in the table."""
        with self._table:
            self.nodes[node.name] = node
            self._next_index = max(self._next_index, node.index + 1)

    # ------------------------------------------------------------------ ending

    def _end(
        self,
        node: Node,
        action: Literal["kill", "terminate"],
        state: NodeState,
    ) -> None:
        # The state changes first: the exit that follows is the one asked for, not a node
        # that ended by itself (whichever thread hears of the exit first).
        handle, alive = node.handle, node.alive
        node.state = state
        if handle is not None and alive:
            sig = None if action == "kill" else signal.Signals[node.system.stop_signal]
            self.backend.act(handle, action, sig)

    def _await_exit(self, node: Node, timeout: float) -> bool:
        if node.handle is None:
            return True
        future = node.handle.exited
        with contextlib.suppress(Exception):
            self._run(asyncio.wait_for(asyncio.shield(future), timeout), timeout + 1)
        return future.done()

    def _stop(self, node: Node) -> None:
        if not node.alive:
            return
        self._end(node, "terminate", NodeState.STOPPED)
        if not self._await_exit(node, node.system.stop_timeout):
            self._end_now(node)
            self._await_exit(node, 5)

    def _end_now(self, node: Node) -> None:
        if node.handle is not None:
            self.backend.act(node.handle, "kill")

    def stop_all(self) -> None:
        """SIGKILL (or its like) every node, at once; for closing the Environment."""
        for node in self.nodes.values():
            self._end(node, "kill", NodeState.STOPPED)

    # ------------------------------------------------------------------ verbs (CLI too)

    @rpc
    def kill(self, name: str) -> dict[str, Any]:
        """Kill the node at once, no clean-up (SIGKILL); its data stays for a restart."""
        node = self.node(name)
        with self._locked(name):
            self._end(node, "kill", NodeState.KILLED)
            self._await_exit(node, 5)
        self.history.event("node_killed", name)
        return self.describe(node)

    @rpc
    def stop(self, name: str) -> dict[str, Any]:
        """The manifest's stop signal (SIGTERM), then a kill after its timeout."""
        node = self.node(name)
        with self._locked(name):
            self._stop(node)
        self.history.event("node_stopped", name)
        return self.describe(node)

    @rpc
    def pause(self, name: str) -> dict[str, Any]:
        """Freeze the node (SIGSTOP): its sockets stay open, it answers nothing."""
        self._require("pause", "pause nodes")
        hint = "only a running peer can be paused"
        return self._switch(name, "pause", NodeState.RUNNING, NodeState.PAUSED, hint)

    @rpc
    def resume(self, name: str) -> dict[str, Any]:
        """Unfreeze a paused node."""
        hint = "resume undoes `pause`"
        return self._switch(name, "resume", NodeState.PAUSED, NodeState.RUNNING, hint)

    def _switch(
        self,
        name: str,
        action: Literal["pause", "resume"],
        before: NodeState,
        after: NodeState,
        hint: str,
    ) -> dict[str, Any]:
        """Move a node from `before` to `after` by `action`; refused in any other state."""
        node = self.node(name)
        with self._locked(name):
            if node.state != before or node.handle is None:
                raise UsageError(
                    f"peer {name} is {node.state}, not {before}",
                    field="peer",
                    hint=hint,
                )
            self.backend.act(node.handle, action)
            node.state = after
        self.history.event("node_paused" if action == "pause" else "node_resumed", name)
        return self.describe(node)

    @rpc
    def restart(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """Stop the node if it runs, start it again with its data kept, wait until ready."""
        node = self.node(name)
        with self._locked(name):
            self._stop(node)
            node.restarts += 1

            async def again() -> None:
                await self._launch(node, True, asyncio.Semaphore(1))

            self._run(again(), timeout or start_timeout(node.system, 1), what=f"restarting {name}")
            self._ready_on_virtual_time([node])
        self.history.event("node_restarted", name)
        return self.describe(node)

    @rpc
    def skew(self, name: str, seconds: float) -> dict[str, Any]:
        """Set the node's wall clock `seconds` ahead of real time (negative: behind).

        Where the backend can move a running node's clock, it follows within a second;
        otherwise a running node is restarted once, data kept, to take the offset (name
        nodes in `clock_skews` before they start to avoid that). A stopped node gets the
        offset when it starts.
        """
        seconds = skew_seconds(seconds)
        node = self.node(name)
        self._require("clock_skew", "skew clocks")
        with self._locked(name):
            self.clock_skews[name] = seconds
            if not self.backend.set_clock(node, seconds) and node.alive:
                self.restart(name)
        self.history.event("clock_skewed", name, seconds=seconds)
        return {**self.describe(node), "clock_skew": seconds}

    @rpc
    def setenv(
        self, name: str, values: dict[str, str | None], restart: bool = True
    ) -> dict[str, Any]:
        """Set environment variables of the node (None unsets one) for its next start; with
        `restart` (the default), restart it now, data kept, so they apply."""
        node = self.node(name)
        with self._locked(name):
            extra = self.node_env.setdefault(name, {})
            for key, value in values.items():
                if value is None:
                    extra.pop(key, None)
                else:
                    extra[key] = str(value)
            if restart and node.alive:
                self.restart(name)
        return {**self.describe(node), "env": dict(extra)}

    def _require(self, capability: str, what: str) -> None:
        if not getattr(self.backend.capabilities, capability):
            raise UsageError(
                f"the {self.backend.name} backend cannot {what}",
                field="backend",
                hint="choose a backend that can (docs/backends.md lists what each one does)",
            )

    @rpc
    def lie(self, name: str, mode: str | None) -> dict[str, Any]:
        """Restart the node lying to its peers in `mode`, one of its system's byzantine
        modes; None (or "off") restarts it honest."""
        node = self.node(name)
        adapter = self.registry.adapters.get(node.system.name)
        byzantine = adapter.byzantine if adapter is not None else None
        if byzantine is None:
            raise UsageError(
                f"system {node.system.name!r} has no byzantine modes",
                field="peer",
                hint="only systems whose adapter declares `byzantine` can be made to lie",
            )
        value = None if mode in (None, "off") else mode
        if value is not None and value not in byzantine.modes:
            raise UsageError(
                f"byzantine mode {mode!r}",
                field="mode",
                hint=f"one of: {', '.join(byzantine.modes)}, or off",
            )
        return self.setenv(name, {byzantine.variable: value})

    # ------------------------------------------------------------------ many nodes at once

    @rpc
    def add_peer(
        self, name: str | None = None, system: str | None = None, role: str | None = None
    ) -> dict[str, Any]:
        """Start one more peer (of the first system, unless named) and wait until ready."""
        spec = self.registry.add(system) if system else self.registry.get(None)
        return self.describe(self.start(spec, [name] if name else 1, role=role)[0])

    @rpc
    def add_peers(
        self, count: int, system: str | None = None, role: str | None = None
    ) -> list[dict[str, Any]]:
        """Start `count` more peers in parallel and wait until all are ready."""
        spec = self.registry.add(system) if system else self.registry.get(None)
        return [self.describe(node) for node in self.start(spec, count, role=role)]

    @rpc
    def stop_peers(self, names: list[str], kill: bool = False) -> list[dict[str, Any]]:
        """Stop (the stop signal, then a kill after the stop timeout) or kill several peers
        at once: all are signalled first, then all are awaited."""
        nodes = [self.node(name) for name in names]
        timeout = max((n.system.stop_timeout for n in nodes), default=0) + 10
        with self._locked(*names):
            self._run(self._stop_many(nodes, kill), timeout, what=f"stopping {len(nodes)} peers")
        for node in nodes:
            self.history.event("node_killed" if kill else "node_stopped", node.name)
        return [self.describe(node) for node in nodes]

    @rpc
    def restart_peers(self, names: list[str], timeout: float | None = None) -> list[dict[str, Any]]:
        """Restart several peers at once (stopped first if running), data kept; wait ready."""
        nodes = [self.node(name) for name in names]
        if not nodes:
            return []
        stop_timeout = max(n.system.stop_timeout for n in nodes) + 10
        with self._locked(*names):
            self._run(
                self._stop_many(nodes, False), stop_timeout, what=f"stopping {len(nodes)} peers"
            )
            for node in nodes:
                node.restarts += 1

            async def relaunch() -> None:
                limit = asyncio.Semaphore(self.backend.capabilities.parallel_starts)
                await asyncio.gather(*(self._launch(node, True, limit) for node in nodes))

            self._run(
                relaunch(),
                timeout or start_timeout(nodes[0].system, len(nodes)),
                what=f"restarting {len(nodes)} peers",
            )
            self._ready_on_virtual_time(nodes)
        for node in nodes:
            self.history.event("node_restarted", node.name)
        return [self.describe(node) for node in nodes]

    async def _stop_many(self, nodes: list[Node], kill: bool) -> None:
        live = [node for node in nodes if node.alive]
        for node in live:
            if kill:
                self._end(node, "kill", NodeState.KILLED)
            else:
                self._end(node, "terminate", NodeState.STOPPED)

        async def settle(node: Node) -> None:
            if node.handle is None:
                return
            exited = node.handle.exited
            try:
                await asyncio.wait_for(asyncio.shield(exited), node.system.stop_timeout)
            except TimeoutError:
                self._end_now(node)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), 5)

        await asyncio.gather(*(settle(node) for node in live))

    # ------------------------------------------------------------------ introspection

    def describe(self, node: Node) -> dict[str, Any]:
        """The node as the CLI shows it, with its live resources."""
        info = node.describe()
        if node.handle is not None and node.alive:
            info.update(self.backend.resources(node.handle))
            info["uptime_s"] = round(self.clock.time() - node.started_at, 1)
        return info

    @rpc
    def inspect(self, name: str) -> dict[str, Any]:
        """The node, and what its system's adapter tells about it (friends, files, roles)."""
        node = self.node(name)
        info = self.describe(node)
        adapter = self.registry.adapters.get(node.system.name)
        if adapter is not None and node.state == NodeState.RUNNING:
            try:
                state = adapter.inspect(node)
            except PeerlabError as exc:
                state = {"error": str(exc)}
            if state is not None:
                info["system_state"] = state
        return info

    @rpc
    def logs(self, name: str, lines: int = 50, stream: str = "stdout") -> list[str]:
        """The node's last `lines` lines of output (`stdout` or `stderr`)."""
        if stream not in ("stdout", "stderr"):
            raise UsageError(f"stream is {stream!r}", field="stream", hint="use stdout or stderr")
        if lines < 0:
            raise UsageError(f"lines is {lines}", field="lines", hint="ask for 0 lines or more")
        return self.backend.logs(
            self.node(name), lines, "stdout" if stream == "stdout" else "stderr"
        )

    def export_data(self, node: Node, target: Path) -> None:
        self.backend.export_data(node, target)

    def import_data(self, node: Node, source: Path) -> None:
        self.backend.import_data(node, source)

    def backend_info(self) -> dict[str, Any]:
        return self.backend.describe()

    def freeze(self, names: Sequence[str]) -> list[str]:
        """Pause the running nodes among `names` without a recorded state change (for a
        consistent copy of their data); returns those frozen, for `thaw`."""
        frozen = [n for n in names if self.node(n).state == NodeState.RUNNING]
        for name in frozen:
            handle = self.node(name).handle
            if handle is not None:
                self.backend.act(handle, "pause")
        return frozen

    def thaw(self, names: Sequence[str]) -> None:
        for name in names:
            handle = self.node(name).handle
            if handle is not None:
                self.backend.act(handle, "resume")

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

    def record_verdict(self, verdict: Verdict) -> None:
        """Keep a checker's verdict in the history, so results and reports show it."""
        self.history.event("verdict", None, **verdict.to_json())

    @rpc
    def peers(self) -> list[dict[str, Any]]:
        """Every node, with its state and resources."""
        nodes = list(self.nodes.values())
        if len(nodes) < 2:
            return [self.describe(node) for node in nodes]
        # Asked of every node at once: a backend may take its time per node (the engine's
        # stats of a container come about a second apart), and churn asks every period.
        with ThreadPoolExecutor(min(len(nodes), PEERS_AT_ONCE), "peers") as pool:
            return list(pool.map(self.describe, nodes))


def start_timeout(spec: SystemSpec, count: int) -> float:
    return spec.readiness.timeout + 30 + count * 0.2


def _batches(nodes: list[Node]) -> list[list[Node]]:
    """The nodes whose role starts first (ready before the others start), then the rest."""
    first = [n for n in nodes if n.role and n.system.roles[n.role].start_first]
    rest = [n for n in nodes if n not in first]
    return [batch for batch in (first, rest) if batch]
