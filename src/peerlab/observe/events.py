"""One event of the merged timeline, and how node log lines and history entries become one.

Nodes write structured logs (one JSON object per line: `ts`, `level`, `node`, `component`,
`event`, `trace_id` and fields of their own); peerlab writes its history (operations,
faults, node events). Both become `TimelineEvent`s with a wall-clock time, so they can be
merged and filtered as one stream. Lines that are not JSON (a traceback, a program that
does not log JSON) are kept as `output` events with their text.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from peerlab.history import Entry

Kind = Literal["log", "output", "op", "fault", "event", "verdict", "scenario"]
LEVELS = ("debug", "info", "warning", "error")

# Keys other systems use for the same things (zap, logrus, slog, bunyan ...).
_TIME_KEYS = ("ts", "time", "timestamp", "@timestamp", "t")
_LEVEL_KEYS = ("level", "lvl", "severity")
_EVENT_KEYS = ("event", "msg", "message")
_RESERVED = ("ts", "wall", "node", "source", "kind", "event", "level", "component", "trace_id")
# Node events that mean something went wrong (shown as warnings).
_BAD_NODE_EVENTS = {"node_killed", "node_exited", "node_failed", "node_stopped", "node_paused"}
# The fabric's byte samples are bookkeeping for the fidelity checker; a refused connection
# whose source could not be told is a failed run.
_EVENT_LEVELS = {"link_bytes": "debug", "unattributed": "error"}


@dataclass(frozen=True)
class TimelineEvent:
    """Something that happened at `wall` (seconds since the epoch) on `node` (None: the net).

    `source` is "node" for a node's own log line, "peerlab" for what the framework recorded.
    """

    wall: float
    node: str | None
    source: str
    kind: Kind
    event: str
    level: str = "info"
    component: str | None = None
    trace_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def ts(self) -> str:
        """The time as ISO-8601 UTC with microseconds, as syncpeer writes it."""
        return iso(self.wall)

    def to_json(self) -> dict[str, Any]:
        """A flat JSON object, like the node's own line (its fields never override ours)."""
        out: dict[str, Any] = {
            "ts": self.ts,
            "wall": round(self.wall, 6),
            "node": self.node,
            "source": self.source,
            "kind": self.kind,
            "event": self.event,
            "level": self.level,
            "component": self.component,
            "trace_id": self.trace_id,
        }
        # A node's own field named like one of ours (its `source`) keeps a trailing "_".
        out.update({(f"{k}_" if k in _RESERVED else k): v for k, v in self.fields.items()})
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TimelineEvent:
        return cls(
            wall=float(raw["wall"]),
            node=raw.get("node"),
            source=raw.get("source", "node"),
            kind=raw.get("kind", "log"),
            event=str(raw.get("event", "")),
            level=str(raw.get("level", "info")),
            component=raw.get("component"),
            trace_id=raw.get("trace_id"),
            fields={
                (k[:-1] if k.endswith("_") and k[:-1] in _RESERVED else k): v
                for k, v in raw.items()
                if k not in _RESERVED
            },
        )

    def text(self) -> str:
        """The event's own fields as `key=value` words (what follows the event name)."""
        if self.kind == "output":
            return str(self.fields.get("text", ""))
        if self.kind == "fault":
            return describe_fault(self.fields)
        if self.event == "scenario_progress":
            return (
                f"{self.fields.get('what')}: {self.fields.get('done')}/{self.fields.get('total')}"
            )
        if self.kind == "scenario":
            return str(self.fields.get("text", ""))
        if self.kind == "verdict":
            return (
                f"{self.fields.get('checker')} {self.fields.get('valid')}: "
                f"{self.fields.get('summary')}"
            )
        return " ".join(
            f"{key}={_short(value)}"
            for key, value in self.fields.items()
            if value is not None and key not in ("text",)
        )

    def line(self) -> str:
        """One plain line: time, node, event, fields (what --grep matches)."""
        where = self.node or "net"
        trace = f" trace={self.trace_id}" if self.trace_id else ""
        return (
            f"{self.ts} {where} {self.component or self.source} {self.event} {self.text()}{trace}"
        )


