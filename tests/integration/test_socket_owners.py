"""Socket owners: found among the node process trees only, positively, or not at all."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from peerlab.backends.owners import Owner, SocketOwners, process_tree

# A "node" that dials the listener from 127.0.0.1 (as etcd does), optionally from a child
# process of its own, prints its local address, and waits to be killed.
DIALER = textwrap.dedent(
    """
    import os, socket, sys, time
    host, port, protocol, nested = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if nested == "yes" and os.fork() != 0:
        time.sleep(60)
        sys.exit()
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    if protocol == "tcp":
        sock.connect((host, port))
    else:
        sock.sendto(b"hello", (host, port))
    print(os.getpid(), sock.getsockname()[1], flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, socket.socket]]:
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    yield tcp, udp
    tcp.close()
    udp.close()


@pytest.fixture
def dial(listener: tuple[socket.socket, socket.socket]) -> Iterator:
    started: list[subprocess.Popen[str]] = []

    def run(protocol: str, nested: bool = False) -> tuple[subprocess.Popen[str], int, int]:
        target = listener[0 if protocol == "tcp" else 1].getsockname()
        process = subprocess.Popen(
            [sys.executable, "-c", DIALER, *map(str, target), protocol, "yes" if nested else "no"],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(process)
        assert process.stdout is not None
        pid, port = map(int, process.stdout.readline().split())
        return process, pid, port

    yield run
    for process in started:
        process.kill()
        process.wait()


def test_a_node_s_tcp_socket_is_found_by_owner(listener, dial) -> None:
    process, pid, port = dial("tcp")
    owners = SocketOwners(lambda: {"A": process.pid})
    assert owners.owner("tcp", ("127.0.0.1", port), listener[0].getsockname()) == Owner("A", pid)


def test_a_node_s_child_is_part_of_its_tree(listener, dial) -> None:
    process, pid, port = dial("udp", nested=True)
    assert pid in process_tree(process.pid) and pid != process.pid
    owners = SocketOwners(lambda: {"B": process.pid})
    assert owners.owner("udp", ("127.0.0.1", port), listener[1].getsockname()) == Owner("B", pid)


def test_a_socket_no_node_holds_is_a_client(listener) -> None:
    mine = socket.create_connection(listener[0].getsockname())
    owners = SocketOwners(dict)
    assert owners.owner("tcp", mine.getsockname(), mine.getpeername()) == Owner(None)
    mine.close()


def test_a_closed_socket_has_no_owner(listener) -> None:
    gone = socket.create_connection(listener[0].getsockname())
    local, remote = gone.getsockname(), gone.getpeername()
    gone.close()  # orphaned (FIN_WAIT) or gone: nobody to name
    assert SocketOwners(dict).owner("tcp", local, remote) is None


def test_a_restarted_node_is_searched_under_its_new_pid(listener, dial) -> None:
    first, first_pid, first_port = dial("tcp")
    roots = {"A": first.pid}
    owners = SocketOwners(lambda: dict(roots))
    target = listener[0].getsockname()
    assert owners.owner("tcp", ("127.0.0.1", first_port), target) == Owner("A", first_pid)
    second, pid, port = dial("tcp")
    roots["A"] = second.pid  # as after `restart`: the cached tree is replaced
    assert owners.owner("tcp", ("127.0.0.1", port), listener[0].getsockname()) == Owner("A", pid)


def test_without_sock_diag_proc_net_gives_the_same_answers(listener, dial) -> None:
    process, pid, port = dial("udp")
    owners = SocketOwners(lambda: {"C": process.pid})
    owners._diag_failed = True  # as on a kernel without sock_diag
    assert owners.owner("udp", ("127.0.0.1", port), listener[1].getsockname()) == Owner("C", pid)
    mine = socket.create_connection(listener[0].getsockname())
    assert owners.owner("tcp", mine.getsockname(), mine.getpeername()) == Owner(None)
    mine.close()
