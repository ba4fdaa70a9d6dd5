"""What syncpeer's simulated node uses of its host (duck-typed: syncpeer never imports
peerlab, whose `peerlab.sim.host.Host` provides it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from random import Random
from typing import Any, Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Disk(Protocol):
    def read(self, path: str) -> bytes | None: ...
    def exists(self, path: str) -> bool: ...
    def size(self, path: str) -> int: ...
    def write(self, path: str, data: bytes, *, sync: bool = False, share: bool = False) -> None: ...
    def truncate(self, path: str, size: int) -> None: ...
    def write_at(self, path: str, position: int, data: bytes) -> None: ...
    def rename(
        self, source: str, target: str, *, sync: bool = False, share: bool = False
    ) -> None: ...
    def delete(self, path: str, *, sync: bool = False) -> None: ...
    def paths(self, prefix: str = "") -> Iterator[str]: ...
    def sync_dir(self, directory: str) -> None: ...


class Request(Protocol):
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


class Receiver(Protocol):
    def head(self, status: int, headers: Mapping[str, str]) -> None: ...
    def data(self, chunk: bytes) -> None: ...
    def end(self) -> None: ...
    def error(self, reason: str) -> None: ...


class Exchange(Protocol):
    def cancel(self) -> None: ...


class Reply(Protocol):
    """The answer to a request, once: its body all at once, or paced (fast, piece, every):
    the first `fast` bytes at once, then `piece` bytes every `every` seconds."""

    def __call__(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        pace: tuple[int, int, float] | None = None,
    ) -> None: ...


Handler = Callable[[Request, str | None, Reply], None]


class Host(Protocol):
    name: str
    address: str
    args: tuple[str, ...]
    env: dict[str, str]
    random: Random
    disk: Disk

    def now(self) -> float: ...
    def wall(self) -> float: ...
    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer: ...
    def log(self, line: str) -> None: ...
    def error(self, text: str) -> None: ...
    def listen_udp(self, port: int, receive: Callable[[bytes, str], None]) -> None: ...
    def send_udp(self, port: int, to: str, data: bytes) -> None: ...
    def serve_http(self, port: int, handle: Handler) -> None: ...
    def request(
        self,
        to: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        receiver: Receiver,
    ) -> Exchange | None: ...
