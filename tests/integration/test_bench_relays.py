"""The relays `peerlab bench proxy` measures against: each forwards a stream intact, and one
that is not installed is a note, not a failure."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import threading
from collections.abc import Iterator

import pytest

from peerlab.bench import relays


@pytest.fixture
def sink() -> Iterator[tuple[int, list[str]]]:
    """A server that hashes one connection's bytes until EOF; (its port, [digest])."""
    listener = socket.create_server(("127.0.0.1", 0))
    digests: list[str] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # closed unused: the test skipped (its relay is not installed)
        digest = hashlib.sha256()
        while piece := conn.recv(1 << 16):
            digest.update(piece)
        digests.append(digest.hexdigest())
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], digests
    listener.close()
    thread.join(10)


@pytest.mark.parametrize("name", relays.NAMES)
def test_a_relay_forwards_a_stream_intact(name: str, sink: tuple[int, list[str]]) -> None:
    port, digests = sink
    relay = relays.start(name, port)
    if isinstance(relay, str):
        pytest.skip(relay)
    try:
        payload = os.urandom(3_000_000)
        with socket.create_connection(("127.0.0.1", relay.port), timeout=30) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""  # the sink closed after EOF, through the relay
        assert digests == [hashlib.sha256(payload).hexdigest()]
    finally:
        relay.stop()
    assert relay.process.poll() is not None


def test_a_relay_that_is_not_installed_is_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    note = relays.start("haproxy", 9)
    assert note == "haproxy is not installed (Debian: apt-get install haproxy)"


def test_bench_proxy_puts_every_relay_beside_the_proxy() -> None:
    from peerlab.bench.proxy import run

    result = run(megabytes=8, pings=200, repeats=1)
    assert result["proxy_mb_s"] > 0
    assert result["splice_relay_mb_s"] > 0  # run by the benchmark itself: always there
    for name in ("haproxy", "socat"):
        if shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin"):
            assert result[f"{name}_mb_s"] > 0
        else:
            assert result[f"{name}_mb_s"] is None
            assert name in result["notes"][name]
    assert result["proxy_vs_splice_relay"] == pytest.approx(
        result["proxy_mb_s"] / result["splice_relay_mb_s"], rel=0.01
    )
