"""`peerlab bench sync`: the figures of the M2 plan's performance table, for syncpeer.

Two friends A and B on the fabric:

  handshake_ms                 from both adding each other until both have agreed on a
                               protocol version (their first answered poll)
  message_latency_p50/p95_ms   one small message's download, as B timed it
  publish_to_arrival_p50_ms    publish on A until B holds it (includes the poll wait)
  throughput_msgs_per_s        `messages` published at once: count / (last arrival - first
                               publish)
  rss_mb_per_peer              the largest resident set of the two nodes at the end

Each figure says which way is better (`better`); `[tool.peerlab.trend.figures]` in
pyproject.toml gives the plan's warn and alert levels to `peerlab trend`.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from functools import partial
from typing import Any

import psutil
import typer

from peerlab.env import Environment
from peerlab.systems.syncpeer import SyncpeerAdapter
from peerlab.systems.syncpeer_checks import log_events
from peerlab.wait import wait_until


def _rss_mb(pid: int | None) -> float | None:
    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20 if pid else None
    except psutil.Error:
        return None


def run(
    messages: int = 200, samples: int = 20, seed: int = 1, version: str = "1.1"
) -> dict[str, Any]:
    with Environment("bench-sync", seed=seed) as env:
        env.start("syncpeer", 2, version=version)
        adapter = SyncpeerAdapter.of(env, "syncpeer")
        a, b = env.client("A"), env.client("B")
        began = time.perf_counter()
        adapter.befriend("A", "B")

        def agreed() -> bool:
            return all(any(v for v in c.status()["protocol"]["friends"].values()) for c in (a, b))

        wait_until(agreed, 30, what="A and B to agree on a protocol version", interval=0.005)
        handshake = time.perf_counter() - began
        to_b = adapter.fingerprints(["B"])
        arrivals = []
        for number in range(samples):
            name = f"sample-{number}.txt"
            sent = time.perf_counter()
            a.publish(name, os.urandom(256), to_b)
            wait_until(partial(b.file, name), 30, what=f"B to hold {name}", interval=0.005)
            arrivals.append(time.perf_counter() - sent)
        first = time.perf_counter()
        for number in range(messages):
            a.publish(f"burst-{number}.txt", os.urandom(256), to_b)

        def all_arrived() -> bool:
            return sum(f["name"].startswith("burst-") for f in b.files()) == messages

        wait_until(all_arrived, 120, what=f"B to hold all {messages} messages", interval=0.01)
        burst = time.perf_counter() - first
        downloads = sorted(
            float(e["duration_ms"])
            for e in log_events(env, "B", "file_download_completed")
            if str(e.get("name", "")).startswith("sample-")
        )
        rss = [r for r in (_rss_mb(n.pid) for n in env.nodes.values()) if r is not None]
    return {
        "version": version,
        "messages": messages,
        "samples": samples,
        "handshake_ms": round(handshake * 1000, 1),
        "message_latency_p50_ms": round(statistics.median(downloads), 2) if downloads else None,
        "message_latency_p95_ms": round(downloads[int(len(downloads) * 0.95) - 1], 2)
        if downloads
        else None,
        "publish_to_arrival_p50_ms": round(statistics.median(arrivals) * 1000, 1),
        "throughput_msgs_per_s": round(messages / burst, 1),
        "rss_mb_per_peer": round(max(rss), 1) if rss else None,
        "cpus": psutil.cpu_count(),
        "better": {
            "handshake_ms": "lower",
            "message_latency_p50_ms": "lower",
            "message_latency_p95_ms": "lower",
            "publish_to_arrival_p50_ms": "lower",
            "throughput_msgs_per_s": "higher",
            "rss_mb_per_peer": "lower",
        },
    }


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("sync")
    def sync(
        messages: int = typer.Option(200, "--messages", min=1, help="Messages in the burst."),
        samples: int = typer.Option(20, "--samples", min=1, help="Messages timed one by one."),
        seed: int = typer.Option(1, "--seed"),
        version: str = typer.Option("1.1", "--version", help="syncpeer's protocol version."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Handshake, message latency, throughput and memory of two syncpeer friends."""
        result = run(messages, samples, seed, version)
        typer.echo(json.dumps(result, indent=None if as_json else 2))
