"""Test nodes for the fabric's tests: echo peers on loopback addresses, and measurements.

Peers listen on their bind address and dial from it, as nodes do under the fabric; each
records when data reached it, so one-way delays are measured on one clock.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import random
import socket
import threading
import time
from dataclasses import dataclass, field

# A random /16 per test process, above the blocks Environments lease (127.10-229.x.x), so
# parallel runs do not share addresses. Public addresses use 127.B.0-127.x, bind 127.B.128+.x.
_BLOCK = random.SystemRandom().randrange(230, 255)
_INDEX = itertools.count()

# Seconds of latency the tests inject. A hop the latency does not apply to is checked
# against it (`< DELAY`): the failure it guards is the latency wrongly added, and a loaded
# machine must not look like one.
DELAY = 0.3
DELAY_MS = DELAY * 1000


def addresses() -> tuple[str, str]:
    """A fresh (public, bind) pair of loopback addresses."""
    index = next(_INDEX) % (128 * 250)
    third, fourth = index // 250, index % 250 + 2
    return f"127.{_BLOCK}.{third}.{fourth}", f"127.{_BLOCK}.{third + 128}.{fourth}"


@dataclass
class Peer:
    """A test node: a TCP echo server on its bind address that records what arrives when."""

    name: str
    public: str
    bind: str
    arrivals: queue.Queue[tuple[float, bytes]] = field(default_factory=queue.Queue)
    port: int = 0
    _server: socket.socket | None = None
    _sockets: list[socket.socket] = field(default_factory=list)

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.bind, 0))
        server.listen(64)
        self._server, self.port = server, server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._sockets.append(conn)
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := conn.recv(65536):
                self.arrivals.put((time.monotonic(), data))
                conn.sendall(data)
        conn.close()

    def dial(self, other: Peer, timeout: float = 2.0) -> socket.socket:
        """Connect from this peer's bind address to `other`'s public address."""
        sock = socket.socket()
        sock.settimeout(timeout)
        sock.bind((self.bind, 0))
        sock.connect((other.public, other.port))
        self._sockets.append(sock)
        return sock

    def stop(self) -> None:
        for sock in [self._server, *self._sockets]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()


def round_trip(sock: socket.socket, data: bytes = b"ping") -> float:
    """Seconds for `data` to come back (raises if the connection fails)."""
    began = time.monotonic()
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionResetError("closed")
        got += piece
    assert got == data
    return time.monotonic() - began


def reachable(src: Peer, dst: Peer) -> bool:
    """Whether a new connection from `src` to `dst` carries an echo."""
    try:
        sock = src.dial(dst, timeout=1.0)
        round_trip(sock)
        sock.close()
        return True
    except OSError:
        return False


def one_way_delay(src_sock: socket.socket, dst: Peer, data: bytes = b"x") -> float:
    """Seconds from sending `data` on `src_sock` until it reached `dst`."""
    while not dst.arrivals.empty():
        dst.arrivals.get_nowait()
    began = time.monotonic()
    src_sock.sendall(data)
    arrived, _ = dst.arrivals.get(timeout=5)
    echoed = b""
    while len(echoed) < len(data):  # take the echo back, so the socket can be used again
        echoed += src_sock.recv(65536)
    return arrived - began
