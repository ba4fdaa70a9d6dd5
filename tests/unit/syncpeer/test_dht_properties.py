"""The DHT's distance and routing are right at scale (Mau TC-001 "DHT distance calculation is
correct", TC-201 "routing table sizes"), as properties of random networks in the virtual-
clock simulator, judged by brute force:

* every lookup (for node ids and for random targets) returns exactly the k live nodes
  closest to the target by XOR distance, the looker aside: the oracle sorts all live ids.
  Where nodes died, it demands what a lookup can know, no more. A node answers with the k
  nearest ids in its table, and a dead node stays there until that node itself tries it
  and it fails (nothing makes the nodes near a target try each other in the settle
  period). So when dead ids are among the nearest, every answer that knows a live node
  just past them can be full of nearer ids, and nobody the lookup asks names that node
  (seed 1529, 414 nodes: the 21 ids nearest a target hold 3 dead, every node near it
  names exactly those 21 but itself, and the lookup, having asked all 18 live ones, never
  hears of the live nodes ranked 21st and 22nd). The oracle therefore sees what the lookup
  was told (its table's k nearest, where it starts, and every contact an answer named),
  and demands:
  - the k nearest live nodes among those, exactly: a lookup asks every contact nearer
    than its k-th answer until all have answered, and every live node answers;
  - of the k nearest live nodes, only some crowded out by dead ids may be missing: a
    node that knew the nearest one missed (the nodes around a target know it, which is
    why lookups are exact without dead nodes) named k ids nearer than it instead, only
    j of them live when j live nodes are nearer, so the lookup was told of at least
    k - j dead ids nearer than it. Without dead nodes this is exactness; and it never
    lets the nearest live node go missing unless k dead ids are nearer still;
* every routing table's bucket i holds only ids whose XOR distance from the owner has
  bit length i + 1 (they share exactly 159 - i leading bits with it), never more than k.

`make test` runs the short form (one network of 200 nodes); `make dht-properties` the long
one (`dht_properties` marker: networks of 200 to 2,000 nodes, some of them dead). A
failure prints the network's seed and size, which rebuild it exactly (hypothesis shrinks
to the smallest it finds). The `wrong-distance` mutant is taken from SYNCPEER_MUTANTS
(`make mutants`), and the last test proves the oracle catches it.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import pytest
from dht_sim import SimNetwork, SimNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncpeer.core.dht.ids import ID_BITS
from syncpeer.core.dht.lookup import LookupResult
from syncpeer.core.dht.messages import Message, decode
from syncpeer.core.dht.protocol import DhtConfig
from syncpeer.core.mutants import Mutants

K = 20
SETTLE_S = 30.0  # virtual seconds after the last join before anything is judged
LOOKUPS = 60


@dataclass
class Network:
    seed: int
    net: SimNetwork
    live: list[SimNode]

    def replay(self) -> str:
        return f"build(seed={self.seed}, size={len(self.net.nodes)}, ...)"


def build(seed: int, size: int, dead: float = 0.0, mutants: Mutants | None = None) -> Network:
    """`size` nodes joining through one bootstrap node at once, settled; then a fraction
    `dead` of them (never the bootstrap) stops, and the rest run on a while."""
    mutants = Mutants.parse(os.environ.get("SYNCPEER_MUTANTS")) if mutants is None else mutants
    net = SimNetwork(seed)
    config = DhtConfig(k=K, rpc_timeout=0.5)
    bootstrap = net.add(config, mutants=mutants)
    nodes = [bootstrap] + [
        net.add(config, [bootstrap.address], mutants=mutants) for _ in range(size - 1)
    ]
    assert net.run_until(lambda: all(n.protocol.joined for n in nodes), 120), (
        f"not every node joined; {Network(seed, net, nodes).replay()}"
    )
    net.run_for(SETTLE_S)
    rng = random.Random(seed)
    for node in rng.sample(nodes[1:], int((size - 1) * dead)):
        net.stop(node)
    if dead:
        net.run_for(SETTLE_S)
    return Network(seed, net, [n for n in nodes if n.up])


def told_lookup(network: Network, looker: SimNode, target: int) -> tuple[LookupResult, set[int]]:
    """A node lookup of `target` from `looker`, and the ids it was told of: the k nearest
    in the looker's table (where a lookup starts) and every contact its answers named."""
    told = {contact.id for contact in looker.protocol.table.closest(target, K)}
    answers: list[Message] = []

    def listen(node: SimNode, data: bytes) -> None:
        if node is looker:
            message, _ = decode(data)
            if message.type == "nodes":
                answers.append(message)

    network.net.tap = listen
    try:
        result = network.net.lookup(looker, target, want_value=False)
    finally:
        network.net.tap = None
    # Nothing else of the looker's asks for nodes meanwhile (no refresh or republish falls
    # due this early), so these are the lookup's answers: one from each node that answered.
    answered = sorted(c.contact.id for c in result.queried if c.state == "answered")
    assert sorted(message.sender.id for message in answers) == answered, (
        f"{looker.name} had other answers during its lookup; {network.replay()}"
    )
    for message in answers:
        told.update(contact.id for contact in message.nodes)
    return result, told


