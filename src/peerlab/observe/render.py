"""Timeline events as coloured terminal lines: one colour per node, faults and failures loud."""

from __future__ import annotations

import re
import zlib
from datetime import datetime

from rich.text import Text

from peerlab.observe.events import TimelineEvent

# Colours that stay readable on dark and light terminals, in the order nodes get them.
PALETTE = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "bright_red",
    "bright_cyan",
    "bright_magenta",
    "bright_green",
    "orange3",
    "deep_sky_blue1",
    "medium_purple1",
)
_LEVEL_STYLE = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}
_KIND_MARK = {
    "fault": "⚡",
    "event": "●",
    "op": "→",
    "verdict": "✔",
    "scenario": "▶",
    "output": " ",
    "log": " ",
}


def node_index(name: str) -> int:
    """A, B, ..., Z, AA ... -> 0, 1, ..., 25, 26; other names a stable hash."""
    if re.fullmatch(r"[A-Z]+", name):
        index = 0
        for letter in name:
            index = index * 26 + (ord(letter) - ord("A") + 1)
        return index - 1
    return zlib.crc32(name.encode())


def node_colour(name: str | None) -> str:
    if name is None:
        return "bold white"
    return PALETTE[node_index(name) % len(PALETTE)]


def clock(wall: float) -> str:
    """Local wall-clock time with milliseconds: what a person compares with their watch."""
    return datetime.fromtimestamp(wall).strftime("%H:%M:%S.%f")[:-3]


def event_text(event: TimelineEvent, *, width: int = 4) -> Text:
    """`12:00:01.234 B    sync  file_download_started name=a.txt ...` in the node's colour."""
    line = Text(no_wrap=False)
    line.append(clock(event.wall) + " ", style="dim")
    line.append(f"{event.node or 'net':<{width}} ", style=node_colour(event.node))
    mark = _KIND_MARK.get(event.kind, " ")
    if event.kind == "verdict":
        mark = "✔" if event.fields.get("valid") == "valid" else "✘"
    line.append(mark + " ", style="bold red" if event.kind == "fault" else "")
    line.append(f"{event.component or event.source:<8} ", style="dim")
    style = _LEVEL_STYLE.get(event.level, "")
    if event.kind == "fault":
        style = "bold red" if event.event == "fault_applied" else "bold green"
    elif event.kind == "op" and event.event.endswith((":fail", ":info")):
        style = "red"
    line.append(event.event, style=style or "bold")
    text = event.text()
    if text:
        line.append(" " + text, style=_LEVEL_STYLE.get(event.level, ""))
    if event.trace_id:
        line.append(f" trace={event.trace_id}", style="dim")
    return line
