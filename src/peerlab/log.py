"""peerlab's own structured log (JSON lines on stderr, or quiet), built on structlog."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

_LEVEL = os.environ.get("PEERLAB_LOG", "warning").upper()

structlog.configure(
    processors=[
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.JSONRenderer(),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, _LEVEL, logging.WARNING)),
    logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    cache_logger_on_first_use=False,
)

_logger = structlog.get_logger(component="peerlab")


def debug(event: str, **fields: Any) -> None:
    _logger.debug(event, **fields)


def info(event: str, **fields: Any) -> None:
    _logger.info(event, **fields)


def warning(event: str, **fields: Any) -> None:
    _logger.warning(event, **fields)
