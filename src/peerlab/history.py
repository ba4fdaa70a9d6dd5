"""The record of a run: client operations (invoke / ok / fail / info) and faults, as JSONL.

An operation is two entries that share an `index`-linked pair: the invocation and its
completion. Faults and other framework events are single entries. Every entry carries the
wall-clock time (`wall`, seconds since the epoch) and a monotonic time (`time`, nanoseconds
since the history began) so that ordering survives clock changes.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

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
        out = {k: v for k, v in asdict(self).items() if v is not None and v != {}}
        out["type"] = self.type
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Entry:
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        known.setdefault("wall", 0.0)
        known.setdefault("time", 0)
        known.setdefault("index", 0)
        return cls(**known)


class History:
    """A thread-safe, append-only history, optionally mirrored line by line to a JSONL file."""

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._entries: list[Entry] = []
        self._counter = itertools.count()
        self._origin = time.monotonic_ns()
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

    def _stamp(self) -> tuple[int, int, float]:
        return next(self._counter), time.monotonic_ns() - self._origin, time.time()

    def invoke(
        self, f: str, value: Any = None, *, process: int | str | None = None, node: str | None = None
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
            type, invocation.f, index, mono, wall, invocation.process, invocation.node,
            value if value is not None else invocation.value, error,
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
