"""Observe a run: node logs and peerlab's history merged into one timeline, followed live,
filtered, and shown as a dashboard; snapshots of node state live in `peerlab.snapshot`.

    from peerlab.observe import read_timeline, EventFilter
    for event in read_timeline(env.workdir, EventFilter(nodes=("A",), grep="download")):
        print(event.line())
"""

from peerlab.observe.events import TimelineEvent, describe_fault
from peerlab.observe.filters import EventFilter, parse_since
from peerlab.observe.timeline import (
    TimelineReader,
    fetch,
    load_timeline,
    read_timeline,
    write_timeline,
)

__all__ = [
    "EventFilter",
    "TimelineEvent",
    "TimelineReader",
    "describe_fault",
    "fetch",
    "load_timeline",
    "parse_since",
    "read_timeline",
    "write_timeline",
]
