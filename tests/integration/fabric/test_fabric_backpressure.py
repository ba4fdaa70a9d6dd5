"""Backpressure: a stream with toxics holds a bounded backlog, so a fast sender blocks.

A sender writes a few MB through a 500 KB/s `bandwidth` toxic to a receiver behind a proxy.
The proxy may hold about 0.1 MB (its backlog bound) and the kernel a little more (the
sockets' buffers), never the whole transfer; what it holds still goes at the toxic's rate,
and a sender that crashes takes its unsent data with it.

Senders set a 64 KiB send buffer: on loopback the kernel grows a default one to 4 MiB,
which would hide from `send` whether the proxy has stopped reading.

Without toxics the proxy splices (socket -> pipe -> socket): while its receiver stalls it
holds one pipe, and a toxic added meanwhile paces everything it reads after.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from peerlab.aio import LoopThread
from peerlab.fabric.buffers import SIZE
from peerlab.fabric.links import Links, LinkToxic
from peerlab.fabric.spec import ToxicSpec
from peerlab.fabric.stream import FLOOR, REFILL, WINDOW, backlog_limit
from peerlab.fabric.tcp import TcpProxy
from peerlab.fabric.toxics import Bandwidth, Latency, Loss, SlowClose, Timeout
from peerlab.wait import wait_until

RATE = 500_000  # bytes per second through the toxic (500 KB/s)
TOTAL = 4_000_000  # bytes the sender has to send
SEND_BUFFER = 64 * 1024
RECEIVE_BUFFER = 64 * 1024
# What may sit between the sender and the toxic's output besides what the rate let through:
# the proxy's backlog bound (about 0.1 MB here) and the kernel's socket buffers, generously.
HELD = 1_200_000


def _listener() -> socket.socket:
    sock = socket.socket()
    # Fixed (not grown by the kernel): what a stalled receiver holds stays small.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


@dataclass
class Receiver:
    """The far end: accepts one connection and reads it to its end, noting when bytes came;
    a `held` one reads nothing until released."""

    listener: socket.socket = field(default_factory=_listener)
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    ended: float | None = None
    end: str = ""  # "eof" or "reset"
    digest: Any = field(default_factory=hashlib.sha256)  # of everything received
    reading: threading.Event = field(default_factory=threading.Event)

    def start(self, held: bool = False) -> None:
        if not held:
            self.reading.set()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        conn, _ = self.listener.accept()
        self.reading.wait()
        buffer = bytearray(65536)
        try:
            while count := conn.recv_into(buffer):
                self.arrivals.append((time.monotonic(), count))
                self.digest.update(buffer[:count])
            self.end = "eof"
        except OSError:
            self.end = "reset"
        self.ended = time.monotonic()
        conn.close()

    def received(self, since: float = 0.0) -> int:
        return sum(count for when, count in list(self.arrivals) if when >= since)


@dataclass
class Narrow:
    """A proxy with a 500 KB/s bandwidth toxic on the stream from its client to `receiver`."""

    loop: LoopThread
    proxy: TcpProxy
    receiver: Receiver

    def read_by_proxy(self) -> int:
        async def stats() -> int:
            return self.proxy.stats()["bytes_up"]

        return int(self.loop.run(stats()))

    def remove_toxics(self) -> None:
        async def clear() -> None:
            self.proxy.links.toxics.clear()

        self.loop.run(clear())


def _narrow(
    loop: LoopThread, toxic: Bandwidth | Timeout | None, held: bool = False
) -> Iterator[Narrow]:
    receiver = Receiver()
    receiver.start(held)
    links = Links(seed=1)
    if toxic is not None:
        links.toxics.add(LinkToxic(ToxicSpec(toxic, stream="upstream")))
    proxy = TcpProxy("narrow", ("127.0.0.1", 0), receiver.listener.getsockname(), links)
    loop.run(proxy.start())
    yield Narrow(loop, proxy, receiver)
    loop.run(proxy.stop())
    receiver.listener.close()


@pytest.fixture
def narrow(loop: LoopThread) -> Iterator[Narrow]:
    yield from _narrow(loop, Bandwidth(rate=RATE / 1000))


@pytest.fixture
def stalled(loop: LoopThread) -> Iterator[Narrow]:
    yield from _narrow(loop, Timeout(timeout=0))


@pytest.fixture
def plain(loop: LoopThread) -> Iterator[Narrow]:
    yield from _narrow(loop, None)


@pytest.fixture
def held(loop: LoopThread) -> Iterator[Narrow]:
    """No toxic, and a receiver that reads nothing until `receiver.reading` is set."""
    yield from _narrow(loop, None, held=True)


def test_the_backlog_limit_is_a_bandwidth_delay_product():
    assert backlog_limit([]) == backlog_limit([SlowClose(), Timeout()]) == FLOOR
    assert backlog_limit([Bandwidth(rate=1000)]) == FLOOR + int(1_000_000 * REFILL)
    both = [Latency(latency=100, jitter=20), Bandwidth(rate=1000), Bandwidth(rate=2000)]
    assert backlog_limit(both) == FLOOR + int(1_000_000 * (0.12 + REFILL))
    assert backlog_limit([Latency(latency=100)]) == FLOOR + WINDOW  # no cap: a TCP window
    assert backlog_limit([Loss(percent=1)]) == FLOOR + WINDOW
    assert backlog_limit([Latency(latency=1000), Bandwidth(rate=1e6)]) == FLOOR + WINDOW


def _dial(address: tuple[str, int]) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    sock.connect(address)
    return sock


def test_a_fast_sender_blocks_instead_of_filling_the_proxy(narrow):
    sock = _dial(narrow.proxy.listen)
    sent = 0

    def send() -> None:
        nonlocal sent
        data = memoryview(b"x" * TOTAL)
        try:
            while sent < TOTAL:
                sent += sock.send(data[sent : sent + 65536])
        except OSError:
            pass  # closed by the test

    threading.Thread(target=send, daemon=True).start()
    began = time.monotonic()
    try:
        while (elapsed := time.monotonic() - began) < 1.0:
            read = narrow.read_by_proxy()
            assert read <= RATE * elapsed + HELD, f"the proxy read {read} bytes in {elapsed:.2f}s"
            assert sent <= RATE * elapsed + HELD, f"the sender sent {sent} bytes in {elapsed:.2f}s"
            time.sleep(0.05)
        # That it flows at all; the toxic's accuracy has its own tests.
        assert narrow.receiver.received() >= RATE * 0.1, "the stream does not flow"
        assert sent < TOTAL / 2, f"{sent} of {TOTAL} bytes left the sender in 1 s"
    finally:
        sock.close()


SENDER = """
import socket, struct, sys
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, {buffer})
if {reset}:  # closing this socket, as the process dies, resets it
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
sock.connect(("127.0.0.1", {port}))
print("connected", flush=True)
sock.sendall(b"x" * {total})
print("sent", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("ending", ["eof", "reset"])
def test_a_killed_sender_takes_its_unsent_data_with_it(narrow, ending):
    """SIGKILL mid-stream: the kernel ends the sender's connection with a FIN after what it
    buffered, or with a reset when SO_LINGER is 0; either way the receiver gets about what
    the rate let through until then, plus at most the bound, never the whole transfer."""
    code = SENDER.format(
        buffer=SEND_BUFFER, reset=ending == "reset", port=narrow.proxy.listen[1], total=TOTAL
    )
    sender = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert sender.stdout is not None
        assert sender.stdout.readline() == "connected\n"
        began = time.monotonic()
        time.sleep(1.0)
        sender.kill()
        sender.wait(5)
        killed = time.monotonic()
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(5)
    receiver = narrow.receiver
    most = RATE * (killed - began) + HELD
    deadline = killed + 10.0
    while receiver.ended is None and time.monotonic() < deadline:
        got = receiver.received()
        assert got <= most, f"{got} bytes arrived, {killed - began:.2f}s of sending at the rate"
        time.sleep(0.05)
    assert receiver.ended is not None, "the receiver's stream never ended"
    assert receiver.end == ending
    assert receiver.received() <= most
    after = receiver.received(since=killed)
    if ending == "reset":
        # What the proxy held is dropped, not flushed: the reset follows within a slice or
        # two of the toxic, and the bytes after the kill are at most what the rate allows.
        assert after <= RATE * 0.2, f"{after} bytes arrived after the sender was reset"
        assert receiver.ended - killed < 2.0
    else:
        # What was on the way drains at the rate, then the stream ends.
        took = receiver.ended - killed
        assert after <= RATE * took * 1.05 + 20_000, (after, took)


def test_after_a_clean_close_the_rest_still_goes_at_the_rate(narrow):
    total = 2_000_000
    sock = _dial(narrow.proxy.listen)
    began = time.monotonic()
    sock.sendall(b"x" * total)
    sock.close()  # a clean close (FIN) with the data still on its way
    closed = time.monotonic()
    receiver = narrow.receiver
    # The sender could only finish once the rest fitted in what the proxy and kernel hold.
    assert closed - began >= (total - HELD) / RATE * 0.9, f"sent in {closed - began:.2f}s"
    wait_until(lambda: receiver.ended is not None, HELD / RATE * 2 + 10.0, what="the end")
    assert receiver.end == "eof"
    assert receiver.received() == total
    rest = receiver.received(since=closed)
    took = receiver.ended - closed
    assert rest <= HELD, f"{rest} bytes were still in the proxy when the sender closed"
    assert rest <= RATE * took * 1.05 + 20_000, f"{rest} bytes in {took:.2f}s after the close"
    assert receiver.received() <= RATE * (receiver.ended - began) * 1.05 + 20_000


def test_a_stalled_link_blocks_the_sender_and_loses_nothing(stalled):
    """`timeout` 0 holds everything: the sender blocks; removing it lets all of it through."""
    payload = os.urandom(TOTAL)
    sock = _dial(stalled.proxy.listen)
    sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
    sender.start()
    time.sleep(0.5)
    assert stalled.read_by_proxy() <= HELD
    assert sender.is_alive(), "the sender sent everything into a stalled link"
    assert stalled.receiver.received() == 0
    stalled.remove_toxics()
    sender.join(10)
    assert not sender.is_alive()
    sock.close()
    wait_until(lambda: stalled.receiver.ended is not None, 10, what="the stream to end")
    assert stalled.receiver.end == "eof"
    assert stalled.receiver.received() == TOTAL
    assert stalled.receiver.digest.hexdigest() == hashlib.sha256(payload).hexdigest()


@pytest.mark.parametrize("path", ["plain", "narrow"])
def test_a_reset_that_comes_with_data_is_passed_on(path, request):
    """Data and a reset reach the proxy in one go (its loop was busy): the receiver is reset
    too. uvloop calls a reader once more when its descriptor fails, then never again."""
    link: Narrow = request.getfixturevalue(path)
    sock = _dial(link.proxy.listen)
    sock.sendall(b"x" * 1000)
    wait_until(lambda: link.receiver.received() >= 1000, 5, what="the first 1000 bytes")
    holding = threading.Event()

    async def busy() -> None:
        holding.set()
        time.sleep(0.3)  # holds the loop while the data and the reset arrive

    link.loop.submit(busy())
    holding.wait(5)
    sock.sendall(b"y" * 100_000)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    wait_until(lambda: link.receiver.ended is not None, 5, what="the stream to end")
    assert link.receiver.end == "reset"


# What the proxy may have read and not yet handed to a stalled receiver: one pipe, its
# socket's send buffer (the kernel grows it up to net.ipv4.tcp_wmem's maximum) and the
# receiver's fixed receive buffer (doubled by the kernel).
WMEM_MAX = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
PIPE_HELD = SIZE + WMEM_MAX + 2 * RECEIVE_BUFFER + 65536
STRAIGHT_TOTAL = 8 * PIPE_HELD


def _send_in_background(link: Narrow, payload: bytes) -> tuple[socket.socket, threading.Thread]:
    sock = _dial(link.proxy.listen)

    def send() -> None:
        sock.sendall(payload)
        sock.close()  # a clean end: the receiver gets EOF after everything

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return sock, sender


def _wait_for_the_end(link: Narrow, payload: bytes) -> None:
    wait_until(lambda: link.receiver.ended is not None, 60, what="the stream to end")
    assert link.receiver.end == "eof"
    assert link.receiver.received() == len(payload)
    assert link.receiver.digest.digest() == hashlib.sha256(payload).digest()


def test_the_straight_path_holds_one_pipe_while_the_receiver_stalls(held):
    payload = os.urandom(STRAIGHT_TOTAL)
    _, sender = _send_in_background(held, payload)
    wait_until(lambda: held.read_by_proxy() >= SIZE, 10, what="the proxy to read a pipe's worth")
    watched = time.monotonic()
    while time.monotonic() - watched < 1.0:
        read = held.read_by_proxy()
        assert read <= PIPE_HELD, f"the proxy read {read} bytes its receiver did not take"
        time.sleep(0.05)
    assert sender.is_alive(), "the sender sent everything to a receiver that reads nothing"
    held.receiver.reading.set()
    sender.join(60)
    _wait_for_the_end(held, payload)


def test_a_toxic_added_while_the_straight_path_stalls_paces_all_it_reads_after(held):
    rate = 4_000_000  # bytes per second
    payload = os.urandom(4 * PIPE_HELD)
    _, sender = _send_in_background(held, payload)
    wait_until(lambda: held.read_by_proxy() >= SIZE, 10, what="the proxy to read a pipe's worth")
    read = held.read_by_proxy()  # no more: the pipe waits for the receiver

    async def add() -> None:
        toxic = Bandwidth(rate=rate / 1000)
        held.proxy.links.toxics.add(LinkToxic(ToxicSpec(toxic, stream="upstream")))

    held.loop.run(add())
    released = time.monotonic()
    held.receiver.reading.set()
    sender.join(60)
    _wait_for_the_end(held, payload)
    took = held.receiver.ended - released
    paced = len(payload) - read
    assert took >= paced / rate * 0.9, f"{paced} bytes after the toxic came in {took:.2f}s"
