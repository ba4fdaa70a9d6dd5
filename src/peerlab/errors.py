"""Errors that say what was wrong, where, and how to fix it."""

from __future__ import annotations


class PeerlabError(Exception):
    """A failure peerlab can explain. `hint` tells the user how to fix it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(PeerlabError):
    """Bad input from the user: a field, a value, a name. The CLI exits 2."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class NotFound(UsageError):
    """The user named something that does not exist (an operation, a file, a peer's file)."""


class WaitTimeout(PeerlabError, AssertionError):
    """A wait ran out of time; the message says what it waited for and what it last saw."""
