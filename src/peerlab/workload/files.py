"""A file-sync workload: seeded creates, updates, re-saves and deletes of a few shared names,
each on one of the peers that is running at that moment.

    workload = FileWorkload(env.seed, names=6)
    run_files(workload, client_for, live_peers, duration=30)
    run_ops(ops, client_for)              # exactly these operations, at their times

Every operation writes content never written before (it names the file, the peer and a
counter), except a re-save, which publishes the current content again (a metadata-only
change, the classic trigger of sync loops). Which operation, which name and which of the
live peers come from `derive_rng(seed, "workload", "files")`; the live peers themselves
depend on the faults, so two runs with one seed make the same choices only while the
same peers are up. Each client records its operations in the history. Time is `clock`'s
(the environment's: virtual on the simulator). A run can keep what it did (`done`: each
operation with its time), and `run_ops` does exactly that again, or a part of it: how the
simulator shrinks a failing run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from peerlab.clock import REAL_CLOCK, Clock
from peerlab.errors import PeerlabError
from peerlab.seed import derive_rng

FileOpName = Literal["publish", "resave", "delete"]


class FileClient(Protocol):
    """What the workload needs of a peer's client (each call records itself)."""

    def publish(self, name: str, content: bytes) -> Any: ...

    def content(self, name: str) -> bytes: ...

    def delete(self, name: str) -> Any: ...


@dataclass(frozen=True)
class FileOp:
    node: str
    f: FileOpName
    name: str
    content: bytes = b""


@dataclass(frozen=True)
class TimedOp:
    """An operation `at` seconds into the run."""

    at: float
    op: FileOp

    def to_json(self) -> dict[str, Any]:
        op = self.op
        return {
            "at": self.at,
            "node": op.node,
            "f": op.f,
            "name": op.name,
            "content": op.content.decode("latin-1"),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TimedOp:
        content = str(raw.get("content", "")).encode("latin-1")
        op = FileOp(str(raw["node"]), raw["f"], str(raw["name"]), content)
        return cls(float(raw["at"]), op)


@dataclass
class FileWorkload:
    """The seeded choice of file operations."""

    seed: int
    names: int = 6
    delete_ratio: float = 0.1
    resave_ratio: float = 0.05
    interval: float = 0.25  # seconds between operations, on average
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = derive_rng(self.seed, "workload", "files")
        self._counter = 0

    def next_op(self, live: list[str]) -> FileOp | None:
        """The next operation, on one of `live` (None when no peer is up)."""
        roll = self._rng.random()
        name = f"file-{self._rng.randrange(self.names)}.txt"
        if not live:
            return None
        node = self._rng.choice(sorted(live))
        self._counter += 1
        if roll < self.delete_ratio:
            return FileOp(node, "delete", name)
        if roll < self.delete_ratio + self.resave_ratio:
            return FileOp(node, "resave", name)
        content = f"{name} #{self._counter} from {node} (seed {self.seed})\n".encode()
        return FileOp(node, "publish", name, content)

    def pause(self) -> float:
        return self._rng.uniform(0, 2 * self.interval)


def run_files(
    workload: FileWorkload,
    client_for: Callable[[str], FileClient],
    live_peers: Callable[[], list[str]],
    duration: float,
    stop: threading.Event | None = None,
    clock: Clock = REAL_CLOCK,
    done: list[TimedOp] | None = None,
) -> dict[str, int]:
    """Run operations for `duration` seconds (or until `stop`); counts of outcomes. Each
    operation and when it ran is added to `done`, when given."""
    stop = stop or threading.Event()
    began = clock.monotonic()
    deadline = began + duration
    outcomes: dict[str, int] = {}
    while clock.monotonic() < deadline and not stop.is_set():
        op = workload.next_op(live_peers())
        if op is not None:
            if done is not None:
                done.append(TimedOp(round(clock.monotonic() - began, 6), op))
            _count(outcomes, op, _perform(op, client_for(op.node)))
        clock.wait(stop, workload.pause())
    return outcomes


def run_ops(
    ops: list[TimedOp], client_for: Callable[[str], FileClient], clock: Clock = REAL_CLOCK
) -> dict[str, int]:
    """Perform `ops`, each at its time from now; counts of outcomes."""
    began = clock.monotonic()
    outcomes: dict[str, int] = {}
    for timed in sorted(ops, key=lambda timed: timed.at):
        clock.sleep(began + timed.at - clock.monotonic())
        _count(outcomes, timed.op, _perform(timed.op, client_for(timed.op.node)))
    return outcomes


def _count(outcomes: dict[str, int], op: FileOp, outcome: str) -> None:
    key = f"{op.f}:{outcome}"
    outcomes[key] = outcomes.get(key, 0) + 1


def _perform(op: FileOp, client: FileClient) -> str:
    try:
        if op.f == "delete":
            client.delete(op.name)
        elif op.f == "resave":
            client.publish(op.name, client.content(op.name))
        else:
            client.publish(op.name, op.content)
    except PeerlabError:
        return "error"  # recorded by the client as fail (refused) or info (unknown)
    return "ok"
