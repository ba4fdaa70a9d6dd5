"""The sync engine's policy on a fake clock: poll rounds and their timing, a friend that does
not answer, reachability, ETags, download slots, resuming, lies, trace ids. No sockets."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from sync_world import FRIEND_1, FRIEND_2, FRIEND_3, World, address_of

from syncpeer.core.identity import Identity, RandomSource
from syncpeer.core.logevent import LogEvent
from syncpeer.core.mutants import Mutants
from syncpeer.core.sync import SyncConfig
from syncpeer.core.sync_events import Download, FriendAdded, FriendRemoved, Poll, Tick

INTERVAL = 1.0


@pytest.fixture
def make_world(make_identity: Callable[[str], Identity], rng: RandomSource) -> Callable[..., World]:
    def make(**options: object) -> World:
        options.setdefault("config", SyncConfig(poll_interval=INTERVAL, http_timeout=10.0))
        return World(make_identity, rng, **options)  # type: ignore[arg-type]

    return make


def test_rounds_poll_every_friend_then_wait_one_interval(make_world: Callable[..., World]) -> None:
    world = make_world()
    world.befriend(FRIEND_1, FRIEND_2)
    assert world.engine.next_wakeup() is None, "nothing happens before the first tick"
    polls = world.tick(at=100.0)
    assert [(p.friend, p.address, p.etag) for p in polls] == [
        (FRIEND_1, address_of(FRIEND_1), None),
        (FRIEND_2, address_of(FRIEND_2), None),
    ]
    assert len({p.trace_id for p in polls}) == 1 and all(p.timeout == 10.0 for p in polls)
    assert world.engine.next_wakeup() == 100.0 + INTERVAL  # the round waits at most this
    world.now = 100.3
    world.answer(FRIEND_1, [], etag='"x-1"')
    assert world.events("sync_round") == [], "the round still waits for friend 2"
    world.now = 100.4
    world.answer(FRIEND_2, [])
    [round_] = world.events("sync_round")
    assert round_ == {"trace_id": polls[0].trace_id, "friends": 2, "unreachable": 0, "in_flight": 0}
    assert world.engine.next_wakeup() == pytest.approx(100.4 + INTERVAL)
    assert world.tick(at=101.39) == [], "no round before its time"
    again = world.tick(at=101.4)
    assert [(p.friend, p.etag) for p in again] == [(FRIEND_1, '"x-1"'), (FRIEND_2, None)]
    assert again[0].trace_id != polls[0].trace_id
    assert world.engine.counters.polls == 4


def test_a_friend_that_never_answers_holds_up_only_itself(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    world.start(FRIEND_1, FRIEND_2)
    world.answer(FRIEND_2, [], etag='"b-1"')  # friend 1 is frozen: its poll never ends
    assert world.tick(at=0.99) == []
    assert world.tick(at=1.0) == [], "the round ends at its deadline"
    assert world.engine.next_wakeup() == 2.0
    polls = world.tick(at=2.0)
    assert [p.friend for p in polls] == [FRIEND_2], "a friend still being polled is skipped"
    entry = world.entry(world.seal(1))
    assert [d.entry for d in world.answer(FRIEND_2, [entry])] == [entry]


def test_lockstep_mutant_makes_every_round_wait_for_the_frozen_friend(
    make_world: Callable[..., World],
) -> None:
    world = make_world(mutants=Mutants.of(["poll-in-lockstep"]))
    world.start(FRIEND_1, FRIEND_2)
    world.answer(FRIEND_2, [])
    assert world.engine.next_wakeup() is None, "the round waits for friend 1, however long"
    assert world.tick(at=50.0) == []
    world.fail(FRIEND_1, "TimeoutError")  # the HTTP timeout, at last
    # Friend 1 failed once: it sits out one round (its backoff, two intervals).
    assert [p.friend for p in world.tick(at=world.now + INTERVAL)] == [FRIEND_2]
    world.answer(FRIEND_2, [])
    assert [p.friend for p in world.tick(at=world.now + INTERVAL)] == [FRIEND_1, FRIEND_2]


def test_unreachable_friend_is_logged_on_change_and_polled_again(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    entry = world.entry(world.seal(1))
    world.start(FRIEND_1)
    world.answer(FRIEND_1, [entry], etag='"a-1"')
    trace_id = world.poll(FRIEND_1).trace_id
    world.fail(FRIEND_1, "ConnectionRefusedError")
    world.poll(FRIEND_1)  # polled again, after its backoff
    world.fail(FRIEND_1, "ConnectionRefusedError")
    assert world.events("friend_unreachable") == [
        {
            "trace_id": trace_id,
            "friend": FRIEND_1,
            "address": address_of(FRIEND_1),
            "error": "ConnectionRefusedError",
            "retry_in_s": 2 * INTERVAL,
        }
    ], "logged once, when it changed"
    assert world.engine.unreachable() == [FRIEND_1]
    assert world.engine.counters.poll_failures == 2
    assert world.engine.sources(entry) == (), "an unreachable friend is no source"
    poll = world.poll(FRIEND_1)
    assert poll.etag is None, "the ETag went with the forgotten listing"
    world.answer(FRIEND_1, [entry], etag='"a-2"')
    assert [e["friend"] for e in world.events("friend_reachable")] == [FRIEND_1]
    assert world.engine.unreachable() == []


def test_etag_is_sent_only_to_the_address_that_gave_it(make_world: Callable[..., World]) -> None:
    world = make_world()
    world.start(FRIEND_1)
    world.answer(FRIEND_1, [], etag='"a-1"')
    world.feed(FriendAdded(FRIEND_1, "10.9.9.9:7400"))  # moved: its old listing is forgotten
    [poll] = world.tick(at=world.engine.next_wakeup())
    assert (poll.address, poll.etag) == ("10.9.9.9:7400", None)
    world.answer(FRIEND_1, None, etag='"a-1"')  # a 304 for a listing the engine does not hold
    [poll] = world.tick(at=world.engine.next_wakeup())
    assert poll.etag is None, "asked in full after a 304 it could not use"


def test_at_most_max_downloads_run_newest_first(make_world: Callable[..., World]) -> None:
    world = make_world(config=SyncConfig(poll_interval=INTERVAL, max_downloads=2))
    world.start(FRIEND_1)
    sealed = {n: world.seal(1, name=f"f{n}.txt", timestamp=float(n)) for n in range(4)}
    started = world.answer(FRIEND_1, [world.entry(data) for data in sealed.values()])
    assert [d.entry.name for d in started] == ["f3.txt", "f2.txt"], "greatest key first"
    assert world.engine.in_flight == 4
    actions = world.deliver(started[0], sealed[3])
    [next_one] = [a for a in actions if isinstance(a, Download)]
    assert next_one.entry.name == "f1.txt", "a slot freed starts the next planned download"
    world.break_off(started[1], have=0)
    assert [d.entry.name for d in world.running] == ["f1.txt", "f0.txt"]


def listed_by_both(world: World, content: bytes) -> tuple[bytes, Download]:
    """Friends 1 and 2 list one envelope; its bytes and the download it starts (from
    friend 1)."""
    world.start(FRIEND_1, FRIEND_2)
    data = world.seal(1, content=content)
    entry = world.entry(data)
    [download] = world.answer(FRIEND_1, [entry])
    assert world.answer(FRIEND_2, [entry]) == []
    return data, download


def test_a_broken_download_resumes_where_it_stopped(make_world: Callable[..., World]) -> None:
    world = make_world()
    data, download = listed_by_both(world, b"x" * 5000)
    actions = world.break_off(download, have=1200, error="ServerDisconnectedError")
    failed = world.events("file_download_failed")
    assert [(e["have"], e["error"]) for e in failed] == [(1200, "ServerDisconnectedError")]
    [resumed] = [a for a in actions if isinstance(a, Download)]
    assert (resumed.source, resumed.offset) == (FRIEND_2, 1200), "another friend, at once"
    assert world.events("file_download_resumed")[0]["offset"] == 1200
    world.now += 0.25
    world.deliver(resumed, data)
    [completed] = world.events("file_download_completed")
    assert completed["duration_ms"] == 250.0 and completed["placement"] == "current"
    counters = world.engine.counters
    assert (counters.downloads_started, counters.downloads_resumed) == (1, 1)
    assert counters.bytes_downloaded == 1200 + len(data) - 1200
    assert counters.fetches == {f"doc.txt@1@{world.author.fingerprint}": 2}


def test_partial_files_found_at_start_are_resumed(make_world: Callable[..., World]) -> None:
    probe = make_world()
    data = probe.seal(1)
    entry = probe.entry(data)
    longer = dataclasses.replace(probe.entry(probe.seal(2)), name="other.txt")
    world = make_world(partials={entry.sha256: 40, longer.sha256: longer.size + 1})
    world.start(FRIEND_1)
    downloads = {d.entry.name: d.offset for d in world.answer(FRIEND_1, [entry, longer])}
    assert downloads == {"doc.txt": 40, "other.txt": 0}, "a partial longer than the file is void"


def test_a_short_body_keeps_the_partial_and_a_lie_discards_it(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    data, download = listed_by_both(world, b"y" * 3000)
    entry = download.entry
    [again] = [a for a in world.deliver(download, data[:1000]) if isinstance(a, Download)]
    assert world.events("file_download_failed")[0]["error"] == "short body"
    assert (again.source, again.offset) == (FRIEND_2, 1000)
    world.lie(again, "answer is 3200 bytes")
    assert world.discarded == [entry.sha256]
    assert world.engine.skip_reason(entry, FRIEND_2) == "bad_source"
    assert world.sync(FRIEND_1, None) == [], "friend 1 waits out its backoff for these bytes"
    world.now += 2 * INTERVAL
    [retry] = world.sync(FRIEND_1, None)
    assert (retry.source, retry.offset) == (FRIEND_1, 0)


def test_removed_friend_is_not_polled_and_its_planned_downloads_are_dropped(
    make_world: Callable[..., World],
) -> None:
    world = make_world(config=SyncConfig(poll_interval=INTERVAL, max_downloads=1))
    world.start(FRIEND_1, FRIEND_2, FRIEND_3)
    first, second = world.seal(1, name="a.txt"), world.seal(1, name="b.txt")
    [running] = world.answer(FRIEND_1, [world.entry(first), world.entry(second)])
    world.feed(FriendRemoved(FRIEND_1))
    assert world.answer(FRIEND_2, []) == []
    world.deliver(running, first if running.entry.name == "a.txt" else second)
    assert world.running == [] and world.engine.in_flight == 0
    world.feed(FriendRemoved(FRIEND_3))
    assert world.answer(FRIEND_3, [world.entry(second)]) == [], "a late answer is ignored"
    assert [p.friend for p in world.tick(at=world.engine.next_wakeup())] == [FRIEND_2]


def test_same_seed_same_events_same_actions(make_world: Callable[..., World]) -> None:
    """Trace ids come from the injected Random: replaying the events gives the same
    actions, and another seed gives other trace ids."""
    probe = make_world()
    entry = dataclasses.replace(probe.entry(probe.seal(1)), trace_id=None)

    def run(seed: int) -> list[object]:
        world = make_world(seed=seed)
        world.befriend(FRIEND_1, FRIEND_2)
        out: list[object] = list(world.feed(Tick(), at=0.0))
        out += world.answer(FRIEND_1, [entry])
        out += world.feed(Tick(), at=5.0)
        return [a for a in out if isinstance(a, Poll | Download | LogEvent)]

    first = run(1)
    assert any(isinstance(a, Download) for a in first)
    assert run(1) == first
    ids = lambda actions: [a.trace_id for a in actions if isinstance(a, Poll | Download)]  # noqa: E731
    assert ids(run(2)) != ids(first)
