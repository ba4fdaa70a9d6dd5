"""Recording one client operation in the history, by Jepsen's client contract.

    with Recording(history, "write", value, process=p, node=n, classify=outcome) as op:
        await connection.command("SET", key, value)
        op.applied()        # from here on the write has happened, whatever fails next
        ...
        op.ok(result)       # or op.fail(error=...) / op.info(error=...); nothing said: ok

An operation ends `ok` (it happened), `fail` (it certainly did not: the system refused it,
or the request never left the client) or `info` (unknown: no answer, a timeout, a
connection lost after the request was sent). Only an adapter knows which of its errors
prove that nothing happened, so each passes `classify`, mapping an exception to "fail" or
"info". An error after `applied()`, a cancellation, or anything that is not an `Exception`
is `info` without asking: a `fail` that did happen makes checkers see anomalies that are
not there, an `info` only makes them search longer.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

from peerlab.errors import PeerlabError
from peerlab.history import Entry, History, OpType

Unsuccessful = Literal["fail", "info"]
Classify = Callable[[Exception], Unsuccessful]


def describe(exc: BaseException) -> str:
    """The error text a completion records: peerlab's own message, else the exception."""
    if isinstance(exc, PeerlabError) and str(exc):
        return str(exc)
    return repr(exc)


class Recording:
    """One operation in flight; entering it records the invocation, leaving it the outcome."""

    def __init__(
        self,
        history: History,
        f: str,
        value: Any = None,
        *,
        classify: Classify,
        process: int | str | None = None,
        node: str | None = None,
    ) -> None:
        self.history = history
        self.f, self.value, self.process, self.node = f, value, process, node
        self.classify = classify
        self.invocation: Entry | None = None
        self.completion: Entry | None = None
        self._applied = False

    def __enter__(self) -> Recording:
        self.invocation = self.history.invoke(
            self.f, self.value, process=self.process, node=self.node
        )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.completion is not None:
            return
        if exc is None:
            self.ok()
            return
        outcome: Unsuccessful = "info"
        if isinstance(exc, Exception) and not self._applied:
            outcome = self.classify(exc)
        self._complete(outcome, None, describe(exc))

    def applied(self) -> None:
        """The system has taken the operation: an error from here on leaves it `info`."""
        self._applied = True

    def ok(self, value: Any = None) -> Entry:
        """It happened; `value` is its result (default: the invocation's value)."""
        return self._complete("ok", value, None)

    def fail(self, value: Any = None, *, error: str | None = None) -> Entry:
        """The system answered that it did not happen (a compare that did not match...)."""
        return self._complete("fail", value, error)

    def info(self, value: Any = None, *, error: str | None = None) -> Entry:
        """The system answered, but not enough to know whether it happened or will last."""
        return self._complete("info", value, error)

    def _complete(self, type: OpType, value: Any, error: str | None) -> Entry:
        if self.invocation is None:
            raise RuntimeError(f"{self.f}: complete a recording inside its `with` block")
        if self.completion is not None:
            raise RuntimeError(f"{self.f}: already recorded as {self.completion.type}")
        self.completion = self.history.complete(self.invocation, type, value, error=error)
        return self.completion
