"""peerlab's own structured log (JSON lines on stderr, or quiet), built on structlog.

structlog is imported and configured at the first event, not at import: the reaper and the
supervisor's client import this module on every CLI command, most of which log nothing."""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Any


@functools.cache
def _logger() -> Any:
    import structlog

    level = os.environ.get("PEERLAB_LOG", "warning").upper()
    # A logger of its own, not structlog's global configuration: in a process that also
    # runs syncpeer's code (the simulator), each keeps its own processors.
    return structlog.wrap_logger(
        structlog.PrintLogger(file=sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level, logging.WARNING)
        ),
    ).bind(component="peerlab")


def debug(event: str, **fields: Any) -> None:
    _logger().debug(event, **fields)


def info(event: str, **fields: Any) -> None:
    _logger().info(event, **fields)


def warning(event: str, **fields: Any) -> None:
    _logger().warning(event, **fields)
