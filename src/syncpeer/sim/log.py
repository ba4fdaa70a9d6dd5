"""A simulated node's log: the JSON lines `syncpeer.io.logs` writes (same keys, same order,
`ts` from the node's own wall clock), and the same ring of recent events for
`GET /admin/events`."""

from __future__ import annotations

import json
import traceback
from datetime import UTC, datetime
from typing import Any

from syncpeer.io.logs import LEVELS, EventRing
from syncpeer.sim.host import Host

_FIRST_KEYS = ("ts", "level", "node", "component", "event", "trace_id")


class SimLog:
    """Log lines of one node (`bind` adds fields to every line of the child)."""

    def __init__(
        self, host: Host, level: str, ring: EventRing, fields: dict[str, Any] | None = None
    ) -> None:
        self.host = host
        self.level = level
        self.ring = ring
        self.fields = fields or {}
        self._floor = LEVELS.index(level)

    def bind(self, **fields: Any) -> SimLog:
        return SimLog(self.host, self.level, self.ring, {**self.fields, **fields})

    def _write(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if LEVELS.index(level) < self._floor:
            return
        stamp = datetime.fromtimestamp(self.host.wall(), UTC)
        line = {**self.fields, **fields, "event": event, "level": level}
        line["ts"] = stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")
        ordered = {key: line.pop(key) for key in _FIRST_KEYS if key in line}
        ordered.update(line)
        self.ring(None, level, ordered)
        self.host.log(json.dumps(ordered, default=str))

    def debug(self, event: str, **fields: Any) -> None:
        self._write("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._write("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._write("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._write("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._write("error", event, {**fields, "exception": traceback.format_exc()})
