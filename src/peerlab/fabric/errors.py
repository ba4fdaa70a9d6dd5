"""The fabric's errors that the Toxiproxy-compatible API maps to 404 and 409."""

from __future__ import annotations

from peerlab.errors import UsageError


class NotFound(UsageError):
    """No proxy, toxic or fault by that name (HTTP 404)."""


class Conflict(UsageError):
    """A proxy, toxic or fault by that name already exists (HTTP 409)."""
