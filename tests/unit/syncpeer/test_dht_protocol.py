"""The DHT protocol on a simulated network (virtual clock, no sockets): joins, lookups,
timeouts, stale contacts, records, refresh, rejoin and the puzzle."""

from __future__ import annotations

import json
import random
import statistics

import pytest
from dht_sim import SimNetwork, SimNode

from syncpeer.core.dht.ids import bucket_index, id_hex
from syncpeer.core.dht.messages import Contact, Message, Signer, decode, encode
from syncpeer.core.dht.protocol import DhtConfig, DhtProtocol, Send
from syncpeer.core.dht.puzzle import satisfies, solve
from syncpeer.core.dht.records import sign_record
from syncpeer.core.identity import Identity


def network(
    count: int, config: DhtConfig, seed: int = 1, start: float = 0.0
) -> tuple[SimNetwork, list[SimNode]]:
    net = SimNetwork(seed)
    net.now = start
    bootstrap = net.add(config)
    nodes = [bootstrap] + [net.add(config, [bootstrap.address]) for _ in range(count - 1)]
    assert net.run_until(lambda: all(n.protocol.joined for n in nodes), 30), "joins"
    return net, nodes


def test_a_hundred_nodes_join_and_every_lookup_succeeds() -> None:
    config = DhtConfig(rpc_timeout=0.5)
    net, nodes = network(100, config)
    rng = random.Random(3)
    hops = []
    for _ in range(200):
        looker, target = rng.sample(nodes, 2)
        result = net.lookup(looker, target.id)
        assert result.found, result.to_json()
        assert result.record is not None and result.record.key == target.id
        assert result.to_json()["distance"] == id_hex(looker.id ^ target.id)
        hops.append(result.hops)
    assert statistics.fmean(hops) < 3
    for node in nodes:
        table = node.protocol.table
        assert all(
            len(b.entries) <= config.k and len(b.replacements) <= config.k for b in table.buckets
        )
        assert len(table) >= 10, f"{node.name} knows only {len(table)} nodes"
    net.run_for(5.0)
    assert all(node.protocol.status()["rpcs_in_flight"] == 0 for node in nodes), "RPCs leak"


def test_lookups_around_dead_nodes_cost_the_configured_timeout() -> None:
    """A third of the network dies; lookups of live nodes still succeed, and they take
    about a few RPC timeouts, whatever that timeout is set to."""
    for rpc_timeout in (0.2, 2.0):
        config = DhtConfig(rpc_timeout=rpc_timeout)
        net, nodes = network(60, config, seed=4)
        rng = random.Random(5)
        for node in rng.sample(nodes[1:], 20):
            net.stop(node)
        live = [node for node in nodes if node.up]
        durations = []
        for _ in range(30):
            looker, target = rng.sample(live, 2)
            result = net.lookup(looker, target.id, timeout=60)
            assert result.found, result.to_json()
            durations.append(result.seconds)
        assert max(durations) <= 4 * rpc_timeout + 0.1, (rpc_timeout, max(durations))
        if rpc_timeout == 2.0:
            assert max(durations) >= rpc_timeout, "some lookup should have met a dead node"


def test_a_stale_head_is_pinged_and_replaced_when_it_is_gone() -> None:
    config = DhtConfig(k=2, stale_after=5.0, rpc_timeout=0.5)
    net = SimNetwork(6)
    hub = net.add(config)
    far = [net.add(config, [hub.address]) for _ in range(8)]
    net.run_until(lambda: all(n.protocol.joined for n in far), 10)
    by_bucket: dict[int, list[SimNode]] = {}
    for node in far:
        by_bucket.setdefault(bucket_index(hub.id, node.id), []).append(node)
    index, members = max(by_bucket.items(), key=lambda item: len(item[1]))
    assert len(members) >= 3, "the seed should put three nodes in one of the hub's buckets"
    bucket = hub.protocol.table.buckets[index]
    head = bucket.entries[0].contact
    net.stop(next(n for n in members if n.id == head.id))
    waiting = [n for n in members if n.id not in {e.contact.id for e in bucket.entries}]
    newcomer = waiting[0] if waiting else None
    assert newcomer is not None and newcomer.up
    net.run_for(10.0)  # the head is now stale
    net.apply(newcomer, newcomer.protocol.lookup(hub.id, net.now)[1])  # newcomer writes to hub
    net.run_for(2.0)
    ids = {e.contact.id for e in hub.protocol.table.buckets[index].entries}
    assert head.id not in ids, "the dead stale head was not evicted"
    assert len(ids) == config.k


