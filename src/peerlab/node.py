"""One node of a running Environment: its addresses, ports, files, process and client."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from peerlab.manifest import SystemSpec

if TYPE_CHECKING:
    from peerlab.env import Environment

STATES = ("starting", "running", "paused", "stopped", "killed", "exited", "failed")


@dataclass
class Node:
    """A node. Control it through its methods; they act on the live process."""

    name: str
    index: int
    system: SystemSpec
    role: str | None
    address: str
    bind_address: str
    data_dir: Path
    stdout_path: Path
    stderr_path: Path
    env: Environment = field(repr=False)
    pid: int | None = None
    state: str = "starting"
    started_at: float = 0.0
    restarts: int = 0
    returncode: int | None = None
    exit_future: asyncio.Future[int] | None = field(default=None, repr=False)
    fields: dict[str, Any] = field(default_factory=dict, repr=False)

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
    def client(self) -> Any:
        """The system adapter's typed client for this node."""
        return self.env.client(self.name)

    @property
    def alive(self) -> bool:
        return self.state in ("starting", "running", "paused")

    def kill(self) -> None:
        self.env.kill(self.name)

    def stop(self) -> None:
        self.env.stop(self.name)

    def restart(self) -> None:
        self.env.restart(self.name)

    def pause(self) -> None:
        self.env.pause(self.name)

    def resume(self) -> None:
        self.env.resume(self.name)

    def logs(self, lines: int = 50, stream: str = "stdout") -> list[str]:
        path = self.stdout_path if stream == "stdout" else self.stderr_path
        if not path.exists():
            return []
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]

    def resources(self) -> dict[str, Any]:
        """CPU, memory (RSS and PSS) and uptime of the node's process."""
        if self.pid is None or not self.alive:
            return {}
        try:
            proc = psutil.Process(self.pid)
            with proc.oneshot():
                memory = proc.memory_info()
                cpu = proc.cpu_times()
            return {
                "rss_mb": round(memory.rss / 2**20, 1),
                "cpu_seconds": round(cpu.user + cpu.system, 2),
                "uptime_s": round(time.time() - self.started_at, 1),
            }
        except psutil.Error:
            return {}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "system": self.system.name,
            "role": self.role,
            "state": self.state,
            "pid": self.pid,
            "address": self.address,
            "bind_address": self.bind_address,
            "ports": self.ports,
            "data_dir": str(self.data_dir),
            "stdout": str(self.stdout_path),
            "stderr": str(self.stderr_path),
            "restarts": self.restarts,
            "returncode": self.returncode,
            **self.resources(),
        }
