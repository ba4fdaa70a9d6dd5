"""RESP, the Redis protocol: a sans-IO parser and a small client over asyncio streams.

`RespParser` turns bytes into values and owns no socket: feed it what arrived, take the
complete replies out. `RespConnection` sends commands (arrays of bulk strings) and reads one
reply per command. Replies map to Python as: simple string -> str, bulk string -> bytes,
integer -> int, array -> list, null -> None, error -> `RespError` (returned by the parser,
raised by the connection). The RESP3 types Redis 7 may send (null, boolean, double, map,
set, push, verbatim string, big number, bulk error) are read too; peerlab speaks RESP2. A
map reads as a dict, with an array as a key read as a tuple.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from peerlab.errors import PeerlabError
from peerlab.hashable import hashable

CRLF = b"\r\n"
MAX_BULK = 512 * 2**20  # Redis's own limit for one bulk string


class RespError(PeerlabError):
    """An error reply: `kind` is its first word (ERR, WRONGPASS, NOAUTH, READONLY...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.kind = message.split(" ", 1)[0] if message else "ERR"


class RespProtocolError(PeerlabError):
    """The bytes are not RESP: the connection cannot be trusted any more."""


def encode_command(*args: str | bytes | int | float) -> bytes:
    """A command as RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, bool):
            raise TypeError("RESP has no booleans in commands; send 1/0 or a word")
        else:
            data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Incomplete(Exception):
    """The buffer ends before the value does."""


class RespParser:
    """Sans-IO: `feed(bytes)`, then iterate `values()` for every complete reply so far."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def values(self) -> Iterator[Any]:
        while self._buffer:
            try:
                value, end = self._parse(0)
            except _Incomplete:
                return
            del self._buffer[:end]
            yield value

    def _line(self, start: int) -> tuple[bytes, int]:
        end = self._buffer.find(CRLF, start)
        if end < 0:
            raise _Incomplete
        return bytes(self._buffer[start:end]), end + 2

    def _int(self, text: bytes) -> int:
        try:
            return int(text)
        except ValueError:
            raise RespProtocolError(f"not a RESP length or integer: {text[:40]!r}") from None

    def _float(self, text: bytes) -> float:
        try:
            return float(text)
        except ValueError:
            raise RespProtocolError(f"not a RESP double: {text[:40]!r}") from None

    def _bulk(self, length: int, start: int) -> tuple[bytes, int]:
        if length > MAX_BULK:
            raise RespProtocolError(f"bulk string of {length} bytes is beyond Redis's limit")
        end = start + length
        if len(self._buffer) < end + 2:
            raise _Incomplete
        if self._buffer[end : end + 2] != CRLF:
            raise RespProtocolError("bulk string not followed by CRLF")
        return bytes(self._buffer[start:end]), end + 2

    def _parse(self, start: int) -> tuple[Any, int]:
        if start >= len(self._buffer):
            raise _Incomplete
        kind = chr(self._buffer[start])
        line, after = self._line(start + 1)
        if kind == "+":
            return line.decode(errors="replace"), after
        if kind == "-":
            return RespError(line.decode(errors="replace")), after
        if kind in ":(":
            return self._int(line), after
        if kind == "_":
            return None, after
        if kind == "#":
            if line not in (b"t", b"f"):
                raise RespProtocolError(f"not a RESP boolean: {line[:40]!r}")
            return line == b"t", after
        if kind == ",":
            return self._float(line), after
        if kind in "$!=":
            length = self._int(line)
            if length < 0:
                return None, after
            data, after = self._bulk(length, after)
            if kind == "!":
                return RespError(data.decode(errors="replace")), after
            # A verbatim string starts with its format, e.g. "txt:".
            return (data[4:] if kind == "=" else data), after
        if kind in "*~>%":
            count = self._int(line)
            if count < 0:
                return None, after
            items = []
            for _ in range(count * 2 if kind == "%" else count):
                item, after = self._parse(after)
                items.append(item)
            if kind == "%":
                return {hashable(k): v for k, v in zip(items[::2], items[1::2], strict=True)}, after
            return items, after
        raise RespProtocolError(f"unknown RESP type byte {kind!r}")


def text(value: Any) -> Any:
    """Bulk strings (bytes) as str, recursively; other values as they are."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list):
        return [text(item) for item in value]
    if isinstance(value, tuple):
        return tuple(text(item) for item in value)
    if isinstance(value, dict):
        return {text(k): text(v) for k, v in value.items()}
    return value


class RespConnection:
    """One TCP connection to a Redis (or Sentinel) server; one command at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = RespParser()
        self._pending: list[Any] = []
        self._lock = asyncio.Lock()
        self.broken = False

    @property
    def stale(self) -> bool:
        """Closed, or the server closed it while idle (a sentinel's CLIENT KILL, a restart).

        Checked before a command is sent, so reconnecting then cannot repeat a command.
        """
        return self.broken or self._reader.at_eof()

    @classmethod
    async def open(
        cls, host: str, port: int, *, timeout: float = 2.0, password: str | None = None
    ) -> RespConnection:
        """Connect, and AUTH when a password is given (RespError WRONGPASS if it is wrong)."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        connection = cls(reader, writer)
        if password is not None:
            try:
                await connection.command("AUTH", password, timeout=timeout)
            except BaseException:
                await connection.close()
                raise
        return connection

    async def command(self, *args: str | bytes | int | float, timeout: float = 2.0) -> Any:
        """Send one command and return its reply; an error reply raises RespError.

        After a timeout or a broken connection the connection is closed: a late reply
        would otherwise answer the next command.
        """
        if self.broken:
            raise ConnectionResetError("the connection was closed after an earlier failure")
        async with self._lock:
            try:
                self._writer.write(encode_command(*args))
                reply = await asyncio.wait_for(self._reply(), timeout)
            except BaseException:
                await self.close()
                raise
        if isinstance(reply, RespError):
            raise reply
        return reply

    async def _reply(self) -> Any:
        await self._writer.drain()
        while not self._pending:
            data = await self._reader.read(65536)
            if not data:
                raise ConnectionResetError("the server closed the connection")
            self._parser.feed(data)
            self._pending.extend(self._parser.values())
        return self._pending.pop(0)

    async def close(self) -> None:
        self.broken = True
        self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), 1)
