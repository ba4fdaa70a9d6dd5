"""One direction of a proxied TCP connection: straight through, or through its toxics.

With no toxic active on the stream, bytes go straight from a non-blocking `recv_into` of a
pooled buffer to `send`, in the read callback, with no task, queue or copy in between (see
docs/faults.md, "Speed", for why this beat `os.splice` here). As soon as a toxic applies,
each read is copied into a timestamped chunk and queued for a task that runs it through the
chain; when the chain is empty again and the queue has drained, the fast path resumes.
Switching never reorders or drops bytes: reads pause while a direct send is unfinished,
and direct sends wait until the queue is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from typing import Protocol

from peerlab.fabric.buffers import BufferPool
from peerlab.fabric.links import LinkToxic, Stage, restage
from peerlab.fabric.toxics import Chunk, Stub

HIGH_WATER = 8 * 1024 * 1024  # bytes queued in a chain before reading pauses (~ a TCP window)


class Owner(Protocol):
    """The connection a pump belongs to."""

    def reset(self) -> None: ...

    def pump_finished(self) -> None: ...

    def new_stub(self, item: LinkToxic, stream: str) -> Stub: ...


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Pump:
    """Moves one stream (`upstream` or `downstream`) from `source` to `sink`."""

    def __init__(
        self,
        owner: Owner,
        source: socket.socket,
        sink: socket.socket,
        stream: str,
        buffers: BufferPool,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._owner = owner
        self._source, self._sink = source, sink
        # Kept: after a socket closes its fileno() is -1 and the number may be reused.
        self._source_fd, self._sink_fd = source.fileno(), sink.fileno()
        self.stream = stream
        self.stages: list[Stage] = []
        self.bytes = 0
        self.finished = False  # the end of the stream reached the sink
        self._buffers = buffers
        self._queue: deque[Chunk] = deque()
        self._queued = 0
        self._pending: memoryview | None = None  # the unsent rest of a direct send
        self._held: bytearray | None = None  # the pooled buffer `_pending` views
        self._task: asyncio.Task[None] | None = None
        self._reading = False
        self._ended = False  # the source has ended
        self._stopped = False

    @property
    def direct(self) -> bool:
        return self._task is None and not any(stage.active for stage in self.stages)

    def restage(self, items: list[LinkToxic]) -> None:
        self.stages = restage(
            self.stages, items, lambda item: self._owner.new_stub(item, self.stream)
        )

    def start(self) -> None:
        self._resume()

    def stop(self) -> None:
        """Stop moving bytes (the connection is closing); safe to call twice."""
        self._stopped = True
        self._pause()
        self._loop.remove_writer(self._sink_fd)
        if self._task is not None:
            self._task.cancel()
        for stage in self.stages:
            stage.stub.remove()

    def _resume(self) -> None:
        if (
            self._reading
            or self._ended
            or self._stopped
            or self._pending is not None
            or self._queued >= HIGH_WATER
        ):
            return
        self._loop.add_reader(self._source_fd, self._on_readable)
        self._reading = True

    def _pause(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._source_fd)
            self._reading = False

    def _on_readable(self) -> None:
        buffer = self._buffers.take()
        try:
            count = self._source.recv_into(buffer)
        except (BlockingIOError, InterruptedError):
            self._buffers.give(buffer)
            return
        except OSError:
            self._buffers.give(buffer)
            self._owner.reset()
            return
        if count == 0:
            self._buffers.give(buffer)
            self._ended = True
            self._pause()
            if self.direct:
                self._finish()
            else:
                self._enqueue(Chunk(b"", time.monotonic()))
            return
        self.bytes += count
        view = memoryview(buffer)[:count]
        if self.direct:
            self._send_now(buffer, view)
        else:
            self._enqueue(Chunk(bytes(view), time.monotonic()))
            self._buffers.give(buffer)

    def _send_now(self, buffer: bytearray, view: memoryview) -> None:
        try:
            sent = self._sink.send(view)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._buffers.give(buffer)
            self._owner.reset()
            return
        if sent == len(view):
            self._buffers.give(buffer)
            return
        self._pending, self._held = view[sent:], buffer  # kept until the sink takes it
        self._pause()
        self._loop.add_writer(self._sink_fd, self._on_writable)

    def _on_writable(self) -> None:
        pending = self._pending
        if pending is None:
            return
        try:
            sent = self._sink.send(pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._owner.reset()
            return
        if sent < len(pending):
            self._pending = pending[sent:]
            return
        self._pending = None
        if self._held is not None:
            self._buffers.give(self._held)
            self._held = None
        self._loop.remove_writer(self._sink_fd)
        self._resume()

    def _enqueue(self, chunk: Chunk) -> None:
        self._queue.append(chunk)
        self._queued += len(chunk.data)
        if self._queued >= HIGH_WATER:
            self._pause()
        if self._task is None:
            self._task = self._loop.create_task(self._process())

    async def _process(self) -> None:
        try:
            while self._queue:
                chunk = self._queue.popleft()
                self._queued -= len(chunk.data)
                self._resume()
                await self._through(list(self.stages), 0, chunk)
        except OSError:
            self._owner.reset()
        except Exception:
            self._owner.reset()  # a failing toxic must not leave the connection hanging
            raise
        finally:
            self._task = None

    async def _through(self, stages: list[Stage], index: int, chunk: Chunk) -> None:
        # The chain is the one this chunk started with: a toxic added meanwhile acts from
        # the next chunk on, and one removed meanwhile is skipped (or lets go of it).
        while index < len(stages) and not stages[index].active:
            index += 1
        if index == len(stages):
            await self._write(chunk)
            return
        stage = stages[index]
        async with contextlib.aclosing(stage.toxic.pipe(stage.stub, chunk)) as outputs:
            async for output in outputs:
                await self._through(stages, index + 1, output)

    async def _write(self, chunk: Chunk) -> None:
        if not chunk.data:
            self._finish()
            return
        view = memoryview(chunk.data)
        while view:
            try:
                view = view[self._sink.send(view) :]
            except (BlockingIOError, InterruptedError):
                await self._writable()

    async def _writable(self) -> None:
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._loop.add_writer(self._sink_fd, _wake, waiter)
        try:
            await waiter
        finally:
            if not self._stopped:  # stop() already removed it; the fd may be reused now
                self._loop.remove_writer(self._sink_fd)

    def _finish(self) -> None:
        with contextlib.suppress(OSError):
            self._sink.shutdown(socket.SHUT_WR)
        self.finished = True
        self._owner.pump_finished()
