"""RESP as properties: every reply type (RESP2 and RESP3), nested, written here from the
protocol's description and read by `RespParser`, whole, cut into any pieces, or cut short;
commands from `encode_command` read back as the arguments they were made of."""

from __future__ import annotations

import contextlib
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from peerlab.systems.resp import RespError, RespParser, RespProtocolError, encode_command

Reply = tuple[bytes, Any]  # the reply on the wire, and the value it must read as


def header(kind: bytes, body: bytes | int) -> bytes:
    return kind + (str(body).encode() if isinstance(body, int) else body) + b"\r\n"


def bulk(kind: bytes, data: bytes) -> bytes:
    return header(kind, len(data)) + data + b"\r\n"


LINE = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]))
ATOMS: st.SearchStrategy[Reply] = st.one_of(
    LINE.map(lambda s: (header(b"+", s.encode()), s)),
    LINE.map(lambda s: (header(b"-", s.encode()), RespError(s))),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: (header(b":", n), n)),
    st.integers().map(lambda n: (header(b"(", n), n)),  # RESP3 big number
    st.binary().map(lambda b: (bulk(b"$", b), b)),
    st.just((b"$-1\r\n", None)),
    st.just((b"*-1\r\n", None)),
    st.just((b"_\r\n", None)),
    st.booleans().map(lambda t: (b"#t\r\n" if t else b"#f\r\n", t)),
    st.floats(allow_nan=False).map(
        lambda x: (
            header(b",", repr(x).encode() if math.isfinite(x) else b"inf" if x > 0 else b"-inf"),
            x,
        )
    ),
    LINE.map(lambda s: (bulk(b"!", s.encode()), RespError(s))),
    st.binary().map(lambda b: (bulk(b"=", b"txt:" + b), b)),
)


def aggregate(kind: bytes) -> Any:
    def build(items: list[Reply]) -> Reply:
        return header(kind, len(items)) + b"".join(w for w, _ in items), [v for _, v in items]

    return build


def as_key(value: Any) -> Any:
    """How a reply reads as a map key: arrays as tuples (a map key must be hashable)."""
    if isinstance(value, list):
        return tuple(as_key(item) for item in value)
    if isinstance(value, dict):
        return tuple((k, as_key(v)) for k, v in value.items())
    return value


def mapping(pairs: list[tuple[Reply, Reply]]) -> Reply:
    wire = header(b"%", len(pairs)) + b"".join(k + v for (k, _), (v, _) in pairs)
    out: dict[Any, Any] = {}
    for (_, key), (_, value) in pairs:
        out[as_key(key)] = value  # a repeated key: the last one wins, as in a dict
    return wire, out


REPLIES: st.SearchStrategy[Reply] = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(aggregate(b"*")),
        st.lists(inner, max_size=4).map(aggregate(b"~")),  # RESP3 set
        st.lists(inner, max_size=4).map(aggregate(b">")),  # RESP3 push
        st.lists(st.tuples(inner, inner), max_size=3).map(mapping),
    ),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """Equal and of one type all the way down; error replies by their message."""
    if type(a) is not type(b):
        return False
    if isinstance(a, RespError):
        return str(a) == str(b) and a.kind == b.kind
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(key_a, key_b) and same(a[key_a], b[key_b])
            for key_a, key_b in zip(a, b, strict=True)
        )
    return bool(a == b)


def read(*pieces: bytes) -> list[Any]:
    parser = RespParser()
    out: list[Any] = []
    for piece in pieces:
        parser.feed(piece)
        out.extend(parser.values())
    return out


@given(st.lists(REPLIES, min_size=1, max_size=5))
def test_replies_read_back_as_written(replies: list[Reply]) -> None:
    wire = b"".join(w for w, _ in replies)
    values = read(wire)
    assert len(values) == len(replies), wire
    for value, (_, expected) in zip(values, replies, strict=True):
        assert same(value, expected), (wire, value, expected)


@given(st.lists(REPLIES, min_size=1, max_size=4), st.data())
def test_replies_cut_into_any_pieces_read_the_same(
    replies: list[Reply], data: st.DataObject
) -> None:
    wire = b"".join(w for w, _ in replies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    values = read(*pieces)
    assert len(values) == len(replies)
    for value, (_, expected) in zip(values, replies, strict=True):
        assert same(value, expected), (pieces, value, expected)


@given(REPLIES, st.data())
def test_a_reply_cut_short_is_not_read_yet(reply: Reply, data: st.DataObject) -> None:
    wire, expected = reply
    cut = data.draw(st.integers(0, len(wire) - 1))
    parser = RespParser()
    parser.feed(wire[:cut])
    assert list(parser.values()) == []
    parser.feed(wire[cut:])
    (value,) = parser.values()
    assert same(value, expected)


ARGUMENTS = st.one_of(
    st.binary(),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"])),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
)


@given(st.lists(ARGUMENTS, min_size=1, max_size=6))
def test_a_command_reads_back_as_its_arguments(arguments: list[Any]) -> None:
    (command,) = read(encode_command(*arguments))
    assert command == [a if isinstance(a, bytes) else str(a).encode() for a in arguments]


# A line that starts like a reply of some type but may hold anything (or random bytes).
LINES = st.builds(
    lambda kind, line: bytes([kind]) + line + b"\r\n",
    st.sampled_from(b"+-:$*_#,(!=~>%|?"),
    st.binary(max_size=6),
)


@given(st.lists(LINES | st.binary(max_size=8) | REPLIES.map(lambda r: r[0]), max_size=5))
def test_bytes_that_are_not_resp_are_a_protocol_error_and_nothing_else(
    pieces: list[bytes],
) -> None:
    """Whatever arrives, the parser returns values, waits for more, or raises
    RespProtocolError: the one error the connection knows to mean "do not trust me"."""
    parser = RespParser()
    parser.feed(b"".join(pieces))
    with contextlib.suppress(RespProtocolError):
        list(parser.values())
