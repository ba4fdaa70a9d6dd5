"""The DHT's sans-IO parts one by one: ids, puzzle, messages, records, routing, lookups."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

from syncpeer.core.dht.ids import bucket_index, distance, id_hex, parse_id, random_id_in_bucket
from syncpeer.core.dht.lookup import Lookup
from syncpeer.core.dht.messages import (
    MAX_DATAGRAM,
    Contact,
    InvalidMessage,
    Message,
    Signer,
    decode,
    encode,
)
from syncpeer.core.dht.puzzle import leading_zero_bits, satisfies, solve
from syncpeer.core.dht.records import (
    MAX_TTL,
    AddressRecord,
    InvalidRecord,
    RecordStore,
    sign_record,
)
from syncpeer.core.dht.routing import RoutingTable
from syncpeer.core.identity import Identity, RandomSource


def signer_of(identity: Identity) -> Signer:
    return Signer(identity.card.sign_key, identity.sign)


def contact(node_id: int, port: int = 7401) -> Contact:
    return Contact(node_id, f"10.0.0.1:{port}")


# ------------------------------------------------------------------ ids and the puzzle


def test_ids_are_fingerprints_and_buckets_follow_xor_distance(
    make_identity: Callable[[str], Identity], rng: RandomSource
) -> None:
    identity = make_identity("a")
    own = signer_of(identity).id
    assert id_hex(own) == identity.fingerprint
    assert parse_id(identity.fingerprint) == own
    with pytest.raises(ValueError, match="40 lowercase hex"):
        parse_id("ABC")
    assert bucket_index(0, 1) == 0 and bucket_index(0, 1 << 159) == 159
    assert bucket_index(0b1010, 0b1000) == 1
    for index in (0, 7, 80, 159):
        other = random_id_in_bucket(own, index, rng)
        assert bucket_index(own, other) == index
        assert 2**index <= distance(own, other) < 2 ** (index + 1)
    with pytest.raises(ValueError):
        bucket_index(own, own)


def test_puzzle_solutions_pass_and_cost_grows_with_bits(rng: RandomSource) -> None:
    solved = solve("p", rng, 8)
    node_id = signer_of(solved).id
    assert leading_zero_bits(node_id) >= 8 and satisfies(node_id, 8)
    assert satisfies(node_id, 0)
    unsolved = next(
        signer_of(i).id
        for i in (Identity.generate("x", rng) for _ in range(100))
        if leading_zero_bits(signer_of(i).id) < 8
    )
    assert not satisfies(unsolved, 8)
    with pytest.raises(RuntimeError, match="no key passed"):
        solve("q", rng, 24, max_attempts=50)


# ------------------------------------------------------------------ messages


@pytest.mark.parametrize("simulated", [False, True], ids=["ed25519", "simulated"])
def test_message_round_trip_and_tampering(
    make_identity: Callable[[str], Identity], rng: RandomSource, simulated: bool
) -> None:
    alice = Identity("alice", rng(32), rng(32), simulated=simulated)
    me = Contact(signer_of(alice).id, "127.0.0.1:7401")
    nodes = (contact(5), contact(9, 7402))
    data = encode(Message("nodes", "00" * 8, me, nodes=nodes), signer_of(alice))
    message, key = decode(data)
    assert message.type == "nodes" and message.sender == me and message.nodes == nodes
    assert key == alice.card.sign_key

    tampered = data.replace(b"127.0.0.1:7401", b"127.0.0.1:7409")  # same length, other addr
    with pytest.raises(InvalidMessage, match="signature"):
        decode(tampered)

    mallory = make_identity("mallory")
    forged = encode(Message("ping", "11" * 8, me), signer_of(mallory))  # alice's id, own key
    with pytest.raises(InvalidMessage, match="not the fingerprint of its key"):
        decode(forged)

    with pytest.raises(InvalidMessage, match="not a signature and a JSON body"):
        decode(bytes(64) + b"\xff\x00")
    with pytest.raises(InvalidMessage, match="over"):
        decode(b" " * (MAX_DATAGRAM + 1))
    bad_contact = encode(
        Message("nodes", "22" * 8, me, nodes=(Contact(1, "no-port"),)), signer_of(alice)
    )
    with pytest.raises(InvalidMessage, match="address"):
        decode(bad_contact)


def test_a_nodes_answer_is_the_json_of_its_body_and_odd_contacts_are_named(
    make_identity: Callable[[str], Identity],
) -> None:
    """A nodes answer is made from each contact's JSON: the bytes are what serializing the
    whole body gives (at most 32 contacts, any address text), and a malformed contact in a
    received answer is refused naming what is wrong with it."""
    alice = make_identity("alice")
    signer = signer_of(alice)
    me = Contact(signer.id, "[::1]:7401")
    for count, address in ((0, "10.0.0.1:7401"), (1, "höst:7401"), (20, "a:1"), (40, "b:2")):
        nodes = tuple(Contact(node_id + 1, address) for node_id in range(count))
        data = encode(Message("nodes", "00" * 8, me, nodes=nodes), signer)
        body = {
            "v": 1,
            "t": "nodes",
            "rpc": "00" * 8,
            "id": me.hex,
            "key": signer.key_text,
            "addr": me.address,
            "nodes": [[c.hex, c.address] for c in nodes[:32]],
        }
        assert data[64:] == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    def answer(raw_nodes: object) -> bytes:
        body = {"v": 1, "t": "nodes", "rpc": "00" * 8, "id": me.hex, "key": signer.key_text}
        payload = json.dumps({**body, "addr": me.address, "nodes": raw_nodes}).encode()
        return alice.sign(b"syncpeer-dht-v1\x00" + payload) + payload

    good = [contact(5).hex, "10.0.0.1:7401"]
    assert decode(answer([good, good]))[0].nodes == (contact(5), contact(5))
    for raw, problem in (
        ({good[0]: good[1]}, "must be \\[id, address\\]"),
        ("ab", "must be \\[id, address\\]"),
        ([*good, "x"], "must be \\[id, address\\]"),
        ([5, good[1]], "two strings"),
        ([[good[0]], good[1]], "two strings"),
        (["A" * 40, good[1]], "40 lowercase hex"),
        ([good[0], "nowhere"], "host:port"),
    ):
        with pytest.raises(InvalidMessage, match=problem):
            decode(answer([good, raw]))


def test_every_message_is_the_json_of_its_body(
    make_identity: Callable[[str], Identity],
) -> None:
    """Pings, lookups and their answers are made from pieces serialized once; the bytes are
    still exactly what serializing the whole body gives, escapes included."""
    signer = signer_of(make_identity("alice"))
    record = {"fingerprint": "ab" * 20, "addresses": ["10.0.0.1:1"]}
    for address in ("10.0.0.1:7401", "höst:7401", 'we"ird\\:1'):
        me = Contact(signer.id, address)
        for message, fields in (
            (Message("ping", "0123456789abcdef", me), {}),
            (Message("pong", "fedcba9876543210", me), {}),
            (Message("find_node", "00" * 8, me, target=7), {"target": id_hex(7)}),
            (Message("find_value", "11" * 8, me, target=2**159), {"target": id_hex(2**159)}),
            (
                Message("find_node", "22" * 8, me, target=me.id, record=record),
                {"target": me.hex, "record": record},
            ),
            (Message("store", "33" * 8, me, record=record), {"record": record}),
            (Message("value", "44" * 8, me, record=record), {"record": record}),
            (
                Message("stored", "55" * 8, me, ok=False, reason="full"),
                {"ok": False, "reason": "full"},
            ),
        ):
            body = {
                "v": 1,
                "t": message.type,
                "rpc": message.rpc,
                "id": me.hex,
                "key": signer.key_text,
                "addr": address,
                **fields,
            }
            expected = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            assert encode(message, signer)[64:] == expected, message.type
            assert decode(encode(message, signer))[0] == message


# ------------------------------------------------------------------ records


def test_records_verify_and_the_store_keeps_the_newest(
    make_identity: Callable[[str], Identity],
) -> None:
    alice = make_identity("alice")
    old = sign_record(alice, "127.0.0.1:7400", "127.0.0.1:7401", 100.0, 60.0)
    new = sign_record(alice, "127.0.0.2:7400", "127.0.0.2:7401", 200.0, 60.0)
    assert AddressRecord.from_json(json.loads(json.dumps(new.to_json()))) == new

    tampered = {**new.to_json(), "address": "6.6.6.6:7400"}
    with pytest.raises(InvalidRecord, match="does not verify"):
        AddressRecord.from_json(tampered)
    mallory = make_identity("mallory")
    foreign = {
        **sign_record(mallory, "1.2.3.4:1", "1.2.3.4:2", 1.0, 1.0).to_json(),
        "fingerprint": alice.fingerprint,
    }
    with pytest.raises(InvalidRecord, match="not the fingerprint"):
        AddressRecord.from_json(foreign)
    with pytest.raises(InvalidRecord, match="missing"):
        AddressRecord.from_json({"fingerprint": alice.fingerprint})
    # Parsed records are kept, but only for the very same fields: 200 is not 200.0 (it
    # signs other bytes), and a tampered copy of a kept record is still checked.
    assert AddressRecord.from_json(new.to_json()) == new
    with pytest.raises(InvalidRecord, match="does not verify"):
        AddressRecord.from_json({**new.to_json(), "timestamp": 200})
    with pytest.raises(InvalidRecord, match="does not verify"):
        AddressRecord.from_json(tampered)
    with pytest.raises(InvalidRecord, match="must be a number"):
        AddressRecord.from_json({**new.to_json(), "ttl": True})

    store = RecordStore()
    assert store.put(new, now=0.0) is None
    assert store.put(old, now=1.0) == "older"
    assert store.get(new.key, 1.0) == new
    other_same_instant = sign_record(alice, "127.0.0.3:7400", "127.0.0.3:7401", 200.0, 60.0)
    assert store.put(other_same_instant, now=1.0) == "conflict"
    assert store.get(new.key, 59.9) == new
    assert store.get(new.key, 60.0) is None, "a record is dropped ttl seconds after storing"
    assert store.put(old, now=61.0) is None, "once expired, an older record is accepted"
    forever = sign_record(alice, "127.0.0.1:7400", "127.0.0.1:7401", 300.0, 10 * MAX_TTL)
    store.put(forever, now=100.0)
    assert store.next_expiry() == 100.0 + MAX_TTL

    full = RecordStore(max_records=1)
    assert full.put(new, 0.0) is None
    assert full.put(sign_record(mallory, "1.2.3.4:1", "1.2.3.4:2", 1.0, 9.0), 0.0) == "full"


# ------------------------------------------------------------------ routing table


def test_buckets_hold_k_and_keep_old_contacts_that_answer() -> None:
    table = RoutingTable(own_id=0, k=3, stale_after=10.0)
    far = [contact((1 << 159) | i) for i in range(1, 6)]  # all in bucket 159
    for c in far[:3]:
        assert table.seen(c, now=0.0) is None
    assert len(table) == 3
    # Full, head fresh: the newcomer waits, nobody is pinged.
    assert table.seen(far[3], now=5.0) is None
    assert len(table.buckets[159].entries) == 3 and len(table.buckets[159].replacements) == 1
    # Full, head stale: the head is to be pinged (once).
    assert table.seen(far[4], now=20.0) == far[0]
    assert table.seen(far[4], now=21.0) is None
    # The head answers: it stays (moved to the tail), the newcomers keep waiting.
    table.seen(far[0], now=22.0)
    assert [e.contact for e in table.buckets[159].entries] == [far[1], far[2], far[0]]
    # A contact that fails while a replacement waits is replaced by the newest one.
    assert table.failed(far[1].id) is True
    assert far[4] in table.contacts() and far[1] not in table.contacts()
    assert len(table) == 3
    # With nothing waiting, a contact stays until max_failures failures in a row.
    lone = RoutingTable(own_id=0, k=3, max_failures=2)
    lone.seen(contact(7), 0.0)
    assert lone.failed(7) is False and lone.failed(7) is True and len(lone) == 0


def test_a_refresh_is_due_at_the_time_next_refresh_names() -> None:
    """next_refresh's time is one at which due_for_refresh finds the bucket due, whatever the
    rounding: a driver woken then and finding nothing due is woken again at once, forever."""
    rng = random.Random(4)
    for _ in range(1000):
        table = RoutingTable(own_id=0, k=20)
        table.seen(contact(1 << 159), now=0.0)
        touched = round(rng.uniform(0, 1000), 3)
        interval = rng.choice([50.0, 900.0, 0.1, 33.3])
        table.touch_all(touched)
        due_at = table.next_refresh(interval)
        assert due_at is not None and table.due_for_refresh(due_at, interval) == list(
            range(159, 160)
        ), (touched, interval)


def test_closest_refresh_and_seeds() -> None:
    table = RoutingTable(own_id=0, k=20)
    ids = [3, 12, 1 << 100, (1 << 159) + 7, (1 << 159) + 1]
    for node_id in ids:
        table.seen(contact(node_id), now=0.0)
    assert [c.id for c in table.closest(2, 2)] == [3, 12]
    assert [c.id for c in table.closest((1 << 159) + 6, 1)] == [(1 << 159) + 7]
    assert table.due_for_refresh(now=100.0, interval=50.0) == list(range(1, 160))
    table.touch(1 << 100, now=100.0)
    assert 100 not in table.due_for_refresh(now=120.0, interval=50.0)
    # Bucket 50 is empty: its refresh asks the farther contacts, nearest to the target first.
    seeds = table.refresh_seeds(50, 1 << 50)
    assert [c.id for c in seeds] == [1 << 100, (1 << 159) + 1, (1 << 159) + 7]
    assert table.refresh_seeds(159, 1 << 159)[0].id in ((1 << 159) + 1, (1 << 159) + 7)
    assert table.get(12) == contact(12) and 13 not in table


# ------------------------------------------------------------------ lookups


class Oracle:
    """Answers a lookup's RPCs from a fixed network in which each node knows everyone."""

    def __init__(self, ids: list[int], liars: set[int] = frozenset(), k: int = 20) -> None:
        self.ids, self.liars, self.k = ids, liars, k

    def answer(self, lookup: Lookup, queried: int) -> list[Contact]:
        if queried in self.liars:
            return [contact(i) for i in sorted(self.liars)][: self.k]
        others = [i for i in self.ids if i != lookup.origin]  # nodes never name the asker
        return [contact(i) for i in sorted(others, key=lambda i: i ^ lookup.target)][: self.k]


