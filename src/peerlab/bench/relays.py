"""The relays `peerlab bench proxy` measures the fabric's proxy against, in the same run.

- `splice_relay`: a minimal relay this module runs in a child process: one blocking thread
  per direction moving the bytes with `os.splice` through a 1 MiB pipe, so they are never
  copied into the process. The practical limit of a userspace relay on this kernel.
- `haproxy`: Debian's haproxy, `mode tcp`, its default buffers and threads.
- `socat`: Debian's socat, `TCP-LISTEN:...,fork TCP:...`, its default 8 KiB blocks.

Each listens on 127.0.0.1 and forwards to one upstream port. haproxy and socat are used
as installed; when one is missing, `start` says so instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import psutil

from peerlab.errors import PeerlabError

NAMES = ("splice_relay", "haproxy", "socat")
PIPE_SIZE = 1 << 20  # the splice relay's pipe: as much as one read of the fabric's proxy
READY_WITHIN = 10.0  # seconds for a relay to listen
BIND_TRIES = 3  # ports tried, should another process take one first

HAPROXY_CONFIG = """\
defaults
    mode tcp
    timeout connect 10s
    timeout client 60s
    timeout server 60s

listen bench
    bind 127.0.0.1:{port}
    server upstream 127.0.0.1:{upstream}
"""


@dataclass
class Relay:
    """A running relay: where it listens, and its process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    files: list[str] = field(default_factory=list)  # removed on stop

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for path in self.files:
            shutil.rmtree(path, ignore_errors=True)


def start(name: str, upstream: int) -> Relay | str:
    """Relay `name` forwarding to 127.0.0.1:`upstream`, listening; or why it cannot run.

    The port is free when chosen, but another process may take it before the relay binds
    it: the relay then exits, and the next try has another port."""
    for _ in range(BIND_TRIES - 1):
        with contextlib.suppress(_LostPort):
            return _start(name, upstream)
    return _start(name, upstream)


def _start(name: str, upstream: int) -> Relay | str:
    port = _free_port()
    if name == "splice_relay":
        code = f"import {__name__} as r; r.splice_relay({port}, {upstream})"
        return _started(name, port, [sys.executable, "-c", code])
    program = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if program is None:
        return f"{name} is not installed (Debian: apt-get install {name})"
    if name == "haproxy":
        folder = tempfile.mkdtemp(prefix="peerlab-bench-haproxy-")
        config = os.path.join(folder, "haproxy.cfg")
        with open(config, "w") as file:
            file.write(HAPROXY_CONFIG.format(port=port, upstream=upstream))
        return _started(name, port, [program, "-db", "-f", config], [folder])
    listen = f"TCP4-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"
    return _started(name, port, [program, listen, f"TCP4:127.0.0.1:{upstream}"])


def _started(name: str, port: int, command: list[str], files: list[str] | None = None) -> Relay:
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )
    relay = Relay(name, port, process, files or [])
    deadline = time.monotonic() + READY_WITHIN
    while not _listening(port, process.pid):
        if process.poll() is not None and _taken(port):
            relay.stop()
            raise _LostPort(port)
        if process.poll() is not None or time.monotonic() > deadline:
            relay.stop()
            raise PeerlabError(
                f"{name} did not listen on 127.0.0.1:{port}",
                hint=f"it exited with {process.returncode}"
                if process.returncode is not None
                else f"not within {READY_WITHIN:g}s",
            )
        time.sleep(0.02)  # polling the kernel's socket table
    return relay


class _LostPort(Exception):
    """Another process took the relay's port before the relay could bind it."""


def _taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int, pid: int) -> bool:
    # Read from the kernel's socket table: a test connection would reach the upstream. The
    # relay's own socket: the port was free a moment ago, and another process may have
    # taken it since (the relay then fails to bind and exits).
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid == pid
        for c in psutil.net_connections("tcp4")
    )


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Move `source` to `sink` until the end of the stream: socket -> pipe -> socket."""
    read_end, write_end = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    try:
        while count := os.splice(source.fileno(), write_end, PIPE_SIZE):
            while count:
                count -= os.splice(read_end, sink.fileno(), count)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # a reset: the other direction ends too
    finally:
        os.close(read_end)
        os.close(write_end)


def _relay(client: socket.socket, upstream: int) -> None:
    with client, socket.create_connection(("127.0.0.1", upstream)) as server:
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=_pipe, args=(server, client), daemon=True)
        back.start()
        _pipe(client, server)
        back.join()


def splice_relay(port: int, upstream: int) -> None:
    """Child process: the splice relay on 127.0.0.1:`port`, until it is terminated."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        while True:
            client, _ = listener.accept()
            threading.Thread(target=_relay, args=(client, upstream), daemon=True).start()
