"""Which node owns a socket: searched among the environment's own node process trees only.

A connection (or UDP flow) that reaches a node's proxy from an address that is no node's
bind address (etcd dials from 127.0.0.1) is named by the process that holds its socket:

1. the kernel finds the socket by its 4-tuple with one exact sock_diag query (a netlink
   request of 72 bytes, below; /proc/net/tcp|udp when sock_diag cannot answer) and gives
   its inode;
2. the inode is looked for among the open files (`/proc/<pid>/fd`) of each node's process
   tree, which is cached and walked again when a node's root pid changes or on a miss.

The answer is positive either way: a node, or "held by a live process that is in no
node's tree" (a client: the test harness, the CLI). A socket that is gone or orphaned
(closed by its process, inode 0) has no owner to find: `None`, and the fabric refuses the
connection rather than guess. The machine's process table is never walked, so a lookup
costs a netlink round trip and a few hundred `readlink`s, however loaded the machine is.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Address = tuple[str, int]
Request = tuple[str, Address, Address]  # protocol, source, destination
PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
ALL_STATES = 0xFFFFFFFF
NO_COOKIE = 0xFFFFFFFF
# sock_diag (linux/sock_diag.h, linux/inet_diag.h): the kernel's stable netlink ABI. Written
# out here because pyroute2's synchronous socket runs an asyncio loop per request: 1.3 ms
# a lookup against about 30 us for the request itself (measured on the development VM).
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
UNSUPPORTED = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS, errno.EPROTONOSUPPORT)
HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
REQUEST = struct.Struct("=BBBBI2s2s16s16sIII")  # inet_diag_req_v2 (ports big-endian)
MESSAGE = struct.Struct("=BBBB2s2s16s16sIIIIIIII")  # inet_diag_msg, inode last


class OwnerLookupError(Exception):
    """The lookup could not be done now (a /proc or netlink error); it may work again."""


@dataclass(frozen=True)
class Owner:
    """Who holds a socket: `node` (None: a process that is no node's) and its pid if known."""

    node: str | None
    pid: int | None = None


def _ip(address: str) -> bytes:
    return socket.inet_aton(address) + bytes(12)


def diag_inode(diag: socket.socket, protocol: str, local: Address, remote: Address) -> int | None:
    """The inode of the socket at `local` connected (TCP) or sending (UDP) to `remote`, by
    one exact SOCK_DIAG_BY_FAMILY request; None if there is none (0 if orphaned)."""
    body = REQUEST.pack(
        socket.AF_INET,
        PROTOCOLS[protocol],
        0,
        0,
        ALL_STATES,
        local[1].to_bytes(2, "big"),
        remote[1].to_bytes(2, "big"),
        _ip(local[0]),
        _ip(remote[0]),
        0,
        NO_COOKIE,
        NO_COOKIE,
    )
    diag.send(HEADER.pack(HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0) + body)
    reply = diag.recv(65536)
    _, kind, _, _, _ = HEADER.unpack_from(reply)
    if kind == NLMSG_ERROR:
        code = -struct.unpack_from("=i", reply, HEADER.size)[0]
        if code == errno.ENOENT:
            return None
        raise OSError(code, os.strerror(code))
    fields = MESSAGE.unpack_from(reply, HEADER.size)
    return int(fields[-1])


def _hex(address: Address) -> str:
    return f"{struct.unpack('<I', socket.inet_aton(address[0]))[0]:08X}:{address[1]:04X}"


def _proc_net_inode(protocol: str, source: Address, destination: Address) -> int | None:
    """The inode of the socket at `source` (TCP: connected to `destination`), from /proc/net."""
    local, remote = _hex(source), _hex(destination)
    any_ip = _hex(("0.0.0.0", source[1]))
    try:
        with open(f"/proc/net/{protocol}", encoding="ascii") as table:
            next(table)
            for line in table:
                fields = line.split()
                if (fields[1] == local or fields[1] == any_ip) and (
                    protocol == "udp" or fields[2] == remote
                ):
                    return int(fields[9])
    except OSError as exc:
        raise OwnerLookupError(f"/proc/net/{protocol}: {exc}") from exc
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        with (
            contextlib.suppress(OSError),
            open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle,
        ):
            found += [int(child) for child in handle.read().split()]
    return found


def process_tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc/<pid>/task/*/children (no table walk)."""
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        if pid in tree:
            continue
        tree.append(pid)
        pending += _children(pid)
    return tree


def socket_inodes(pid: int) -> Iterable[int]:
    """The inodes of the sockets `pid` has open (none if it is gone)."""
    directory = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(directory)
    except OSError:
        return
    for fd in fds:
        try:
            target = os.readlink(f"{directory}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            yield int(target[8:-1])


class SocketOwners:
    """Finds the node that holds a socket, among the trees of `roots()` (node -> root pid).

    Thread-safe; lookups are serialized (they run on one executor thread in the fabric).
    """

    def __init__(self, roots: Callable[[], dict[str, int]]) -> None:
        self._roots = roots
        self._lock = threading.Lock()
        self._trees: dict[str, tuple[int, list[int]]] = {}  # node -> (root, tree)
        self._diag: socket.socket | None = None
        self._diag_failed = False

    def close(self) -> None:
        if self._diag is not None:
            with contextlib.suppress(OSError):
                self._diag.close()
            self._diag = None

    def owner(self, protocol: str, source: Address, destination: Address) -> Owner | None:
        """Who holds the socket that sent from `source` to `destination` (a proxy's address).

        None: no live process holds it (it is gone, or closed by its process). Raises
        OwnerLookupError when /proc or netlink failed and a retry may succeed.
        """
        return self.owners([(protocol, source, destination)])[0]

    def owners(self, requests: Sequence[Request]) -> list[Owner | None]:
        """`owner` for many sockets at once, with one pass over the node trees' files (a
        node that redials a cut-off peer opens many connections in a burst)."""
        with self._lock:
            inodes = [self._inode(*request) for request in requests]
            found = self._search({inode for inode in inodes if inode})
            answers: list[Owner | None] = []
            for request, inode in zip(requests, inodes, strict=True):
                if not inode:
                    answers.append(None)
                elif inode in found:
                    answers.append(found[inode])
                elif self._inode(*request) == inode:
                    # No node holds it, and some process still does: not a node.
                    answers.append(Owner(None))
                else:
                    answers.append(None)
            return answers

    # ------------------------------------------------------------------ the socket

    def _inode(self, protocol: str, source: Address, destination: Address) -> int | None:
        if not self._diag_failed:
            # TCP finds a socket by its own (source) and its peer's address; UDP by the
            # datagram it would receive, so there the two are the other way round (the
            # kernel's udp_dump_one keeps them swapped "for historical reasons").
            local, remote = (source, destination) if protocol == "tcp" else (destination, source)
            try:
                if self._diag is None:
                    self._diag = socket.socket(
                        socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG
                    )
                inode = diag_inode(self._diag, protocol, local, remote)
                if inode is not None:
                    return inode
                # "No such socket" is also what a kernel without the protocol's diag
                # module answers: a miss is rare, so /proc/net confirms it.
            except OSError as exc:
                # Not supported here (no sock_diag, no udp_diag): /proc/net answers the
                # same question, more slowly. Anything else may pass: try again later.
                self._diag_failed = exc.errno in UNSUPPORTED
                self.close()
                if not self._diag_failed:
                    raise OwnerLookupError(f"sock_diag: {exc}") from exc
        return _proc_net_inode(protocol, source, destination)

    # ------------------------------------------------------------------ the node trees

    def _search(self, wanted: set[int]) -> dict[int, Owner]:
        """Which node process holds each inode in `wanted`; the trees are walked again for
        inodes not found in the cached ones (a process a node started since)."""
        found: dict[int, Owner] = {}
        if not wanted:
            return found
        scanned: set[int] = set()
        roots = self._roots()
        for gone in set(self._trees) - set(roots):
            del self._trees[gone]
        for refresh in (False, True):
            for node, root in roots.items():
                cached = self._trees.get(node)
                if refresh or cached is None or cached[0] != root:
                    cached = self._trees[node] = (root, process_tree(root))
                for pid in cached[1]:
                    if pid in scanned:
                        continue
                    scanned.add(pid)
                    for inode in socket_inodes(pid):
                        if inode in wanted:
                            found[inode] = Owner(node, pid)
                    if len(found) == len(wanted):
                        return found
        return found