def lookup_problem(
    target: int, looker: int, live: set[int], got: list[int], told: set[int]
) -> str | None:
    """What is wrong with a lookup's answer `got` (None: nothing), judged against the
    brute-force k live ids nearest the target (the looker excluded) and against the ids
    it was `told` of, as the module docstring says."""

    def gap(node_id: int) -> int:
        return node_id ^ target

    expected = sorted((i for i in live if i != looker), key=gap)[:K]
    best_told = sorted((i for i in told if i in live and i != looker), key=gap)[:K]
    if got != best_told:
        return (
            f"not the {K} nearest live nodes it was told of: "
            f"{len(set(best_told) - set(got))} of those missing, {len(got)} returned"
        )
    returned = set(got)
    missed = [i for i in expected if i not in returned]  # never told of: got is best_told
    if not missed:
        return None
    nearest = missed[0]
    nearer_live = expected.index(nearest)
    crowding = sum(1 for i in told if i not in live and gap(i) < gap(nearest))
    if crowding < K - nearer_live:
        return (
            f"{len(missed)} of the {K} nearest live nodes missing, the nearest of them "
            f"ranked {nearer_live + 1}: only {crowding} dead ids nearer were named, "
            f"not the {K - nearer_live} that could have crowded it out"
        )
    return None


def lookup_violations(network: Network, lookups: int = LOOKUPS) -> list[str]:
    """Lookups from random live nodes, for live ids and random targets, each judged by
    `lookup_problem`."""
    rng = random.Random(network.seed + 1)
    live_ids = [node.id for node in network.live]
    live = set(live_ids)
    problems = []
    for index in range(lookups):
        looker = rng.choice(network.live)
        target = rng.choice(live_ids) if index % 2 else rng.getrandbits(ID_BITS)
        result, told = told_lookup(network, looker, target)
        got = [contact.id for contact in result.closest]
        problem = lookup_problem(target, looker.id, live, got, told)
        if problem is not None:
            problems.append(f"lookup {index} from {looker.name} for {target:040x}: {problem}")
    return problems


def table_violations(network: Network) -> list[str]:
    problems = []
    for node in network.live:
        table = node.protocol.table
        for index, bucket in enumerate(table.buckets):
            if len(bucket.entries) > table.k:
                problems.append(f"{node.name} bucket {index} holds {len(bucket.entries)} > k")
            for entry in bucket.entries:
                if (entry.contact.id ^ node.id).bit_length() != index + 1:
                    problems.append(
                        f"{node.name} bucket {index} holds {entry.contact.hex}, at distance "
                        f"bit length {(entry.contact.id ^ node.id).bit_length()}"
                    )
    return problems


def assert_routing_is_right(network: Network) -> None:
    problems = table_violations(network) + lookup_violations(network)
    assert not problems, f"{network.replay()}: {len(problems)} violations: {problems[:5]}"


@settings(max_examples=1, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_two_hundred_nodes_route_exactly(seed: int) -> None:
    """The short form, in `make test`: one random network of 200 live nodes."""
    assert_routing_is_right(build(seed, 200))


@pytest.mark.stress
@pytest.mark.dht_properties
@settings(
    max_examples=int(os.environ.get("PEERLAB_DHT_EXAMPLES", "6")),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(200, 2000),
    dead=st.sampled_from([0.0, 0.1]),
)
def test_networks_of_up_to_two_thousand_nodes_route_exactly(
    seed: int, size: int, dead: float
) -> None:
    """The long form (`make dht-properties`): 200 to 2,000 nodes, a tenth of them dead
    in half the networks."""
    assert_routing_is_right(build(seed, size, dead))


def test_the_oracle_catches_a_wrong_distance() -> None:
    """With `wrong-distance` (closeness by numeric difference, not XOR) the tables are
    still bucketed right, but lookups converge on the wrong nodes, and the oracle says so."""
    network = build(11, 60, mutants=Mutants.of(["wrong-distance"]))
    assert table_violations(network) == []
    problems = lookup_violations(network, lookups=20)
    assert len(problems) >= 10, problems
    assert lookup_violations(build(11, 60, mutants=Mutants()), lookups=20) == []


def test_the_oracle_allows_only_what_dead_ids_crowd_out() -> None:
    """`lookup_problem` on made-up ids (the id is the distance: the target is 0), as the
    lookup of seed 1529 met it: the 21 ids nearest the target hold 3 dead, every answer
    names those 21, and the live 22nd and 23rd never come up. The lookup's table adds two
    far contacts (50, 60)."""
    looker = 1000
    dead = {11, 16, 18}
    live = set(range(1, 101)) - dead
    told = set(range(1, 22)) | {50, 60}
    best = sorted(i for i in told if i in live)
    assert len(best) == K
    assert lookup_problem(0, looker, live, best, told) is None
    # Skipping a live node it was told of is the lookup's own fault.
    skipped = lookup_problem(0, looker, live, [*best[:4], *best[5:]], told)
    assert skipped is not None and "told of" in skipped
    # One dead id cannot crowd out two live nodes: 20 and 21 missing, only 11 in the way
    # (answers one short, say).
    short = set(range(1, 20)) | {50, 60}
    missing = lookup_problem(0, looker, set(range(1, 101)) - {11}, sorted(short - {11}), short)
    assert missing is not None and "only 1 dead ids nearer" in missing
    # The nearest live node is never crowded out by fewer than k dead ids.
    far = told - {1}
    assert lookup_problem(0, looker, live, sorted(far & live), far) is not None
    # Without dead nodes, nothing may be missing.
    assert lookup_problem(0, looker, set(range(1, 101)), list(range(1, 21)), told) is None
    assert lookup_problem(0, looker, set(range(1, 101)), sorted(short), short) is not None
