"""The merged timeline: every node's log and peerlab's history, as one time-ordered stream.

It reads a run directory, which has the same layout live (an Environment's workdir) and
after the run (a `peerlab-results/<run>/` folder):

    history.jsonl              peerlab's record: operations, faults, node events
    nodes/<name>/stdout.log    the node's structured log (JSON lines) or plain output
    nodes/<name>/stderr.log

`TimelineReader` reads it incrementally, so following a live network costs only the new
lines; its `cursor` is JSON, so the CLI can hold it between calls to the supervisor.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from peerlab.errors import UsageError
from peerlab.history import Entry
from peerlab.observe.events import TimelineEvent, from_history, from_log_line
from peerlab.observe.filters import EventFilter
from peerlab.observe.stamps import load as load_stamps

HISTORY = "history.jsonl"
TIMELINE = "timeline.jsonl"


class TimelineReader:
    """New events of a run directory since the last `poll`, in time order."""

    def __init__(self, root: Path | str, cursor: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        # relative path -> [bytes read, wall time of the last timed line]
        self._files: dict[str, list[float]] = _cursor_files(cursor)

    @property
    def cursor(self) -> dict[str, Any]:
        return {
            "files": {path: [int(offset), last] for path, (offset, last) in self._files.items()}
        }

    def _sources(self) -> list[tuple[str, str | None, str]]:
        """(relative path, node, stream) of every file to read; nodes may appear later."""
        sources: list[tuple[str, str | None, str]] = [(HISTORY, None, "history")]
        nodes = self.root / "nodes"
        if nodes.is_dir():
            for node_dir in sorted(p for p in nodes.iterdir() if p.is_dir()):
                for stream in ("stdout", "stderr"):
                    sources.append((f"nodes/{node_dir.name}/{stream}.log", node_dir.name, stream))
        return sources

    def poll(self) -> list[TimelineEvent]:
        events: list[TimelineEvent] = []
        for relative, node, stream in self._sources():
            path = self.root / relative
            state = self._files.setdefault(relative, [0.0, 0.0])
            lines = _read_new_lines(path, state)
            if not lines:
                continue
            if node is None:
                events.extend(_history_events(lines))
                continue
            last = state[1] or _fallback_time(path)
            stamps = load_stamps(path.parent)
            for line in lines:
                if not line.strip():
                    continue
                own = stamps.time(line) if stamps is not None else None
                event = from_log_line(line, node, stream, last if own is None else own)
                if own is None and event.kind == "output":
                    event.fields["stamped"] = "read"
                last = event.wall
                events.append(event)
            state[1] = last
        events.sort(key=lambda event: event.wall)
        return events


def _cursor_files(cursor: Any) -> dict[str, list[float]]:
    """The files of a cursor this module handed back; anything else is a usage error."""
    files = {} if cursor is None else _valid_files(cursor)
    if files is None:
        raise UsageError(
            "cursor is not one a timeline call handed back",
            field="cursor",
            hint='pass the "cursor" of the last answer unchanged, or none to read from the top',
        )
    return files


def _valid_files(cursor: Any) -> dict[str, list[float]] | None:
    if not isinstance(cursor, dict) or not set(cursor) <= {"files"}:
        return None
    files = cursor.get("files", {})
    if not isinstance(files, dict):
        return None
    read: dict[str, list[float]] = {}
    for path, state in files.items():
        if not isinstance(state, list) or len(state) != 2:
            return None
        offset, last = state
        if type(offset) is not int or offset < 0:
            return None
        if type(last) not in (int, float) or not math.isfinite(last):
            return None
        read[path] = [float(offset), float(last)]
    return read


def _read_new_lines(path: Path, state: list[float]) -> list[str]:
    """Complete lines added to `path` since `state[0]` bytes; a partial last line waits."""
    try:
        size = path.stat().st_size
    except OSError:
        return []
    offset = int(state[0])
    if size < offset:  # truncated or replaced: start again from the top
        offset = 0
    if size == offset:
        return []
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read(size - offset)
    end = data.rfind(b"\n")
    if end < 0:
        return []
    state[0] = offset + end + 1
    return data[: end + 1].decode("utf-8", errors="replace").splitlines()


def _fallback_time(path: Path) -> float:
    """A time for untimed lines before any timed one: when the file was last written."""
    try:
        return min(os.stat(path).st_mtime, time.time())
    except OSError:
        return time.time()


def _history_events(lines: Iterable[str]) -> list[TimelineEvent]:
    events = []
    for line in lines:
        try:
            raw = json.loads(line)
            events.append(from_history(Entry.from_json(raw)))
        except (json.JSONDecodeError, TypeError, KeyError, ValueError):
            continue  # a history line being written by a crashed process: skip it
    return events


def read_timeline(
    root: Path | str, event_filter: EventFilter | None = None, tail: int | None = None
) -> list[TimelineEvent]:
    """Every event of a run directory (or its `timeline.jsonl`), filtered, in time order."""
    root = Path(root)
    if not (root / HISTORY).exists() and (root / TIMELINE).exists():
        events = load_timeline(root / TIMELINE)
    else:
        events = TimelineReader(root).poll()
    if event_filter is not None:
        events = [event for event in events if event_filter(event)]
    return _last(events, tail)


def _last(events: list[TimelineEvent], tail: int | None) -> list[TimelineEvent]:
    """The last `tail` events (all of them: None or 0)."""
    if tail is not None and tail < 0:
        raise UsageError(f"tail is {tail}", field="tail", hint="ask for the last 0 events or more")
    return events[-tail:] if tail else events


def write_timeline(events: Iterable[TimelineEvent], path: Path) -> Path:
    """The merged timeline as JSON lines (for `jq`, and for reports)."""
    with path.open("w", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(event.to_json(), default=str) + "\n")
    return path


def load_timeline(path: Path) -> list[TimelineEvent]:
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            events.append(TimelineEvent.from_json(json.loads(line)))
    return events


def fetch(
    root: Path | str,
    cursor: dict[str, Any] | None,
    event_filter: EventFilter,
    tail: int | None = None,
) -> dict[str, Any]:
    """New events since `cursor` (all on the first call) that pass the filter, as JSON.

    This is what the supervisor answers `peerlab logs` with: the events, and the cursor
    to ask with next time.
    """
    reader = TimelineReader(root, cursor)
    events = _last([event for event in reader.poll() if event_filter(event)], tail)
    return {"events": [event.to_json() for event in events], "cursor": reader.cursor}
