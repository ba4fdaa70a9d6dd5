"""Redis with Sentinel: typed clients for data nodes and sentinels, over peerlab's RESP client.

A client finds the master the way Redis's own clients do: it asks a sentinel for the
address of the master named `mymaster`, then talks to that address. The harness connects
to a node's own (bind) address, not through the fabric: the faults it injects between nodes
must not hide what a node answers.

Writes and reads record themselves in the history (`write` / `read`, value
`{"key": k, "value": v}`). A write is `ok` only when Redis acknowledged it as asked: with
`replicas=N`, `WAIT N` must confirm N replicas; a write the master took but no replica
confirmed is `info`, its fate is unknown, and so is one whose WAIT failed (a master
demoted while it waits answers WAIT with an error, after it applied the SET). A command
Redis refused (an error reply) or that never left the client (no connection) is a `fail`
(`outcome`). `no_lost_writes` compares what was acknowledged with what the cluster holds
after the dust settles.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from peerlab.errors import PeerlabError, UsageError
from peerlab.rpc import rpc
from peerlab.systems.base import BaseAdapter
from peerlab.systems.recording import Recording, Unsuccessful
from peerlab.systems.resp import RespConnection, RespError, RespProtocolError, text
from peerlab.wait import wait_until

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI
    from peerlab.node import Node

MASTER_NAME = "mymaster"  # the name the sentinels monitor (redis-sentinel.toml)
DEFAULT_TIMEOUT = 2.0
DATA_ROLES = ("master", "replica", "replica-wrong-password")


class RedisUnavailable(PeerlabError):
    """The node did not answer (refused, reset or timed out). `sent` is False only when the
    command certainly never went out (the connection could not even be opened)."""

    def __init__(self, message: str, *, sent: bool = True, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.sent = sent


def outcome(exc: Exception) -> Unsuccessful:
    """An error reply (READONLY, NOAUTH, NOREPLICAS...) is Redis refusing the command, and a
    command that never went out did nothing: both `fail`. Anything else is unknown."""
    if isinstance(exc, RespError) or (isinstance(exc, RedisUnavailable) and not exc.sent):
        return "fail"
    return "info"


def parse_info(raw: str) -> dict[str, str]:
    """INFO's `key:value` lines as a dict (section headers and blanks skipped)."""
    out: dict[str, str] = {}
    for line in raw.splitlines():
        if line and not line.startswith("#") and ":" in line:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def parse_replicas(info: dict[str, str]) -> list[dict[str, str]]:
    """The `slaveN:ip=...,port=...,state=...,offset=...` entries of INFO replication."""
    replicas = []
    for key, value in sorted(info.items()):
        if re.fullmatch(r"slave\d+", key):
            replicas.append(dict(part.split("=", 1) for part in value.split(",") if "=" in part))
    return replicas


def pairs(flat: list[Any]) -> dict[str, Any]:
    """Sentinel's replies list fields as [name, value, name, value, ...]."""
    items = text(flat)
    return dict(zip(items[::2], items[1::2], strict=False))


class _Connected:
    """A lazily opened connection to one node, opened again after any failure."""

    def __init__(
        self, env: EnvironmentAPI, node: Node, password: str | None, timeout: float
    ) -> None:
        self.env = env
        self.node = node
        self.password = password
        self.timeout = timeout
        self._connection: RespConnection | None = None

    async def command(self, *args: str | int | float, timeout: float | None = None) -> Any:
        """Run one command on the node; RedisUnavailable when it cannot be reached."""
        limit = timeout or self.timeout
        if self._connection is None or self._connection.stale:
            try:
                self._connection = await RespConnection.open(
                    self.node.bind_address,
                    self.node.ports["redis"],
                    timeout=limit,
                    password=self.password,
                )
            except (OSError, TimeoutError, RespProtocolError) as exc:
                raise self._unavailable(args[0], exc, sent=False) from None
        try:
            return await self._connection.command(*args, timeout=limit)
        except (OSError, TimeoutError, RespProtocolError) as exc:
            raise self._unavailable(args[0], exc, sent=True) from None

    def _unavailable(self, command: Any, exc: Exception, *, sent: bool) -> RedisUnavailable:
        return RedisUnavailable(
            f"{self.node.name} ({self.node.role}): {command}: {exc!r}", sent=sent
        )

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


