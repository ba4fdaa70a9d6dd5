"""Read buffers and splice pipes shared by the pumps of one event loop, so idle connections
hold none.

A pump takes a buffer (or, on the splice path, a pipe) for each read and gives it back once
the bytes are sent; only a pump whose send is unfinished keeps one. Memory and descriptors
are then one buffer or pipe per stream that is actually waiting on a full socket, plus a
few spare. Spare pipes are closed when the pool goes away.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import weakref

SIZE = 1024 * 1024  # bytes per read: 1 MiB measured best for bulk transfers
SPARE = 4


class Pipe:
    """A kernel pipe of SIZE bytes: the splice path's buffer, never copied into Python."""

    def __init__(self) -> None:
        self.read, self.write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # else the default 64 KiB: slower, as correct
            fcntl.fcntl(self.write, fcntl.F_SETPIPE_SZ, SIZE)

    def close(self) -> None:
        for fd in (self.read, self.write):
            with contextlib.suppress(OSError):
                os.close(fd)


def _close_all(pipes: list[Pipe]) -> None:
    for pipe in pipes:
        pipe.close()
    pipes.clear()


class BufferPool:
    """Buffers of SIZE bytes and pipes of as much; not thread-safe (one per event loop)."""

    def __init__(self) -> None:
        self._free: list[bytearray] = []
        self._pipes: list[Pipe] = []
        weakref.finalize(self, _close_all, self._pipes)

    def take(self) -> bytearray:
        return self._free.pop() if self._free else bytearray(SIZE)

    def give(self, buffer: bytearray) -> None:
        if len(self._free) < SPARE:
            self._free.append(buffer)

    def take_pipe(self) -> Pipe:
        return self._pipes.pop() if self._pipes else Pipe()

    def give_pipe(self, pipe: Pipe) -> None:
        """Take back an empty pipe (one that holds bytes must be closed instead)."""
        if len(self._pipes) < SPARE:
            self._pipes.append(pipe)
        else:
            pipe.close()
