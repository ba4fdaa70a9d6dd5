"""The sync loop: poll every friend's listing each round and run the downloads the engine plans.

Failures (a friend down, a timeout, a download cut short) are logged and retried on a later
round; they never end the loop. Downloads run beside the polling, a few at a time, and write to
.partial/<sha256>.part so an interrupted one resumes with a Range request from any friend that
lists the same envelope.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from syncpeer.core import mutants
from syncpeer.core.keyring import Friend, Keyring
from syncpeer.core.store import Placement
from syncpeer.core.sync import Fetch, Rejected, SyncEngine
from syncpeer.io.client import DownloadError, PeerClient, SourceLied
from syncpeer.io.filestore import FileStore
from syncpeer.io.logs import Logger

MAX_PARALLEL_DOWNLOADS = 8
_NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError, DownloadError, ValueError)


@dataclass
class Counters:
    """What GET /admin/status reports about downloads."""

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


class Syncer:
    def __init__(
        self,
        *,
        engine: SyncEngine,
        keyring: Keyring,
        files: FileStore,
        client: PeerClient,
        counters: Counters,
        logger: Logger,
        poll_interval: float,
        new_trace_id: Callable[[], str],
    ) -> None:
        self.engine = engine
        self.keyring = keyring
        self.files = files
        self.client = client
        self.counters = counters
        self.log = logger.bind(component="sync")
        self.poll_interval = poll_interval
        self.new_trace_id = new_trace_id
        self._etags: dict[str, tuple[str, str]] = {}  # friend -> (address, ETag)
        self._unreachable: set[str] = set()
        self._downloads: set[asyncio.Task[None]] = set()
        self._polls: dict[str, asyncio.Task[None]] = {}  # friend -> its poll still running
        self._slots = asyncio.Semaphore(MAX_PARALLEL_DOWNLOADS)

    async def run(self) -> None:
        """Poll forever; cancel the task to stop."""
        try:
            while True:
                try:
                    await self.poll_round()
                except Exception:
                    # A bug in one round must not stop syncing; the next round starts afresh.
                    self.log.exception("sync_round_failed")
                await asyncio.sleep(self.poll_interval)
        finally:
            tasks = [*self._downloads, *self._polls.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def poll_round(self) -> None:
        """Poll every friend not still busy with an earlier poll; wait at most one poll
        interval. A friend that does not answer (frozen, or behind a stalled link) only
        delays itself: waiting for every poll made one such friend hold up syncing with all
        the others for the whole HTTP timeout."""
        trace_id = self.new_trace_id()
        friends = list(self.keyring)
        started = []
        for friend in friends:
            if friend.fingerprint in self._polls:
                continue
            task = asyncio.create_task(self._poll_logged(friend, trace_id))
            self._polls[friend.fingerprint] = task
            task.add_done_callback(self._poll_done(friend.fingerprint))
            started.append(task)
        if started:
            lockstep = mutants.active("poll-in-lockstep")
            await asyncio.wait(started, timeout=None if lockstep else self.poll_interval)
        self.log.debug(
            "sync_round",
            trace_id=trace_id,
            friends=len(friends),
            unreachable=len(self._unreachable),
            in_flight=self.engine.in_flight,
        )

    def _poll_done(self, fingerprint: str) -> Callable[[asyncio.Task[None]], None]:
        def done(_: asyncio.Task[None]) -> None:
            self._polls.pop(fingerprint, None)

        return done

    async def _poll_logged(self, friend: Friend, trace_id: str) -> None:
        try:
            await self._poll(friend, trace_id)
        except Exception:
            # A bug in one poll must not stop syncing; the next round asks again.
            self.log.exception("sync_round_failed", trace_id=trace_id, friend=friend.fingerprint)

    def forget(self, fingerprint: str) -> None:
        """A friend was removed: stop treating it as a source."""
        self.engine.forget(fingerprint)
        self._etags.pop(fingerprint, None)
        self._unreachable.discard(fingerprint)

    async def _poll(self, friend: Friend, trace_id: str) -> None:
        address, etag = self._etags.get(friend.fingerprint, (friend.address, ""))
        if address != friend.address:
            etag = ""
        self.counters.polls += 1
        try:
            listing = await self.client.listing(friend.address, etag or None, trace_id)
        except _NETWORK_ERRORS as error:
            self.counters.poll_failures += 1
            self.engine.forget(friend.fingerprint)
            self._etags.pop(friend.fingerprint, None)
            if friend.fingerprint not in self._unreachable:
                self._unreachable.add(friend.fingerprint)
                self.log.info(
                    "friend_unreachable",
                    trace_id=trace_id,
                    friend=friend.fingerprint,
                    address=friend.address,
                    error=_describe(error),
                )
            return
        if friend.fingerprint in self._unreachable:
            self._unreachable.discard(friend.fingerprint)
            self.log.info("friend_reachable", trace_id=trace_id, friend=friend.fingerprint)
        for reason in listing.invalid:
            self.log.warning(
                "listing_entry_invalid", trace_id=trace_id, friend=friend.fingerprint, reason=reason
            )
        if listing.entries is None and not self.engine.knows(friend.fingerprint):
            # A 304 for a listing the engine has since forgotten: ask in full next round.
            self._etags.pop(friend.fingerprint, None)
        elif listing.etag:
            self._etags[friend.fingerprint] = (friend.address, listing.etag)
        for fetch in self.engine.on_listing(friend.fingerprint, listing.entries):
            task = asyncio.create_task(self._download(fetch))
            self._downloads.add(task)
            task.add_done_callback(self._downloads.discard)

    async def _download(self, fetch: Fetch) -> None:
        entry = fetch.entry
        # The publisher's trace id travels in the envelope and the listing, so this download
        # logs under the same trace as the publish that caused it.
        trace_id = entry.trace_id or self.new_trace_id()
        log = self.log.bind(
            trace_id=trace_id, name=entry.name, version=entry.version, author=entry.author
        )
        try:
            async with self._slots:
                await self._attempt(fetch, trace_id, log)
        except Exception:
            self.counters.downloads_failed += 1
            log.exception("file_download_failed", error="unexpected error")
        finally:
            self.engine.release(entry)

    async def _attempt(self, fetch: Fetch, trace_id: str, log: Logger) -> None:
        entry = fetch.entry
        source = fetch.sources[0]
        friend = self.keyring.get(source)
        if friend is None:
            return  # removed while queued; a later listing plans it again
        partial = self.files.partial_path(entry.sha256)
        offset = self.files.partial_size(entry.sha256, entry.size)
        self.counters.fetches[f"{entry.name}@{entry.version}@{entry.author}"] += 1
        if offset:
            self.counters.downloads_resumed += 1
            log.info("file_download_resumed", source=source, offset=offset, size=entry.size)
        else:
            self.counters.downloads_started += 1
            log.info("file_download_started", source=source, size=entry.size)
        started = time.monotonic()
        try:
            received = await self.client.download(friend.address, entry, partial, offset, trace_id)
        except SourceLied as error:
            self.engine.blame(source, entry.sha256)
            partial.unlink(missing_ok=True)
            self.counters.downloads_rejected += 1
            log.warning("file_rejected", source=source, reason=str(error))
            return
        except _NETWORK_ERRORS as error:
            have = self.files.partial_size(entry.sha256, entry.size)
            self.counters.downloads_failed += 1
            self.counters.bytes_downloaded += max(0, have - offset)
            log.warning("file_download_failed", source=source, have=have, error=_describe(error))
            return
        self.counters.bytes_downloaded += received
        if offset + received != entry.size:
            self.counters.downloads_failed += 1
            log.warning(
                "file_download_failed", source=source, have=offset + received, error="short body"
            )
            return
        outcome = self.engine.check(entry, source, partial.read_bytes())
        if isinstance(outcome, Rejected):
            partial.unlink(missing_ok=True)
            self.counters.downloads_rejected += 1
            log.warning("file_rejected", source=source, reason=outcome.reason)
            return
        decision = outcome.decision
        self.files.accept(decision, partial)
        self.counters.downloads_completed += 1
        log.info(
            "file_download_completed",
            source=source,
            bytes=entry.size,
            placement=decision.placement.value,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            sha256=entry.sha256,
            content_sha256=decision.file.plain_sha256,
            deleted=decision.file.deleted,
        )
        other = self.engine.store.equivocation(decision.file)
        if other is not None:
            # Both envelopes carry the author's signature: together they prove it showed
            # different peers different content under one version.
            log.warning("file_equivocation", source=source, sha256=entry.sha256, other=other.sha256)
        if decision.placement is Placement.HISTORY:
            kept, why = decision.file, "older_than_current"
        elif decision.displaced is not None:
            kept, why = decision.displaced, "replaced"
        else:
            return
        log.bind(component="store").info(
            "file_version_kept", version=kept.version, author=kept.author, reason=why
        )


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
