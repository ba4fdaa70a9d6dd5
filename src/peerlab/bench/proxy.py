"""`peerlab bench proxy`: the fabric's TCP proxy against direct loopback, in one run.

- throughput: one bulk stream of 1 MiB writes, direct and through a proxy with no toxic
  (alternating, median of `repeats` each), in MB/s, and their ratio;
- added round trip: ping-pong of 32-byte messages, direct and proxied in alternating rounds;
  each percentile of the proxied round trip minus the same percentile direct, in µs;
- accuracy: the round-trip p50 through a 100 ms latency toxic, and the rate of 2 MB
  through a 1 MB/s (1000 KB/s) bandwidth toxic.

The sender and pinger run in one child process and the sink and echo server in another, so
the proxy has this process (its loop thread, as in an Environment) to itself. Loopback only;
bounded in time (each answer within 30 s; about 10 s in all with the defaults).
"""

from __future__ import annotations

import json
import os
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import typer

from peerlab.aio import LoopThread
from peerlab.errors import PeerlabError
from peerlab.fabric.links import Links, LinkToxic
from peerlab.fabric.spec import ToxicSpec
from peerlab.fabric.tcp import TcpProxy
from peerlab.fabric.toxics import Bandwidth, Latency, Toxic

WRITE = 1 << 20
MESSAGE = b"p" * 32
DEADLINE = 30.0  # seconds for any one measurement
ROUNDS = 10  # the pings alternate between the two paths in this many rounds


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
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


def servers() -> None:
    """Child process: a sink that says `bytes end_time` per connection, and an echo server."""
    sink, echo = _listener(), _listener()
    threading.Thread(target=_sink, args=(sink,), daemon=True).start()
    threading.Thread(target=_echo, args=(echo,), daemon=True).start()
    _say(sink.getsockname()[1], echo.getsockname()[1])
    sys.stdin.read()  # until the parent closes our stdin


def clients() -> None:
    """Child process: `send PORT BYTES` answers the start time, `ping PORT N` the RTTs."""
    data = memoryview(b"x" * WRITE)
    for line in sys.stdin:
        verb, port, amount = line.split()
        sock = socket.create_connection(("127.0.0.1", int(port)))
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


def _percentile(values: list[int], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class _Bench:
    def __init__(self) -> None:
        # Plain child processes (not multiprocessing): nothing of this process, its loop
        # thread or its main module is copied or imported again.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._servers, self._clients = (
            subprocess.Popen(
                [sys.executable, "-c", f"import {__name__} as b; b.{role}()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for role in ("servers", "clients")
        )
        self.sink_port, self.echo_port = map(int, self._answer(self._servers))
        self.loop = LoopThread("bench-proxy")

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

    def proxy(self, port: int, toxic: Toxic | None = None, stream: str = "downstream") -> TcpProxy:
        links = Links(seed=1)
        if toxic is not None:
            links.toxics.add(LinkToxic(ToxicSpec(toxic, stream=stream)))
        proxy = TcpProxy("bench", ("127.0.0.1", 0), ("127.0.0.1", port), links)
        self.loop.run(proxy.start())
        return proxy

    def stop(self, proxy: TcpProxy) -> None:
        self.loop.run(proxy.stop())

    def send(self, port: int, amount: int) -> float:
        """Bytes per second of `amount` bytes from the sender to the sink via `port`."""
        began = float(self._order("send", port, amount)[0])
        count, ended = self._answer(self._servers)
        if int(count) != amount:
            raise PeerlabError(f"the sink got {count} of {amount} bytes")
        return amount / (float(ended) - began)

    def ping(self, port: int, count: int) -> list[int]:
        return [int(rtt) for rtt in self._order("ping", port, count)]

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
        self.loop.close()


def run(megabytes: int = 1024, pings: int = 5000, repeats: int = 3) -> dict[str, Any]:
    """Measure; every key is described in the module docstring."""
    amount = megabytes * 2**20
    bench = _Bench()
    loop_kind = type(bench.loop.loop).__module__.split(".")[0]
    try:
        plain = bench.proxy(bench.sink_port)
        direct, proxied = [], []
        for _ in range(repeats):
            direct.append(bench.send(bench.sink_port, amount))
            proxied.append(bench.send(plain.listen[1], amount))
        bench.stop(plain)

        echo = bench.proxy(bench.echo_port)
        bench.ping(bench.echo_port, pings // ROUNDS)  # warm up both paths
        bench.ping(echo.listen[1], pings // ROUNDS)
        rtt_direct, rtt_proxied = [], []
        for _ in range(ROUNDS):  # interleaved, so the machine's noise hits both alike
            rtt_direct += bench.ping(bench.echo_port, pings // ROUNDS)
            rtt_proxied += bench.ping(echo.listen[1], pings // ROUNDS)
        bench.stop(echo)

        slow = bench.proxy(bench.echo_port, Latency(latency=100))
        rtt_latency = bench.ping(slow.listen[1], 20)
        bench.stop(slow)

        narrow = bench.proxy(bench.sink_port, Bandwidth(rate=1000), "upstream")
        rate = bench.send(narrow.listen[1], 2_000_000)
        bench.stop(narrow)
    finally:
        bench.close()

    direct_mb_s = statistics.median(direct) / 1e6
    proxy_mb_s = statistics.median(proxied) / 1e6
    return {
        "direct_mb_s": round(direct_mb_s, 1),
        "proxy_mb_s": round(proxy_mb_s, 1),
        "ratio": round(proxy_mb_s / direct_mb_s, 3),
        "direct_rtt_p50_us": round(_percentile(rtt_direct, 0.5) / 1000, 1),
        "proxy_rtt_p50_us": round(_percentile(rtt_proxied, 0.5) / 1000, 1),
        "direct_rtt_p99_us": round(_percentile(rtt_direct, 0.99) / 1000, 1),
        "proxy_rtt_p99_us": round(_percentile(rtt_proxied, 0.99) / 1000, 1),
        "added_rtt_p50_us": round(
            (_percentile(rtt_proxied, 0.5) - _percentile(rtt_direct, 0.5)) / 1000, 1
        ),
        "added_rtt_p99_us": round(
            (_percentile(rtt_proxied, 0.99) - _percentile(rtt_direct, 0.99)) / 1000, 1
        ),
        "latency_toxic_ms": 100,
        "latency_toxic_p50_ms": round(_percentile(rtt_latency, 0.5) / 1e6, 2),
        "bandwidth_toxic_target_kb_s": 1000,
        "bandwidth_toxic_kb_s": round(rate / 1000, 1),
        "megabytes": megabytes,
        "repeats": repeats,
        "pings": pings,
        "loop": loop_kind,
        "cpus": os.cpu_count(),
        "better": {
            "direct_mb_s": "higher",
            "proxy_mb_s": "higher",
            "ratio": "higher",
            "direct_rtt_p50_us": "lower",
            "proxy_rtt_p50_us": "lower",
            "direct_rtt_p99_us": "lower",
            "proxy_rtt_p99_us": "lower",
            "added_rtt_p50_us": "lower",
            "added_rtt_p99_us": "lower",
        },
    }


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("proxy")
    def proxy(
        megabytes: int = typer.Option(1024, "--megabytes", help="MiB per throughput run."),
        pings: int = typer.Option(5000, "--pings", help="Round trips per path."),
        repeats: int = typer.Option(3, "--repeats", help="Throughput runs per path."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Proxy vs direct loopback: throughput, added round trip, toxic accuracy."""
        result = run(megabytes, pings, repeats)
        typer.echo(json.dumps(result, indent=None if as_json else 2))