def test_records_expire_unless_republished() -> None:
    config = DhtConfig(record_ttl=100.0, republish_interval=40.0, rpc_timeout=0.5)
    net, nodes = network(16, config, seed=7)
    target = nodes[5]
    holders = lambda: [n for n in nodes if n.protocol.records.get(target.id, net.now)]  # noqa: E731
    assert holders(), "the record was stored nowhere"
    net.run_for(250.0)
    assert len(holders()) >= 5, "republished every 40 s, the record must still be held"
    net.stop(target)  # no more republishing
    net.run_for(150.0)
    assert holders() == [], "holders keep a record only ttl seconds after storing it"
    looker = nodes[9]
    assert not net.lookup(looker, target.id).found


def test_a_skewed_wall_clock_moves_record_timestamps_not_timers() -> None:
    """A node whose wall clock jumps an hour ahead (or behind) signs its record with the
    skewed time, but its timers run on the monotonic clock: the records it holds for others
    do not expire early, no bucket looks refreshed in the future, and others keep holding
    its record, which replaces the unskewed one (or, behind, is refused as older)."""
    config = DhtConfig(record_ttl=100.0, republish_interval=40.0, rpc_timeout=0.5)
    net, nodes = network(16, config, seed=7, start=10_000.0)
    ahead, behind = nodes[4], nodes[6]
    held_by_ahead = len(ahead.protocol.records)
    assert held_by_ahead, "the seed should give node 4 records of others to hold"
    ahead.skew, behind.skew = 3600.0, -3600.0
    net.run_for(1.0)
    assert len(ahead.protocol.records) == held_by_ahead, "an hour's jump expired records"
    assert all(b.touched <= net.now for b in ahead.protocol.table.buckets)
    net.run_for(45.0)  # one republish each
    own = ahead.protocol.own_record
    assert own is not None and own.timestamp == pytest.approx(net.now + 3600, abs=45)
    held = [n.protocol.records.get(ahead.id, net.now) for n in nodes if n is not ahead]
    assert own in held, "the skewed record did not replace the old one"
    behind_record = behind.protocol.own_record
    assert behind_record is not None and behind_record.timestamp < 10_000.0
    kept = [n.protocol.records.get(behind.id, net.now) for n in nodes if n is not behind]
    assert behind_record not in kept, "a record older than the one held must be refused"
    assert any(record is not None for record in kept), "the unskewed record is still held"


def test_buckets_are_refreshed_after_the_interval() -> None:
    config = DhtConfig(refresh_interval=50.0, republish_interval=1000.0, rpc_timeout=0.5)
    net, nodes = network(20, config, seed=8)
    node = nodes[3]
    before = node.protocol.counters["sent"]
    net.run_for(130.0)
    touched = [b.touched for b in node.protocol.table.buckets if b.entries]
    assert min(touched) >= 50.0, "every non-empty bucket was looked into again"
    assert node.protocol.counters["sent"] > before


