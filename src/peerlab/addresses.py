"""Addresses for nodes, leased in blocks so concurrent runs never collide.

On the local backend every node gets two addresses in 127.0.0.0/8 (`AddressBlock`): a
public one (what peers dial; the fabric's proxies listen there) and a bind one (where the
node's process listens and binds its outgoing sockets). On backends that give each node a
network namespace, a run leases a block of a dedicated range (`NetworkBlock`, default
198.18.0.0/15, the range set aside for benchmarking networks): the host's address on the
block, then one real address per node. A run leases a block by holding an flock on a file:
the kernel drops the lock when the holder dies, so a SIGKILLed runner never leaks its block.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import time
from collections.abc import Callable
from typing import IO

import psutil

from peerlab.errors import PeerlabError, UsageError
from peerlab.reaper import runtime_dir

BLOCKS = 100
NODES_PER_BLOCK = 250 * 250
_PUBLIC_BASE = 10
_BIND_BASE = 130


class AddressBlock:
    """A leased block: node index -> (public, bind) addresses."""

    def __init__(self, block: int, handle: IO[bytes]) -> None:
        self.block = block
        self._handle = handle

    @classmethod
    def lease(cls, prefer: int | None = None, wait: float = 0.0) -> AddressBlock:
        """Lease a free block; `prefer` asks for one block (waiting up to `wait` seconds)."""
        block, handle = _lease("block", BLOCKS, prefer, wait)
        return cls(block, handle)

    def _address(self, base: int, index: int) -> str:
        if not 0 <= index < NODES_PER_BLOCK:
            raise PeerlabError(f"node index {index} is beyond {NODES_PER_BLOCK} nodes per run")
        return f"127.{base + self.block}.{index // 250}.{index % 250 + 2}"

    def public(self, index: int) -> str:
        return self._address(_PUBLIC_BASE, index)

    def bind(self, index: int) -> str:
        return self._address(_BIND_BASE, index)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def _lease(
    prefix: str,
    count: int,
    prefer: int | None,
    wait: float,
    usable: Callable[[int], bool] = lambda _: True,
) -> tuple[int, IO[bytes]]:
    """Lock one of `count` lease files named `prefix-N.lock`: `prefer`'s (waiting up to
    `wait` seconds for it), or the first free one that is `usable`."""
    leases = runtime_dir() / "leases"
    leases.mkdir(exist_ok=True)
    if prefer is not None:
        deadline = time.monotonic() + wait
        while True:
            handle = open(leases / f"{prefix}-{prefer}.lock", "wb")  # noqa: SIM115
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return prefer, handle
            except BlockingIOError:
                handle.close()
            if time.monotonic() > deadline:
                raise PeerlabError(f"address block {prefer} is still leased by another run")
            time.sleep(0.05)
    start = os.getpid() % count
    for offset in range(count):
        block = (start + offset) % count
        if not usable(block):
            continue
        handle = open(leases / f"{prefix}-{block}.lock", "wb")  # noqa: SIM115 - held for the run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return block, handle
    raise PeerlabError(
        f"all {count} address blocks ({prefix}) are leased by running environments",
        hint="stop some with `peerlab down --all` or wait for test runs to finish",
    )


DEFAULT_RANGE = "198.18.0.0/15"
DEFAULT_BLOCK_PREFIX = 21  # 2,046 nodes per run, 64 runs side by side in the default range
RANGE_VARIABLE = "PEERLAB_NETNS_RANGE"
BLOCK_VARIABLE = "PEERLAB_NETNS_BLOCK"


def dedicated_range() -> tuple[ipaddress.IPv4Network, int]:
    """The range that namespaced nodes take their addresses from, and the prefix length of
    one run's block: `PEERLAB_NETNS_RANGE` (default 198.18.0.0/15) and `PEERLAB_NETNS_BLOCK`
    (default /21, or the whole range when it is smaller)."""
    raw = os.environ.get(RANGE_VARIABLE, DEFAULT_RANGE)
    try:
        network = ipaddress.IPv4Network(raw)
    except ValueError:
        raise UsageError(
            f"{RANGE_VARIABLE}={raw!r} is not an IPv4 network",
            field=RANGE_VARIABLE,
            hint="give a range no machine network uses, e.g. 198.18.0.0/15",
        ) from None
    raw_block = os.environ.get(BLOCK_VARIABLE, "").lstrip("/")
    try:
        block = int(raw_block) if raw_block else max(DEFAULT_BLOCK_PREFIX, network.prefixlen)
    except ValueError:
        block = -1
    if not network.prefixlen <= block <= 29:
        raise UsageError(
            f"{BLOCK_VARIABLE}={raw_block!r} is not a prefix length from {network.prefixlen} to 29",
            field=BLOCK_VARIABLE,
            hint="one run's block, e.g. 21 (2,046 nodes)",
        )
    return network, block


class NetworkBlock:
    """A leased block of the dedicated range: the host's address, then one per node."""

    def __init__(self, network: ipaddress.IPv4Network, number: int, handle: IO[bytes]) -> None:
        self.network = network
        self.number = number
        self._handle = handle

    @classmethod
    def lease(cls, prefer: str | None = None, wait: float = 0.0) -> NetworkBlock:
        """Lease a free block (`prefer`: that one, e.g. for an adopted network). A block
        that an address of this machine already falls in is never leased."""
        whole, prefix = dedicated_range()
        blocks = list(whole.subnets(new_prefix=prefix))
        taken = _machine_addresses()
        key = f"netns-{whole.network_address}-{whole.prefixlen}-{prefix}"

        def usable(number: int) -> bool:
            return not any(address in blocks[number] for address in taken)

        wanted = None
        if prefer is not None:
            wanted = blocks.index(ipaddress.IPv4Network(prefer))
        number, handle = _lease(key, len(blocks), wanted, wait, usable)
        return cls(blocks[number], number, handle)

    @property
    def host(self) -> str:
        """The host's address on this block (the nodes' gateway; the harness dials from it)."""
        return str(self.network[1])

    def node(self, index: int) -> str:
        if not 0 <= index < self.network.num_addresses - 3:
            raise PeerlabError(
                f"node index {index} is beyond the {self.network.num_addresses - 3} nodes of "
                f"address block {self.network}",
                hint=f"lease larger blocks: {BLOCK_VARIABLE}={self.network.prefixlen - 1}",
            )
        return str(self.network[index + 2])

    def release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def _machine_addresses() -> list[ipaddress.IPv4Address]:
    """IPv4 addresses on this machine's interfaces, but those of peerlab's own links (a
    run's host address sits on every veth of its nodes, named `pl...`)."""
    found = []
    for name, addresses in psutil.net_if_addrs().items():
        if name.startswith("pl"):
            continue
        for address in addresses:
            with contextlib.suppress(ValueError):
                found.append(ipaddress.IPv4Address(address.address))
    return found
