"""`peerlab bench failover`: seconds from SIGKILL of the leader (etcd) or master (Redis with
Sentinel) to the first write acknowledged by its successor, over several runs.

Each run starts from a settled cluster: the previous victim has restarted and rejoined as a
follower (etcd) or a replica of the new master (Redis), so every run measures the same thing.
The clock starts just before the SIGKILL and stops when the write's answer arrives; for
Redis it includes the client asking the sentinels where the master is now.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import typer

from peerlab.env import Environment
from peerlab.errors import UsageError
from peerlab.systems.etcd import EtcdAdapter
from peerlab.systems.redis_sentinel import RedisSentinelAdapter
from peerlab.wait import wait_until

SYSTEMS = {"etcd": "etcd", "redis": "redis-sentinel", "redis-sentinel": "redis-sentinel"}


def _etcd_runs(env: Environment, runs: int, members: int) -> list[float]:
    env.start("etcd", members)
    etcd = EtcdAdapter.of(env, "etcd")
    seconds = []
    for _ in range(runs):
        old = etcd.wait_for_leader(20)
        killed_at = time.monotonic()
        env.kill(old.name)
        acked_at, _member, _term = etcd.write_on_new_leader(old.term, timeout=30)
        seconds.append(acked_at - killed_at)
        new = etcd.wait_for_leader(10, min_term=old.term)
        env.restart(old.name)

        def rejoined(name: str = old.name, term: int = new.term) -> bool:
            state = etcd.inspect(env.node(name))
            return bool(state["leader"] not in (None, name) and state["term"] >= term)

        wait_until(rejoined, 20, what=f"{old.name} to rejoin as a follower")
    return seconds


def _redis_runs(env: Environment, runs: int) -> list[float]:
    env.start("redis-sentinel")
    redis = RedisSentinelAdapter.of(env, "redis-sentinel")
    seconds = []
    master = redis.master(20)
    for _ in range(runs):
        redis.wait_settled(master, 60)
        killed_at = time.monotonic()
        env.kill(master)
        acked_at, new_master = redis.write_on_new_master(master, timeout=60)
        seconds.append(acked_at - killed_at)
        env.restart(master)
        master = new_master
    return seconds


def run(
    system: str, runs: int = 10, members: int = 3, seed: int = 1, fabric: bool = True
) -> dict[str, Any]:
    if system not in SYSTEMS:
        raise UsageError(
            f"--system is {system!r}",
            field="--system",
            hint=f"use one of: {', '.join(SYSTEMS)}",
        )
    if runs < 1:
        raise UsageError(f"--runs is {runs}", field="--runs", hint="use 1 or more")
    if SYSTEMS[system] == "etcd" and members < 3:
        raise UsageError(
            f"--members is {members}: with its leader killed, fewer than 3 have no quorum left",
            field="--members",
            hint="use 3 or more",
        )
    with Environment(f"bench-failover-{SYSTEMS[system]}", seed=seed, fabric=fabric) as env:
        if SYSTEMS[system] == "etcd":
            seconds = _etcd_runs(env, runs, members)
        else:
            seconds = _redis_runs(env, runs)
    result: dict[str, Any] = {
        "system": SYSTEMS[system],
        "runs": runs,
        "median_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
        "min_s": round(min(seconds), 3),
        "seconds": [round(s, 3) for s in seconds],
        "fabric": fabric,
        "seed": seed,
        "better": {"median_s": "lower", "max_s": "lower", "min_s": "lower"},
    }
    if SYSTEMS[system] == "etcd":
        result["members"] = members
    return result


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("failover")
    def failover(
        system: str = typer.Option("etcd", "--system", "-s", help="etcd, or redis (Sentinel)."),
        runs: int = typer.Option(10, "--runs", "-r", help="How many kills to time."),
        members: int = typer.Option(3, "--members", help="etcd cluster size."),
        seed: int = typer.Option(1, "--seed"),
        fabric: bool = typer.Option(
            True, "--fabric/--no-fabric", help="Put the fabric's proxies between nodes."
        ),
        as_json: bool = typer.Option(False, "--json", help="One line of JSON."),
    ) -> None:
        """Kill the leader (etcd) or master (Redis) N times; median and max seconds until
        a successor acknowledged a write."""
        result = run(system, runs, members, seed, fabric)
        typer.echo(json.dumps(result, indent=None if as_json else 2))
