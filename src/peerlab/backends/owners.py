"""Which node owns a socket: searched among the environment's own node process trees only.

A connection (or UDP flow) that reaches a node's proxy from an address that is no node's
bind address (etcd dials from 127.0.0.1) is named by the process that holds its socket:

1. the kernel finds the socket by its 4-tuple with one exact sock_diag query (pyroute2's
   netlink messages; /proc/net/tcp|udp when sock_diag cannot answer) and gives its inode;
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pyroute2 import DiagSocket
from pyroute2.netlink import NLM_F_REQUEST
from pyroute2.netlink.diag import SOCK_DIAG_BY_FAMILY, inet_diag_req
from pyroute2.netlink.exceptions import NetlinkError

Address = tuple[str, int]
PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
ALL_STATES = 0xFFFFFFFF
NO_COOKIE = 0xFFFFFFFFFFFFFFFF


class OwnerLookupError(Exception):
    """The lookup could not be done now (a /proc or netlink error); it may work again."""


@dataclass(frozen=True)
class Owner:
    """Who holds a socket: `node` (None: a process that is no node's) and its pid if known."""

    node: str | None
    pid: int | None = None


def _ip(address: str) -> tuple[int, int, int, int]:
    return (struct.unpack(">I", socket.inet_aton(address))[0], 0, 0, 0)


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
        self._diag: DiagSocket | None = None
        self._diag_failed = False

    def close(self) -> None:
        with self._lock:
            if self._diag is not None:
                with contextlib.suppress(Exception):
                    self._diag.close()
                self._diag = None

    def owner(self, protocol: str, source: Address, destination: Address) -> Owner | None:
        """Who holds the socket that sent from `source` to `destination` (a proxy's address).

        None: no live process holds it (it is gone, or closed by its process). Raises
        OwnerLookupError when /proc or netlink failed and a retry may succeed.
        """
        with self._lock:
            inode = self._inode(protocol, source, destination)
            if not inode:
                return None
            found = self._search(inode, refresh=False) or self._search(inode, refresh=True)
            if found is not None:
                return found
            # No node holds it. That is a positive answer only if some process still does.
            if self._inode(protocol, source, destination) != inode:
                return None
            return Owner(None)

    # ------------------------------------------------------------------ the socket

    def _inode(self, protocol: str, source: Address, destination: Address) -> int | None:
        if not self._diag_failed:
            try:
                return self._diag_inode(protocol, source, destination)
            except NetlinkError as exc:
                if exc.code == errno.ENOENT:
                    return None
                # Not supported here (no udp_diag, say): /proc/net answers the same question.
                self._diag_failed = exc.code in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)
                if not self._diag_failed:
                    raise OwnerLookupError(f"sock_diag: {exc}") from exc
            except OSError as exc:
                self._diag_failed = True
                self._diag = None
                raise OwnerLookupError(f"sock_diag: {exc}") from exc
        return _proc_net_inode(protocol, source, destination)

    def _diag_inode(self, protocol: str, source: Address, destination: Address) -> int | None:
        if self._diag is None:
            diag = DiagSocket()
            diag.bind()
            self._diag = diag
        request = inet_diag_req()
        request["sdiag_family"] = socket.AF_INET
        request["sdiag_protocol"] = PROTOCOLS[protocol]
        request["idiag_states"] = ALL_STATES
        request["idiag_cookie"] = NO_COOKIE
        # TCP looks the socket up by its own (src) and its peer's (dst) address; UDP by the
        # datagram it would receive, so there the two are the other way round (the kernel's
        # udp_dump_one keeps them swapped "for historical reasons").
        local, remote = (source, destination) if protocol == "tcp" else (destination, source)
        request["idiag_src"], request["idiag_sport"] = _ip(local[0]), local[1]
        request["idiag_dst"], request["idiag_dport"] = _ip(remote[0]), remote[1]
        for message in self._diag.nlm_request(request, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST):
            # A UDP socket bound to 0.0.0.0 is reported so: the port is what must match.
            if message["idiag_sport"] == source[1]:
                return int(message["idiag_inode"])
        return None

    # ------------------------------------------------------------------ the node trees

    def _search(self, inode: int, refresh: bool) -> Owner | None:
        roots = self._roots()
        for node, root in roots.items():
            cached = self._trees.get(node)
            if refresh or cached is None or cached[0] != root:
                cached = self._trees[node] = (root, process_tree(root))
            for pid in cached[1]:
                if inode in socket_inodes(pid):
                    return Owner(node, pid)
        for gone in set(self._trees) - set(roots):
            del self._trees[gone]
        return None
