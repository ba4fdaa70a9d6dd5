"""Scenario bodies shared by the short forms (tests/e2e/basic/test_discovery.py) and the
full forms (tests/e2e/stress/test_dht_scale.py) of TC-201, TC-202 and TC-203.

Every friendship here is made by fingerprint alone (`via_dht=True`): each side finds the
other's address in the DHT and fetches its card from there. The bodies run on real
processes and on the simulator: time is the environment's clock, and calls that run side by
side on threads over real sockets run one after another on virtual time.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import statistics
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import networkx

from peerlab.clock import Scheduler
from peerlab.env import Environment
from peerlab.errors import WaitTimeout
from peerlab.nemesis.churn import Churn, ChurnRunner
from peerlab.seed import derive_rng
from peerlab.systems.syncpeer import SyncpeerAdapter, assert_file_synced

T = TypeVar("T")
RSS_GROWTH_LIMIT_MB = 8.0


def parallel(
    env: Environment, func: Callable[[T], Any], items: Iterable[T], workers: int = 8
) -> list[Any]:
    """Run `func` over `items` on a few threads (each call is a blocking HTTP call), or one
    after another on a virtual clock (one thread drives a simulation); the first exception
    is raised."""
    if isinstance(env.clock, Scheduler):
        return [func(item) for item in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(func, items))


def start_network(env: Environment, peers: int) -> tuple[SyncpeerAdapter, list[str]]:
    """A bootstrap node, then `peers` peers; returns the peers' names once all joined."""
    env.start("syncpeer", 1, role="bootstrap")
    names = [node.name for node in env.start("syncpeer", peers)]
    adapter = SyncpeerAdapter.of(env, "syncpeer")
    adapter.wait_joined(names, timeout=30 + peers * 0.2)
    return adapter, names


def befriend_all(env: Environment, adapter: SyncpeerAdapter, edges: list[tuple[str, str]]) -> None:
    parallel(env, lambda edge: adapter.befriend(edge[0], edge[1], via_dht=True), edges)


def friends_of(adapter: SyncpeerAdapter, name: str) -> set[str]:
    names = adapter.names_by_fingerprint()
    return {names.get(f["fingerprint"], f["fingerprint"]) for f in adapter._client(name).friends()}


def rss_mb(env: Environment, name: str) -> float | None:
    """The peer's resident memory; None where nodes are not processes (the simulator)."""
    rss = env.describe(env.node(name)).get("rss_mb")
    return None if rss is None else float(rss)


def holds_all(adapter: SyncpeerAdapter, name: str, files: dict[str, str]) -> bool:
    """Whether peer `name` holds and can read every file (name -> plaintext sha256)."""
    held = {f["name"]: f for f in adapter._client(name).files()}
    return all(
        name_ in held and held[name_]["decryptable"] and held[name_]["sha256_plain"] == digest
        for name_, digest in files.items()
    )


# ------------------------------------------------------------------ TC-201


