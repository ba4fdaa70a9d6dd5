"""Retries on a fake clock: an unreachable friend is polled less and less often (the
backoff checker judges the poll times), a download that breaks off goes on from another
friend that lists the same bytes, and one friend never takes every download slot."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from sync_world import FRIEND_1, FRIEND_2, FRIEND_3, World

from peerlab.checkers.backoff import Outage, backs_off
from syncpeer.core.identity import Identity, RandomSource
from syncpeer.core.mutants import Mutants
from syncpeer.core.sync import SyncConfig
from syncpeer.core.sync_events import Download, FriendHeard

CONFIG = SyncConfig(poll_interval=0.5, http_timeout=10.0, max_backoff=8.0)


@pytest.fixture
def make_world(make_identity: Callable[[str], Identity], rng: RandomSource) -> Callable[..., World]:
    def make(**options: object) -> World:
        options.setdefault("config", CONFIG)
        return World(make_identity, rng, **options)  # type: ignore[arg-type]

    return make


def polls_while_down(world: World, down: str, seconds: float) -> list[float]:
    """Run rounds for `seconds`; every poll of `down` fails at once (connection refused),
    every other friend answers. When `down` was polled."""
    polled: list[float] = []
    world.tick(at=0.0)
    while world.now < seconds:
        for friend in list(world.polls):
            if friend == down:
                polled.append(world.now)
                world.fail(friend)
            else:
                world.answer(friend, [])
        wakeup = world.engine.next_wakeup()
        assert wakeup is not None
        world.tick(at=max(world.now, wakeup))
    return polled


def test_an_unreachable_friend_is_polled_less_and_less_often(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    world.befriend(FRIEND_1, FRIEND_2)
    polled = polls_while_down(world, FRIEND_1, 60.0)
    verdict = backs_off({("me", "A"): polled}, [Outage("A", 0.0, 60.0)], cap=CONFIG.max_backoff)
    assert verdict.ok, verdict.summary
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(polled)]
    assert gaps[:4] == [1.0, 2.0, 4.0, 8.0] and set(gaps[4:]) == {8.0}, gaps
    assert len(polled) < 12, "a minute at 0.5 s would be 120 polls"
    world.poll(FRIEND_1)
    world.answer(FRIEND_1, [])
    answered = world.now
    world.poll(FRIEND_1)
    assert world.engine.unreachable() == []
    assert world.now - answered <= 2 * CONFIG.poll_interval, "an answer ends the backoff"


def test_a_friend_heard_from_is_asked_at_the_next_round_once_per_spell(
    make_world: Callable[..., World],
) -> None:
    """A friend that came back polls us: it is asked at the next round, not after the
    rest of its backoff; heard again while still unreachable (a one-way cut), it waits
    out its backoff as before; reachable again, the next spell may be cut short again."""
    world = make_world()
    world.befriend(FRIEND_1, FRIEND_2)
    polled = polls_while_down(world, FRIEND_1, 20.0)
    due = world.engine.next_poll(FRIEND_1)
    assert due is not None and due - polled[-1] == CONFIG.max_backoff
    heard_at = world.now
    assert due - heard_at > 2 * CONFIG.poll_interval, "the backoff would end soon anyway"
    world.feed(FriendHeard(FRIEND_1))
    [heard] = world.events("friend_heard")
    assert heard == {"friend": FRIEND_1, "retry_in_s": round(due - heard_at, 3)}
    poll = world.poll(FRIEND_1)
    assert world.now - heard_at <= 2 * CONFIG.poll_interval, "not asked at the next rounds"
    world.fail(FRIEND_1)
    failed_at = world.now
    world.feed(FriendHeard(FRIEND_1))  # the same spell: no second early retry
    assert len(world.events("friend_heard")) == 1
    due = world.engine.next_poll(FRIEND_1)
    assert due is not None and due - failed_at == CONFIG.max_backoff
    assert poll.friend == FRIEND_1
    world.tick(due)
    world.poll(FRIEND_1)
    world.answer(FRIEND_1, [])
    world.feed(FriendHeard(FRIEND_1))  # reachable: nothing to cut short
    world.feed(FriendHeard(FRIEND_3))  # not a friend: ignored
    assert len(world.events("friend_heard")) == 1
    world.poll(FRIEND_1)
    world.fail(FRIEND_1)
    world.feed(FriendHeard(FRIEND_1))  # a new spell
    assert len(world.events("friend_heard")) == 2


def test_the_fixed_rate_mutant_hammers_and_the_checker_says_so(
    make_world: Callable[..., World],
) -> None:
    world = make_world(mutants=Mutants.of(["poll-at-fixed-rate"]))
    world.befriend(FRIEND_1, FRIEND_2)
    polled = polls_while_down(world, FRIEND_1, 60.0)
    verdict = backs_off({("me", "A"): polled}, [Outage("A", 0.0, 60.0)], cap=CONFIG.max_backoff)
    assert verdict.valid == "invalid", verdict.summary
    assert len(polled) > 100


def test_a_failed_download_goes_on_from_another_holder_and_the_failed_one_waits(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    world.start(FRIEND_1, FRIEND_2, FRIEND_3)
    data = world.seal(1, content=b"z" * 4000)
    entry = world.entry(data)
    [first] = world.answer(FRIEND_1, [entry])
    world.answer(FRIEND_2, [entry])
    world.answer(FRIEND_3, [entry])
    [second] = [
        d for d in world.break_off(first, have=900, error="stalled") if isinstance(d, Download)
    ]
    assert (second.source, second.offset) == (FRIEND_2, 900)
    [third] = [d for d in world.break_off(second, have=1700) if isinstance(d, Download)]
    assert (third.source, third.offset) == (FRIEND_3, 1700)
    stopped = world.break_off(third, have=2500)
    assert not [a for a in stopped if isinstance(a, Download)], (
        "every holder failed lately: nothing starts until a backoff has passed"
    )
    assert world.engine.in_flight == 0
    assert all(world.engine.backing_off(f, entry.sha256, world.now) for f in (FRIEND_1, FRIEND_2))
    retry_in = [e["retry_in_s"] for e in world.events("file_download_failed")]
    assert retry_in == [1.0, 1.0, 1.0], "each holder's first failure: two poll intervals"
    world.now += 1.0
    [resumed] = world.sync(FRIEND_1, None)
    assert (resumed.source, resumed.offset) == (FRIEND_1, 2500)
    world.deliver(resumed, data)
    assert world.store.current("doc.txt") is not None
    assert not world.engine.backing_off(FRIEND_2, entry.sha256, world.now), "forgotten once held"


def test_one_friend_never_takes_every_slot(make_world: Callable[..., World]) -> None:
    world = make_world(config=SyncConfig(poll_interval=0.5, max_downloads=8, per_source=3))
    world.start(FRIEND_1, FRIEND_2)
    stalling = [world.entry(world.seal(1, name=f"s{n}.txt")) for n in range(10)]
    started = world.answer(FRIEND_1, stalling)
    assert len(started) == 3 and {d.source for d in started} == {FRIEND_1}
    honest = world.entry(world.seal(1, name="honest.txt", timestamp=1.0))
    [download] = world.answer(FRIEND_2, [honest])
    assert download.entry.name == "honest.txt", "the other friend's file is not queued behind"


def test_downloads_carry_a_progress_deadline_unless_the_mutant_drops_it(
    make_world: Callable[..., World],
) -> None:
    entry = make_world().entry(make_world().seal(1))
    for mutants, rate in ((Mutants(), CONFIG.min_rate), (Mutants.of(["no-read-deadline"]), 0)):
        world = make_world(mutants=mutants)
        world.start(FRIEND_1)
        [download] = world.answer(FRIEND_1, [entry])
        assert (download.stall_timeout, download.min_rate) == (CONFIG.stall_timeout, rate)