def drive(lookup: Lookup, oracle: Oracle, holder: int | None = None) -> int:
    """Run a lookup to its end; returns the most RPCs that were ever in flight per path."""
    pending = lookup.start(0.0)
    most = 0
    while pending:
        per_path: dict[int, int] = {}
        for candidate in pending:
            per_path[candidate.path] = per_path.get(candidate.path, 0) + 1
        most = max(most, *per_path.values())
        candidate = pending.pop(0)
        record = None
        if holder is not None and candidate.contact.id == holder:
            record = "found"
        more = lookup.answered(candidate, oracle.answer(lookup, candidate.contact.id), record, 1.0)  # type: ignore[arg-type]
        pending.extend(more)
    return most


def test_lookup_converges_keeps_alpha_and_reports_path() -> None:
    rnd = random.Random(5)
    ids = [rnd.getrandbits(160) for _ in range(300)]
    origin, target = ids[0], ids[123]
    lookup = Lookup(
        target,
        origin,
        [contact(i) for i in ids[1:40]],
        want_value=False,
        k=20,
        alpha=3,
        paths=1,
        now=0.0,
        deadline=10.0,
    )
    assert drive(lookup, Oracle(ids)) <= 3
    result = lookup.result()
    assert result.found and result.closest[0].id == target
    true_closest = sorted((i for i in ids if i != origin), key=lambda i: i ^ target)[:20]
    assert [c.id for c in result.closest] == true_closest
    assert result.path[-1].contact.id == target and result.hops == len(result.path)
    assert result.to_json()["distance"] == id_hex(origin ^ target)


