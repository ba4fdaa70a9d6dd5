"""`peerlab bench spawn`: N syncpeer nodes started by the fork-server launcher vs plain exec,
or (`--backend NAME`) on another backend beside the local one.

Both contenders run in the same invocation, one after the other, so the machine's noise hits
both. Memory is the median proportional set size (PSS) per node: shared pages are split
among the processes that share them, so it is the honest per-peer cost of forking from a
launcher (and of whatever a backend adds around a node).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from typing import Any

import psutil
import typer

from peerlab import backends
from peerlab.env import Environment
from peerlab.systems import find_system


def _pss_mb(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).memory_full_info().pss) / 2**20
    except (psutil.Error, AttributeError):
        return None


def measure(
    peers: int, mode: str, fabric: bool, seed: int, backend: str = backends.DEFAULT
) -> dict[str, Any]:
    spec = find_system("syncpeer")
    if mode == "exec":
        spec = dataclasses.replace(spec, mode="exec", entry=None)
    with Environment(f"bench-{mode}", seed=seed, fabric=fabric, backend=backend) as env:
        began = time.perf_counter()
        nodes = env.start(spec, peers)
        seconds = time.perf_counter() - began
        samples = [p for p in (_pss_mb(n.pid) for n in nodes if n.pid) if p is not None]
        ready = sum(1 for n in nodes if n.state == "running")
    return {
        "seconds_to_ready": round(seconds, 3),
        "ready": ready,
        "pss_mb_per_peer": round(statistics.median(samples), 2) if samples else None,
    }


def run(
    peers: int = 50, fabric: bool = True, seed: int = 1, backend: str = backends.DEFAULT
) -> dict[str, Any]:
    if backend != backends.DEFAULT:
        return against_local(peers, fabric, seed, backend)
    forked = measure(peers, "fork", fabric, seed)
    executed = measure(peers, "exec", fabric, seed)
    return {
        "peers": peers,
        "backend": backends.DEFAULT,
        "launcher": "fork",
        "fabric": fabric,
        "seconds_to_ready": forked["seconds_to_ready"],
        "pss_mb_per_peer": forked["pss_mb_per_peer"],
        "exec_seconds_to_ready": executed["seconds_to_ready"],
        "exec_pss_mb_per_peer": executed["pss_mb_per_peer"],
        "speedup": round(executed["seconds_to_ready"] / forked["seconds_to_ready"], 1),
        "all_ready": forked["ready"] == peers and executed["ready"] == peers,
        "cpus": psutil.cpu_count(),
        "better": {
            "seconds_to_ready": "lower",
            "pss_mb_per_peer": "lower",
            "exec_seconds_to_ready": "lower",
            "exec_pss_mb_per_peer": "lower",
            "speedup": "higher",
        },
    }


def against_local(peers: int, fabric: bool, seed: int, backend: str) -> dict[str, Any]:
    """`backend` beside the local backend, in one run."""
    chosen = measure(peers, "fork", fabric, seed, backend)
    local = measure(peers, "fork", fabric, seed)
    return {
        "peers": peers,
        "backend": backend,
        "fabric": fabric,
        "seconds_to_ready": chosen["seconds_to_ready"],
        "pss_mb_per_peer": chosen["pss_mb_per_peer"],
        "local_seconds_to_ready": local["seconds_to_ready"],
        "local_pss_mb_per_peer": local["pss_mb_per_peer"],
        "all_ready": chosen["ready"] == peers and local["ready"] == peers,
        "cpus": psutil.cpu_count(),
        "better": dict.fromkeys(
            (
                "seconds_to_ready",
                "pss_mb_per_peer",
                "local_seconds_to_ready",
                "local_pss_mb_per_peer",
            ),
            "lower",
        ),
    }


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("spawn")
    def spawn(
        peers: int = typer.Option(50, "--peers", "-n"),
        fabric: bool = typer.Option(
            True, "--fabric/--no-fabric", help="Put the fabric's proxies in front of every node."
        ),
        seed: int = typer.Option(1, "--seed"),
        backend: str = typer.Option(
            backends.DEFAULT, "--backend", help="Measure this backend beside the local one."
        ),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Start N syncpeer nodes by fork-server and by plain exec (or on `--backend` beside
        the local backend); time and memory of each."""
        result = run(peers, fabric, seed, backends.check(backend))
        typer.echo(json.dumps(result, indent=None if as_json else 2))
