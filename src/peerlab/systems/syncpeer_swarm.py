"""A swarm of syncpeer peers, as a plan: the scale scenario of the simulator and its benchmark.

Bootstrap nodes start first; the peers start in waves and join the DHT through them; they
form a random friend graph of average degree `degree` (`dht_friends` of the friendships by
fingerprint alone, through the DHT; the others by card and address); `files` files are
published, each by a random peer for its friends, spread over the run; a random tenth of
the peers is cut off for a while (a partition) and `churn` peers leave and come back every
`churn_every` seconds (killed: their disks keep only what they synced). At the end the
verdict says whether every file reached its recipients that were up and reachable.

    swarm(env, Plan("swarm", seed, {"peers": 10_000, "seconds": 600}))

Parameters (defaults in `DEFAULTS`): `peers`, `bootstrap`, `degree`, `files`, `seconds` of
the run, `poll` (the peers' poll interval: a swarm polls its friends less often than the
tests' half second), `dht_friends`, `churn`, `churn_every`. Everything random comes from
the plan's seed, so the same plan gives the same history, bit for bit.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING, Any

from peerlab.checkers.verdict import Verdict
from peerlab.nemesis.churn import Churn, ChurnRunner
from peerlab.plan import Plan, Ran
from peerlab.seed import derive_rng
from peerlab.systems import find_system
from peerlab.systems.syncpeer import SyncpeerAdapter

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI
    from peerlab.manifest import SystemSpec

DEFAULTS: dict[str, Any] = {
    "peers": 100,
    "bootstrap": 3,
    "degree": 5,
    "files": 100,
    "seconds": 600.0,
    "poll": 30.0,
    "dht_friends": 20,
    "churn": 2,
    "churn_every": 60.0,
}
WAVES = 10  # the peers start in this many waves over the first tenth of the run
REACH = 0.95  # the share of reachable recipients every file must reach


def _spec(env: EnvironmentAPI, poll: float) -> SystemSpec:
    """syncpeer as its manifest says, polling friends every `poll` seconds, and started
    once it serves (`/health`): a peer that churn brings back inside the partition cannot
    join the DHT before the partition heals, and joins then by itself (its join retries);
    whether it then got its files is the delivery verdict's to say."""
    spec = find_system("syncpeer")
    args = list(spec.args)
    args[args.index("--poll-interval") + 1] = f"{poll:g}"
    readiness = spec.readiness.model_copy(update={"path": "/health"})
    return env.system(dataclasses.replace(spec, args=tuple(args), readiness=readiness))


def swarm(env: EnvironmentAPI, plan: Plan) -> Ran:
    p = {**DEFAULTS, **plan.params}
    seconds = float(p["seconds"])
    rng = derive_rng(plan.seed, "swarm")
    clock = env.clock
    began = clock.monotonic()
    spec = _spec(env, float(p["poll"]))
    if int(p["bootstrap"]):
        env.start(spec, int(p["bootstrap"]), role="bootstrap")
    names: list[str] = []
    wave = max(1, int(p["peers"]) // WAVES)
    while len(names) < int(p["peers"]):
        count = min(wave, int(p["peers"]) - len(names))
        names += [node.name for node in env.start(spec, count)]
        clock.sleep(seconds / 10 / WAVES)
    adapter = SyncpeerAdapter.of(env, "syncpeer")
    edges = _friend_graph(names, int(p["degree"]), rng)
    by_dht = set(rng.sample(range(len(edges)), min(int(p["dht_friends"]), len(edges))))
    cards = {name: adapter.client(env.node(name)).identity() for name in names}
    for index, (a, b) in enumerate(edges):
        if index in by_dht:
            adapter.befriend(a, b, via_dht=True)
            continue
        for x, y in ((a, b), (b, a)):
            address = f"{env.node(y).address}:{env.node(y).ports['http']}"
            adapter.client(env.node(x)).add_friend(cards[y], address)
    friends: dict[str, set[str]] = {name: set() for name in names}
    for a, b in edges:
        friends[a].add(b)
        friends[b].add(a)

    cut = sorted(rng.sample(names, max(1, len(names) // 10)))
    partition_at, partition_for = seconds * 0.4, seconds * 0.1

    def record(what: str, data: dict[str, Any]) -> None:
        env.history.event(what, None, **data)

    leave = int(p["churn"])
    churn = ChurnRunner(
        env,
        Churn(leave=leave, join=leave, every=float(p["churn_every"]), kill=True),
        plan.seed,
        record=record,
        clock=clock,
    )
    published: list[tuple[str, str, list[str]]] = []  # (name, content sha256, recipients)
    start = clock.monotonic() - began
    gap = (seconds * 0.7 - start) / max(1, int(p["files"]))
    partitioned = False
    with churn.background():
        for number in range(int(p["files"])):
            now = clock.monotonic() - began
            if not partitioned and now >= partition_at:
                env.net.partition([cut, sorted(set(names) - set(cut))], duration_s=partition_for)
                partitioned = True
            author = rng.choice(names)
            if env.node(author).alive and friends[author]:
                recipients = sorted(friends[author])
                content = f"file {number} from {author} (seed {plan.seed})\n".encode() * 8
                fingerprints = [cards[peer]["fingerprint"] for peer in recipients]
                name = f"f{number}.txt"
                adapter.client(env.node(author)).publish(name, content, fingerprints)
                published.append((name, hashlib.sha256(content).hexdigest(), recipients))
            clock.sleep(gap)
    clock.sleep(max(0.0, seconds - (clock.monotonic() - began)))
    verdict = _delivery(env, adapter, published)
    env.record_verdict(verdict)
    facts = {"peers": len(names), "friendships": len(edges), **verdict.stats}
    return Ran(plan.drawn((), ()), [verdict], facts)


def _friend_graph(names: list[str], degree: int, rng: Any) -> list[tuple[str, str]]:
    """A random graph of average degree `degree` (a ring first, so no peer is alone)."""
    count = len(names)
    edges = {tuple(sorted((names[i], names[(i + 1) % count]))) for i in range(count)}
    target = count * degree // 2
    while len(edges) < target:
        a, b = rng.sample(names, 2)
        edges.add(tuple(sorted((a, b))))
    return sorted((a, b) for a, b in edges)


def _delivery(
    env: EnvironmentAPI, adapter: SyncpeerAdapter, published: list[tuple[str, str, list[str]]]
) -> Verdict:
    """Whether each file reached its recipients that are up at the end."""
    held: dict[str, dict[str, str]] = {}
    wanted = reached = 0
    missing: list[dict[str, str]] = []
    for name, digest, recipients in published:
        for peer in recipients:
            if not env.node(peer).alive:
                continue
            if peer not in held:
                files = adapter.client(env.node(peer)).files()
                held[peer] = {f["name"]: str(f.get("sha256_plain")) for f in files}
            wanted += 1
            if held[peer].get(name) == digest:
                reached += 1
            elif len(missing) < 20:
                missing.append({"file": name, "peer": peer})
    ratio = reached / wanted if wanted else 1.0
    return Verdict(
        "swarm-delivery",
        "valid" if ratio >= REACH else "invalid",
        f"files reached {reached} of {wanted} live recipients ({ratio:.1%})",
        {"missing": missing},
        {"files": len(published), "deliveries": wanted, "reached": reached},
    )
