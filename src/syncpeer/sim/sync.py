"""The sync engine's driver on the simulator: what `syncpeer.io.syncer` and
`syncpeer.io.client` do over HTTP, done as exchanges on the simulated links.

Each `Poll` is a `GET /files` whose whole answer must come within its timeout; each
`Download` a `GET /files/{name}` with If-Match and Range whose bytes go to the partial file
on the host's disk as they arrive, with its timeout for connecting and for each piece and
its progress deadline (a friend that trickles is `Stalled`). What
the answers mean is `syncpeer.core.fetch`, as in the real client; every `Poll` and
`Download` comes back to the engine exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from syncpeer.core.fetch import (
    DownloadError,
    ProgressDeadline,
    Receiving,
    SourceLied,
    begin_download,
    download_headers,
    listing_headers,
    read_listing,
)
from syncpeer.core.logevent import LogEvent
from syncpeer.core.mutants import Mutants
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
        on_completed: Completed | None = None,
    ) -> None:
        self.host = host
        self.engine = engine
        self.files = files
        self.log = log.bind(component="sync")
        self.mutants = mutants
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
                if self.started:
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
        self.body: list[bytes] = []

    def send(self) -> None:
        poll = self.poll
        headers = listing_headers(poll.etag, poll.trace_id)
        self._wait(poll.timeout)
        self.exchange = self.host.request(poll.address, "GET", "/files", headers, b"", self)

    def head(self, status: int, headers: Mapping[str, str]) -> None:
        self.status, self.etag = status, headers.get("ETag")

    def data(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def end(self) -> None:
        try:
            body = json.loads(b"".join(self.body)) if self.status == 200 else None
            listing = read_listing(self.status, self.etag, self.poll.etag, body)
        except (DownloadError, ValueError) as error:
            self._finish(PollFailed(self.poll, _describe(error)))
            return
        entries = None if listing.entries is None else tuple(listing.entries)
        self._finish(ListingReceived(self.poll, entries, listing.etag, tuple(listing.invalid)))

    def error(self, reason: str) -> None:
        self._finish(PollFailed(self.poll, f"ConnectionError: {reason}"))

    def timeout(self) -> None:
        self._finish(PollFailed(self.poll, "TimeoutError"), cancel=True)


class _DownloadCall(_Call):
    """GET /files/{name} into the partial file; the timeout bounds each wait for bytes."""

    def __init__(self, syncer: SimSyncer, download: Download) -> None:
        super().__init__(syncer)
        self.download = download
        self.files = syncer.files
        self.partial = syncer.files.partial_path(download.entry.sha256)
        self.receiving: Receiving | None = None
        self.position = 0
        self.deadline: ProgressDeadline | None = None
        self.stall: Timer | None = None

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
            self._finish(DownloadLied(self.download, str(lie)), cancel=True)
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
        self._progressed()

    def data(self, chunk: bytes) -> None:
        if self.over or self.receiving is None:
            return
        try:
            self.receiving.take(len(chunk))
        except SourceLied as lie:
            self._finish(DownloadLied(self.download, str(lie)), cancel=True)
            return
        except DownloadError as error:
            self._failed(error)
            return
        self.files.disk.write_at(self.partial, self.position, chunk)
        self.position += len(chunk)
        self._wait(self.download.timeout)
        self._progressed()

    def _timers(self) -> list[Timer]:
        return [timer for timer in (self.timer, self.stall) if timer is not None]

    def _progressed(self) -> None:
        assert self.deadline is not None and self.receiving is not None
        due = self.deadline.progressed(self.receiving.received, self.host.now())
        if due is not None:
            if self.stall is not None:
                self.stall.cancel()
            self.stall = self.host.call_later(due - self.host.now(), self._stalled)

    def _stalled(self) -> None:
        assert self.deadline is not None and self.receiving is not None
        self._failed(self.deadline.stalled(self.receiving.received))

    def end(self) -> None:
        if self.over or self.receiving is None:
            return
        data = self.files.disk.read(self.partial) or b""
        self._finish(DownloadEnded(self.download, self.receiving.received, data))

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


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