def test_an_answer_keeps_its_bucket_fresh() -> None:
    """A contact that answers a request proves its bucket's range is reached: the bucket is
    not due for a refresh until `refresh_interval` after that answer."""
    config = DhtConfig(refresh_interval=50.0, republish_interval=1000.0, rpc_timeout=0.5)
    net, nodes = network(20, config, seed=8)
    node = nodes[3]
    net.run_for(40.0 - net.now)
    asked = net.now
    sent_before = node.protocol.counters["sent"]
    result = net.lookup(node, random.Random(5).getrandbits(160), want_value=False)
    answered = {c.id for c in result.closest} & {c.id for c in node.protocol.table.contacts()}
    buckets = {bucket_index(node.id, contact) for contact in answered}
    assert len(buckets) >= 2, "the lookup should hear from more than the target's bucket"
    table = node.protocol.table
    assert all(table.buckets[index].touched >= asked for index in buckets)
    assert not set(table.due_for_refresh(asked + 49.0, config.refresh_interval)) & buckets
    assert node.protocol.counters["sent"] > sent_before


def test_a_node_that_lost_everyone_joins_again() -> None:
    config = DhtConfig(rpc_timeout=0.5, max_failures=1, refresh_interval=20.0)
    net = SimNetwork(9)
    bootstrap = net.add(config)
    a = net.add(config, [bootstrap.address])
    b = net.add(config, [bootstrap.address])
    net.run_until(lambda: a.protocol.joined and b.protocol.joined, 10)
    net.stop(bootstrap)
    net.stop(b)
    net.run_for(60.0)  # refresh lookups fail: a's table empties
    assert len(a.protocol.table) == 0
    bootstrap.up = True
    c = net.add(config, [bootstrap.address])
    net.run_for(70.0)  # a retries the bootstrap node with backoff
    assert bootstrap.id in a.protocol.table
    assert net.lookup(a, c.id).found


def test_puzzle_keeps_unsolved_ids_out() -> None:
    config = DhtConfig(puzzle_bits=8, rpc_timeout=0.5)
    net = SimNetwork(10)
    solved = [solve(f"s{i}", net.random_bytes, 8) for i in range(4)]
    bootstrap = net.add(config, identity=solved[0])
    honest = [net.add(config, [bootstrap.address], identity=ident) for ident in solved[1:]]
    unsolved = next(
        i
        for i in (Identity.generate("x", net.random_bytes) for _ in range(50))
        if not satisfies(Signer(i.card.sign_key, i.sign).id, 8)
    )
    intruder = net.add(DhtConfig(rpc_timeout=0.5), [bootstrap.address], identity=unsolved)
    net.run_for(5.0)
    assert all(n.protocol.joined for n in honest)
    assert intruder.id not in bootstrap.protocol.table
    assert bootstrap.protocol.counters["rejected_puzzle"] >= 1
    # Nor can anyone name it in an answer: lookups drop contacts whose id fails the puzzle.
    _, effects = honest[0].protocol.lookup(intruder.id, net.now, want_value=False)
    assert all(
        json.loads(e.data[64:])["target"] == intruder.protocol.me.hex
        for e in effects
        if isinstance(e, Send)
    )
    net.apply(honest[0], effects)
    net.run_for(5.0)
    assert intruder.protocol.counters["served_find_node"] == 0


def _request(sender: Identity, kind: str, **fields: object) -> bytes:
    signer = Signer(sender.card.sign_key, sender.sign)
    return encode(Message(kind, "ab" * 8, Contact(signer.id, "10.9.9.9:7401"), **fields), signer)


def test_store_keeps_newer_records_and_answers_find_value(rng_identities: list[Identity]) -> None:
    alice, bob, carol = rng_identities
    holder = DhtProtocol(
        Signer(carol.card.sign_key, carol.sign),
        "10.0.0.3:7401",
        DhtConfig(),
        random.Random(1).randbytes,
    )
    new = sign_record(alice, "10.0.0.1:7400", "10.0.0.1:7401", 200.0, 600.0)
    old = sign_record(alice, "10.0.0.9:7400", "10.0.0.9:7401", 100.0, 600.0)

    def answer(data: bytes) -> Message:
        [send] = [
            e for e in holder.receive(data, "10.9.9.9:7401", 0.0, wall=0.0) if isinstance(e, Send)
        ]
        assert send.address == "10.9.9.9:7401"
        return decode(send.data)[0]

    assert answer(_request(bob, "store", record=new.to_json())).ok is True
    refused = answer(_request(bob, "store", record=old.to_json()))
    assert refused.ok is False and refused.reason == "older"
    forged = {**new.to_json(), "address": "6.6.6.6:1"}
    bad = answer(_request(bob, "store", record=forged))
    assert bad.ok is False and "does not verify" in (bad.reason or "")
    found = answer(_request(bob, "find_value", target=new.key))
    assert found.type == "value" and found.record == new.to_json()
    missing = answer(_request(bob, "find_value", target=new.key ^ 1))
    assert missing.type == "nodes"