def mesh_rss_scenario(env: Environment, peers: int, rounds: int) -> dict[str, Any]:
    adapter, names = start_network(env, peers)
    pairs = list(itertools.combinations(names, 2))
    assert len(pairs) == peers * (peers - 1) // 2
    befriend_all(env, adapter, pairs)
    for name in names:
        assert friends_of(adapter, name) == set(names) - {name}, name

    first = os.urandom(50_000)
    adapter._client(names[0]).publish("mesh.bin", first, "public")
    assert_file_synced(env, "mesh.bin", names[1:], content=first, timeout=20)

    for name in names:
        table = adapter.dht_table(name)
        k = table["k"]
        sizes = [len(bucket["contacts"]) for bucket in table["buckets"]]
        assert all(size <= k for size in sizes), (name, sizes)
        assert all(len(bucket["replacements"]) <= k for bucket in table["buckets"]), name
        assert table["contacts"] == sum(sizes) >= peers // 2, (name, table["contacts"])

    # Rounds of work: every peer publishes a new version for all its friends and looks up
    # others. RSS is sampled after each round; after the first (warm-up) it must level off.
    fingerprints = adapter.fingerprint_map()
    samples: dict[str, list[float]] = {name: [] for name in names}
    measured = True
    rng = derive_rng(env.seed, "tc201")
    for round_ in range(rounds):
        expected: dict[str, str] = {}
        for name in names:
            content = f"{name} round {round_} ".encode() + os.urandom(20_000)
            recipients = [fingerprints[other] for other in names if other != name]
            adapter._client(name).publish(f"{name}.txt", content, recipients)
            expected[f"{name}.txt"] = hashlib.sha256(content).hexdigest()
        lookups = [(name, rng.choice([o for o in names if o != name])) for name in names]
        results = parallel(env, lambda pair: adapter.dht_lookup(pair[0], pair[1]), lookups)
        assert all(r["found"] for r in results), [r["reason"] for r in results]
        env.wait_until(
            lambda expected=expected: all(holds_all(adapter, n, expected) for n in names),
            30,
            what=f"round {round_}'s files on every peer",
        )
        for name in names:
            rss = rss_mb(env, name)
            measured = measured and rss is not None
            samples[name].append(rss or 0.0)
    if not measured:
        return {"rss_growth_mb": None}  # no processes: memory is the simulator's
    growth = {name: round(values[-1] - values[0], 1) for name, values in samples.items()}
    assert max(growth.values()) <= RSS_GROWTH_LIMIT_MB, f"RSS growth (MB) per peer: {growth}"
    env.history.event("rss_samples", None, samples=samples, growth=growth)
    return {"rss_growth_mb": growth}


# ------------------------------------------------------------------ TC-202


