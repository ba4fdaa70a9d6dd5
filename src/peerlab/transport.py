"""How the harness speaks HTTP to a node: a request to one of its ports, straight to where
the node listens (never through the fault plane: the harness's control channel must not
suffer the faults it injects).

On real backends that is aiohttp over the node's bind address (`HttpTransport`); a backend
whose nodes are not processes gives its own (the simulator delivers the request in process,
on virtual time). Adapters' clients and the readiness probe use only this, so the same
client code works wherever the nodes run.

    answer = env.transport.request(node, "http", HttpRequest("GET", "/admin/status"), 10)
    answer.status, answer.json()
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from peerlab.errors import PeerlabError

if TYPE_CHECKING:
    from peerlab.node import Node


class Unreachable(PeerlabError):
    """The request never reached the node: it is down, or refused the connection."""


class NoAnswer(PeerlabError):
    """The node took the request but no whole answer came: a timeout, a broken connection."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # with its query string
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Transport(Protocol):
    def request(self, node: Node, port: str, request: HttpRequest, timeout: float) -> HttpAnswer:
        """Send `request` to the node's `port` from this thread and wait for the answer, at
        most `timeout` seconds of the environment's clock."""
        ...

    async def fetch(
        self, node: Node, port: str, request: HttpRequest, timeout: float
    ) -> HttpAnswer:
        """The same, from a coroutine on the environment's loop (the readiness probe). A
        backend on virtual time answers only what needs no time to pass."""
        ...


Run = Callable[..., Any]


class HttpTransport:
    """aiohttp to the node's bind address, on the environment's loop."""

    def __init__(self, run: Run, session: Callable[[], aiohttp.ClientSession]) -> None:
        self._run = run
        self._session = session

    def request(self, node: Node, port: str, request: HttpRequest, timeout: float) -> HttpAnswer:
        what = f"{request.method} {request.path} on {node.name}"
        coroutine: Coroutine[Any, Any, HttpAnswer] = self.fetch(node, port, request, timeout)
        answer: HttpAnswer = self._run(coroutine, timeout + 2, what=what)
        return answer

    async def fetch(
        self, node: Node, port: str, request: HttpRequest, timeout: float
    ) -> HttpAnswer:
        what = f"{request.method} {request.path}"
        try:
            async with self._session().request(
                request.method,
                node.direct_url(port, request.path),
                data=request.body,
                headers=dict(request.headers),
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                return HttpAnswer(response.status, dict(response.headers), await response.read())
        except aiohttp.ClientConnectorError as exc:
            raise Unreachable(f"peer {node.name} refused {what}: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NoAnswer(f"peer {node.name} did not answer {what}: {exc}") from exc
