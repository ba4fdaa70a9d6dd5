"""The proxies' busy polling (peerlab.fabric.spin): it polls on after traffic while a CPU is
idle, stops by itself when traffic pauses, and never spins on a busy machine; meanwhile its
loop follows the traffic to the CPU it comes in on, and never stays pinned there."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from peerlab.aio import new_event_loop
from peerlab.fabric import spin
from peerlab.fabric.links import Links
from peerlab.fabric.spin import Spinner
from peerlab.fabric.tcp import TcpProxy


class FakeStat:
    """/proc/stat's first line, advancing by `idle` of every 100 ticks at each reading."""

    def __init__(self, idle: int) -> None:
        self.idle_share = idle
        self.ticks = (0, 0)
        self.readings = 0

    def __call__(self) -> tuple[int, int]:
        self.readings += 1
        self.ticks = (self.ticks[0] + self.idle_share, self.ticks[1] + 100)
        return self.ticks


def _spin_until_done(spinner: Spinner, pokes: list[float]) -> float:
    """Run a loop that pokes `spinner` at each of `pokes` (seconds from the start); return
    how long after the last poke its spin ended, on the spinner's own clock (the loop's
    clock is another one: comparing the two would be off by their rounding)."""
    loop = new_event_loop()
    ended = {"at": 0.0}

    async def main() -> None:
        began = loop.time()
        for at in pokes:
            await asyncio.sleep(max(0.0, began + at - loop.time()))
            spinner.poke(loop)
        while spinner.spinning:
            await asyncio.sleep(0)
        ended["at"] = time.perf_counter() - spinner.last_poke

    try:
        loop.run_until_complete(asyncio.wait_for(main(), 30))
    finally:
        loop.close()
    return ended["at"]


def test_an_idle_machine_keeps_the_loop_polling_until_traffic_pauses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spin, "_idle_ticks", FakeStat(idle=100))
    monkeypatch.setattr(spin, "CHECK", 60.0)  # no new reading ends the spin meanwhile
    spinner = Spinner(window=0.3)
    after = _spin_until_done(spinner, [0.0, 0.05])
    assert spinner.spins == 1  # the second poke came while it still spun: one spin
    assert spinner.passes > 1  # it polled again and again instead of sleeping
    assert after >= 0.3  # ... until a whole window passed after the last poke
    assert not spinner.spinning


def test_a_busy_machine_never_spins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spin, "_idle_ticks", FakeStat(idle=10))  # 0.2 of 2 CPUs idle
    spinner = Spinner(window=0.02)
    spinner.cpus = 2
    _spin_until_done(spinner, [0.0, 0.01])
    assert (spinner.spins, spinner.passes, spinner.allowed) == (0, 0, False)


def test_without_proc_stat_it_never_spins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spin, "_idle_ticks", lambda: None)
    spinner = Spinner(window=0.02)
    _spin_until_done(spinner, [0.0])
    assert spinner.spins == 0


def test_its_own_spinning_counts_as_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    # Half a CPU idle, and the spinner itself spun half the time: 1 CPU to spare >= 0.75.
    stat = FakeStat(idle=25)
    monkeypatch.setattr(spin, "_idle_ticks", stat)
    spinner = Spinner()
    spinner.cpus = 2
    spinner._read(10.0)
    spinner._spun = 0.5 * spin.CHECK
    spinner._read(10.0 + spin.CHECK)
    assert spinner.allowed
    spinner._read(10.0 + 2 * spin.CHECK)  # the same idle share, but no spinning of its own
    assert not spinner.allowed
    assert stat.readings == 4


def test_the_real_machine_is_read() -> None:
    ticks = spin._idle_ticks()
    if not os.path.exists(spin.STAT):
        assert ticks is None
        return
    assert ticks is not None
    idle, total = ticks
    assert 0 <= idle <= total and total > 0


CPUS = sorted(os.sched_getaffinity(0))
several_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="following needs two CPUs to choose from")


