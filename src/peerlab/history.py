"""The record of a run: client operations (invoke / ok / fail / info) and faults, as JSONL.

An operation is two entries that share an `index`-linked pair: the invocation and its
completion. Faults and other framework events are single entries. Every entry carries the
wall-clock time (`wall`, seconds since the epoch) and a monotonic time (`time`, nanoseconds
since the history began) so that ordering survives clock changes.

`operations` pairs invocations with their completions, which is what checkers read.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from peerlab.clock import REAL_CLOCK, Clock

OpType = Literal["invoke", "ok", "fail", "info"]
EntryType = Literal["invoke", "ok", "fail", "info", "fault", "event"]


@dataclass
class Entry:
    """One line of a history."""

    type: EntryType
    f: str
    index: int
    time: int
    wall: float
    process: int | str | None = None
    node: str | None = None
    value: Any = None
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        # Only absent fields are left out: a value of {} is a value, and must read back.
        # (A shallow copy: the entry is written out at once, and asdict's deep copy of
        # every value costs more than the rest of recording it.)
        out = {k: v for k in _ENTRY_FIELDS if (v := getattr(self, k)) is not None}
        if not self.data:
            del out["data"]
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Entry:
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        known.setdefault("wall", 0.0)
        known.setdefault("time", 0)
        known.setdefault("index", 0)
        return cls(**known)


_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


class History:
    """A thread-safe, append-only history, optionally mirrored line by line to a JSONL file."""

    def __init__(self, path: Path | None = None, clock: Clock = REAL_CLOCK) -> None:
        self._lock = threading.Lock()
        self._entries: list[Entry] = []
        self._counter = itertools.count()
        self.clock = clock
        self._origin = self._monotonic_ns()
        self.path = path
        self._file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def _append(self, entry: Entry) -> Entry:
        with self._lock:
            self._entries.append(entry)
            if self._file is not None:
                self._file.write(json.dumps(entry.to_json(), default=str) + "\n")
                self._file.flush()
        return entry

    def _monotonic_ns(self) -> int:
        return int(self.clock.monotonic() * 1e9)

    def elapsed(self) -> float:
        """Seconds since the history began, on its clock: an entry's `time` / 1e9."""
        return (self._monotonic_ns() - self._origin) / 1e9

    def _stamp(self) -> tuple[int, int, float]:
        return next(self._counter), self._monotonic_ns() - self._origin, self.clock.time()

    def invoke(
        self,
        f: str,
        value: Any = None,
        *,
        process: int | str | None = None,
        node: str | None = None,
    ) -> Entry:
        """Record the start of an operation; pass the returned entry to `complete`."""
        index, mono, wall = self._stamp()
        return self._append(Entry("invoke", f, index, mono, wall, process, node, value))

    def complete(
        self, invocation: Entry, type: OpType, value: Any = None, *, error: str | None = None
    ) -> Entry:
        """Record how an operation ended: `ok`, `fail` (did not happen) or `info` (unknown)."""
        index, mono, wall = self._stamp()
        entry = Entry(
            type,
            invocation.f,
            index,
            mono,
            wall,
            invocation.process,
            invocation.node,
            value if value is not None else invocation.value,
            error,
            {"invoke_index": invocation.index},
        )
        return self._append(entry)

    def fault(self, action: Literal["apply", "remove"], fault: dict[str, Any]) -> Entry:
        """Record a fault applied or removed; `fault` is the fault's serialized form."""
        index, mono, wall = self._stamp()
        return self._append(Entry("fault", action, index, mono, wall, "nemesis", None, fault))

    def event(self, f: str, node: str | None = None, **data: Any) -> Entry:
        """Record a framework event (node started, killed, restarted ...)."""
        index, mono, wall = self._stamp()
        return self._append(Entry("event", f, index, mono, wall, "peerlab", node, None, None, data))

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    @classmethod
    def load(cls, path: Path) -> list[Entry]:
        """Read a JSONL history written by `History`."""
        return list(read_jsonl(path.read_text(encoding="utf-8").splitlines()))


def read_jsonl(lines: Iterable[str]) -> Iterator[Entry]:
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            yield Entry.from_json(json.loads(line))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"history line {number}: not a history entry ({exc})") from exc