def random_graph_scenario(
    env: Environment, peers: int, degree: int, publishers: int
) -> dict[str, Any]:
    adapter, names = start_network(env, peers)
    rng = derive_rng(env.seed, "tc202")
    graph = networkx.gnm_random_graph(peers, peers * degree // 2, seed=rng.randrange(2**32))
    graph = networkx.relabel_nodes(graph, dict(enumerate(names)))
    edges = sorted(graph.edges())
    assert abs(2 * len(edges) / peers - degree) < 0.5
    began = env.clock.monotonic()
    befriend_all(env, adapter, edges)  # each friend add is a DHT lookup; a failed one raises
    friending = env.clock.monotonic() - began

    pairs = [(name, rng.choice([o for o in names if o != name])) for name in names]
    results = parallel(env, lambda pair: adapter.dht_lookup(pair[0], pair[1]), pairs)
    failed = [(pair, r["reason"]) for pair, r in zip(pairs, results, strict=True) if not r["found"]]
    assert not failed, f"lookups that failed: {failed}"
    durations = [float(r["duration_ms"]) for r in results]
    stats = {
        "peers": peers,
        "friendships": len(edges),
        "lookups": len(results),
        "lookup_mean_ms": round(statistics.fmean(durations), 3),
        "lookup_max_ms": round(max(durations), 3),
        "lookup_mean_hops": round(statistics.fmean(r["hops"] for r in results), 2),
        "friend_adds_seconds": round(friending, 2),
    }
    env.history.event("dht_lookup_stats", None, **stats)
    print(f"\nTC-202 lookups: {stats}")

    for index, publisher in enumerate(sorted(rng.sample(names, publishers))):
        content = os.urandom(10_000)
        adapter._client(publisher).publish(f"pub-{index}.bin", content, "public")
        reach = sorted(networkx.node_connected_component(graph, publisher) - {publisher})
        assert_file_synced(env, f"pub-{index}.bin", reach, content=content, timeout=60)
    return stats


# ------------------------------------------------------------------ TC-203


def churn_scenario(
    env: Environment,
    peers: int,
    periods: int,
    period: float,
    friends: int = 4,
    on_schedule: bool = False,
) -> dict[str, Any]:
    """`periods` periods of churn (2 leave, 2 join); each period one live peer publishes a
    file for its friends, which must reach ≥ 95% of those that are live, overall.

    on_schedule: periods start every `period` seconds (the full form); otherwise the next
    period starts as soon as this one's file reached everyone it could (the short form).
    """
    adapter, names = start_network(env, peers)
    rng = derive_rng(env.seed, "tc203")
    graph = networkx.random_regular_graph(friends, peers, seed=rng.randrange(2**32))
    graph = networkx.relabel_nodes(graph, dict(enumerate(names)))
    befriend_all(env, adapter, sorted(graph.edges()))
    fingerprints = adapter.fingerprint_map()

    def welcome(new_peers: list[str]) -> None:
        """A new peer (none had left to come back) joins the DHT, then befriends live peers
        by fingerprint."""
        adapter.wait_joined(new_peers, timeout=30)
        live = sorted({node.name for node in env.live_nodes()} & set(graph.nodes))
        edges = [(new, other) for new in new_peers for other in rng.sample(live, friends)]
        befriend_all(env, adapter, edges)
        graph.add_edges_from(edges)
        fingerprints.update(adapter.fingerprint_map())

    runner = ChurnRunner(
        env,
        Churn(leave=2, join=2, every=period),
        env.seed,
        on_join=welcome,
        record=lambda f, data: env.history.event(f, None, **data),
        clock=env.clock,
    )
    reached_total = friends_total = 0
    log: list[dict[str, Any]] = []
    clock = env.clock
    began = clock.monotonic()
    for number in range(1, periods + 1):
        if on_schedule:
            due = began + number * period
            while clock.monotonic() < due:  # the churn schedule, not a wait for a result
                clock.sleep(min(0.5, due - clock.monotonic()))
        period_began = clock.monotonic()
        step = runner.step()
        live = {node.name for node in env.live_nodes()} & set(graph.nodes)
        publisher = rng.choice(sorted(live))
        its_friends = sorted(graph.neighbors(publisher))
        content = os.urandom(5_000)
        file_name = f"period-{number}.bin"
        adapter._client(publisher).publish(
            file_name, content, [fingerprints[f] for f in its_friends]
        )
        live_friends = [f for f in its_friends if f in live]
        wanted = {file_name: hashlib.sha256(content).hexdigest()}

        def reached(
            live_friends: list[str] = live_friends, wanted: dict[str, str] = wanted
        ) -> list[str]:
            return [f for f in live_friends if holds_all(adapter, f, wanted)]

        # A miss is counted, not fatal: the bar is on the total over all periods.
        with contextlib.suppress(WaitTimeout):
            env.wait_until(
                lambda reached=reached, count=len(live_friends): len(reached()) == count,
                max(period_began + period - clock.monotonic(), 1.0),
                what=f"period {number}'s file on {publisher}'s live friends",
            )
        got = reached()
        reached_total += len(got)
        friends_total += len(live_friends)
        log.append(
            {
                "period": number,
                "left": step.left,
                "joined": step.joined,
                "publisher": publisher,
                "live_friends": len(live_friends),
                "reached": len(got),
            }
        )
    ratio = reached_total / friends_total if friends_total else 0.0
    env.history.event("churn_reach", None, periods=log, ratio=ratio)
    print(f"\nTC-203: {reached_total} of {friends_total} live friends reached ({ratio:.1%})")
    assert friends_total > 0
    assert ratio >= 0.95, f"files reached {ratio:.1%} of live friends; periods: {log}"

    # Nobody is permanently isolated: every live peer still has a live friend, and finds
    # another live peer through the DHT.
    live = sorted({node.name for node in env.live_nodes()} & set(graph.nodes))
    lonely = [n for n in live if not set(graph.neighbors(n)) & set(live)]
    assert not lonely, f"peers with no live friend: {lonely}"
    targets = [(name, live[(i + 1) % len(live)]) for i, name in enumerate(live)]
    results = parallel(env, lambda pair: adapter.dht_lookup(pair[0], pair[1]), targets)
    cut_off = [pair for pair, r in zip(targets, results, strict=True) if not r["found"]]
    assert not cut_off, f"live peers that cannot find another live peer: {cut_off}"
    return {"ratio": ratio, "periods": log}
