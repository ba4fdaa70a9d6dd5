"""One node of a running Environment, as plain data: its names, addresses, files and state.

Its `NodeHandle` is what the backend that started it knows it by (a pid, a container id).

A `Node` holds no reference back to its Environment; control goes through the Environment
(`env.kill(name)`, `env.control`), and an adapter's client is `env.client(name)`. A
`NodeRecord` is the serialisable form that a handover, an adoption and a snapshot share.
"""

from __future__ import annotations

import asyncio
import string
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from peerlab.manifest import SystemSpec


class NodeState(StrEnum):
    """Where a node is in its life. Values are the words the CLI and the history show."""

    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    KILLED = "killed"
    EXITED = "exited"
    FAILED = "failed"

    @property
    def alive(self) -> bool:
        """The node has a process (or container, or simulated peer) that may still act."""
        return self in (NodeState.STARTING, NodeState.RUNNING, NodeState.PAUSED)


DOWN_STATES = frozenset({NodeState.STOPPED, NodeState.KILLED, NodeState.EXITED, NodeState.FAILED})


def tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a text file ([] when it does not exist)."""
    if not path.exists():
        return []
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]


@dataclass
class NodeHandle:
    """A started node as its backend knows it. `key` names it to the backend (a pid, a
    container id); `exited` resolves with its exit code when it ends."""

    key: str
    exited: asyncio.Future[int | None]
    pid: int | None = None  # the node's main process on this machine, when there is one
    state: dict[str, Any] = field(default_factory=dict)  # what `adopt` needs of it

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "pid": self.pid, "state": self.state}


def node_name(index: int) -> str:
    """A, B, ..., Z, AA, AB, ...: short names that read well in commands and logs."""
    letters = string.ascii_uppercase
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = letters[rest] + name
    return name


@dataclass
class Node:
    """A node: what it is (system, role, addresses, files) and where it is in its life."""

    name: str
    index: int
    system: SystemSpec
    role: str | None
    address: str
    bind_address: str
    data_dir: Path
    stdout_path: Path
    stderr_path: Path
    handle: NodeHandle | None = field(default=None, repr=False)
    state: NodeState = NodeState.STARTING
    started_at: float = 0.0
    restarts: int = 0
    returncode: int | None = None
    fields: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def pid(self) -> int | None:
        """The node's main process on this machine, when it has one."""
        return self.handle.pid if self.handle is not None else None

    @property
    def ports(self) -> dict[str, int]:
        return {name: spec.port for name, spec in self.system.ports.items()}

    def url(self, port: str | None = None, path: str = "") -> str:
        """The URL peers use to reach this node's port (through the fabric when it is on)."""
        port_name = port or next(iter(self.system.ports))
        return f"http://{self.address}:{self.system.ports[port_name].port}{path}"

    def direct_url(self, port: str | None = None, path: str = "") -> str:
        """The node's own listening address, bypassing the fabric (for the test harness)."""
        port_name = port or next(iter(self.system.ports))
        return f"http://{self.bind_address}:{self.system.ports[port_name].port}{path}"

    @property
    def alive(self) -> bool:
        return self.state.alive

    def logs(self, lines: int = 50, stream: Literal["stdout", "stderr"] = "stdout") -> list[str]:
        """The last `lines` lines of its output (every backend keeps them in these files)."""
        return tail(self.stdout_path if stream == "stdout" else self.stderr_path, lines)

    def record(self) -> NodeRecord:
        return NodeRecord(
            name=self.name,
            index=self.index,
            system=self.system.name,
            role=self.role,
            address=self.address,
            bind_address=self.bind_address,
            state=self.state,
            restarts=self.restarts,
            fields=self.fields,
            handle=self.handle.to_json() if self.handle is not None else None,
        )

    def describe(self) -> dict[str, Any]:
        """The node as the CLI and results show it (without live resources)."""
        return {
            "name": self.name,
            "system": self.system.name,
            "role": self.role,
            "version": self.fields.get("version") or None,
            "state": str(self.state),
            "pid": self.pid,
            "address": self.address,
            "bind_address": self.bind_address,
            "ports": self.ports,
            "data_dir": str(self.data_dir),
            "stdout": str(self.stdout_path),
            "stderr": str(self.stderr_path),
            "restarts": self.restarts,
            "returncode": self.returncode,
        }


@dataclass
class NodeRecord:
    """A node as saved by a handover or a snapshot, and read back by an adoption."""

    name: str
    index: int
    system: str
    role: str | None
    address: str
    bind_address: str
    state: NodeState
    restarts: int = 0
    fields: dict[str, Any] = field(default_factory=dict)
    handle: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index": self.index,
            "system": self.system,
            "role": self.role,
            "address": self.address,
            "bind_address": self.bind_address,
            "state": str(self.state),
            "restarts": self.restarts,
            "fields": self.fields,
            "handle": self.handle,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> NodeRecord:
        return cls(
            name=str(raw["name"]),
            index=int(raw["index"]),
            system=str(raw["system"]),
            role=raw.get("role"),
            address=str(raw["address"]),
            bind_address=str(raw.get("bind_address", raw["address"])),
            state=NodeState(raw.get("state", "stopped")),
            restarts=int(raw.get("restarts", 0)),
            fields=dict(raw.get("fields") or {}),
            handle=raw.get("handle"),
        )
