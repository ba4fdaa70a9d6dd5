"""Errors raised by the core; each message says what was wrong."""

from __future__ import annotations


class SyncpeerError(Exception):
    """Base class of every error syncpeer reports to a user or a peer."""


class InvalidCard(SyncpeerError):
    """An identity card is malformed, its fingerprint does not match its key, or its signature
    does not verify."""


class InvalidEnvelope(SyncpeerError):
    """An envelope is malformed, tampered with, or does not match what was announced."""


class NotARecipient(SyncpeerError):
    """This identity is not among an envelope's recipients, so it cannot decrypt the file."""


class InvalidName(SyncpeerError):
    """A file name would escape the store directory or cannot be stored."""


class UnknownFriend(SyncpeerError):
    """A fingerprint was named that is not in the keyring."""

    def __init__(self, fingerprint: str) -> None:
        super().__init__(f"unknown friend {fingerprint!r}: add it with POST /admin/friends first")
        self.fingerprint = fingerprint