def _running_on() -> int:
    """The CPU this thread runs on now (field 39 of /proc/thread-self/stat)."""
    with open("/proc/thread-self/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[36])


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A TCP connection on loopback: (sending end, receiving end)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = socket.create_connection(listener.getsockname(), timeout=30)
        receiver, _ = listener.accept()
    with sender, receiver:
        yield sender, receiver


def _send_from(cpu: int, sock: socket.socket, data: bytes) -> None:
    """Send `data` on `sock` from a thread that can only run on `cpu`."""

    def send() -> None:
        os.sched_setaffinity(0, {cpu})
        sock.sendall(data)

    thread = threading.Thread(target=send)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()


class Moves:
    """os.sched_setaffinity, recording each mask the creating thread set on itself and the
    CPU it then ran on (a sender thread's own calls are not recorded)."""

    def __init__(self) -> None:
        self.real = os.sched_setaffinity
        self.thread = threading.get_ident()
        self.calls: list[tuple[set[int], int]] = []

    def __call__(self, pid: int, cpus: object) -> None:
        self.real(pid, cpus)  # type: ignore[arg-type]
        if threading.get_ident() == self.thread:
            self.calls.append((set(os.sched_getaffinity(pid)), _running_on()))


def _placing(monkeypatch: pytest.MonkeyPatch, idle: int) -> tuple[Spinner, Moves]:
    """A spinner that has read the machine once (`idle` of every 100 ticks idle, 2 CPUs),
    and the recorder of the moves it makes."""
    monkeypatch.setattr(spin, "_idle_ticks", FakeStat(idle=idle))
    moves = Moves()
    monkeypatch.setattr(spin.os, "sched_setaffinity", moves)
    spinner = Spinner()
    spinner.cpus = 2
    spinner._read(time.perf_counter())
    return spinner, moves


def _place_after(
    place: Callable[[socket.socket], None],
    spinner: Spinner,
    connection: tuple[socket.socket, socket.socket],
    cpu: int,
    data: bytes,
) -> None:
    """Send `data` from `cpu`, wait out the gap since the last move, then `place` the loop
    by the receiving end, which must then read `data`."""
    sender, receiver = connection
    _send_from(cpu, sender, data)
    deadline = time.perf_counter() + 30
    while time.perf_counter() - spinner._followed < spin.FOLLOW_GAP:
        assert time.perf_counter() < deadline
    place(receiver)
    assert receiver.recv(100) == data


@several_cpus
def test_the_loop_moves_to_the_cpu_its_traffic_came_in_on_and_stays_free(
    monkeypatch: pytest.MonkeyPatch, connection: tuple[socket.socket, socket.socket]
) -> None:
    spinner, moves = _placing(monkeypatch, idle=100)
    assert spinner.allowed
    home = set(os.sched_getaffinity(0))
    for number, cpu in enumerate([CPUS[-1], CPUS[0], CPUS[-1]]):
        _place_after(spinner.follow, spinner, connection, cpu, b"message %d" % number)
        # Pinned to the sender's CPU, it ran there; then it got all its CPUs back at once.
        assert moves.calls[-2] == ({cpu}, cpu)
        assert moves.calls[-1][0] == home
        assert spinner.follows == number + 1
    assert set(os.sched_getaffinity(0)) == home


@several_cpus
@pytest.mark.parametrize("idle", [100, 10])
def test_a_bulk_reader_moves_off_the_cpu_its_stream_comes_in_on_idle_or_busy(
    monkeypatch: pytest.MonkeyPatch, connection: tuple[socket.socket, socket.socket], idle: int
) -> None:
    spinner, moves = _placing(monkeypatch, idle)
    assert spinner.allowed == (idle == 100)
    home = set(os.sched_getaffinity(0))
    for number, cpu in enumerate([CPUS[-1], CPUS[0]]):
        _place_after(spinner.sidestep, spinner, connection, cpu, b"bulk %d" % number)
        # Anywhere but the sender's CPU; then all its CPUs back at once.
        assert moves.calls[-2] == (home - {cpu}, moves.calls[-2][1])
        assert moves.calls[-2][1] != cpu
        assert moves.calls[-1][0] == home
        assert (spinner.sidesteps, spinner.follows) == (number + 1, 0)
    assert set(os.sched_getaffinity(0)) == home


@several_cpus
def test_it_moves_at_most_once_per_gap(
    monkeypatch: pytest.MonkeyPatch, connection: tuple[socket.socket, socket.socket]
) -> None:
    monkeypatch.setattr(spin, "_idle_ticks", FakeStat(idle=100))
    monkeypatch.setattr(spin, "FOLLOW_GAP", 60.0)
    sender, receiver = connection
    spinner = Spinner()
    spinner._read(time.perf_counter())
    _send_from(CPUS[0], sender, b"x")
    spinner.follow(receiver)
    _send_from(CPUS[-1], sender, b"y")
    spinner.follow(receiver)
    assert spinner.follows == 1


@several_cpus
def test_a_busy_machine_never_moves_the_loop(
    monkeypatch: pytest.MonkeyPatch, connection: tuple[socket.socket, socket.socket]
) -> None:
    spinner, moves = _placing(monkeypatch, idle=10)
    _place_after(spinner.follow, spinner, connection, CPUS[-1], b"x")
    assert (spinner.allowed, spinner.follows, moves.calls) == (False, 0, [])


@several_cpus
def test_a_thread_limited_to_one_cpu_stays_within_its_limit(
    monkeypatch: pytest.MonkeyPatch, connection: tuple[socket.socket, socket.socket]
) -> None:
    monkeypatch.setattr(spin, "_idle_ticks", FakeStat(idle=100))
    sender, receiver = connection
    _send_from(CPUS[-1], sender, b"x")
    seen: dict[str, object] = {}

    def limited() -> None:  # as under `taskset -c CPU`: the traffic came in on another CPU
        os.sched_setaffinity(0, {CPUS[0]})
        spinner = Spinner()
        spinner._read(time.perf_counter())
        spinner.follow(receiver)
        seen["follows"], seen["cpus"] = spinner.follows, os.sched_getaffinity(0)

    thread = threading.Thread(target=limited)
    thread.start()
    thread.join(30)
    assert seen == {"follows": 0, "cpus": {CPUS[0]}}


@pytest.fixture
def echo() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
    listener.close()
    thread.join(10)


def test_a_spinning_proxy_carries_every_byte_in_order(
    monkeypatch: pytest.MonkeyPatch, echo: int
) -> None:
    monkeypatch.setattr(spin, "_idle_ticks", FakeStat(idle=100))
    links = Links(seed=1)
    loop = new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    proxy = TcpProxy("spin", ("127.0.0.1", 0), ("127.0.0.1", echo), links)
    loop_thread = thread.native_id
    assert loop_thread is not None
    try:
        asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(30)
        with socket.create_connection(("127.0.0.1", proxy.listen[1]), timeout=30) as sock:
            received = hashlib.sha256()
            sent = hashlib.sha256()
            for number in range(300):
                message = os.urandom(1 + number * 7 % 3000)
                sent.update(message)
                sock.sendall(message)
                got = 0
                while got < len(message):
                    piece = sock.recv(65536)
                    assert piece, "the proxy closed the connection"
                    received.update(piece)
                    got += len(piece)
            assert received.hexdigest() == sent.hexdigest()
        assert links.spinner.spins >= 1  # the idle machine let it spin
        assert links.spinner.passes > links.spinner.spins
        if len(CPUS) > 1:  # it followed the traffic, and is not left pinned anywhere
            assert links.spinner.follows >= 1
            assert os.sched_getaffinity(loop_thread) == set(CPUS)
        with socket.create_connection(("127.0.0.1", proxy.listen[1]), timeout=30) as sock:
            block = os.urandom(1 << 20)  # a bulk stream: spliced, the loop steps aside
            digest = hashlib.sha256()
            got = 0
            for count in range(1, 9):
                sock.sendall(block)
                while got < len(block) * count:
                    piece = sock.recv(1 << 20)
                    assert piece, "the proxy closed the connection"
                    digest.update(piece)
                    got += len(piece)
            assert digest.hexdigest() == hashlib.sha256(block * 8).hexdigest()
        if len(CPUS) > 1:
            assert links.spinner.sidesteps >= 1
            assert os.sched_getaffinity(loop_thread) == set(CPUS)
    finally:
        asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
