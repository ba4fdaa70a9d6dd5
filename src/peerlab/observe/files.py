"""File sync as it happens: the timeline events of publishing and downloading files.

syncpeer logs `file_download_started`, `file_download_resumed`, `file_download_failed`,
`file_download_completed` and `file_rejected`; peerlab's history holds the `publish`
operations. Each becomes a `SyncEvent` with a phase a person reads at a glance, and peer
names instead of fingerprints where the timeline has told which node has which.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from peerlab.observe.events import TimelineEvent

# event name -> phase; `progress` covers any partial state (resumed, failed with bytes held).
PHASES = {
    "file_download_started": "started",
    "file_download_progress": "progress",
    "file_download_resumed": "progress",
    "file_download_failed": "failed",
    "file_download_completed": "completed",
    "file_rejected": "rejected",
    "file_published": "published",
    "publish:fail": "failed",
}
EVENT_PATTERNS = ("file_*", "publish:fail")


class PeerNames:
    """Learns which fingerprint is which node from the events that say so."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def learn(self, event: TimelineEvent) -> None:
        fingerprint = event.fields.get("fingerprint")
        if event.node and isinstance(fingerprint, str) and event.kind == "log":
            self._names[fingerprint] = event.node

    def name(self, fingerprint: Any) -> str:
        if not isinstance(fingerprint, str):
            return "?"
        return self._names.get(fingerprint, fingerprint[:12])


@dataclass(frozen=True)
class SyncEvent:
    wall: float
    node: str
    phase: str
    file: str
    detail: str
    trace_id: str | None


def sync_events(events: Iterable[TimelineEvent], names: PeerNames) -> list[SyncEvent]:
    """The file sync events among `events` (learning peer names from all of them)."""
    out = []
    for event in events:
        names.learn(event)
        phase = PHASES.get(event.event)
        if phase is None or event.node is None:
            continue
        fields = event.fields
        raw_value = fields.get("value")
        value: dict[str, Any] = raw_value if isinstance(raw_value, dict) else {}
        name = str(fields.get("name") or value.get("name") or "?")
        version = fields.get("version")
        shown = f"{name} v{version}" if version is not None else name
        out.append(
            SyncEvent(
                event.wall, event.node, phase, shown, _detail(phase, fields, names), event.trace_id
            )
        )
    return out


def _detail(phase: str, fields: dict[str, Any], names: PeerNames) -> str:
    source = f"from {names.name(fields['source'])}" if "source" in fields else ""
    size = fields.get("size") or fields.get("bytes")
    if phase == "started":
        return f"{source}, {_bytes(size)}" if size is not None else source
    if phase == "progress":
        have = fields.get("offset", fields.get("have"))
        if have is not None and size:
            return f"{source}: {_bytes(have)} of {_bytes(size)} ({100 * have / size:.0f}%)"
        return source
    if phase == "completed":
        took = fields.get("duration_ms")
        return f"{source}, {_bytes(size)}" + (f" in {took:g} ms" if took is not None else "")
    if phase == "failed":
        have = fields.get("have")
        held = f", holds {_bytes(have)}" if have else ""
        return f"{source}{held}: {fields.get('error', '')}".strip(": ")
    if phase == "rejected":
        return f"{source}: {fields.get('reason', '')}"
    if phase == "published":
        audience = (
            "public"
            if fields.get("public")
            else f"for {len(fields.get('recipients') or [])} recipients"
        )
        return f"{audience}, {_bytes(fields.get('size'))}"
    return ""


def _bytes(size: Any) -> str:
    if not isinstance(size, int | float):
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"