def test_value_lookup_stops_at_the_first_record_and_paths_are_disjoint() -> None:
    rnd = random.Random(6)
    ids = [rnd.getrandbits(160) for _ in range(200)]
    origin, target = ids[0], ids[77]
    lookup = Lookup(
        target,
        origin,
        [contact(i) for i in ids[1:60]],
        want_value=True,
        k=20,
        alpha=3,
        paths=3,
        now=0.0,
        deadline=10.0,
    )
    drive(lookup, Oracle(ids), holder=target)
    result = lookup.result()
    assert result.found and result.holder == contact(target)
    asked = [c.key for c in result.queried]
    assert len(asked) == len(set(asked)), "a contact was asked by two paths"
    assert {c.path for c in result.queried} == {0, 1, 2}


def test_disjoint_paths_survive_liars_that_one_path_does_not() -> None:
    """Liars answer only with each other; a lookup succeeds if any path avoids them."""
    rnd = random.Random(7)
    honest = [rnd.getrandbits(160) for _ in range(60)]
    target = honest[5]
    liars = {target ^ (1 << bit) ^ rnd.getrandbits(bit) for bit in range(100, 130)}
    everyone = honest + sorted(liars)
    origin = honest[0]
    # The origin knows six liars (nearest to the target) and three honest nodes. One path
    # asks the three nearest, all liars, whose answers push the honest ones out of its k;
    # three paths each start with two liars and one honest node of their own.
    start = [contact(i) for i in sorted(liars)[:6]] + [contact(i) for i in honest[6:9]]

    def run(paths: int) -> bool:
        lookup = Lookup(
            target,
            origin,
            start,
            want_value=True,
            k=20,
            alpha=3,
            paths=paths,
            now=0.0,
            deadline=10.0,
        )
        drive(lookup, Oracle(everyone, liars), holder=target)
        return lookup.result().found

    assert not run(1), "one path is led astray by the liars"
    assert run(3), "three disjoint paths: the honest one finds the record"


