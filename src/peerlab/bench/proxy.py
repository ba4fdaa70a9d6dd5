"""`peerlab bench proxy`: the fabric's TCP proxy against direct loopback, in one run.

- throughput: one bulk stream of 1 MiB writes, direct, through a proxy with no toxic, and
  through the relays of `bench.relays` (a minimal splice relay, the practical limit;
  haproxy and socat, `null` with a note when not installed), in turn, `repeats` rounds;
  the median of each in MB/s, and the proxy's ratio to direct and to each relay;
- added round trip: ping-pong of 32-byte messages, direct, proxied and through each relay
  in alternating rounds; each percentile of the relayed round trip minus the same
  percentile direct, in µs (`added_rtt_*` for the proxy, `NAME_added_rtt_*` for a relay:
  what any relay process adds on this machine); `proxy_busy_polls`: how many times the
  proxy's loop polled on after a message instead of sleeping, and `proxy_follows` how many
  times it moved to the CPU its messages came in on (`peerlab.fabric.spin`; both 0 when the
  machine had no idle CPU); `proxy_sidesteps`: how many times it moved off the CPU a bulk
  stream came in on;
- accuracy: the round-trip p50 through a 100 ms latency toxic, and the rate of 2 MB
  through a 1 MB/s (1000 KB/s) bandwidth toxic.

The sender and pinger run in one child process and the sink and echo server in another
(`bench.traffic`), so the proxy has this process (its loop thread, as in an Environment) to
itself. Loopback only; bounded in time (each answer within 30 s; about 10 s in all with the
defaults). `--backend netns` measures interception between namespaces instead
(`bench.proxy_netns`).
"""

from __future__ import annotations

import json
import os
from typing import Any

import typer

from peerlab import backends
from peerlab.aio import LoopThread
from peerlab.bench import proxy_netns, relays
from peerlab.bench.traffic import Route, Traffic, check_amounts, compare, percentile
from peerlab.errors import UsageError
from peerlab.fabric.links import Links, LinkToxic
from peerlab.fabric.spec import ToxicSpec
from peerlab.fabric.tcp import TcpProxy
from peerlab.fabric.toxics import Bandwidth, Latency, Toxic


class _Proxies:
    """Proxies on loopback in front of the traffic's servers, on a loop of their own."""

    def __init__(self) -> None:
        self.loop = LoopThread("bench-proxy")

    def start(self, port: int, toxic: Toxic | None = None, stream: str = "downstream") -> TcpProxy:
        links = Links(seed=1)
        if toxic is not None:
            links.toxics.add(LinkToxic(ToxicSpec(toxic, stream=stream)))
        proxy = TcpProxy("bench", ("127.0.0.1", 0), ("127.0.0.1", port), links)
        self.loop.run(proxy.start())
        return proxy

    def stop(self, proxy: TcpProxy) -> None:
        self.loop.run(proxy.stop())


def run(megabytes: int = 1024, pings: int = 5000, repeats: int = 5) -> dict[str, Any]:
    """Measure; every key is described in the module docstring."""
    check_amounts(megabytes, pings, repeats)
    amount = megabytes * 2**20
    load_before = os.getloadavg()[0]
    bench = Traffic()
    proxies = _Proxies()
    loop_kind = type(proxies.loop.loop).__module__.split(".")[0]
    started: list[relays.Relay] = []
    notes: dict[str, str] = {}
    try:
        plain, echo = proxies.start(bench.sink_port), proxies.start(bench.echo_port)
        direct = Route("127.0.0.1", bench.sink_port, bench.echo_port)
        proxied = Route("127.0.0.1", plain.listen[1], echo.listen[1])
        others = {}
        for name in relays.NAMES:
            relay = relays.start(name, bench.sink_port)
            if isinstance(relay, str):
                notes[name] = relay
                continue
            started.append(relay)
            echoing = relays.start(name, bench.echo_port)
            if isinstance(echoing, str):
                notes[name] = echoing
                echo_port = 0
            else:
                started.append(echoing)
                echo_port = echoing.port
            others[name] = Route("127.0.0.1", relay.port, echo_port)
        figures = compare(bench, direct, proxied, amount, pings, repeats, others)
        busy_polls = plain.links.spinner.spins + echo.links.spinner.spins
        follows = plain.links.spinner.follows + echo.links.spinner.follows
        sidesteps = plain.links.spinner.sidesteps + echo.links.spinner.sidesteps
        proxies.stop(plain)
        proxies.stop(echo)

        slow = proxies.start(bench.echo_port, Latency(latency=100))
        rtt_latency = bench.ping(slow.listen[1], 20)
        proxies.stop(slow)

        narrow = proxies.start(bench.sink_port, Bandwidth(rate=1000), "upstream")
        rate = bench.send(narrow.listen[1], 2_000_000)
        proxies.stop(narrow)
    finally:
        for relay in started:
            relay.stop()
        bench.close()
        proxies.loop.close()

    return {
        **figures,
        **{f"{name}_mb_s": None for name in notes if name not in others},
        "notes": notes,
        "proxy_busy_polls": busy_polls,
        "proxy_follows": follows,
        "proxy_sidesteps": sidesteps,
        "latency_toxic_ms": 100,
        "latency_toxic_p50_ms": round(percentile(rtt_latency, 0.5) / 1e6, 2),
        "bandwidth_toxic_target_kb_s": 1000,
        "bandwidth_toxic_kb_s": round(rate / 1000, 1),
        "megabytes": megabytes,
        "repeats": repeats,
        "pings": pings,
        "loop": loop_kind,
        "cpus": os.cpu_count(),
        "load_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "better": {
            **{f"{name}_mb_s": "higher" for name in ("direct", "proxy", *relays.NAMES)},
            "ratio": "higher",
            **{
                f"{path}_rtt_{q}_us": "lower"
                for path in ("direct", "proxy", "added")
                for q in ("p50", "p99")
            },
            **{
                f"{name}_added_rtt_{q}_us": "lower" for name in relays.NAMES for q in ("p50", "p99")
            },
        },
    }


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("proxy")
    def proxy(
        megabytes: int = typer.Option(1024, "--megabytes", help="MiB per throughput run."),
        pings: int = typer.Option(5000, "--pings", help="Round trips per path."),
        repeats: int = typer.Option(
            5, "--repeats", help="Throughput runs per path (the median is reported)."
        ),
        backend: str = typer.Option(
            backends.DEFAULT,
            "--backend",
            help="local: a proxy vs direct loopback; netns: interception by tproxy between "
            "two namespaces vs their direct link.",
        ),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Proxy vs direct loopback and other relays: throughput, added round trip, toxics
        (or, with --backend netns, tproxy interception vs the direct path)."""
        if backends.check(backend) not in ("local", "netns"):
            raise UsageError(
                f"--backend is {backend!r}: it has no proxy of its own to measure",
                field="--backend",
                hint="use local or netns",
            )
        if backend == "netns":
            result = proxy_netns.run(megabytes, pings, repeats)
        else:
            result = run(megabytes, pings, repeats)
        typer.echo(json.dumps(result, indent=None if as_json else 2))
