"""Which timeline events to show: by node, text, time, trace id, event name and level.

A filter travels from the CLI to the supervisor as JSON (`to_json` / `from_json`), so the
supervisor sends back only what will be shown.
"""

from __future__ import annotations

import fnmatch
import re
import time
from dataclasses import dataclass, field
from typing import Any

from peerlab.errors import UsageError
from peerlab.observe.events import LEVELS, TimelineEvent, parse_time
from peerlab.units import parse_duration


@dataclass(frozen=True)
class EventFilter:
    """Keeps the events that pass every condition given; an empty filter keeps everything.

    `nodes`: events of these nodes, plus network-wide ones (faults) so a node's story keeps
    its context. `grep`: a regular expression searched in the event's plain line.
    `since` / `until`: wall-clock bounds. `events`: shell-style patterns on the event name
    (`file_*`). `min_level`: the least severe level shown.
    """

    nodes: tuple[str, ...] = ()
    grep: str | None = None
    since: float | None = None
    until: float | None = None
    trace_id: str | None = None
    events: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    min_level: str | None = None
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.grep:
            try:
                object.__setattr__(self, "_pattern", re.compile(self.grep))
            except re.error as exc:
                raise UsageError(
                    f"--grep {self.grep!r} is not a regular expression: {exc}",
                    field="--grep",
                    hint="escape special characters, e.g. \\.",
                ) from None
        if self.min_level is not None and self.min_level not in LEVELS:
            raise UsageError(
                f"level {self.min_level!r} is not known",
                field="--level",
                hint=f"one of {', '.join(LEVELS)}",
            )

    def __call__(self, event: TimelineEvent) -> bool:
        if self.nodes and event.node is not None and event.node not in self.nodes:
            return False
        if self.nodes and event.node is None and event.kind not in ("fault", "scenario"):
            return False
        if self.since is not None and event.wall < self.since:
            return False
        if self.until is not None and event.wall > self.until:
            return False
        if self.trace_id is not None and event.trace_id != self.trace_id:
            return False
        if self.kinds and event.kind not in self.kinds:
            return False
        if self.events and not any(fnmatch.fnmatchcase(event.event, p) for p in self.events):
            return False
        if self.min_level is not None and _rank(event.level) < _rank(self.min_level):
            return False
        return not (self._pattern is not None and not self._pattern.search(event.line()))

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": list(self.nodes),
            "grep": self.grep,
            "since": self.since,
            "until": self.until,
            "trace_id": self.trace_id,
            "events": list(self.events),
            "kinds": list(self.kinds),
            "min_level": self.min_level,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> EventFilter:
        raw = raw or {}
        return cls(
            tuple(raw.get("nodes") or ()),
            raw.get("grep"),
            raw.get("since"),
            raw.get("until"),
            raw.get("trace_id"),
            tuple(raw.get("events") or ()),
            tuple(raw.get("kinds") or ()),
            raw.get("min_level"),
        )


def _rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else LEVELS.index("info")


def parse_since(text: str, now: float | None = None) -> float:
    """`30s`, `5m`, `1h` ago, or an ISO-8601 time (`2026-01-02T10:00:00Z`): seconds since epoch."""
    text = text.strip()
    if text and text[0].isdigit() and not re.match(r"^\d{4}-\d{2}-\d{2}", text):
        try:
            return (time.time() if now is None else now) - parse_duration(text, "--since")
        except UsageError:
            raise UsageError(
                f"--since {text!r} is not understood",
                field="--since",
                hint="a duration ago such as 30s, 5m or 1h, or an ISO-8601 time "
                "such as 2026-01-02T10:00:00Z",
            ) from None
    wall = parse_time(text)
    if wall is None:
        raise UsageError(
            f"--since {text!r} is not understood",
            field="--since",
            hint="a duration ago such as 30s, 5m or 1h, or an ISO-8601 time "
            "such as 2026-01-02T10:00:00Z",
        )
    return wall
