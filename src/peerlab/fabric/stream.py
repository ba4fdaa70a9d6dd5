"""One direction of a proxied TCP connection: straight through, or through its toxics.

With no toxic active on the stream, bytes go straight through in the read callback, with
no task or queue in between: small reads as a non-blocking `recv` and a `send` of what it
returned (the fewest steps per message, which is what a round trip pays for); once a read
is large (a bulk stream), with `os.splice` from the source into a pooled pipe and from the
pipe into the sink, so they are never copied into Python (see docs/faults.md, "Speed").
After a straight send the loop may poll on for a moment instead of sleeping, so the answer
finds it awake, and before a straight read it may move to the CPU the message came in on
(both only while a CPU is idle), or off the CPU a bulk stream comes in on
(`peerlab.fabric.spin`).
As soon as a toxic applies, each read is copied into a timestamped chunk and queued for a
task that runs it through the chain; when the chain is empty again and the queue has
drained, the straight path resumes. Switching never
reorders or drops bytes: reads pause while a straight send (or a pipe) is unfinished, and
straight sends wait until the queue is empty.

Backpressure: the chain holds a bounded backlog (bytes read, not yet sent; `backlog_limit`).
Reading pauses when it is full and resumes when half of it has gone on, so the source's
socket buffers fill and the sender blocks, as TCP flow control blocks it on a real link;
what a sender has not written yet is never in the proxy, and dies with the sender. When
the source ends cleanly (FIN), what the chain holds drains through the toxics at their pace,
then the sink gets the FIN. When the source is reset (a crashed sender), what the chain
holds is dropped and the sink is reset too. A paused reader does not see the reset, and
uvloop stops watching a socket once it reports an error, so the socket's error is also
checked after each read, before reading resumes and before the chain writes to the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from peerlab.fabric.buffers import SIZE, BufferPool, Pipe
from peerlab.fabric.links import LinkToxic, Stage, restage
from peerlab.fabric.spin import Spinner
from peerlab.fabric.toxics import Chunk, Stub, Toxic

FLOOR = 64 * 1024  # bytes any chain may hold: whole reads, and a toxic's next pieces ready
WINDOW = 8 * 1024 * 1024  # at most this much more for the delays: a large TCP window
REFILL = 0.05  # seconds of a capped rate held beyond the delays, so the cap never starves
# The source socket's receive buffer while toxics act (Linux doubles it). Left to itself the
# kernel grows it up to net.ipv4.tcp_rmem's maximum (MBs) and it would take in what the
# paused reader leaves; below this a loopback sender stalls (its 64 KiB segments must fit
# the window). Setting it stops that growth for good, so when the toxics are gone it is set
# to the largest the system allows (net.core.rmem_max).
SMALL_RECEIVE_BUFFER = 64 * 1024
LARGE_RECEIVE_BUFFER = 1 << 30
SPLICE = hasattr(os, "splice")  # Linux: the straight path moves pages, not bytes
SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
BULK = 16 * 1024  # a straight read this large is a bulk stream's: splice the next ones
COPY = 64 * 1024  # bytes per straight read that is copied (small ones, or without splice)


def backlog_limit(toxics: Sequence[Toxic]) -> int:
    """Bytes a stream through `toxics` may hold: FLOOR + rate x (delay + REFILL).

    The rate is the lowest cap among the toxics (bandwidth, slicer) and the delay the sum
    of what they hold data for (latency + jitter, loss's rto): a bandwidth-delay product,
    what the link has in flight at full speed. Without a cap, a delay gets the WINDOW, and
    one stream through a latency L then carries up to WINDOW / L, as a TCP window would.
    """
    caps = [cap for toxic in toxics if (cap := toxic.rate_cap()) is not None]
    delay = sum(toxic.hold_time() for toxic in toxics)
    if not caps:
        return FLOOR + (WINDOW if delay > 0 else 0)
    return FLOOR + int(min(WINDOW, min(caps) * (delay + REFILL)))


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
        spinner: Spinner | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._owner = owner
        self._source, self._sink = source, sink
        # Kept: after a socket closes its fileno() is -1 and the number may be reused.
        self._source_fd, self._sink_fd = source.fileno(), sink.fileno()
        self.stream = stream
        self.stages: list[Stage] = []
        self._toxic = False  # a stage of `stages` is active (kept by restage)
        self.bytes = 0  # forwarded to the sink (what a cut link must not carry)
        self.finished = False  # the end of the stream reached the sink
        self._buffers = buffers
        self._spinner = spinner  # polls on after a straight send (see peerlab.fabric.spin)
        self._queue: deque[Chunk] = deque()
        self._backlog = 0  # bytes read into the chain and not yet sent to the sink
        self._limit = backlog_limit([])  # reading pauses at this backlog, resumes at half
        self._sent = 0  # bytes the chain has sent to the sink
        self._receive_buffer: int | None = None  # None: the kernel's own (autotuned)
        self._pending: memoryview | None = None  # the unsent rest of a straight send
        self._pipe: Pipe | None = None  # on the splice path, holding `_piped` bytes
        self._piped = 0
        self._bulk = False  # the last straight read was large (BULK): splice the next one
        self._task: asyncio.Task[None] | None = None
        self._reading = False
        self._ended = False  # the source has ended
        self._stopped = False

    @property
    def held(self) -> int:
        """Bytes read from the source and not yet forwarded (in the toxics)."""
        return self._backlog

    def restage(self, items: list[LinkToxic]) -> None:
        self.stages = restage(
            self.stages, items, lambda item: self._owner.new_stub(item, self.stream)
        )
        toxics = [stage.toxic for stage in self.stages if stage.active]
        self._toxic = bool(toxics)
        self._limit = backlog_limit(toxics)
        if toxics:
            self._set_receive_buffer(SMALL_RECEIVE_BUFFER)
        elif self._receive_buffer is not None:
            self._set_receive_buffer(LARGE_RECEIVE_BUFFER)
        if self._backlog >= self._limit:
            self._pause()
        else:
            self._resume()  # a larger limit may let a paused reader go on

    def _set_receive_buffer(self, size: int) -> None:
        if size != self._receive_buffer:
            with contextlib.suppress(OSError):
                self._source.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            self._receive_buffer = size

    def start(self) -> None:
        self._resume()

    def stop(self) -> None:
        """Stop moving bytes (the connection is closing); safe to call twice."""
        self._stopped = True
        self._pause()
        self._loop.remove_writer(self._sink_fd)
        if self._pipe is not None:
            self._pipe.close()  # what it holds dies with the connection
            self._pipe = None
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
            or self._pipe is not None
            or self._backlog > self._limit // 2
        ):
            return
        if self._source_reset():  # while the reader was paused (see _copy_straight)
            self._owner.reset()
            return
        self._loop.add_reader(self._source_fd, self._on_readable)
        self._reading = True

    def _pause(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._source_fd)
            self._reading = False

    def _source_reset(self) -> bool:
        """Whether the source failed (was reset); this clears the error: end the connection."""
        return self._source.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0

    def _on_readable(self) -> None:
        if self._task is not None or self._toxic:
            self._read_into_chain()
        elif self._bulk:
            self._splice_in()
        else:
            self._copy_straight()

    def _copy_straight(self) -> None:
        if self._spinner is not None:
            self._spinner.follow(self._source)
        try:
            data = self._source.recv(COPY)
            # uvloop (libuv) stops watching a descriptor when it reports an error, after
            # one last call: a reset that came with data must be noticed in this call.
            if data and self._source_reset():
                raise ConnectionResetError("the source was reset")
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._owner.reset()
            return
        if not data:
            self._ended = True
            self._pause()
            self._finish()
            return
        self._bulk = SPLICE and len(data) >= BULK
        try:
            sent = self._sink.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._owner.reset()
            return
        self.bytes += sent
        if self._spinner is not None:
            self._spinner.poke(self._loop)
        if sent < len(data):
            self._pending = memoryview(data)[sent:]  # kept until the sink takes it
            self._pause()
            self._loop.add_writer(self._sink_fd, self._on_writable)

    def _read_into_chain(self) -> None:
        room = min(SIZE, self._limit - self._backlog)
        if room <= 0:
            self._pause()
            return
        buffer = self._buffers.take()
        try:
            count = self._source.recv_into(buffer, room)
            if count and self._source_reset():  # as in _copy_straight
                raise ConnectionResetError("the source was reset")
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
            self._enqueue(Chunk(b"", time.monotonic()))
            return
        self._enqueue(Chunk(bytes(memoryview(buffer)[:count]), time.monotonic()))
        self._buffers.give(buffer)

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
        self.bytes += sent
        if sent < len(pending):
            self._pending = pending[sent:]
            return
        self._pending = None
        self._loop.remove_writer(self._sink_fd)
        self._resume()

    def _splice_in(self) -> None:
        if self._spinner is not None:
            self._spinner.sidestep(self._source)
        pipe = self._buffers.take_pipe()
        try:
            count = os.splice(self._source_fd, pipe.write, SIZE, flags=SPLICE_FLAGS)
            if count and self._source_reset():  # as in _copy_straight
                raise ConnectionResetError("the source was reset")
        except (BlockingIOError, InterruptedError):
            self._buffers.give_pipe(pipe)
            return
        except OSError:
            pipe.close()
            self._owner.reset()
            return
        if count == 0:
            self._buffers.give_pipe(pipe)
            self._ended = True
            self._pause()
            self._finish()
            return
        self.bytes += count
        self._bulk = count >= BULK  # else back to copying, quicker for small reads
        self._pipe, self._piped = pipe, count
        if not self._drained() and not self._stopped:
            self._pause()  # the sink is full: wait for it, reading no more meanwhile
            self._loop.add_writer(self._sink_fd, self._on_drainable)

    def _on_drainable(self) -> None:
        if self._drained():
            self._loop.remove_writer(self._sink_fd)
            self._resume()

    def _drained(self) -> bool:
        """Splice the pipe into the sink: whether it is empty now (and back in the pool)."""
        pipe = self._pipe
        if pipe is None:
            return True
        try:
            while self._piped:
                self._piped -= os.splice(pipe.read, self._sink_fd, self._piped, flags=SPLICE_FLAGS)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self._owner.reset()
            return False
        self._pipe = None
        self._buffers.give_pipe(pipe)
        return True

    def _enqueue(self, chunk: Chunk) -> None:
        self._queue.append(chunk)
        self._backlog += len(chunk.data)
        if self._backlog >= self._limit:
            self._pause()
        if self._task is None:
            self._task = self._loop.create_task(self._process())

    async def _process(self) -> None:
        try:
            while self._queue:
                chunk = self._queue.popleft()
                sent = self._sent
                await self._through(list(self.stages), 0, chunk)
                # Bytes a toxic dropped (limit_data, reset_peer) leave the backlog too.
                self._backlog -= len(chunk.data) - (self._sent - sent)
                self._resume()
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
        if not self._ended and self._source_reset():
            # A paused reader does not see it: what the chain holds dies with the sender.
            raise ConnectionResetError("the source was reset")
        view = memoryview(chunk.data)
        while view:
            try:
                sent = self._sink.send(view)
            except (BlockingIOError, InterruptedError):
                await self._writable()
                continue
            view = view[sent:]
            self.bytes += sent
            self._sent += sent
            self._backlog -= sent
        self._resume()

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
