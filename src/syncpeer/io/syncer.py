"""The sync engine's driver over HTTP: performs its actions and feeds back what happened.

`syncpeer.core.sync.SyncEngine` decides whom to poll, what to download from whom and what to
keep; this module runs each `Poll` and `Download` as an asyncio task with the aiohttp client,
moves and deletes partial files as told, writes the engine's log events, and sends the engine
a `Tick` at its next wakeup on a timer. The engine's clock is `time.monotonic()`, so a
skewed wall clock does not move the poll rounds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import aiohttp

from syncpeer.core.fetch import chunks_kept
from syncpeer.core.logevent import LogEvent
from syncpeer.core.protocol import V1_1
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
from syncpeer.io.client import DownloadError, PeerClient, ProtocolMismatch, SourceLied
from syncpeer.io.filestore import FileStore
from syncpeer.io.logs import Logger

_NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError, DownloadError, ValueError)


class Syncer:
    """Feed it events with `feed`; `start` begins the poll rounds, `stop` ends everything."""

    def __init__(self, engine: SyncEngine, files: FileStore, logger: Logger) -> None:
        self.engine = engine
        self.files = files
        self.log = logger.bind(component="sync")
        self._client: PeerClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    def start(self, client: PeerClient) -> None:
        self._client = client
        self.feed(Tick())

    async def stop(self) -> None:
        self._cancel_timer()
        self._client = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def feed(self, event: Event) -> None:
        """Hand `event` to the engine and perform what it asks for."""
        try:
            actions = self.engine.handle(event, time.monotonic())
        except Exception:
            # A bug must not stop syncing: ask the engine again a poll interval later.
            self.log.exception("sync_round_failed", handling=type(event).__name__)
            self._set_timer(time.monotonic() + self.engine.config.poll_interval)
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
                self._spawn(self._poll(action))
            case Download():
                self._spawn(self._download(action))
            case Keep(decision, sha256):
                self.files.accept(decision, self.files.partial_path(sha256))
            case DiscardPartial(sha256):
                self.files.partial_path(sha256).unlink(missing_ok=True)
            case LogEvent(event, level, fields):
                getattr(self.log, level)(event, **fields)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if self._client is None:
            work.close()  # stopped: nothing goes out any more
            return
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set_timer(self, wakeup: float | None) -> None:
        if wakeup == self._timer_at and self._timer is not None:
            return
        self._cancel_timer()
        if wakeup is None or self._client is None:
            return
        self._timer_at = wakeup
        delay = max(0.0, wakeup - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, None

    def _tick(self) -> None:
        self._timer, self._timer_at = None, None
        self.feed(Tick())

    async def _poll(self, poll: Poll) -> None:
        assert self._client is not None
        try:
            listing = await self._client.listing(
                poll.address, poll.etag, poll.trace_id, poll.timeout, self.engine.me
            )
        except ProtocolMismatch as error:
            self.feed(ProtocolRefused(poll, str(error)))
            return
        except Exception as error:
            if not isinstance(error, _NETWORK_ERRORS):
                self.log.exception("sync_round_failed", trace_id=poll.trace_id, friend=poll.friend)
            self.feed(PollFailed(poll, _describe(error)))
            return
        entries = None if listing.entries is None else tuple(listing.entries)
        invalid = tuple(listing.invalid)
        self.feed(ListingReceived(poll, entries, listing.etag, invalid, listing.protocol))

    async def _download(self, download: Download) -> None:
        assert self._client is not None
        entry = download.entry
        partial = self.files.partial_path(entry.sha256)
        try:
            have = self.files.partial_size(entry.sha256, entry.size)
            if have < download.offset and download.protocol != V1_1:
                # Someone removed the partial file under us: resuming would fill the gap
                # with zeros and blame an honest friend for the hash that follows.
                self.feed(DownloadFailed(download, have, "partial file shorter than planned"))
                return
            if download.protocol == V1_1:
                received = await self._chunked(download)
            else:
                received = await self._client.download(
                    download.address,
                    entry,
                    partial,
                    download.offset,
                    download.trace_id,
                    download.timeout,
                    download.stall_timeout,
                    download.min_rate,
                )
            data = partial.read_bytes()
        except SourceLied as error:
            self.feed(DownloadLied(download, str(error)))
        except Exception as error:
            if not isinstance(error, _NETWORK_ERRORS):
                self.log.exception("sync_round_failed", trace_id=download.trace_id)
            try:
                have = self.files.partial_size(entry.sha256, entry.size)
            except OSError:
                have = 0  # the engine must hear of the end whatever the disk says
            self.feed(DownloadFailed(download, have, _describe(error)))
        else:
            self.feed(DownloadEnded(download, received, data))

    async def _chunked(self, download: Download) -> int:
        """v1.1: fetch only the chunks the partial file lacks or holds wrongly."""
        assert self._client is not None
        entry = download.entry
        fetched = await self._client.download_chunked(
            download.address,
            entry,
            self.files.partial_path(entry.sha256),
            download.trace_id,
            download.timeout,
            download.stall_timeout,
            download.min_rate,
        )
        kept = chunks_kept(download, fetched)
        if kept is not None:
            self.log.info(kept.event, **kept.fields)
        return fetched.received


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
