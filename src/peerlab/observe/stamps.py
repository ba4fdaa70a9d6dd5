"""The times of plain-text log lines: a system's `[logs]` pattern, kept beside its node's logs.

JSON log lines carry their time in a field; plain text needs the system to say where the
time is (`timestamp`, a regex whose first group is the time) and how to read it (`format`:
"iso8601", "unix" seconds, or a strptime format). The Environment writes that next to each
node's logs (`nodes/<name>/stamps.json`), so the timeline reads it the same way live and
after the run. A line whose time cannot be read is stamped at read time and marked so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from peerlab.observe.events import parse_time

FILE = "stamps.json"


@dataclass(frozen=True)
class Stamps:
    """How to read the time at the start (or anywhere) of a plain-text line."""

    pattern: re.Pattern[str]
    format: str

    def time(self, line: str) -> float | None:
        """The line's time in seconds since the epoch, or None when it has none it can read."""
        match = self.pattern.search(line)
        if match is None:
            return None
        text = match.group(1) if self.pattern.groups else match.group(0)
        if self.format == "iso8601":
            return parse_time(text)
        if self.format == "unix":
            try:
                return parse_time(float(text))
            except ValueError:
                return None
        try:
            return datetime.strptime(text, self.format).timestamp()  # no %z: local time
        except ValueError:
            return None


def save(node_dir: Path, timestamp: str | None, format: str) -> None:
    """Keep a system's time pattern beside one node's logs (nothing when it has none)."""
    if timestamp is not None:
        node_dir.mkdir(parents=True, exist_ok=True)
        (node_dir / FILE).write_text(json.dumps({"timestamp": timestamp, "format": format}))


def load(node_dir: Path) -> Stamps | None:
    """The time pattern kept beside a node's logs, if there is a usable one."""
    try:
        raw = json.loads((node_dir / FILE).read_text())
        return Stamps(re.compile(raw["timestamp"]), str(raw["format"]))
    except (OSError, ValueError, KeyError, TypeError, re.error):
        return None