def iso(wall: float) -> str:
    return (
        datetime.fromtimestamp(wall, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch from an ISO-8601 string or a number (seconds or milliseconds)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            return None
        return number / 1000 if number > 1e11 else number
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    # Fingerprints and hashes: the first 12 characters identify them in a line.
    if isinstance(value, str) and len(value) >= 40 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"
    return text if len(text) <= 120 else text[:117] + "..."


def from_log_line(line: str, node: str, stream: str, last_wall: float) -> TimelineEvent:
    """A node's output line as an event; a line without a time gets `last_wall`."""
    stripped = line.strip()
    raw: Any = None
    if stripped.startswith("{"):
        try:
            raw = json.loads(stripped)
        except json.JSONDecodeError:
            raw = None
    if not isinstance(raw, dict):
        return TimelineEvent(
            last_wall,
            node,
            "node",
            "output",
            stream,
            "info",
            None,
            None,
            {"text": line.rstrip("\n")},
        )
    fields = dict(raw)
    wall = next(
        (w for w in (parse_time(fields.pop(k, None)) for k in _TIME_KEYS) if w is not None),
        last_wall,
    )
    level = next((str(fields.pop(k)).lower() for k in _LEVEL_KEYS if k in fields), "info")
    level = {
        "warn": "warning",
        "err": "error",
        "fatal": "error",
        "critical": "error",
        "trace": "debug",
    }.get(level, level)
    event = next((str(fields.pop(k)) for k in _EVENT_KEYS if k in fields), stream)
    # The file says which node wrote the line; a node's own name for itself is kept aside.
    own_name = fields.pop("node", None)
    if own_name is not None and own_name != node:
        fields["node_name"] = own_name
    component = fields.pop("component", None)
    trace_id = fields.pop("trace_id", None)
    return TimelineEvent(
        wall,
        node,
        "node",
        "log",
        event,
        level,
        str(component) if component is not None else None,
        str(trace_id) if trace_id is not None else None,
        fields,
    )


def from_history(entry: Entry) -> TimelineEvent:
    """A history entry (operation, fault, framework event) as an event."""
    if entry.type == "fault":
        return TimelineEvent(
            entry.wall,
            None,
            "peerlab",
            "fault",
            "fault_applied" if entry.f == "apply" else "fault_removed",
            "warning" if entry.f == "apply" else "info",
            "fabric",
            None,
            dict(entry.value or {}),
        )
    if entry.type == "event":
        data = dict(entry.data)
        if entry.f == "verdict":
            bad = data.get("valid") != "valid"
            return TimelineEvent(
                entry.wall,
                entry.node,
                "peerlab",
                "verdict",
                "verdict",
                "error" if bad else "info",
                "checker",
                None,
                data,
            )
        if entry.f.startswith("scenario"):
            return TimelineEvent(
                entry.wall,
                entry.node,
                "peerlab",
                "scenario",
                entry.f,
                str(data.pop("level", "info")),
                "scenario",
                None,
                data,
            )
        level = _EVENT_LEVELS.get(entry.f, "warning" if entry.f in _BAD_NODE_EVENTS else "info")
        return TimelineEvent(
            entry.wall, entry.node, "peerlab", "event", entry.f, level, "peerlab", None, data
        )
    fields: dict[str, Any] = {"index": entry.index, "process": entry.process}
    if entry.type == "invoke":
        fields["value"] = entry.value
    else:
        fields["invoke_index"] = entry.data.get("invoke_index")
        if entry.value is not None:
            fields["value"] = entry.value
        if entry.error:
            fields["error"] = entry.error
    level = {"fail": "warning", "info": "warning"}.get(entry.type, "info")
    return TimelineEvent(
        entry.wall,
        entry.node,
        "peerlab",
        "op",
        f"{entry.f}:{entry.type}",
        level,
        "client",
        None,
        fields,
    )


def describe_fault(fault: dict[str, Any]) -> str:
    """A fault's JSON form in a few words: `partition A,B | C`, `latency 200ms A->B`."""
    kind = fault.get("kind")
    if kind == "partition":
        groups = fault.get("groups") or []
        joined = (" -/-> " if fault.get("one_way") else " | ").join(",".join(g) for g in groups)
        duration = fault.get("duration")
        return f"partition {joined}" + (f" for {duration:g}s" if duration else "")
    if kind == "rolling":
        return f"rolling partition, {fault.get('period', 0):g}s per node"
    attributes = fault.get("attributes") or {}
    kind_name = str(fault.get("type") or kind or fault.get("name") or "fault")
    words = [kind_name]
    if kind_name == "latency":
        words.append(f"{attributes.get('latency', 0):g}ms")
        if attributes.get("jitter"):
            words[-1] += f"±{attributes['jitter']:g}ms"
    elif kind_name == "bandwidth":
        words.append(f"{attributes.get('rate', 0):g}KB/s")
    elif kind_name == "loss":
        words.append(f"{attributes.get('percent', 0):g}%")
    else:
        words += [f"{k}={v}" for k, v in attributes.items()]
    if "src" in fault or "dst" in fault:
        words.append(f"{fault.get('src') or '*'}->{fault.get('dst') or '*'}")
    if fault.get("toxicity", 1) != 1:
        words.append(f"toxicity={fault['toxicity']:g}")
    return " ".join(words)


def fault_nodes(fault: dict[str, Any]) -> list[str] | None:
    """The nodes a fault touches; None when it touches every node."""
    if fault.get("kind") in ("partition", "rolling"):
        return None
    ends = [fault.get("src"), fault.get("dst")]
    if None in ends:
        return None
    return [str(end) for end in ends]
