"""`LogEvent`: a log line a sans-IO state machine asks its driver to write.

The core never logs: the sync engine and the DHT return these among their actions, and the
driver writes them with its own logger (JSON lines in a node, a list in a simulator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LogEvent:
    """Log `event` at `level` ("debug", "info", "warning", "error") with `fields`."""

    event: str
    level: str
    fields: dict[str, Any]
