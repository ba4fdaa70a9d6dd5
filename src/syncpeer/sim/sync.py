"""The sync engine's driver on the simulator: what `syncpeer.io.syncer` and
`syncpeer.io.client` do over HTTP, done as exchanges on the simulated links.

Each `Poll` is a `GET /files` offering the node's protocol versions, whose whole answer
must come within its timeout; each v1.0 `Download` a `GET /files/{name}` with If-Match and
Range whose bytes go to the partial file on the host's disk as they arrive, and each v1.1
one a `GET /files/{name}/chunks` followed by a Range request per run of chunks the partial
file lacks or holds wrongly; each request with its timeout for connecting and for each
piece and its progress deadline (a friend that trickles is `Stalled`). What the answers
mean is `syncpeer.core.fetch`, as in the real client; every `Poll` and `Download` comes
back to the engine exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from syncpeer.core import protocol
from syncpeer.core.chunks import ChunkList
from syncpeer.core.fetch import (
    ChunkListReceiving,
    ChunkRange,
    DownloadError,
    Fetched,
    ProgressDeadline,
    ProtocolMismatch,
    Receiving,
    SourceLied,
    begin_chunk_list,
    begin_download,
    begin_range,
    chunk_list_path,
    chunks_kept,
    download_headers,
    listing_agreed,
    listing_headers,
    range_headers,
    read_listing,
)
from syncpeer.core.logevent import LogEvent
from syncpeer.core.mutants import Mutants
from syncpeer.core.protocol import Versions
from syncpeer.core.sync import SyncEngine
from syncpeer.core.sync_events import (
    Action,
    DiscardPartial,
    Download,
    DownloadEnded,
    DownloadFailed,
    DownloadLied,
    Event,
    Keep,
    ListingReceived,
    Poll,
    PollFailed,
    ProtocolRefused,
    Tick,
)
from syncpeer.sim.files import SimFiles
from syncpeer.sim.host import Exchange, Host, Timer
from syncpeer.sim.log import SimLog

Completed = Callable[[dict[str, Any]], None]


class SimSyncer:
    """Feed it events with `feed`; `start` begins the poll rounds."""

    def __init__(
        self,
        host: Host,
        engine: SyncEngine,
        files: SimFiles,
        log: SimLog,
        mutants: Mutants,
        versions: Versions = protocol.ALL,
        on_completed: Completed | None = None,
    ) -> None:
        self.host = host
        self.engine = engine
        self.files = files
        self.log = log.bind(component="sync")
        self.mutants = mutants
        self.versions = versions
        self.on_completed = on_completed
        self.started = False
        self._timer: Timer | None = None
        self._timer_at: float | None = None

    def start(self) -> None:
        self.started = True
        self.feed(Tick())

    def feed(self, event: Event) -> None:
        """Hand `event` to the engine and perform what it asks for."""
        now = self.host.now()
        try:
            actions = self.engine.handle(event, now)
        except Exception:
            self.log.exception("sync_round_failed", handling=type(event).__name__)
            self._set_timer(now + self.engine.config.poll_interval)
            return
        for action in actions:
            try:
                self._perform(action)
            except Exception:
                self.log.exception("sync_round_failed", performing=type(action).__name__)
        self._set_timer(self.engine.next_wakeup())

    def _perform(self, action: Action) -> None:
        match action:
            case Poll():
                if self.started:
                    _PollCall(self, action).send()
            case Download():
                if self.started and action.protocol == protocol.V1_1:
                    _ChunkedCall(self, action).send()
                elif self.started:
                    _DownloadCall(self, action).send()
            case Keep(decision, sha256):
                self.files.accept(decision, self.files.partial_path(sha256))
            case DiscardPartial(sha256):
                self.files.disk.delete(self.files.partial_path(sha256))
            case LogEvent(event, level, fields):
                getattr(self.log, level)(event, **fields)
                if event == "file_download_completed" and self.on_completed is not None:
                    self.on_completed(fields)

    def _set_timer(self, wakeup: float | None) -> None:
        if wakeup == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, None
        if wakeup is None or not self.started:
            return
        self._timer_at = wakeup
        self._timer = self.host.call_later(max(0.0, wakeup - self.host.now()), self._tick)

    def _tick(self) -> None:
        self._timer, self._timer_at = None, None
        self.feed(Tick())


class _Call:
    """One request of the syncer: ends exactly once (its answer, or why there is none)."""

    def __init__(self, syncer: SimSyncer) -> None:
        self.syncer = syncer
        self.host = syncer.host
        self.exchange: Exchange | None = None
        self.timer: Timer | None = None
        self.over = False

    def _finish(self, event: Event, *, cancel: bool = False) -> None:
        if self.over:
            return
        self.over = True
        for timer in self._timers():
            timer.cancel()
        if cancel and self.exchange is not None:
            self.exchange.cancel()
        self.syncer.feed(event)

    def _wait(self, seconds: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.host.call_later(seconds, self.timeout)

    def _timers(self) -> list[Timer]:
        return [self.timer] if self.timer is not None else []

    def timeout(self) -> None:
        raise NotImplementedError


class _PollCall(_Call):
    """GET /files, the whole request within the poll's timeout."""

    def __init__(self, syncer: SimSyncer, poll: Poll) -> None:
        super().__init__(syncer)
        self.poll = poll
        self.status = 0
        self.etag: str | None = None
        self.version: str | None = None
        self.body: list[bytes] = []

    def send(self) -> None:
        poll = self.poll
        syncer = self.syncer
        headers = listing_headers(poll.etag, poll.trace_id, syncer.versions, syncer.engine.me)
        self._wait(poll.timeout)
        self.exchange = self.host.request(poll.address, "GET", "/files", headers, b"", self)

    def head(self, status: int, headers: Mapping[str, str]) -> None:
        self.status, self.etag = status, headers.get("ETag")
        self.version = headers.get(protocol.HEADER)

    def data(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def end(self) -> None:
        try:
            version = listing_agreed(self.status, self.version, self.syncer.versions)
            body = json.loads(b"".join(self.body)) if self.status == 200 else None
            listing = read_listing(self.status, self.etag, self.poll.etag, body, version)
        except ProtocolMismatch as mismatch:
            self._finish(ProtocolRefused(self.poll, str(mismatch)))
            return
        except (DownloadError, ValueError) as error:
            self._finish(PollFailed(self.poll, _describe(error)))
            return
        entries = None if listing.entries is None else tuple(listing.entries)
        invalid = tuple(listing.invalid)
        self._finish(ListingReceived(self.poll, entries, listing.etag, invalid, listing.protocol))

    def error(self, reason: str) -> None:
        self._finish(PollFailed(self.poll, f"ConnectionError: {reason}"))

    def timeout(self) -> None:
        self._finish(PollFailed(self.poll, "TimeoutError"), cancel=True)


class _Transfer(_Call):
    """A download into the partial file: each wait for bytes bounded by the timeout, the
    progress by the deadline (`_progressed` with how far the answer got); it ends exactly
    once, as `DownloadFailed` unless it says otherwise."""

    def __init__(self, syncer: SimSyncer, download: Download) -> None:
        super().__init__(syncer)
        self.download = download
        self.files = syncer.files
        self.partial = syncer.files.partial_path(download.entry.sha256)
        self.deadline: ProgressDeadline | None = None
        self.stall: Timer | None = None
        self.progress = 0

    def _timers(self) -> list[Timer]:
        return [timer for timer in (self.timer, self.stall) if timer is not None]

    def _progressed(self, progress: int) -> None:
        assert self.deadline is not None
        self.progress = progress
        due = self.deadline.progressed(progress, self.host.now())
        if due is not None:
            if self.stall is not None:
                self.stall.cancel()
            self.stall = self.host.call_later(due - self.host.now(), self._stalled)

    def _stalled(self) -> None:
        assert self.deadline is not None
        self._failed(self.deadline.stalled(self.progress))

    def _lied(self, lie: SourceLied) -> None:
        self._finish(DownloadLied(self.download, str(lie)), cancel=True)

    def error(self, reason: str) -> None:
        self._failed(f"ConnectionError: {reason}")

    def timeout(self) -> None:
        self._failed("TimeoutError")

    def _failed(self, error: Exception | str) -> None:
        if self.over:
            return
        entry = self.download.entry
        have = self.files.partial_size(entry.sha256, entry.size)
        reason = error if isinstance(error, str) else _describe(error)
        self._finish(DownloadFailed(self.download, have, reason), cancel=True)


class _DownloadCall(_Transfer):
    """v1.0: GET /files/{name} into the partial file, from where it stops."""

    def __init__(self, syncer: SimSyncer, download: Download) -> None:
        super().__init__(syncer, download)
        self.receiving: Receiving | None = None
        self.position = 0

    def send(self) -> None:
        download, entry = self.download, self.download.entry
        have = self.files.partial_size(entry.sha256, entry.size)
        if have < download.offset:
            # The partial file is shorter than planned: resuming would fill the gap with
            # zeros and blame an honest friend for the hash that follows.
            self._finish(DownloadFailed(download, have, "partial file shorter than planned"))
            return
        headers = download_headers(entry, download.offset, download.trace_id)
        path = f"/files/{entry.name}"
        self._wait(download.timeout)
        self.exchange = self.host.request(download.address, "GET", path, headers, b"", self)

    def head(self, status: int, headers: Mapping[str, str]) -> None:
        if self.over:
            return
        length = headers.get("Content-Length")
        try:
            self.receiving = begin_download(
                self.download.entry,
                self.download.offset,
                status,
                headers.get("Content-Range"),
                int(length) if length is not None else None,
                self.syncer.mutants,
            )
        except SourceLied as lie:
            self._lied(lie)
            return
        except DownloadError as error:
            if status == 416:
                self.files.disk.delete(self.partial)
            self._failed(error)
            return
        self.files.disk.truncate(self.partial, self.receiving.offset)
        self.position = self.receiving.write_at
        self._wait(self.download.timeout)
        expected = self.download.entry.size - self.receiving.offset
        self.deadline = ProgressDeadline(
            self.download.stall_timeout, self.download.min_rate, expected
        )
        self._progressed(0)

    def data(self, chunk: bytes) -> None:
        if self.over or self.receiving is None:
            return
        try:
            self.receiving.take(len(chunk))
        except SourceLied as lie:
            self._lied(lie)
            return
        except DownloadError as error:
            self._failed(error)
            return
        self.files.disk.write_at(self.partial, self.position, chunk)
        self.position += len(chunk)
        self._wait(self.download.timeout)
        self._progressed(self.receiving.received)

    def end(self) -> None:
        if self.over or self.receiving is None:
            return
        data = self.files.disk.read(self.partial) or b""
        self._finish(DownloadEnded(self.download, self.receiving.received, data))


class _ChunkedCall(_Transfer):
    """v1.1: GET /files/{name}/chunks, then a GET with Range for each run of chunks the
    partial file lacks or holds wrongly, one after the other; each chunk checked and written
    as it completes. The list and each range are under their own progress deadline."""

    def __init__(self, syncer: SimSyncer, download: Download) -> None:
        super().__init__(syncer, download)
        self.listed: ChunkListReceiving | None = None
        self.chunks: ChunkList | None = None
        self.ranges: list[tuple[int, int]] = []
        self.part: ChunkRange | None = None
        self.fetched = Fetched(0)

    def send(self) -> None:
        download, entry = self.download, self.download.entry
        headers = download_headers(entry, 0, download.trace_id)
        self._request(chunk_list_path(entry.name), headers)

    def _request(self, path: str, headers: Mapping[str, str]) -> None:
        self._wait(self.download.timeout)
        self.exchange = self.host.request(self.download.address, "GET", path, headers, b"", self)

    def head(self, status: int, headers: Mapping[str, str]) -> None:
        if self.over:
            return
        download = self.download
        length = headers.get("Content-Length")
        try:
            if self.chunks is None:
                self.listed = begin_chunk_list(download.entry, status)
                expected = int(length) if length is not None else self.listed.most
            else:
                first, last = self.ranges[0]
                self.part = begin_range(
                    self.chunks,
                    first,
                    last,
                    status,
                    headers.get("Content-Range"),
                    int(length) if length is not None else None,
                )
                expected = last - first + 1
        except SourceLied as lie:
            self._lied(lie)
            return
        except DownloadError as error:
            self._failed(error)
            return
        self._wait(download.timeout)
        self.deadline = ProgressDeadline(download.stall_timeout, download.min_rate, expected)
        self._progressed(0)

    def data(self, chunk: bytes) -> None:
        if self.over:
            return
        try:
            if self.part is not None:
                for position, data in self.part.take(chunk):
                    self.files.disk.write_at(self.partial, position, data)
                    self.fetched.received += len(data)
                    self.fetched.refetched += 1
                done = self.part.done
            elif self.listed is not None:
                self.listed.take(chunk)
                done = self.listed.received
            else:
                return
        except SourceLied as lie:
            self._lied(lie)
            return
        self._wait(self.download.timeout)
        self._progressed(done)

    def end(self) -> None:
        if self.over:
            return
        try:
            if self.part is not None:
                self.part.end()
                self.part = None
                self.ranges.pop(0)
            elif self.listed is not None:
                self._plan(self.listed.chunks())
            else:
                return
        except SourceLied as lie:
            self._lied(lie)
            return
        except DownloadError as error:
            self._failed(error)
            return
        if self.stall is not None:
            self.stall.cancel()
            self.stall = None
        if self.ranges:
            first, last = self.ranges[0]
            entry = self.download.entry
            headers = range_headers(entry, first, last, self.download.trace_id)
            self._request(f"/files/{entry.name}", headers)
            return
        kept = chunks_kept(self.download, self.fetched)
        if kept is not None:
            self.syncer.log.info(kept.event, **kept.fields)
        data = self.files.disk.read(self.partial) or b""
        self._finish(DownloadEnded(self.download, self.fetched.received, data))

    def _plan(self, chunks: ChunkList) -> None:
        """Keep the partial file's good chunks (never past the envelope); plan the rest."""
        self.chunks, self.listed = chunks, None
        have = (self.files.disk.read(self.partial) or b"")[: self.download.entry.size]
        self.files.disk.truncate(self.partial, len(have))
        self.ranges = chunks.plan(have)
        self.fetched = Fetched(0, len(chunks.hashes))


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
