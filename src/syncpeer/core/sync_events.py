"""What goes into the sync engine and what comes out: events in, actions out.

The driver (`syncpeer.io.syncer` over HTTP, or a simulator) hands each event to
`SyncEngine.handle(event, now)` and performs the actions it returns, in order, before it
hands over the next event. Actions that go over the network (`Poll`, `Download`) come back,
when they end, as the event that names them: `ListingReceived` or `PollFailed` for a
`Poll`; `DownloadEnded`, `DownloadFailed` or `DownloadLied` for a `Download`. Every one of
them must come back exactly once, or the engine waits for it forever (a driver that gives
up on a request reports it as failed).
"""

from __future__ import annotations

from dataclasses import dataclass

from syncpeer.core.listing import ListingEntry
from syncpeer.core.logevent import LogEvent
from syncpeer.core.protocol import V1_0
from syncpeer.core.store import Decision

# ------------------------------------------------------------------ actions (engine -> driver)


@dataclass(frozen=True)
class Poll:
    """Ask `friend` at `address` for its listing (GET /files), sending `etag` as
    If-None-Match when there is one; give up after `timeout` seconds."""

    friend: str
    address: str
    etag: str | None
    trace_id: str
    timeout: float


@dataclass(frozen=True)
class Download:
    """Fetch the envelope of `entry` from `source` at `address`: the bytes from `offset` on
    (a Range request when it is not 0) appended to the partial file of `entry.sha256`,
    which the driver first cuts to `offset` bytes. `timeout` bounds connecting and each
    read, not the whole transfer. The progress deadline bounds a source that answers and
    then trickles (slowloris), which no per-read timeout catches: each `stall_timeout`
    seconds at least `min_rate * stall_timeout` more bytes (or the rest) must arrive, or
    the driver gives up and reports `DownloadFailed`; `min_rate` 0: no such deadline.

    With `protocol` 1.1 the driver instead fetches the source's chunk list and only the
    chunks of the partial file that do not match it (`syncpeer.core.chunks`)."""

    entry: ListingEntry
    source: str
    address: str
    offset: int
    trace_id: str
    timeout: float
    stall_timeout: float = 5.0
    min_rate: int = 0
    protocol: str = V1_0


@dataclass(frozen=True)
class Keep:
    """The downloaded envelope (the partial file of `sha256`) is genuine: put it where
    `decision` says and commit the decision to the store."""

    decision: Decision
    sha256: str


@dataclass(frozen=True)
class DiscardPartial:
    """Delete the partial file of `sha256`: its bytes are known to be wrong."""

    sha256: str


Action = Poll | Download | Keep | DiscardPartial | LogEvent

# ------------------------------------------------------------------ events (driver -> engine)


@dataclass(frozen=True)
class Tick:
    """Time passed. The driver sends one to start syncing, then whenever
    `SyncEngine.next_wakeup()` comes (sending more is harmless)."""


@dataclass(frozen=True)
class FriendAdded:
    """`fingerprint` became a friend, or its entry was replaced (perhaps a new address):
    it is polled from the next round on, and what it listed before is forgotten."""

    fingerprint: str
    address: str


@dataclass(frozen=True)
class FriendHeard:
    """A poll came in from `fingerprint` (it named itself in `X-Syncpeer-From`): it is up.
    A friend this node gave up on for a while is asked again at the next round instead of
    after the rest of its backoff, once per spell of being unreachable. The name is not
    authenticated; a forged one only brings a poll forward."""

    fingerprint: str


@dataclass(frozen=True)
class FriendRemoved:
    """`fingerprint` is no longer a friend: never polled again, no longer a source."""

    fingerprint: str


@dataclass(frozen=True)
class ListingReceived:
    """`poll` was answered: `entries` (None: 304, unchanged since the ETag sent), the
    answer's ETag, why some entries of the answer were skipped as malformed, and the
    protocol version the two nodes agreed on (`syncpeer.core.protocol`)."""

    poll: Poll
    entries: tuple[ListingEntry, ...] | None
    etag: str | None
    invalid: tuple[str, ...] = ()
    protocol: str = V1_0


@dataclass(frozen=True)
class ProtocolRefused:
    """`poll` ended without a protocol version both nodes speak (this node found none in
    the answer, or the friend refused with 426): nothing can be synced with that friend."""

    poll: Poll
    message: str


@dataclass(frozen=True)
class PollFailed:
    """`poll` got no usable answer (refused, timed out, not a listing)."""

    poll: Poll
    error: str


@dataclass(frozen=True)
class DownloadEnded:
    """The answer to `download` ended normally after `received` bytes; `data` is the whole
    partial file now (the envelope, if nothing was missing)."""

    download: Download
    received: int
    data: bytes


@dataclass(frozen=True)
class DownloadFailed:
    """`download` broke off (refused, timed out, cut, an unexpected status); the partial
    file now holds `have` bytes, to be resumed."""

    download: Download
    have: int
    error: str


@dataclass(frozen=True)
class DownloadLied:
    """The source answered `download` with another length than it listed: not a network
    accident (a cut-off body carries no such header), so it is not asked for these bytes
    again, and the partial file goes."""

    download: Download
    reason: str


Event = (
    Tick
    | FriendAdded
    | FriendHeard
    | FriendRemoved
    | ListingReceived
    | PollFailed
    | ProtocolRefused
    | DownloadEnded
    | DownloadFailed
    | DownloadLied
)
