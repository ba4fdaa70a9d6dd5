"""Structured logs: one JSON object per line on stdout, and a ring of recent events.

Every line carries ts (ISO-8601 UTC, microseconds), level, node, component, event and trace_id.
Loggers are built per node instead of through structlog's global configuration, so several
nodes can share a process in tests and a forked child inherits no logging state. File content
and key material are never passed to a logger.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, WrappedLogger

Logger = FilteringBoundLogger
LEVELS = ("debug", "info", "warning", "error")
_FIRST_KEYS = ("ts", "level", "node", "component", "event", "trace_id")


class EventRing:
    """The last `size` logged events, numbered, for GET /admin/events?since=N."""

    def __init__(self, size: int = 500) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=size)
        self._next_seq = 0

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        self._events.append({"seq": self._next_seq, **event_dict})
        self._next_seq += 1
        return event_dict

    def since(self, seq: int) -> tuple[list[dict[str, Any]], int]:
        """Events numbered `seq` or later still in the ring, and the number to ask for next."""
        return [event for event in self._events if event["seq"] >= seq], self._next_seq


def _stamp_and_order(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    event_dict["ts"] = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    ordered = {key: event_dict.pop(key) for key in _FIRST_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def make_logger(
    node: str, level: str, events: EventRing | None = None, stream: TextIO | None = None
) -> Logger:
    """A logger for one node; `stream` None means whatever sys.stdout is when a line is written."""
    processors: list[Any] = [structlog.processors.add_log_level, _stamp_and_order]
    if events is not None:
        processors.append(events)
    processors.append(structlog.processors.JSONRenderer())
    logger: Logger = structlog.wrap_logger(
        structlog.PrintLogger(stream),
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        context_class=dict,
        cache_logger_on_first_use=False,
    )
    return logger.bind(node=node, component="node", trace_id=None)