def test_an_answer_from_the_wrong_id_counts_as_a_failure(rng_identities: list[Identity]) -> None:
    alice, bob, mallory = rng_identities
    proto = DhtProtocol(
        Signer(alice.card.sign_key, alice.sign),
        "10.0.0.1:7401",
        DhtConfig(rpc_timeout=1.0),
        random.Random(2).randbytes,
    )
    bob_id = Signer(bob.card.sign_key, bob.sign).id
    proto.table.seen(Contact(bob_id, "10.0.0.2:7401"), 0.0)
    handle, effects = proto.lookup(bob_id ^ 1, 0.0, want_value=False)
    [send] = [e for e in effects if isinstance(e, Send)]
    rpc = json.loads(send.data[64:])["rpc"]
    mallory_signer = Signer(mallory.card.sign_key, mallory.sign)
    impostor = encode(
        Message("nodes", rpc, Contact(mallory_signer.id, "10.0.0.2:7401")), mallory_signer
    )
    effects = proto.receive(impostor, "10.0.0.2:7401", 0.1, wall=0.1)
    assert proto.counters["rejected_identity"] == 1
    assert mallory_signer.id not in proto.table
    done = [e for e in effects if getattr(e, "handle", None) == handle]
    assert done and done[0].result.queried[0].state == "rejected"


@pytest.fixture
def rng_identities() -> list[Identity]:
    source = random.Random(77).randbytes
    return [Identity.generate(name, source) for name in ("alice", "bob", "carol")]


def test_a_self_lookup_carries_only_its_senders_record(rng_identities: list[Identity]) -> None:
    """A joining node's find_node for its own id carries its record, and the node asked
    keeps it; a record carried by anyone else, or in a lookup of another id, is not kept."""
    alice, bob, carol = rng_identities
    holder = DhtProtocol(
        Signer(carol.card.sign_key, carol.sign),
        "10.0.0.3:7401",
        DhtConfig(),
        random.Random(3).randbytes,
    )
    bob_id = Signer(bob.card.sign_key, bob.sign).id
    alice_id = Signer(alice.card.sign_key, alice.sign).id
    bobs = sign_record(bob, "10.9.9.9:7400", "10.9.9.9:7401", 1.0, 600.0)
    alices = sign_record(alice, "10.0.0.1:7400", "10.0.0.1:7401", 1.0, 600.0)
    holder.receive(
        _request(bob, "find_node", target=alice_id, record=bobs.to_json()), "x:1", 0.0, wall=0.0
    )
    holder.receive(
        _request(bob, "find_node", target=bob_id, record=alices.to_json()), "x:1", 0.0, wall=0.0
    )
    assert len(holder.records) == 0 and holder.counters["store_refused"] == 2
    holder.receive(
        _request(bob, "find_node", target=bob_id, record=bobs.to_json()), "x:1", 0.0, wall=0.0
    )
    assert holder.records.get(bob_id, 1.0) == bobs


def test_joins_store_the_record_on_the_nearest_nodes() -> None:
    config = DhtConfig(rpc_timeout=0.5)
    net, nodes = network(60, config, seed=12)
    for node in nodes[1:]:
        nearest = sorted(nodes, key=lambda other: other.id ^ node.id)[1:6]
        holding = [o for o in nearest if o.protocol.records.get(node.id, net.now)]
        assert len(holding) >= 3, f"{node.name}'s record is on {len(holding)} of its 5 nearest"
