"""`peerlab bench sim`: how fast the simulator runs a standard syncpeer workload, and whether a
seed replays it bit for bit.

The workload is the swarm (`peerlab.systems.syncpeer_swarm`): bootstrap nodes and N peers
joining the DHT through them in waves, a friend graph of average degree 5, 100 files for
friends, a partition of a tenth of the peers, churn. It runs twice with one seed, one run
after the other in this process; `replay_identical` says whether both wrote the same
history (by SHA-256). `wall_seconds`, `speedup` (simulated seconds per wall second) and
`events_per_second` are the first run's (the second's are beside them); `cpu_seconds` is
the processor time the first run took (on a machine shared with other work, wall time is
longer than that); `peak_rss_mb` is this process's peak resident memory.
"""

from __future__ import annotations

import json
import resource
import time
from typing import Any

import typer

from peerlab.errors import UsageError
from peerlab.plan import Plan
from peerlab.sim.runs import run


def bench(peers: int, sim_seconds: float, seed: int, poll: float) -> dict[str, Any]:
    plan = Plan("swarm", seed, {"peers": peers, "seconds": sim_seconds, "poll": poll})
    began = time.process_time()
    first = run(plan)
    cpu = time.process_time() - began
    second = run(plan)
    wall = first.wall_seconds
    return {
        "peers": peers,
        "sim_seconds": round(first.sim_seconds, 3),
        "wall_seconds": round(wall, 3),
        "speedup": round(first.sim_seconds / wall, 2) if wall else None,
        "events": first.events,
        "events_per_second": round(first.events / wall) if wall else None,
        "cpu_seconds": round(cpu, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "history_sha256": first.history_sha256,
        "replay_identical": first.history_sha256 == second.history_sha256,
        "replay_wall_seconds": round(second.wall_seconds, 3),
        "verdicts": {v.checker: v.valid for v in first.verdicts},
        "facts": first.facts,
        "seed": seed,
        "poll_seconds": poll,
    }


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("sim")
    def sim(
        peers: int = typer.Option(100, "--peers", "-n", help="Peers in the swarm."),
        sim_seconds: float = typer.Option(600.0, "--sim-seconds", help="Simulated seconds."),
        seed: int = typer.Option(1, "--seed"),
        poll: float = typer.Option(30.0, "--poll", help="The peers' poll interval, seconds."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """The simulator on the swarm workload, twice with one seed: speed, memory, replay."""
        if peers < 2 or sim_seconds <= 0 or poll <= 0:
            raise UsageError(
                f"--peers {peers} --sim-seconds {sim_seconds} --poll {poll}",
                field="--peers",
                hint="at least 2 peers, and positive seconds",
            )
        result = bench(peers, sim_seconds, seed, poll)
        typer.echo(json.dumps(result, indent=None if as_json else 2))
