"""The sync engine: whom to poll and when, what to fetch from whom, and what to keep of what
arrived, as a sans-IO state machine (events in, actions out: `syncpeer.core.sync_events`).

Every `poll_interval` a round polls each friend whose previous poll has ended, and waits for
their answers at most one poll interval (so a friend that never answers delays only
itself); the next round starts one poll interval after the wait. A listing's entries are
planned newest first, never one already held, in flight, not meant for this node, or known
to be bad; planned downloads run `max_downloads` at a time (at most `per_source` from one
friend), resuming the partial file where the last attempt stopped. Arrived bytes are
verified against the listing and the author's signature before the store decides where
they belong.

Failures are waited out, with exponential backoff: an unreachable friend's listing is
dropped (it is no longer a source) and the friend is polled again after 2, 4, 8 ... poll
intervals, at most `max_backoff` seconds apart, until it answers (or until it polls this
node: a friend heard from is asked at the next round, once per spell); a download that broke off
(refused, cut, stalled below the driver's progress deadline) keeps its partial file and
goes on at once from another friend that lists the same bytes, while the friend that
failed is not asked for them again before its own backoff has passed. Lies are remembered
for good: bytes that fail verification are never fetched again, and bytes a friend
misrepresented are never fetched from that friend again on the same claim (the same
listing entry: a friend that lists them truthfully later, restarted honest, is heard).

Time comes in as `now`, monotonic seconds (only differences matter); randomness (trace ids)
from the injected `random.Random`.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from random import Random
from typing import Any

from syncpeer.core import envelope
from syncpeer.core.errors import InvalidEnvelope
from syncpeer.core.listing import ListingEntry
from syncpeer.core.logevent import LogEvent
from syncpeer.core.mutants import NO_MUTANTS, Mutants
from syncpeer.core.protocol import V1_0, V1_1
from syncpeer.core.store import Decision, Placement, Store, StoredFile, VersionKey
from syncpeer.core.sync_events import (
    Action,
    DiscardPartial,
    Download,
    DownloadEnded,
    DownloadFailed,
    DownloadLied,
    Event,
    FriendAdded,
    FriendHeard,
    FriendRemoved,
    Keep,
    ListingReceived,
    Poll,
    PollFailed,
    ProtocolRefused,
    Tick,
)

MAX_ENVELOPE_BYTES = 256 << 20

FetchId = tuple[str, VersionKey]


@dataclass(frozen=True)
class SyncConfig:
    poll_interval: float = 1.0  # seconds between the end of a round's wait and the next round
    http_timeout: float = 10.0  # a poll's whole request; a download's connect and each read
    max_downloads: int = 8  # downloads running at once
    per_source: int = 3  # downloads running at once from one friend
    max_backoff: float = 8.0  # the longest wait before asking a failing friend again
    stall_timeout: float = 5.0  # a download gives up when `min_rate` ...
    min_rate: int = 1024  # ... bytes per second have not arrived within this many seconds

    def backoff(self, failures: int) -> float:
        """How long to wait after `failures` failures in a row: 2, 4, 8 ... poll intervals,
        at most `max_backoff` seconds."""
        return min(self.poll_interval * 2 ** min(failures, 32), self.max_backoff)


@dataclass
class Counters:
    """What GET /admin/status reports about polls and downloads (the driver that serves
    envelopes adds `bytes_served`)."""

    downloads_started: int = 0
    downloads_resumed: int = 0
    downloads_completed: int = 0
    downloads_rejected: int = 0
    downloads_failed: int = 0
    bytes_downloaded: int = 0
    bytes_served: int = 0
    polls: int = 0
    poll_failures: int = 0
    fetches: Counter[str] = field(default_factory=Counter)  # attempts per "name@version@author"

    def to_json(self) -> dict[str, Any]:
        return {
            "downloads": {
                "started": self.downloads_started,
                "resumed": self.downloads_resumed,
                "completed": self.downloads_completed,
                "rejected": self.downloads_rejected,
                "failed": self.downloads_failed,
            },
            "bytes_downloaded": self.bytes_downloaded,
            "bytes_served": self.bytes_served,
            "polls": self.polls,
            "poll_failures": self.poll_failures,
            "fetches": dict(self.fetches),
        }


@dataclass
class _Friend:
    address: str
    etag: tuple[str, str] | None = None  # (address polled, ETag of its answer)
    unreachable: bool = False
    protocol: str | None = None  # the version its last answer agreed on
    mismatch: str | None = None  # why no version could be agreed on, while none can
    failures: int = 0  # polls failed in a row
    next_poll: float = 0.0  # not polled again before this (monotonic): its backoff
    heard: bool = False  # it polled us while unreachable, and its backoff was cut short


@dataclass
class _Backoff:
    """A friend that failed to deliver some bytes: how often in a row, and until when it
    is not asked for them again."""

    failures: int
    until: float


@dataclass
class _Round:
    trace_id: str
    friends: int
    waiting: set[str]  # friends polled by this round whose answer has not come
    deadline: float | None  # None: wait for every answer (the poll-in-lockstep mutant)


@dataclass
class _Running:
    download: Download
    started: float


class SyncEngine:
    """What this node polls, downloads and keeps; `handle` events, perform the actions."""

    def __init__(
        self,
        me: str,
        store: Store,
        *,
        random: Random,
        config: SyncConfig | None = None,
        mutants: Mutants = NO_MUTANTS,
        partials: Mapping[str, int] | None = None,
    ) -> None:
        """`me` is this node's fingerprint; `partials` the bytes already downloaded of
        envelopes (by SHA-256) when the node starts, which downloads resume from."""
        self.me = me
        self.store = store
        self.random = random
        self.config = config or SyncConfig()
        self.mutants = mutants
        self.counters = Counters()
        self._friends: dict[str, _Friend] = {}
        self._listings: dict[str, dict[str, ListingEntry]] = {}
        self._polling: dict[str, Poll] = {}  # friend -> its poll not yet answered
        self._round: _Round | None = None
        self._next_round: float | None = None  # None: not started (the first Tick starts it)
        self._queue: deque[tuple[ListingEntry, str]] = deque()  # planned: (entry, source)
        self._running: dict[FetchId, _Running] = {}
        self._in_flight: set[FetchId] = set()  # planned or running
        self._partials: dict[str, int] = dict(partials or {})
        self._bad_envelopes: set[str] = set()  # sha256 of bytes that failed verification
        # (friend, the listing entry it lied with): a lie is the claim a friend made, so the
        # same friend offering those bytes truthfully later (an honest restart) is heard.
        self._bad_sources: set[tuple[str, ListingEntry]] = set()
        self._backoffs: dict[tuple[str, str], _Backoff] = {}  # (friend, sha256) it failed

    # ------------------------------------------------------------------ inputs

    def handle(self, event: Event, now: float) -> list[Action]:
        """Take one event at monotonic time `now`; the actions to perform, in order."""
        actions: list[Action] = []
        match event:
            case Tick():
                if self._next_round is None:
                    self._next_round = now
            case FriendAdded(fingerprint, address):
                self._add_friend(fingerprint, address)
            case FriendHeard(fingerprint):
                actions += self._heard(fingerprint, now)
            case FriendRemoved(fingerprint):
                self._friends.pop(fingerprint, None)
                self._listings.pop(fingerprint, None)
                for failed in [key for key in self._backoffs if key[0] == fingerprint]:
                    del self._backoffs[failed]
            case ListingReceived():
                actions += self._listing_received(event, now)
            case PollFailed():
                actions += self._poll_failed(event, now)
            case ProtocolRefused():
                actions += self._protocol_refused(event)
            case DownloadEnded() | DownloadFailed() | DownloadLied():
                actions += self._download_done(event, now)
        actions += self._advance(now)
        return actions

    def next_wakeup(self) -> float | None:
        """When to send the next `Tick` (None: nothing is due until another event)."""
        if self._round is not None:
            return self._round.deadline
        return self._next_round

    # ------------------------------------------------------------------ views

    @property
    def in_flight(self) -> int:
        """Downloads planned or running."""
        return len(self._in_flight)

    def knows(self, friend: str) -> bool:
        """Whether a listing of `friend` is held (an unchanged-listing answer means something)."""
        return friend in self._listings

    def protocols(self) -> dict[str, str | None]:
        """Each friend's agreed protocol version (None: not agreed yet, or none in common)."""
        return {fingerprint: f.protocol for fingerprint, f in self._friends.items()}

    def mismatches(self) -> dict[str, str]:
        """Friends this node shares no protocol version with, and why."""
        return {fp: f.mismatch for fp, f in self._friends.items() if f.mismatch is not None}

    def unreachable(self) -> list[str]:
        """Friends whose last poll failed, in the order they were added."""
        return [fingerprint for fingerprint, f in self._friends.items() if f.unreachable]

    def skip_reason(self, entry: ListingEntry, friend: str | None = None) -> str | None:
        """Why `entry` is not fetched (from `friend`), or None when it should be."""
        if not (entry.public or self.me in entry.recipients):
            return "not_for_me"
        if self.store.holds(entry.name, entry.key) and "refetch-held" not in self.mutants:
            return "held"
        if entry.fetch_id in self._in_flight:
            return "in_flight"
        if entry.sha256 in self._bad_envelopes:
            return "rejected"
        if friend is not None and (friend, entry) in self._bad_sources:
            return "bad_source"
        if entry.size > MAX_ENVELOPE_BYTES:
            return "too_large"
        return None

    def gave_up_on(self, friend: str) -> bool:
        """Whether a `FriendHeard` from `friend` could cut its backoff short: it is
        unreachable and not heard from yet in this spell. Drivers ask before feeding one,
        so a poll from a reachable friend costs the engine nothing."""
        found = self._friends.get(friend)
        return found is not None and found.unreachable and not found.heard

    def next_poll(self, friend: str) -> float | None:
        """When `friend` is polled again at the earliest (monotonic: after its backoff);
        None when it is not a friend."""
        found = self._friends.get(friend)
        return None if found is None else found.next_poll

    def backing_off(self, friend: str, sha256: str, now: float) -> bool:
        """Whether `friend` failed to deliver these bytes lately and waits out its backoff."""
        backoff = self._backoffs.get((friend, sha256))
        return backoff is not None and now < backoff.until

    def sources(self, entry: ListingEntry, first: str | None = None) -> tuple[str, ...]:
        """Friends whose last listing offers exactly these envelope bytes (`first` first)."""
        friends = [
            friend
            for friend, listing in self._listings.items()
            if (offered := listing.get(entry.name)) is not None
            and offered.sha256 == entry.sha256
            and (friend, offered) not in self._bad_sources
        ]
        if first in friends:
            friends.remove(first)
            friends.insert(0, first)
        return tuple(friends)

    # ------------------------------------------------------------------ friends and polls

    def _add_friend(self, fingerprint: str, address: str) -> None:
        friend = self._friends.get(fingerprint)
        if friend is None:
            self._friends[fingerprint] = _Friend(address)
            return
        # Replaced in place, so it keeps its turn in the round order; a new address is
        # worth asking at once.
        friend.address, friend.etag, friend.unreachable = address, None, False
        friend.protocol = friend.mismatch = None
        friend.failures, friend.next_poll, friend.heard = 0, 0.0, False
        self._listings.pop(fingerprint, None)

    def _heard(self, fingerprint: str, now: float) -> list[Action]:
        """`fingerprint` polled this node. A friend that was down and came back polls its
        friends at once, but they would not ask it before their backoff for it passed (up
        to `max_backoff`): what it published meanwhile would wait that long. So it is asked
        at the next round, once per spell of being unreachable (a friend heard but still
        not reachable, as across a one-way partition, goes back to its backoff)."""
        if not self.gave_up_on(fingerprint):
            return []
        friend = self._friends[fingerprint]
        if now >= friend.next_poll:
            return []
        retry_in = friend.next_poll - now
        friend.next_poll, friend.heard = now, True
        fields = {"friend": fingerprint, "retry_in_s": round(retry_in, 3)}
        return [LogEvent("friend_heard", "info", fields)]

    def _advance(self, now: float) -> list[Action]:
        actions: list[Action] = []
        round_ = self._round
        if round_ is not None and (
            not round_.waiting or (round_.deadline is not None and now >= round_.deadline)
        ):
            actions.append(self._end_round(round_, now))
        if self._round is None and self._next_round is not None and now >= self._next_round:
            actions += self._start_round(now)
        actions += self._start_downloads(now)
        return actions

    def _start_round(self, now: float) -> list[Action]:
        trace_id = self._trace_id()
        actions: list[Action] = []
        waiting: set[str] = set()
        fixed_rate = "poll-at-fixed-rate" in self.mutants
        for fingerprint, friend in self._friends.items():
            if fingerprint in self._polling:
                continue  # its last poll has not ended: it does not hold this round up
            if now < friend.next_poll and not fixed_rate:
                continue  # unreachable lately: left alone until its backoff has passed
            etag = friend.etag[1] if friend.etag and friend.etag[0] == friend.address else None
            poll = Poll(fingerprint, friend.address, etag, trace_id, self.config.http_timeout)
            self._polling[fingerprint] = poll
            waiting.add(fingerprint)
            self.counters.polls += 1
            actions.append(poll)
        # Waiting for every answer made one frozen friend hold up syncing with all the
        # others for the whole HTTP timeout.
        lockstep = "poll-in-lockstep" in self.mutants
        deadline = None if lockstep else now + self.config.poll_interval
        self._round = _Round(trace_id, len(self._friends), waiting, deadline)
        if not waiting:
            actions.append(self._end_round(self._round, now))
        return actions

    def _end_round(self, round_: _Round, now: float) -> LogEvent:
        self._round = None
        self._next_round = now + self.config.poll_interval
        return LogEvent(
            "sync_round",
            "debug",
            {
                "trace_id": round_.trace_id,
                "friends": round_.friends,
                "unreachable": len(self.unreachable()),
                "in_flight": self.in_flight,
            },
        )

    def _answered(self, poll: Poll) -> _Friend | None:
        """End `poll`; the friend it asked, unless it was removed meanwhile."""
        if self._polling.get(poll.friend) != poll:
            return None  # not the poll this engine is waiting for
        del self._polling[poll.friend]
        if self._round is not None:
            self._round.waiting.discard(poll.friend)
        return self._friends.get(poll.friend)

    def _listing_received(self, event: ListingReceived, now: float) -> list[Action]:
        poll = event.poll
        friend = self._answered(poll)
        if friend is None:
            return []
        actions: list[Action] = []
        context = {"trace_id": poll.trace_id, "friend": poll.friend}
        friend.failures, friend.next_poll, friend.heard = 0, 0.0, False
        if friend.unreachable:
            friend.unreachable = False
            actions.append(LogEvent("friend_reachable", "info", context))
        friend.protocol, friend.mismatch = event.protocol, None
        for reason in event.invalid:
            actions.append(
                LogEvent("listing_entry_invalid", "warning", context | {"reason": reason})
            )
        if event.entries is None and not self.knows(poll.friend):
            friend.etag = None  # a 304 for a listing since forgotten: ask in full next round
        elif event.etag:
            friend.etag = (poll.address, event.etag)
        if event.entries is not None:
            self._listings[poll.friend] = {entry.name: entry for entry in event.entries}
        candidates = self._listings.get(poll.friend, {}).values()
        for entry in sorted(candidates, key=lambda entry: entry.key, reverse=True):
            if self.skip_reason(entry, poll.friend) is None:
                source = self._source_for(entry, now, first=poll.friend)
                if source is not None:
                    self._in_flight.add(entry.fetch_id)
                    self._queue.append((entry, source))
        return actions

    def _source_for(self, entry: ListingEntry, now: float, first: str | None) -> str | None:
        """The friend to fetch `entry` from: of those that list these bytes and are not
        waiting out a backoff for them, the one that failed them least often (`first` on
        a tie); None if there is none."""
        eligible = [
            source
            for source in self.sources(entry, first)
            if not self.backing_off(source, entry.sha256, now)
        ]
        return min(eligible, key=lambda source: self._failures(source, entry.sha256), default=None)

    def _failures(self, source: str, sha256: str) -> int:
        backoff = self._backoffs.get((source, sha256))
        return 0 if backoff is None else backoff.failures

    def _poll_failed(self, event: PollFailed, now: float) -> list[Action]:
        poll = event.poll
        friend = self._answered(poll)
        if friend is None:
            return []
        self.counters.poll_failures += 1
        self._listings.pop(poll.friend, None)  # no longer a source
        friend.etag = None
        friend.failures += 1
        friend.next_poll = now + self.config.backoff(friend.failures)
        if friend.unreachable:
            return []  # logged when it changed
        friend.unreachable = True
        return [
            LogEvent(
                "friend_unreachable",
                "info",
                {
                    "trace_id": poll.trace_id,
                    "friend": poll.friend,
                    "address": poll.address,
                    "error": event.error,
                    "retry_in_s": round(friend.next_poll - now, 3),
                },
            )
        ]

    def _protocol_refused(self, event: ProtocolRefused) -> list[Action]:
        poll = event.poll
        friend = self._answered(poll)
        if friend is None:
            return []
        self._listings.pop(poll.friend, None)  # not a source while no version is shared
        friend.etag, friend.protocol, friend.unreachable = None, None, False
        if friend.mismatch == event.message:
            return []  # logged once, not every round
        friend.mismatch = event.message
        fields = {"trace_id": poll.trace_id, "friend": poll.friend, "address": poll.address}
        return [LogEvent("protocol_mismatch", "error", fields | {"error": event.message})]

    # ------------------------------------------------------------------ downloads

    def _start_downloads(self, now: float) -> list[Action]:
        actions: list[Action] = []
        waiting: deque[tuple[ListingEntry, str]] = deque()  # their source's slots are taken
        while self._queue and len(self._running) < self.config.max_downloads:
            entry, source = self._queue.popleft()
            friend = self._friends.get(source)
            if friend is None:
                self._in_flight.discard(entry.fetch_id)  # removed while queued
                continue
            # A friend that answers and then stalls (slowloris) must not take every slot:
            # downloads from honest friends go on beside its.
            if self._running_from(source) >= self.config.per_source:
                waiting.append((entry, source))
                continue
            offset = self._partials.get(entry.sha256, 0)
            if offset > entry.size:
                offset = 0  # not these bytes after all: start over
            download = Download(
                entry,
                source,
                friend.address,
                offset,
                entry.trace_id or self._trace_id(),
                self.config.http_timeout,
                self.config.stall_timeout,
                0 if "no-read-deadline" in self.mutants else self.config.min_rate,
                protocol=friend.protocol or V1_0,
            )
            self._running[entry.fetch_id] = _Running(download, now)
            self.counters.fetches[f"{entry.name}@{entry.version}@{entry.author}"] += 1
            fields = _download_fields(download) | {"size": entry.size}
            if offset:
                self.counters.downloads_resumed += 1
                actions.append(
                    LogEvent("file_download_resumed", "info", fields | {"offset": offset})
                )
            else:
                self.counters.downloads_started += 1
                actions.append(LogEvent("file_download_started", "info", fields))
            actions.append(download)
        self._queue.extendleft(reversed(waiting))
        return actions

    def _running_from(self, source: str) -> int:
        return sum(1 for running in self._running.values() if running.download.source == source)

    def _download_done(
        self, event: DownloadEnded | DownloadFailed | DownloadLied, now: float
    ) -> list[Action]:
        download = event.download
        entry = download.entry
        running = self._running.get(entry.fetch_id)
        if running is None or running.download != download:
            return []  # not the download this engine is waiting for
        del self._running[entry.fetch_id]
        self._in_flight.discard(entry.fetch_id)
        fields = _download_fields(download)
        if isinstance(event, DownloadLied):
            self._bad_sources.add((download.source, entry))
            return self._reject(entry.sha256, fields, event.reason)
        if isinstance(event, DownloadFailed):
            self.counters.bytes_downloaded += max(0, event.have - download.offset)
            failure = {"have": event.have, "error": event.error}
            return self._failed(download, event.have, fields | failure, now)
        self.counters.bytes_downloaded += event.received
        # v1.0 appends from `offset`; v1.1 fills in chunks anywhere in the partial file.
        have = len(event.data) if download.protocol == V1_1 else download.offset + event.received
        if have != entry.size:
            failure = {"have": have, "error": "short body"}
            return self._failed(download, len(event.data), fields | failure, now)
        for failed in [key for key in self._backoffs if key[1] == entry.sha256]:
            del self._backoffs[failed]  # these bytes are here: nobody owes them any more
        self._partials.pop(entry.sha256, None)
        outcome = self._check(entry, download.source, event.data)
        if isinstance(outcome, str):
            return self._reject(entry.sha256, fields, outcome)
        return self._keep(outcome, entry.sha256, fields, now - running.started)

    def _failed(
        self, download: Download, partial: int, fields: dict[str, Any], now: float
    ) -> list[Action]:
        """A download broke off with `partial` bytes of the envelope downloaded: its source
        waits out a backoff for these bytes, and another friend that lists them (if any)
        goes on from there at once; otherwise the next listing that offers them does."""
        entry = download.entry
        self._partials[entry.sha256] = partial
        self.counters.downloads_failed += 1
        failures = self._failures(download.source, entry.sha256) + 1
        until = now + self.config.backoff(failures)
        self._backoffs[(download.source, entry.sha256)] = _Backoff(failures, until)
        actions: list[Action] = [
            LogEvent(
                "file_download_failed",
                "warning",
                fields | {"retry_in_s": round(until - now, 3)},
            )
        ]
        if self.skip_reason(entry) is None:
            source = self._source_for(entry, now, first=None)
            if source is not None:
                # Behind what is already planned: a stalled download's next try must not
                # take the slot it freed from a download waiting for one.
                self._in_flight.add(entry.fetch_id)
                self._queue.append((entry, source))
        return actions

    def _reject(self, sha256: str, fields: dict[str, Any], reason: str) -> list[Action]:
        self._partials.pop(sha256, None)
        self.counters.downloads_rejected += 1
        return [
            DiscardPartial(sha256),
            LogEvent("file_rejected", "warning", fields | {"reason": reason}),
        ]

    def _keep(
        self, decision: Decision, sha256: str, fields: dict[str, Any], seconds: float
    ) -> list[Action]:
        self.counters.downloads_completed += 1
        file = decision.file
        actions: list[Action] = [
            Keep(decision, sha256),
            LogEvent(
                "file_download_completed",
                "info",
                fields
                | {
                    "bytes": file.size,
                    "placement": decision.placement.value,
                    "duration_ms": round(seconds * 1000, 1),
                    "sha256": sha256,
                    "content_sha256": file.plain_sha256,
                    "deleted": file.deleted,
                },
            ),
        ]
        other = self.store.equivocation(file)
        if other is not None:
            # Both envelopes carry the author's signature: together they prove it showed
            # different peers different content under one version.
            actions.append(
                LogEvent(
                    "file_equivocation",
                    "warning",
                    fields | {"sha256": sha256, "other": other.sha256},
                )
            )
        if decision.placement is Placement.HISTORY:
            kept, why = file, "older_than_current"
        elif decision.displaced is not None:
            kept, why = decision.displaced, "replaced"
        else:
            return actions
        kept_fields = {"trace_id": fields["trace_id"], "name": kept.name, "component": "store"}
        kept_fields |= {"version": kept.version, "author": kept.author, "reason": why}
        actions.append(LogEvent("file_version_kept", "info", kept_fields))
        return actions

    def _check(self, entry: ListingEntry, source: str, data: bytes) -> Decision | str:
        """Verify downloaded bytes against the listing and the author's signature: where the
        store puts them, or why they are refused."""
        actual = hashlib.sha256(data).hexdigest()
        if actual != entry.sha256:
            self._bad_sources.add((source, entry))
            return f"sha256 mismatch: listed {entry.sha256}, received {actual}"
        try:
            verified = envelope.verify(data, self.mutants)
        except InvalidEnvelope as error:
            self._bad_envelopes.add(actual)
            return str(error)
        file = StoredFile.from_envelope(verified, len(data), actual)
        # The bytes are genuine (their signature verifies); what was wrong is what `source`
        # said about them. Blaming the bytes would let one lying peer stop every honest
        # friend from ever delivering this authentic version.
        if (file.name, file.key) != entry.fetch_id:
            self._blame_mismatch(source, entry, actual)
            return "envelope header does not match the listing entry"
        if not file.readable_by(self.me):
            self._blame_mismatch(source, entry, actual)
            return "envelope is not addressed to this node"
        return self.store.decide(file)

    def _blame_mismatch(self, source: str, entry: ListingEntry, sha256: str) -> None:
        if "blame-envelope" in self.mutants:
            self._bad_envelopes.add(sha256)
        else:
            self._bad_sources.add((source, entry))

    def _trace_id(self) -> str:
        return f"{self.random.getrandbits(64):016x}"


def _download_fields(download: Download) -> dict[str, Any]:
    entry = download.entry
    return {
        "trace_id": download.trace_id,
        "name": entry.name,
        "version": entry.version,
        "author": entry.author,
        "source": download.source,
        "protocol": download.protocol,
    }
