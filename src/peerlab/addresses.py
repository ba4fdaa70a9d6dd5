"""Loopback addresses for nodes, leased in blocks so concurrent runs never collide.

Every node gets two addresses in 127.0.0.0/8: a public one (what peers dial; the fabric's
proxies listen there) and a bind one (where the node's process listens and binds its
outgoing sockets). A run leases a block by holding an flock on a file: the kernel drops the
lock when the holder dies, so a SIGKILLed runner never leaks its block.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import IO

from peerlab.errors import PeerlabError
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
        leases = runtime_dir() / "leases"
        leases.mkdir(exist_ok=True)
        if prefer is not None:
            deadline = time.monotonic() + wait
            while True:
                handle = open(leases / f"block-{prefer}.lock", "wb")  # noqa: SIM115
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return cls(prefer, handle)
                except BlockingIOError:
                    handle.close()
                if time.monotonic() > deadline:
                    raise PeerlabError(f"address block {prefer} is still leased by another run")
                time.sleep(0.05)
        start = os.getpid() % BLOCKS
        for offset in range(BLOCKS):
            block = (start + offset) % BLOCKS
            handle = open(leases / f"block-{block}.lock", "wb")  # noqa: SIM115 - held for the run
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            return cls(block, handle)
        raise PeerlabError(
            f"all {BLOCKS} loopback address blocks are leased by running environments",
            hint="stop some with `peerlab down --all` or wait for test runs to finish",
        )

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
