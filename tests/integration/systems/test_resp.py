"""RESP: commands encode as arrays of bulk strings; replies parse whole or byte by byte; the
connection raises error replies, authenticates, and never reuses a connection in doubt."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from peerlab.systems.resp import (
    RespConnection,
    RespError,
    RespParser,
    RespProtocolError,
    encode_command,
    text,
)


def parse_all(data: bytes) -> list:
    parser = RespParser()
    parser.feed(data)
    return list(parser.values())


def test_command_is_an_array_of_bulk_strings() -> None:
    assert encode_command("SET", "k", b"v\r\n", 5) == (
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$1\r\n5\r\n"
    )
    with pytest.raises(TypeError):
        encode_command("SET", "k", True)


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        (b"+OK\r\n", "OK"),
        (b":-42\r\n", -42),
        (b"$5\r\nhello\r\n", b"hello"),
        (b"$0\r\n\r\n", b""),
        (b"$-1\r\n", None),
        (b"*-1\r\n", None),
        (b"*0\r\n", []),
        (b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", [b"a", [1]]),
        (b"_\r\n", None),
        (b"#t\r\n", True),
        (b",1.5\r\n", 1.5),
        (b"%1\r\n+k\r\n:1\r\n", {"k": 1}),
        (b"~2\r\n:1\r\n:2\r\n", [1, 2]),
        (b"=8\r\ntxt:abcd\r\n", b"abcd"),
        (b"(12345678901234567890\r\n", 12345678901234567890),
    ],
)
def test_each_reply_type_parses(wire: bytes, value: object) -> None:
    assert parse_all(wire) == [value]


def test_error_replies_are_values_with_their_kind() -> None:
    (error,) = parse_all(b"-WRONGPASS invalid username-password pair\r\n")
    assert isinstance(error, RespError) and error.kind == "WRONGPASS"
    (blob,) = parse_all(b"!10\r\nERR broken\r\n")
    assert isinstance(blob, RespError) and blob.kind == "ERR"


def test_replies_fed_byte_by_byte_come_out_whole_and_in_order() -> None:
    wire = b"+OK\r\n*3\r\n$3\r\nfoo\r\n:7\r\n$-1\r\n-ERR no\r\n"
    parser = RespParser()
    out: list = []
    for i in range(len(wire)):
        parser.feed(wire[i : i + 1])
        out.extend(parser.values())
    assert out[:2] == ["OK", [b"foo", 7, None]]
    assert isinstance(out[2], RespError) and len(out) == 3


def test_garbage_is_a_protocol_error() -> None:
    with pytest.raises(RespProtocolError):
        parse_all(b"?what\r\n")
    with pytest.raises(RespProtocolError):
        parse_all(b":notanumber\r\n")
    with pytest.raises(RespProtocolError):
        parse_all(b"$3\r\nabcXY")
    with pytest.raises(RespProtocolError):
        parse_all(b",1.5.2\r\n")
    with pytest.raises(RespProtocolError):
        parse_all(b"#yes\r\n")


def test_text_decodes_bulk_strings_recursively() -> None:
    assert text([b"a", [b"b", 1], {b"k": b"v"}, None]) == ["a", ["b", 1], {"k": "v"}, None]


Handler = Callable[[list[bytes]], Awaitable[bytes | None]]


async def serve(handler: Handler) -> tuple[asyncio.Server, int]:
    """A tiny RESP server: each command (parsed with the same parser) goes to `handler`;
    its bytes are the reply (None: no reply, to test timeouts)."""

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = RespParser()
        while data := await reader.read(4096):
            parser.feed(data)
            for command in parser.values():
                reply = await handler(command)
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_connection_sends_commands_and_raises_error_replies() -> None:
    store: dict[bytes, bytes] = {}

    async def handler(command: list[bytes]) -> bytes:
        name = command[0].upper()
        if name == b"AUTH":
            return b"+OK\r\n" if command[1] == b"secret" else b"-WRONGPASS invalid\r\n"
        if name == b"SET":
            store[command[1]] = command[2]
            return b"+OK\r\n"
        if name == b"GET":
            value = store.get(command[1])
            return b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)
        return b"-ERR unknown command\r\n"

    async def scenario() -> None:
        server, port = await serve(handler)
        async with server:
            connection = await RespConnection.open("127.0.0.1", port, password="secret")
            assert await connection.command("SET", "k", "v") == "OK"
            assert await connection.command("GET", "k") == b"v"
            assert await connection.command("GET", "missing") is None
            with pytest.raises(RespError, match="unknown command"):
                await connection.command("NOPE")
            # An error reply leaves the connection usable.
            assert await connection.command("GET", "k") == b"v"
            await connection.close()
            with pytest.raises(RespError) as info:
                await RespConnection.open("127.0.0.1", port, password="wrong")
            assert info.value.kind == "WRONGPASS"

    asyncio.run(scenario())


def test_a_timed_out_connection_is_never_reused() -> None:
    async def handler(command: list[bytes]) -> bytes | None:
        return None if command[0] == b"SLOW" else b"+PONG\r\n"

    async def scenario() -> None:
        server, port = await serve(handler)
        async with server:
            connection = await RespConnection.open("127.0.0.1", port)
            with pytest.raises(TimeoutError):
                await connection.command("SLOW", timeout=0.1)
            assert connection.stale
            with pytest.raises(ConnectionResetError):
                await connection.command("PING")

    asyncio.run(scenario())


def test_a_connection_the_server_closed_while_idle_is_stale() -> None:
    """As after a sentinel's CLIENT KILL: the next command must go on a new connection."""

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(b"+PONG\r\n")
        await writer.drain()
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            connection = await RespConnection.open("127.0.0.1", port)
            assert await connection.command("PING") == "PONG"
            for _ in range(200):
                if connection.stale:
                    break
                await asyncio.sleep(0.01)
            assert connection.stale
            await connection.close()

    asyncio.run(scenario())