class RedisClient(_Connected):
    """A master or replica; `process` names this client in the history."""

    def __init__(
        self,
        env: EnvironmentAPI,
        node: Node,
        password: str | None,
        process: int | str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(env, node, password, timeout)
        self.process = process if process is not None else node.name

    async def info(self, section: str = "replication") -> dict[str, str]:
        return parse_info(text(await self.command("INFO", section)))

    async def role(self) -> str:
        """What ROLE says this node is: "master" or "slave"."""
        return str(text((await self.command("ROLE"))[0]))

    def recording(self, f: str, value: Any) -> Recording:
        """Record an operation of this client (see `peerlab.systems.recording`)."""
        return Recording(
            self.env.history, f, value, classify=outcome, process=self.process, node=self.node.name
        )

    async def write(self, key: str, value: Any, *, replicas: int = 0, wait_ms: int = 1000) -> int:
        """SET, then `WAIT replicas wait_ms` when replicas > 0; returns how many confirmed."""
        value = str(value)
        with self.recording("write", {"key": key, "value": value}) as op:
            await self.command("SET", key, value)
            # The master holds it now: if WAIT fails, the write happened but may not last.
            op.applied()
            confirmed = 0
            if replicas > 0:
                confirmed = int(
                    await self.command(
                        "WAIT", replicas, wait_ms, timeout=wait_ms / 1000 + self.timeout
                    )
                )
            if confirmed < replicas:
                op.info(error=f"WAIT {replicas}: only {confirmed} replicas confirmed")
            else:
                op.ok({"key": key, "value": value, "replicas": confirmed})
        return confirmed

    async def read(self, key: str) -> str | None:
        with self.recording("read", {"key": key, "value": None}) as op:
            value = text(await self.command("GET", key))
            op.ok({"key": key, "value": value})
        return None if value is None else str(value)

    async def keys(self, pattern: str = "*") -> dict[str, str]:
        """Every key matching `pattern` with its value (SCAN, so the node is not blocked)."""
        out: dict[str, str] = {}
        cursor = "0"
        while True:
            cursor_raw, batch = await self.command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            cursor = text(cursor_raw)
            names = text(batch)
            if names:
                values = text(await self.command("MGET", *names))
                out.update({k: v for k, v in zip(names, values, strict=True) if v is not None})
            if cursor == "0":
                return out


class SentinelClient(_Connected):
    """A sentinel: where the master is, and what it knows of replicas and other sentinels."""

    def __init__(self, env: EnvironmentAPI, node: Node, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(env, node, None, timeout)

    async def master_address(self, name: str = MASTER_NAME) -> tuple[str, int] | None:
        """The master's announced address; None when this sentinel monitors no such name."""
        reply = text(await self.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name))
        if reply is None:
            return None
        return str(reply[0]), int(reply[1])

    async def master(self, name: str = MASTER_NAME) -> dict[str, Any]:
        return pairs(await self.command("SENTINEL", "MASTER", name))

    async def replicas(self, name: str = MASTER_NAME) -> list[dict[str, Any]]:
        return [pairs(r) for r in await self.command("SENTINEL", "REPLICAS", name)]

    async def sentinels(self, name: str = MASTER_NAME) -> list[dict[str, Any]]:
        return [pairs(s) for s in await self.command("SENTINEL", "SENTINELS", name)]


@dataclass(frozen=True)
class Discovery:
    """What the sentinels said: the master's announced address and the node behind it."""

    address: tuple[str, int]
    node: str | None
    sentinel: str


class RedisSentinelAdapter(BaseAdapter):
    """Redis with Sentinel in an Environment: clients by role, discovery, topology."""

    def __init__(self, env: EnvironmentAPI) -> None:
        super().__init__(env)
        self._clients: dict[str, _Connected] = {}
        spec = env.systems.get("redis-sentinel")
        common = spec.files.get("common.conf", "") if spec is not None else ""
        found = re.search(r"^requirepass\s+(\S+)", common, re.MULTILINE)
        # The manifest is the one place the password is written down.
        self.password: str | None = found.group(1) if found else None

    # ------------------------------------------------------------- clients

    def nodes(self, *roles: str) -> list[Node]:
        return [
            n
            for n in self.env.nodes.values()
            if n.system.name == "redis-sentinel" and (not roles or n.role in roles)
        ]

    def client(self, node: Node, process: int | str | None = None) -> Any:
        """A SentinelClient for a sentinel, else a RedisClient (`process`: a fresh one)."""
        if node.role == "sentinel":
            if node.name not in self._clients:
                self._clients[node.name] = SentinelClient(self.env, node)
            return self._clients[node.name]
        if process is not None:
            return RedisClient(self.env, node, self.password, process)
        if node.name not in self._clients:
            self._clients[node.name] = RedisClient(self.env, node, self.password)
        return self._clients[node.name]

    def redis(self, name: str, process: int | str | None = None) -> RedisClient:
        node = self.env.node(name)
        if node.role == "sentinel":
            raise UsageError(
                f"{name} is a sentinel, not a data node",
                field="peer",
                hint=f"data nodes: {', '.join(n.name for n in self.nodes(*DATA_ROLES))}",
            )
        client: RedisClient = self.client(node, process)
        return client

    def sentinel(self, name: str) -> SentinelClient:
        node = self.env.node(name)
        if node.role != "sentinel":
            raise UsageError(
                f"{name} is not a sentinel",
                field="peer",
                hint=f"sentinels: {', '.join(n.name for n in self.nodes('sentinel'))}",
            )
        client: SentinelClient = self.client(node)
        return client

    def node_at(self, address: tuple[str, int] | str) -> Node | None:
        """The node that announces `address` (public address, as sentinels report it)."""
        ip = address[0] if isinstance(address, tuple) else address
        return next((n for n in self.nodes() if ip in (n.address, n.bind_address)), None)

    def _run(self, coro: Any, timeout: float = DEFAULT_TIMEOUT + 2, what: str = "") -> Any:
        return self.env.run(coro, timeout, what=what)

    # ------------------------------------------------------------- discovery

    async def discover(
        self, name: str = MASTER_NAME, sentinels: Iterable[str] | None = None
    ) -> Discovery | None:
        """Ask the sentinels (in order) for the master; the first answer wins, None if none."""
        chosen = [self.env.node(s) for s in sentinels] if sentinels else self.nodes("sentinel")
        for node in chosen:
            if node.state != "running":
                continue
            try:
                address = await self.sentinel(node.name).master_address(name)
            except PeerlabError:
                continue
            if address is None:
                return None
            found = self.node_at(address)
            return Discovery(address, found.name if found else None, node.name)
        raise RedisUnavailable("no sentinel answered", hint="are the sentinels running?")

    async def views(self, name: str = MASTER_NAME) -> dict[str, str | None]:
        """Each running sentinel's answer: the node it calls master (None: it knows none)."""
        out: dict[str, str | None] = {}
        for node in self.nodes("sentinel"):
            if node.state != "running":
                continue
            try:
                address = await self.sentinel(node.name).master_address(name)
            except PeerlabError:
                continue
            found = self.node_at(address) if address else None
            out[node.name] = found.name if found else None
        return out

    def master(self, timeout: float = 30.0, *, not_in: Iterable[str] = ()) -> str:
        """The node every running sentinel names as master, and which says it is master."""
        excluded = set(not_in)

        def agreed() -> str | None:
            views = self._run(self.views(), 10, "sentinel views")
            named = set(views.values())
            if len(named) != 1 or None in named:
                return None
            (candidate,) = named
            if candidate is None or candidate in excluded:
                return None
            role = self._run(self.redis(candidate).role(), what=f"ROLE on {candidate}")
            return candidate if role == "master" else None

        found = wait_until(
            agreed,
            timeout,
            what="the sentinels to agree on a master"
            + (f" other than {', '.join(sorted(excluded))}" if excluded else ""),
            describe=lambda: f"sentinels say {self._run(self.views(), 10)}",
        )
        assert found is not None  # wait_until returns only a truthy value
        return found

    def unsettled(self, master: str) -> str:
        """What keeps a failover from working yet ("" when nothing): every running replica
        linked to `master`, and every sentinel knowing it, the replicas and the others."""
        replicas = [n for n in self.nodes("replica", "master") if n.state == "running"]
        replicas = [n for n in replicas if n.name != master]
        sentinels = [n for n in self.nodes("sentinel") if n.state == "running"]
        try:
            for node in replicas:
                state = self.inspect(node)
                if state.get("master") != master or state.get("link") != "up":
                    return f"replica {node.name}: {state}"
            for node in sentinels:
                state = self.inspect(node)
                if state["master"] != master or state["replicas"] < len(replicas):
                    return f"sentinel {node.name}: {state}"
                if state["other_sentinels"] < len(sentinels) - 1:
                    return f"sentinel {node.name} knows {state['other_sentinels']} other sentinels"
        except PeerlabError as exc:
            return str(exc)
        return ""

    def wait_settled(self, master: str, timeout: float = 45.0) -> None:
        """Wait until a failover away from `master` could work (see `unsettled`)."""
        wait_until(
            lambda: not self.unsettled(master),
            timeout,
            what=f"replicas to follow {master} and sentinels to know everyone",
            describe=lambda: self.unsettled(master),
        )

    def replication(self, name: str) -> dict[str, Any]:
        """A data node's INFO replication, with its replicas parsed."""
        info: dict[str, Any] = self._run(self.redis(name).info("replication"), what="INFO")
        info["replicas"] = parse_replicas(info)
        return info

    def write_on_new_master(
        self, old_master: str, timeout: float = 60.0, key: str = "peerlab:failover"
    ) -> tuple[float, str]:
        """Ask the sentinels for the master until they name another node, and write there;
        (monotonic time of the first acknowledged write, the new master)."""
        result: tuple[float, str] = self._run(
            self._write_on_new_master(old_master, key, timeout), timeout + 5
        )
        return result

    async def _write_on_new_master(
        self, old_master: str, key: str, timeout: float
    ) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        attempt = 0
        while time.monotonic() < deadline:
            attempt += 1
            try:
                found = await self.discover()
            except PeerlabError:
                found = None
            if found is not None and found.node not in (None, old_master):
                assert found.node is not None
                client = self.redis(found.node, process="failover")
                try:
                    await client.command("SET", key, attempt, timeout=0.5)
                    return time.monotonic(), found.node
                except PeerlabError:
                    pass  # promoted in the sentinels' eyes, not yet writable
            await asyncio.sleep(0.01)
        raise PeerlabError(
            f"no write succeeded on a master other than {old_master} within {timeout:g}s",
            hint="see the sentinels' logs (`peerlab peer logs D`)",
        )

    # ------------------------------------------------------------- CLI and state probe

    def inspect(self, node: Node) -> dict[str, Any]:
        """A data node's replication state, or a sentinel's view of the master."""
        if node.role == "sentinel":
            sentinel = self.sentinel(node.name)
            master = self._run(sentinel.master(), what="SENTINEL MASTER")
            found = self.node_at(master.get("ip", ""))
            return {
                "role": "sentinel",
                "master": found.name if found else None,
                "master_address": f"{master.get('ip')}:{master.get('port')}",
                "master_flags": master.get("flags"),
                "replicas": int(master.get("num-slaves", 0)),
                "other_sentinels": int(master.get("num-other-sentinels", 0)),
                "quorum": int(master.get("quorum", 0)),
            }
        info = self.replication(node.name)
        out: dict[str, Any] = {"role": info.get("role")}
        if info.get("role") == "master":
            named = [self.node_at(r.get("ip", "")) for r in info["replicas"]]
            out["replicas"] = [
                {"node": n.name if n else None, **r}
                for n, r in zip(named, info["replicas"], strict=True)
            ]
            out["offset"] = int(info.get("master_repl_offset", 0))
        else:
            found = self.node_at(info.get("master_host", ""))
            out["master"] = found.name if found else info.get("master_host")
            out["link"] = info.get("master_link_status")
            out["offset"] = int(info.get("slave_repl_offset", 0))
        return out

    @rpc
    def topology(self) -> dict[str, Any]:
        """Every node's role and link, and what each sentinel calls the master."""
        out: dict[str, Any] = {}
        for node in self.nodes():
            if node.state != "running":
                out[node.name] = {"state": node.state}
                continue
            try:
                out[node.name] = self.inspect(node)
            except PeerlabError as exc:
                out[node.name] = {"error": str(exc)}
        return out

    @rpc
    def discover_master(self, name: str = MASTER_NAME) -> dict[str, Any]:
        """Ask the sentinels where the master named `name` is."""
        found = self._run(self.discover(name), 10, "discovery")
        if found is None:
            raise UsageError(
                f"no sentinel monitors a master named {name!r}",
                field="name",
                hint=f"the manifest's sentinels monitor {MASTER_NAME!r}",
            )
        return {
            "address": f"{found.address[0]}:{found.address[1]}",
            "node": found.node,
            "sentinel": found.sentinel,
        }

    @rpc
    def set(self, key: str, value: str, replicas: int = 0) -> dict[str, Any]:
        """SET on the master the sentinels name (then WAIT for `replicas`)."""
        master = self.master(10)
        confirmed = self._run(self.redis(master).write(key, value, replicas=replicas))
        return {"master": master, "replicas_confirmed": confirmed}

    @rpc
    def get(self, key: str, node: str | None = None) -> dict[str, Any]:
        """GET on `node` (default: the master the sentinels name)."""
        target = node or self.master(10)
        return {"node": target, "value": self._run(self.redis(target).read(key))}
