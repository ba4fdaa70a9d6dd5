"""`peerlab bench dht`: how fast N syncpeer nodes join the DHT, how fast lookups are, what a
peer costs.

For each size: one bootstrap node, then N-1 nodes started together by the fork-server
launcher; `ready_seconds` runs from the first spawn until every node answers its health
check *and* reports that its DHT join finished (self-lookup, record stored, far buckets
looked into). Then `lookups` lookups, each from a random node for the fingerprint of
another random node (seeded), one at a time so that they do not queue behind each other;
latency is what the looking node measured around its lookup (the admin HTTP call is not
counted). Memory is the median proportional set size (PSS) of up to PSS_SAMPLE nodes.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import time
from typing import Any

import aiohttp
import psutil
import typer

from peerlab.env import Environment
from peerlab.errors import PeerlabError, UsageError
from peerlab.node import Node
from peerlab.seed import derive_rng
from peerlab.systems.syncpeer import SyncpeerAdapter

PSS_SAMPLE = 100
POLL_CONCURRENCY = 32


def _pss_mb(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).memory_full_info().pss) / 2**20
    except (psutil.Error, AttributeError):
        return None


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (p99 of 1,000 values is the 990th smallest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


async def _get_json(env: Environment, node: Node, method: str, path: str, body: Any = None) -> Any:
    async with env.http_session().request(
        method, node.direct_url("http", path), json=body, timeout=aiohttp.ClientTimeout(total=30)
    ) as response:
        if response.status != 200:
            raise PeerlabError(f"{node.name}: {method} {path} answered HTTP {response.status}")
        return await response.json()


async def wait_joined(env: Environment, nodes: list[Node], timeout: float) -> None:
    """Poll each node's /admin/status until its DHT reports joined."""
    limit = asyncio.Semaphore(POLL_CONCURRENCY)
    deadline = time.monotonic() + timeout

    async def joined(node: Node) -> None:
        while True:
            async with limit:
                try:
                    status = await _get_json(env, node, "GET", "/admin/status")
                    if (status.get("dht") or {}).get("joined"):
                        return
                except (aiohttp.ClientError, TimeoutError, PeerlabError):
                    pass
            if time.monotonic() > deadline:
                raise PeerlabError(f"{node.name} had not joined the DHT after {timeout:g}s")
            await asyncio.sleep(0.1)

    await asyncio.gather(*(joined(node) for node in nodes))


def measure(
    peers: int, *, lookups: int, fabric: bool, seed: int, join_timeout: float = 300.0
) -> dict[str, Any]:
    if peers < 2:
        raise UsageError(f"--peers is {peers}", field="--peers", hint="use 2 or more")
    with Environment(f"bench-dht-{peers}", seed=seed, fabric=fabric) as env:
        began = time.perf_counter()
        nodes = env.start("syncpeer", 1, role="bootstrap")
        nodes += env.start("syncpeer", peers - 1)
        started = time.perf_counter() - began
        env.run(wait_joined(env, nodes, join_timeout), join_timeout + 10, what="DHT joins")
        ready = time.perf_counter() - began
        adapter = SyncpeerAdapter.of(env, "syncpeer")
        fingerprints = adapter.fingerprint_map()
        rng = derive_rng(seed, "bench-dht", peers)
        durations: list[float] = []
        hops: list[int] = []
        failed = 0
        for _ in range(lookups):
            looker, target = rng.sample(nodes, 2)
            body = {"key": fingerprints[target.name], "value": True}
            result = env.run(
                _get_json(env, looker, "POST", "/admin/dht/lookup", body), 60, what="a lookup"
            )
            if result["found"]:
                durations.append(float(result["duration_ms"]))
                hops.append(int(result["hops"]))
            else:
                failed += 1
        sample = rng.sample(nodes, min(PSS_SAMPLE, len(nodes)))
        pss = [p for p in (_pss_mb(n.pid) for n in sample if n.pid) if p is not None]
    return {
        "peers": peers,
        "ready_seconds": round(ready, 3),
        "started_seconds": round(started, 3),
        "lookups": lookups,
        "lookups_failed": failed,
        "lookup_mean_ms": round(statistics.fmean(durations), 3) if durations else None,
        "lookup_p50_ms": round(percentile(durations, 0.5), 3) if durations else None,
        "lookup_p99_ms": round(percentile(durations, 0.99), 3) if durations else None,
        "lookup_mean_hops": round(statistics.fmean(hops), 2) if hops else None,
        "pss_mb_per_peer": round(statistics.median(pss), 2) if pss else None,
        "fabric": fabric,
        "better": dict.fromkeys(
            (
                "ready_seconds",
                "started_seconds",
                "lookup_mean_ms",
                "lookup_p50_ms",
                "lookup_p99_ms",
                "lookup_mean_hops",
                "pss_mb_per_peer",
            ),
            "lower",
        ),
    }


def run(
    sizes: list[int], lookups: int = 1000, fabric: bool = True, seed: int = 1
) -> dict[str, Any]:
    if lookups < 0:
        raise UsageError(f"--lookups is {lookups}", field="--lookups", hint="use 0 or more")
    results = [measure(size, lookups=lookups, fabric=fabric, seed=seed) for size in sizes]
    return {**results[0], "sizes": results, "seed": seed, "cpus": psutil.cpu_count()}


def _sizes(peers: int, sizes: str | None) -> list[int]:
    if not sizes:
        return [peers]
    try:
        values = [int(part) for part in sizes.split(",") if part.strip()]
    except ValueError:
        raise UsageError(
            f"--sizes {sizes!r} is not a list of numbers", field="--sizes", hint="e.g. 100,500"
        ) from None
    if not values or min(values) < 2:
        raise UsageError(f"--sizes {sizes!r}", field="--sizes", hint="sizes of 2 or more")
    return values


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("dht")
    def dht(
        peers: int = typer.Option(100, "--peers", "-n", help="Network size (first size)."),
        sizes: str | None = typer.Option(
            None, "--sizes", help="Several sizes, e.g. 100,500,1000 (overrides --peers)."
        ),
        lookups: int = typer.Option(1000, "--lookups", help="Random lookups per size."),
        fabric: bool = typer.Option(
            True, "--fabric/--no-fabric", help="Put the fabric's proxies in front of every node."
        ),
        seed: int = typer.Option(1, "--seed"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Join time, lookup latency (mean, p99) and memory per peer of syncpeer's DHT."""
        result = run(_sizes(peers, sizes), lookups, fabric, seed)
        typer.echo(json.dumps(result, indent=None if as_json else 2))
