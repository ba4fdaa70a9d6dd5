"""The traffic of the proxy benchmarks, in two child processes: a sink and an echo server
in one, a sender and a pinger in the other, so a proxy under test has the measuring process
(its loop thread, as in an Environment) to itself. `Traffic` orders them about; each answer
comes within `DEADLINE` seconds.
"""

from __future__ import annotations

import os
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from peerlab.errors import PeerlabError, UsageError

WRITE = 1 << 20
MESSAGE = b"p" * 32
DEADLINE = 30.0  # seconds for any one measurement
ROUNDS = 10  # the pings alternate between the two paths in this many rounds


def _listener(bind: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, 0))
    sock.listen(16)
    return sock


def _say(*words: object) -> None:
    sys.stdout.write(" ".join(map(str, words)) + "\n")
    sys.stdout.flush()


def _sink(sock: socket.socket) -> None:
    buffer = bytearray(WRITE)
    while True:
        conn, _ = sock.accept()
        count = 0
        while n := conn.recv_into(buffer):
            count += n
        _say(count, time.monotonic())
        conn.close()


def _echo(sock: socket.socket) -> None:
    while True:
        conn, _ = sock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := conn.recv(4096):
            conn.sendall(data)
        conn.close()


def servers(bind: str = "127.0.0.1") -> None:
    """Child process: a sink that says `bytes end_time` per connection, and an echo server."""
    sink, echo = _listener(bind), _listener(bind)
    threading.Thread(target=_sink, args=(sink,), daemon=True).start()
    threading.Thread(target=_echo, args=(echo,), daemon=True).start()
    _say(sink.getsockname()[1], echo.getsockname()[1])
    sys.stdin.read()  # until the parent closes our stdin


def clients() -> None:
    """Child process: `send HOST PORT BYTES` answers the start time, `ping HOST PORT N` the
    round trips."""
    data = memoryview(b"x" * WRITE)
    for line in sys.stdin:
        verb, host, port, amount = line.split()
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if verb == "send":
            began = time.monotonic()
            for start in range(0, int(amount), WRITE):
                sock.sendall(data[: min(WRITE, int(amount) - start)])
            _say(began)
        else:
            rtts = []
            for _ in range(int(amount)):
                began_ns = time.perf_counter_ns()
                sock.sendall(MESSAGE)
                got = 0
                while got < len(MESSAGE):
                    got += len(sock.recv(4096))
                rtts.append(time.perf_counter_ns() - began_ns)
            _say(*rtts)
        sock.close()


def check_amounts(megabytes: int, pings: int, repeats: int) -> None:
    """A UsageError naming the first amount no run could measure with, before anything starts."""
    for field, value, least, why in (
        ("--megabytes", megabytes, 1, ""),
        ("--pings", pings, ROUNDS, f": the pings alternate in {ROUNDS} rounds"),
        ("--repeats", repeats, 1, ""),
    ):
        if value < least:
            raise UsageError(f"{field} is {value}", field=field, hint=f"use {least} or more{why}")


