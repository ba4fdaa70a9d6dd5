"""A register workload: reads, writes and compare-and-sets on a few keys at a time, seeded.

Every write puts a value never written before, so a read names the one write it saw and
the linearizability checker can prune its search. A compare-and-set expects the value its
process last saw on that key, so it succeeds often enough to matter. After
`ops_per_key` operations a key is retired and a fresh one takes its place: the checker's
work grows steeply with the length of one key's history, and many short ones are cheap.

A process whose operation ended in doubt (a timeout: the write may still land) is not
reused; the worker carries on as a new process, as Jepsen does, so each process has at
most one operation in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from peerlab.seed import derive_rng

OpName = Literal["read", "write", "cas"]


class RegisterClient(Protocol):
    """What a system's client offers the workload; each call records itself in the history."""

    async def read(self, key: str) -> Any: ...

    async def write(self, key: str, value: Any) -> Any: ...

    async def cas(self, key: str, expected: Any, new: Any) -> bool: ...


@dataclass(frozen=True)
class Op:
    """One operation to run: `value` is the write's value or the cas's (expected, new)."""

    f: OpName
    key: str
    value: Any = None


@dataclass
class RegisterWorkload:
    """The seeded choice of operations; `next_op` for a process, `observe` what it saw."""

    seed: int
    keys: int = 3
    ops_per_key: int = 150
    read_share: float = 0.5
    write_share: float = 0.25
    label: str = "register"
    key_prefix: str = "register/"
    _active: list[str] = field(default_factory=list, init=False)
    _uses: Counter[str] = field(default_factory=Counter, init=False)
    _next_key: itertools.count[int] = field(default_factory=itertools.count, init=False)
    _next_value: itertools.count[int] = field(
        default_factory=lambda: itertools.count(1), init=False
    )
    _seen: dict[tuple[int, str], Any] = field(default_factory=dict, init=False)
    _rngs: dict[int, Any] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.keys < 1 or self.ops_per_key < 1:
            raise ValueError("a register workload needs at least one key and one op per key")
        if not 0 <= self.read_share + self.write_share <= 1:
            raise ValueError("read_share + write_share must be between 0 and 1 (cas is the rest)")
        self._active = [self._fresh_key() for _ in range(self.keys)]

    def _fresh_key(self) -> str:
        return f"{self.key_prefix}{next(self._next_key)}"

    def _rng(self, process: int) -> Any:
        if process not in self._rngs:
            self._rngs[process] = derive_rng(self.seed, self.label, process)
        return self._rngs[process]

    @property
    def active_keys(self) -> list[str]:
        return list(self._active)

    def next_op(self, process: int) -> Op:
        rng = self._rng(process)
        slot = rng.randrange(len(self._active))
        key = self._active[slot]
        self._uses[key] += 1
        if self._uses[key] >= self.ops_per_key:
            self._active[slot] = self._fresh_key()
        draw = rng.random()
        if draw < self.read_share:
            return Op("read", key)
        value = next(self._next_value)
        if draw < self.read_share + self.write_share or (process, key) not in self._seen:
            return Op("write", key, value)
        return Op("cas", key, (self._seen[(process, key)], value))

    def observe(self, process: int, op: Op, result: Any) -> None:
        """Remember what `process` saw on the key, for its next compare-and-set."""
        if op.f == "read":
            if result is None:
                self._seen.pop((process, op.key), None)
            else:
                self._seen[(process, op.key)] = result
        elif op.f == "write":
            self._seen[(process, op.key)] = op.value
        elif op.f == "cas" and result:
            self._seen[(process, op.key)] = op.value[1]


async def run_register(
    clients: Sequence[Callable[[int], RegisterClient]],
    workload: RegisterWorkload,
    duration: float,
    *,
    pace: float = 0.01,
    error_pause: float = 0.1,
    stop: asyncio.Event | None = None,
) -> dict[str, int]:
    """Run one worker per entry of `clients` for `duration` seconds (or until `stop` is set).

    `clients[w](process)` gives worker w's client for a process id. A worker waits `pace`
    seconds between operations and `error_pause` after an error (a dead node refuses at
    once; retrying at full speed would only fill the history). Returns counts by outcome
    ("ok", "cas_mismatch", "errors"); the history holds the detail.
    """
    workers = len(clients)
    deadline = time.monotonic() + duration
    counts: Counter[str] = Counter()
    halt = stop or asyncio.Event()

    async def worker(index: int) -> None:
        process = index
        client = clients[index](process)
        while time.monotonic() < deadline and not halt.is_set():
            op = workload.next_op(process)
            try:
                if op.f == "read":
                    result: Any = await client.read(op.key)
                elif op.f == "write":
                    result = await client.write(op.key, op.value)
                else:
                    result = await client.cas(op.key, op.value[0], op.value[1])
            except asyncio.CancelledError:
                raise
            except Exception:
                # The client recorded how it ended; carry on as another process.
                counts["errors"] += 1
                process += workers
                client = clients[index](process)
                await asyncio.sleep(error_pause)
                continue
            counts["ok" if op.f != "cas" or result else "cas_mismatch"] += 1
            workload.observe(process, op, result)
            await asyncio.sleep(pace)

    await asyncio.gather(*(worker(i) for i in range(workers)))
    return dict(counts)
