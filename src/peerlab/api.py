"""The surfaces of a live Environment, as Protocols that its consumers type against.

Adapters, scenarios, snapshots, reports and the nemesis use an Environment through these,
so none of them imports `peerlab.env` (which composes them). `ControlAPI` and `NetAPI` are
also what the supervisor serves: the CLI holds typed remote proxies of them
(`Remote.namespace`), and the nemesis drives either the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import aiohttp

    from peerlab.checkers.verdict import Verdict
    from peerlab.clock import Clock
    from peerlab.fabric.network import Network
    from peerlab.history import History
    from peerlab.manifest import SystemSpec
    from peerlab.node import Node
    from peerlab.transport import Transport

T = TypeVar("T")


@dataclass(frozen=True)
class ByzantineModes:
    """How a system's nodes are made to lie: an environment variable read at start-up, and
    the modes it accepts (the nemesis restarts a node with it set)."""

    variable: str
    modes: tuple[str, ...]


class Adapter(Protocol):
    """A system's adapter, bound to one Environment."""

    byzantine: ByzantineModes | None

    def client(self, node: Node) -> Any:
        """The typed client for `node` (every call it makes is recorded in the history)."""
        ...

    def inspect(self, node: Node) -> dict[str, Any] | None:
        """What the node says about itself (roles, peers, files), None when nothing."""
        ...

    def graph(self) -> Sequence[tuple[str, str]] | None:
        """Who is connected to whom, as (from, to) node names; None when it cannot tell."""
        ...


class ControlAPI(Protocol):
    """The node verbs (the supervisor's `env` namespace)."""

    def kill(self, name: str) -> dict[str, Any]: ...
    def stop(self, name: str) -> dict[str, Any]: ...
    def pause(self, name: str) -> dict[str, Any]: ...
    def resume(self, name: str) -> dict[str, Any]: ...
    def restart(self, name: str, timeout: float | None = None) -> dict[str, Any]: ...
    def skew(self, name: str, seconds: float) -> dict[str, Any]: ...
    def setenv(
        self, name: str, values: dict[str, str | None], restart: bool = True
    ) -> dict[str, Any]: ...
    def lie(self, name: str, mode: str | None) -> dict[str, Any]: ...
    def add_peers(
        self, count: int, system: str | None = None, role: str | None = None
    ) -> list[dict[str, Any]]: ...
    def stop_peers(self, names: list[str], kill: bool = False) -> list[dict[str, Any]]: ...
    def restart_peers(
        self, names: list[str], timeout: float | None = None
    ) -> list[dict[str, Any]]: ...
    def peers(self) -> list[dict[str, Any]]: ...
    def record(self, entry: str, what: str, data: dict[str, Any] | None = None) -> None: ...


class NetAPI(Protocol):
    """The fault verbs the nemesis needs (the supervisor's `net` namespace)."""

    def apply(self, fault: dict[str, Any]) -> dict[str, Any]: ...
    def remove(self, name: str) -> None: ...
    def clear(self) -> None: ...


class ControlTarget(ControlAPI, Protocol):
    """A network the nemesis and churn act on: the node verbs, and its `net`."""

    @property
    def net(self) -> NetAPI: ...


class EnvironmentAPI(ControlAPI, Protocol):
    """What adapters, scenarios, snapshots and reports may use of a live Environment."""

    name: str
    id: str
    seed: int
    workdir: Path
    started_at: float
    clock_skews: dict[str, float]
    node_env: dict[str, dict[str, str]]
    versions: dict[str, str]

    @property
    def nodes(self) -> Mapping[str, Node]: ...
    @property
    def history(self) -> History: ...
    @property
    def net(self) -> Network: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def transport(self) -> Transport: ...
    @property
    def systems(self) -> Mapping[str, SystemSpec]: ...
    @property
    def adapters(self) -> Mapping[str, Adapter]: ...

    def node(self, name: str) -> Node: ...
    def __iter__(self) -> Iterator[Node]: ...
    def live_nodes(self) -> list[Node]: ...
    def system(self, name: str | SystemSpec) -> SystemSpec: ...
    def start(
        self,
        system: str | SystemSpec = "syncpeer",
        peers: int | Sequence[str] | None = None,
        *,
        role: str | None = None,
        wait: bool = True,
        version: str | Mapping[str, str] | None = None,
    ) -> list[Node]: ...
    def adapter(self, system: str | None = None) -> Adapter: ...
    def client(self, name: str) -> Any: ...
    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0, what: str = "") -> T: ...
    def http_session(self) -> aiohttp.ClientSession: ...
    def wait_until(
        self,
        condition: Callable[[], T],
        timeout: float = 10.0,
        *,
        what: str = "",
        describe: Callable[[], str] | None = None,
    ) -> T: ...
    def describe(self, node: Node) -> dict[str, Any]: ...
    def export_data(self, node: Node, target: Path) -> None: ...
    def import_data(self, node: Node, source: Path) -> None: ...
    def backend_info(self) -> dict[str, Any]: ...
    def freeze(self, names: Sequence[str]) -> list[str]: ...
    def thaw(self, names: Sequence[str]) -> None: ...
    def record_verdict(self, verdict: Verdict) -> None: ...
    def save_artifacts(self, dest: Path | None = None, *, snapshot: bool = True) -> Path: ...
    def status(self) -> dict[str, Any]: ...
