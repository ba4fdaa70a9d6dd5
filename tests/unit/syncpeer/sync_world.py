"""A sync engine driven by hand on a fake clock: an author, this node ("me") and a stranger,
helpers to seal and list envelopes, and a driver that performs the engine's actions the
way `syncpeer.io.syncer` does, minus the network (a test answers polls and downloads)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from random import Random
from typing import Any

from syncpeer.core import envelope
from syncpeer.core.identity import Identity, RandomSource
from syncpeer.core.listing import ListingEntry
from syncpeer.core.logevent import LogEvent
from syncpeer.core.mutants import NO_MUTANTS, Mutants
from syncpeer.core.store import Store, StoredFile
from syncpeer.core.sync import SyncConfig, SyncEngine
from syncpeer.core.sync_events import (
    Action,
    DiscardPartial,
    Download,
    DownloadEnded,
    DownloadFailed,
    DownloadLied,
    Event,
    FriendAdded,
    Keep,
    ListingReceived,
    Poll,
    PollFailed,
    Tick,
)

FRIEND_1, FRIEND_2, FRIEND_3 = "1" * 40, "2" * 40, "3" * 40


def address_of(friend: str) -> str:
    return f"10.0.0.{friend[0]}:7400"


class World:
    def __init__(
        self,
        make_identity: Callable[[str], Identity],
        rng: RandomSource,
        *,
        mutants: Mutants = NO_MUTANTS,
        config: SyncConfig | None = None,
        partials: dict[str, int] | None = None,
        seed: int = 7,
    ) -> None:
        self.author, self.me, self.other = (make_identity(n) for n in ("author", "me", "other"))
        self.rng = rng
        self.store = Store(wall=0.0, mutants=mutants)
        self.engine = SyncEngine(
            self.me.fingerprint,
            self.store,
            random=Random(seed),
            config=config,
            mutants=mutants,
            partials=partials,
        )
        self.now = 0.0
        self.polls: dict[str, Poll] = {}  # unanswered, by friend
        self.running: list[Download] = []
        self.discarded: list[str] = []
        self.log: list[LogEvent] = []

    # ------------------------------------------------------------------ envelopes

    def seal(
        self,
        version: int,
        *,
        to: list[Identity] | None = None,
        timestamp: float = 10.0,
        content: bytes = b"",
        name: str = "doc.txt",
    ) -> bytes:
        return envelope.seal(
            self.author,
            name=name,
            version=version,
            timestamp=timestamp,
            plaintext=content or b"v%d" % version,
            recipients=None if to is None else [identity.card for identity in to],
            random=self.rng,
            trace_id=f"trace-{version}",
        )

    @staticmethod
    def file(data: bytes) -> StoredFile:
        verified = envelope.verify(data)
        return StoredFile.from_envelope(verified, len(data), hashlib.sha256(data).hexdigest())

    def entry(self, data: bytes) -> ListingEntry:
        return ListingEntry.from_json(self.file(data).listing_json())

    # ------------------------------------------------------------------ driving

    def feed(self, event: Event, at: float | None = None) -> list[Action]:
        if at is not None:
            self.now = at
        actions = self.engine.handle(event, self.now)
        for action in actions:
            if isinstance(action, Poll):
                self.polls[action.friend] = action
            elif isinstance(action, Download):
                self.running.append(action)
            elif isinstance(action, Keep):
                self.store.commit(action.decision, wall=self.now)
            elif isinstance(action, DiscardPartial):
                self.discarded.append(action.sha256)
            elif isinstance(action, LogEvent):
                self.log.append(action)
        return actions

    def befriend(self, *friends: str) -> None:
        for friend in friends:
            self.feed(FriendAdded(friend, address_of(friend)))

    def start(self, *friends: str, at: float = 0.0) -> list[Poll]:
        """Befriend `friends` and send the first tick: the first round's polls."""
        self.befriend(*friends)
        return self.tick(at)

    def tick(self, at: float | None = None) -> list[Poll]:
        return [a for a in self.feed(Tick(), at) if isinstance(a, Poll)]

    def answer(
        self,
        friend: str,
        entries: Iterable[ListingEntry] | None,
        etag: str | None = None,
        invalid: tuple[str, ...] = (),
    ) -> list[Download]:
        """`friend` answers its poll; the downloads that starts."""
        poll = self.polls.pop(friend)
        listed = None if entries is None else tuple(entries)
        actions = self.feed(ListingReceived(poll, listed, etag, invalid))
        return [a for a in actions if isinstance(a, Download)]

    def fail(self, friend: str, error: str = "ConnectionRefusedError") -> list[Action]:
        return self.feed(PollFailed(self.polls.pop(friend), error))

    def poll(self, friend: str) -> Poll:
        """Run rounds until `friend` is being polled; its poll."""
        for _ in range(10):
            if friend in self.polls:
                return self.polls[friend]
            wakeup = self.engine.next_wakeup()
            self.tick(self.now if wakeup is None else max(self.now, wakeup))
        raise AssertionError(f"{friend} was not polled in 10 wakeups")

    def sync(self, friend: str, entries: Iterable[ListingEntry] | None) -> list[Download]:
        """Run rounds until `friend` is polled, then answer with `entries`."""
        self.poll(friend)
        return self.answer(friend, entries)

    def deliver(self, download: Download, data: bytes) -> list[Action]:
        """The answer to `download` ends after the bytes from its offset; `data` is the
        whole envelope as it then lies in the partial file."""
        self.running.remove(download)
        return self.feed(DownloadEnded(download, len(data) - download.offset, data))

    def break_off(self, download: Download, have: int, error: str = "cut") -> list[Action]:
        self.running.remove(download)
        return self.feed(DownloadFailed(download, have, error))

    def lie(self, download: Download, reason: str = "wrong length") -> list[Action]:
        self.running.remove(download)
        return self.feed(DownloadLied(download, reason))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [event.fields for event in self.log if event.event == name]