def percentile(values: list[int], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Traffic:
    """The sender and pinger, the sink and echo server. `servers_in`
    and `clients_in` prefix their commands (`ip netns exec NAME`: netns.py runs them in two
    namespaces), `bind` is where the servers listen, `host` where the clients reach them."""

    def __init__(
        self,
        servers_in: tuple[str, ...] = (),
        clients_in: tuple[str, ...] = (),
        bind: str = "127.0.0.1",
        host: str = "127.0.0.1",
    ) -> None:
        # Plain child processes (not multiprocessing): nothing of this process, its loop
        # thread or its main module is copied or imported again.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.host = host
        self._servers, self._clients = (
            subprocess.Popen(
                [*prefix, sys.executable, "-c", f"import {__name__} as b; b.{call}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for prefix, call in ((servers_in, f"servers({bind!r})"), (clients_in, "clients()"))
        )
        self.sink_port, self.echo_port = map(int, self._answer(self._servers))

    @staticmethod
    def _answer(process: subprocess.Popen[str]) -> list[str]:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], DEADLINE)
        line = process.stdout.readline() if ready else ""
        if not line:
            raise PeerlabError(
                "a benchmark process did not answer",
                hint=f"it exited with {process.poll()}"
                if process.poll() is not None
                else f"no answer within {DEADLINE:g}s",
            )
        return line.split()

    def _order(self, *words: object) -> list[str]:
        assert self._clients.stdin is not None
        self._clients.stdin.write(" ".join(map(str, words)) + "\n")
        self._clients.stdin.flush()
        return self._answer(self._clients)

    def send(self, port: int, amount: int, host: str | None = None) -> float:
        """Bytes per second of `amount` bytes from the sender to the sink via `port`."""
        began = float(self._order("send", host or self.host, port, amount)[0])
        count, ended = self._answer(self._servers)
        if int(count) != amount:
            raise PeerlabError(f"the sink got {count} of {amount} bytes")
        return amount / (float(ended) - began)

    def ping(self, port: int, count: int, host: str | None = None) -> list[int]:
        return [int(rtt) for rtt in self._order("ping", host or self.host, port, count)]

    def close(self) -> None:
        for process in (self._clients, self._servers):
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


@dataclass(frozen=True)
class Route:
    """Where the clients reach the servers: a host, and the sink's and echo server's ports."""

    host: str
    sink: int
    echo: int


def _rotated(routes: dict[str, Route], number: int) -> list[tuple[str, Route]]:
    """The routes in the order of round `number`: the list begun at `number` (modulo)."""
    items = list(routes.items())
    start = number % len(items)
    return items[start:] + items[:start]


def compare(
    traffic: Traffic,
    direct: Route,
    proxied: Route,
    amount: int,
    pings: int,
    repeats: int,
    others: dict[str, Route] | None = None,
) -> dict[str, float]:
    """Throughput (one bulk stream of `amount` bytes, median of `repeats`) and round trips
    (`pings` in alternating rounds, after a warm-up) of both routes, side by side; and the
    throughput of `others` (other relays: `NAME_mb_s`, and the proxy's `proxy_vs_NAME`) and,
    for those with an echo port, their added round trip (`NAME_added_rtt_p50_us`, ...),
    each round running every route in turn, so the machine's noise hits all alike, and each
    round starting one route further down the list, so no route always runs right after the
    same one (direct, say, which leaves the machine's buffers and caches in its own state)."""
    others = others or {}
    routes = {"direct": direct, "proxy": proxied, **others}
    sent: dict[str, list[float]] = {name: [] for name in routes}
    for number in range(repeats):
        for name, route in _rotated(routes, number):
            sent[name].append(traffic.send(route.sink, amount, route.host))
    pinged = {name: route for name, route in routes.items() if route.echo}
    rtts: dict[str, list[int]] = {name: [] for name in pinged}
    for route in pinged.values():
        traffic.ping(route.echo, pings // ROUNDS, route.host)  # warm up every path
    for number in range(ROUNDS):  # interleaved, so the machine's noise hits all alike
        for name, route in _rotated(pinged, number):
            rtts[name] += traffic.ping(route.echo, pings // ROUNDS, route.host)
    mb_s = {name: statistics.median(rates) / 1e6 for name, rates in sent.items()}

    def us(name: str, share: float) -> float:
        return percentile(rtts[name], share) / 1000

    def added(name: str, share: float) -> float:
        return round(us(name, share) - us("direct", share), 1)

    relayed = [name for name in pinged if name in others]
    return {
        "direct_mb_s": round(mb_s["direct"], 1),
        "proxy_mb_s": round(mb_s["proxy"], 1),
        "ratio": round(mb_s["proxy"] / mb_s["direct"], 3),
        **{f"{name}_mb_s": round(mb_s[name], 1) for name in others},
        **{f"proxy_vs_{name}": round(mb_s["proxy"] / mb_s[name], 3) for name in others},
        "direct_rtt_p50_us": round(us("direct", 0.5), 1),
        "proxy_rtt_p50_us": round(us("proxy", 0.5), 1),
        "direct_rtt_p99_us": round(us("direct", 0.99), 1),
        "proxy_rtt_p99_us": round(us("proxy", 0.99), 1),
        "added_rtt_p50_us": added("proxy", 0.5),
        "added_rtt_p99_us": added("proxy", 0.99),
        **{f"{name}_added_rtt_p50_us": added(name, 0.5) for name in relayed},
        **{f"{name}_added_rtt_p99_us": added(name, 0.99) for name in relayed},
    }