CLIENT_TYPES = frozenset({"invoke", "ok", "fail", "info"})


@dataclass(frozen=True)
class Operation:
    """One client operation: its invocation and how it ended.

    `completion` is None when the history ended before the operation did; like `info`, its
    outcome is unknown. Positions are places in the entry sequence the operation was paired
    from, which is the real-time order checkers rely on (entries are recorded in order).
    """

    invoke: Entry
    completion: Entry | None
    invoke_position: int
    complete_position: int | None

    @property
    def type(self) -> Literal["ok", "fail", "info"]:
        if self.completion is None or self.completion.type == "info":
            return "info"
        return "ok" if self.completion.type == "ok" else "fail"

    @property
    def f(self) -> str:
        return self.invoke.f

    @property
    def process(self) -> int | str | None:
        return self.invoke.process

    @property
    def node(self) -> str | None:
        return self.invoke.node

    @property
    def value(self) -> Any:
        """The completion's value when it has one (a read's result), else the invocation's."""
        if self.completion is not None and self.completion.value is not None:
            return self.completion.value
        return self.invoke.value

    @property
    def latency_ns(self) -> int | None:
        if self.completion is None or self.type == "info":
            return None
        return self.completion.time - self.invoke.time

    def to_json(self) -> dict[str, Any]:
        """A compact, JSON-able form for checker evidence: where to find it and what it did."""
        out: dict[str, Any] = {
            "process": self.process,
            "type": self.type,
            "f": self.f,
            "value": self.invoke.value,
            "index": self.invoke.index,
        }
        if self.completion is not None:
            out["result"] = self.completion.value
            out["complete_index"] = self.completion.index
        if self.node is not None:
            out["node"] = self.node
        return out


def operations(entries: Iterable[Entry]) -> list[Operation]:
    """Pair each invocation with its completion, in invocation order.

    A completion names its invocation through `data["invoke_index"]` (peerlab histories);
    without it, the pair is found by process, as Jepsen does: a process has at most one
    operation outstanding. Faults and events are skipped. Raises ValueError on a completion
    that matches no open invocation, or a process with two open operations and no index.
    """
    opened: dict[int, tuple[int, Entry]] = {}
    open_by_process: dict[int | str | None, list[int]] = {}
    paired: dict[int, Operation] = {}
    for position, entry in enumerate(entries):
        if entry.type not in CLIENT_TYPES:
            continue
        if entry.type == "invoke":
            opened[entry.index] = (position, entry)
            open_by_process.setdefault(entry.process, []).append(entry.index)
            continue
        key = _invocation_of(entry, opened, open_by_process)
        invoke_position, invocation = opened.pop(key)
        open_by_process[invocation.process].remove(key)
        paired[invoke_position] = Operation(invocation, entry, invoke_position, position)
    for invoke_position, invocation in opened.values():
        paired[invoke_position] = Operation(invocation, None, invoke_position, None)
    return [paired[position] for position in sorted(paired)]


def _invocation_of(
    completion: Entry,
    opened: dict[int, tuple[int, Entry]],
    open_by_process: dict[int | str | None, list[int]],
) -> int:
    index = completion.data.get("invoke_index")
    if index is not None and index in opened:
        return int(index)
    candidates = open_by_process.get(completion.process, [])
    if len(candidates) == 1:
        return candidates[0]
    where = f"{completion.type} entry {completion.index} (process {completion.process!r})"
    if not candidates:
        raise ValueError(f"{where}: no open invocation to complete; is the history truncated?")
    raise ValueError(
        f"{where}: process has {len(candidates)} open invocations; give each completion "
        "data.invoke_index or use one process per concurrent client"
    )


def as_operations(history: Iterable[Entry] | Iterable[Operation]) -> list[Operation]:
    """Operations from a History, a list of entries, or already-paired operations."""
    items = list(history)
    paired = [item for item in items if isinstance(item, Operation)]
    if len(paired) == len(items):
        return paired
    entries = [item for item in items if isinstance(item, Entry)]
    if len(entries) != len(items):
        raise TypeError("a history holds Entry or Operation items, not a mix of them")
    return operations(entries)