def test_lookup_with_no_contacts_ends_at_once() -> None:
    lookup = Lookup(1, 2, [], want_value=True, k=20, alpha=3, paths=1, now=0.0, deadline=5.0)
    assert lookup.start(0.0) == [] and lookup.done
    assert lookup.result().reason == "no contacts"


def test_closest_sorts_only_the_bands_it_needs_and_finds_what_a_full_sort_finds() -> None:
    """`closest` by XOR sorts bucket by bucket; on random tables (contacts near the own id
    and far from it, targets alike, half of them dropped again) it returns what sorting
    every contact returns."""
    rng = random.Random(5)
    for _ in range(100):
        own = rng.getrandbits(160)
        table = RoutingTable(own, k=rng.choice([2, 5, 20]))
        for _ in range(rng.randint(0, 300)):
            near = own ^ rng.getrandbits(rng.randint(1, 160))
            contact_id = near if rng.random() < 0.5 else rng.getrandbits(160)
            if contact_id != own:
                table.seen(Contact(contact_id, "198.18.0.1:7000"), 0.0)
        for gone in rng.sample(table.contacts(), len(table) // 2):  # buckets empty again
            for _ in range(table.max_failures):
                table.failed(gone.id)
        contacts = table.contacts()
        for _ in range(10):
            target = own ^ rng.getrandbits(rng.randint(1, 160))
            count = rng.choice([1, 3, 20, 1000])
            exclude = rng.choice([None, *(c.id for c in contacts[:3])])
            everyone = [c for c in contacts if c.id != exclude]
            expected = sorted(everyone, key=lambda c: c.id ^ target)[:count]
            assert table.closest(target, count, exclude) == expected
