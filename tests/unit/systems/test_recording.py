"""Recording an operation: invoke, then ok / fail / info by Jepsen's client contract, and
each adapter's classification of its errors (definitely not applied, or unknown)."""

from __future__ import annotations

import asyncio

import pytest

from peerlab.errors import PeerlabError
from peerlab.history import History, operations
from peerlab.systems import etcd, redis_sentinel, syncpeer
from peerlab.systems.recording import Classify, Recording, Unsuccessful
from peerlab.systems.resp import RespError, RespProtocolError


def refused(exc: Exception) -> Unsuccessful:
    return "fail" if isinstance(exc, ConnectionRefusedError) else "info"


def outcomes(history: History) -> list[tuple[str, str, object, str | None]]:
    return [
        (op.type, op.f, op.completion.value if op.completion else None, op.completion.error)
        for op in operations(history.entries())
        if op.completion is not None
    ]


def test_an_operation_that_returns_is_ok_with_its_invocation_value_or_its_result() -> None:
    history = History()
    with Recording(history, "write", {"key": "x", "value": 1}, classify=refused, process=3):
        pass
    with Recording(history, "read", {"key": "x", "value": None}, classify=refused) as op:
        op.ok({"key": "x", "value": 1})
    assert outcomes(history) == [
        ("ok", "write", {"key": "x", "value": 1}, None),
        ("ok", "read", {"key": "x", "value": 1}, None),
    ]
    assert [op.process for op in operations(history.entries())] == [3, None]


@pytest.mark.parametrize(
    ("error", "expected"),
    [(ConnectionRefusedError("refused"), "fail"), (TimeoutError(), "info")],
)
def test_an_error_is_classified_recorded_and_raised(error: Exception, expected: str) -> None:
    history = History()
    with pytest.raises(type(error)), Recording(history, "write", 1, classify=refused):
        raise error
    assert outcomes(history) == [(expected, "write", 1, repr(error))]


def test_after_applied_no_error_is_a_fail() -> None:
    """The Redis case: SET done, then WAIT errors. What the classifier would call a
    refusal cannot undo what was already applied."""
    history = History()
    with (
        pytest.raises(ConnectionRefusedError),
        Recording(history, "write", 1, classify=refused) as op,
    ):
        op.applied()
        raise ConnectionRefusedError("refused")
    assert [t for t, *_ in outcomes(history)] == ["info"]


def test_a_cancellation_is_info_without_asking_the_classifier() -> None:
    def never(exc: Exception) -> Unsuccessful:
        raise AssertionError(f"classified {exc!r}")

    history = History()

    async def cancelled() -> None:
        with Recording(history, "write", 1, classify=never):
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())
    assert [t for t, *_ in outcomes(history)] == ["info"]


def test_an_answer_that_says_no_is_a_fail_and_the_error_still_propagates_as_recorded() -> None:
    history = History()
    with Recording(history, "cas", [1, 2], classify=refused) as op:
        op.fail(error="compare failed")
    # Said once, an outcome stands: an exception after it does not record a second one.
    with pytest.raises(ValueError), Recording(history, "read", None, classify=refused) as op:
        op.ok(5)
        raise ValueError("after the answer")
    assert outcomes(history) == [("fail", "cas", [1, 2], "compare failed"), ("ok", "read", 5, None)]
    with pytest.raises(RuntimeError, match="already recorded as ok"):
        op.info(error="again")


def test_an_operation_is_recorded_when_entered_not_when_made() -> None:
    history = History()
    op = Recording(history, "write", 1, classify=refused)
    assert len(history) == 0
    with pytest.raises(RuntimeError, match="inside its `with` block"):
        op.ok()
    with op:
        assert [e.type for e in history] == ["invoke"]
    assert [e.type for e in history] == ["invoke", "ok"]


# ------------------------------------------------------------------- each adapter's rules


def _name(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Exception):
        return type(value).__name__
    return f"{value.__module__.rsplit('.', 1)[-1]}.{value.__qualname__}"


ETCD_ERROR = etcd.EtcdError("A", "kv/put", 500, "etcdserver: request timed out")
ETCD_UNREACHABLE = etcd.EtcdUnreachable("etcd member A: kv/put: connection refused")
ETCD_TIMEOUT = etcd.EtcdTimeout("etcd member A: kv/put: no answer in 2s")


@pytest.mark.parametrize(
    ("classify", "error", "expected"),
    [
        (etcd.write_outcome, ETCD_UNREACHABLE, "fail"),
        (etcd.write_outcome, ETCD_ERROR, "info"),  # may have committed before the error
        (etcd.write_outcome, ETCD_TIMEOUT, "info"),
        (etcd.write_outcome, KeyError("responses"), "info"),
        (etcd.read_outcome, ETCD_UNREACHABLE, "fail"),
        (etcd.read_outcome, ETCD_ERROR, "fail"),  # a read changes nothing
        (etcd.read_outcome, ETCD_TIMEOUT, "info"),
        (etcd.read_outcome, ValueError("bad JSON"), "info"),
        (redis_sentinel.outcome, RespError("READONLY You can't write against a replica"), "fail"),
        (redis_sentinel.outcome, RespError("NOREPLICAS Not enough good replicas"), "fail"),
        (redis_sentinel.outcome, redis_sentinel.RedisUnavailable("refused", sent=False), "fail"),
        (redis_sentinel.outcome, redis_sentinel.RedisUnavailable("reset after SET"), "info"),
        (redis_sentinel.outcome, RespProtocolError("garbage"), "info"),
        (redis_sentinel.outcome, TimeoutError(), "info"),
        (syncpeer.outcome, syncpeer.SyncpeerError("A", 400, "bad name"), "fail"),
        (syncpeer.outcome, syncpeer.SyncpeerError("A", 404, "no file"), "fail"),
        (syncpeer.outcome, syncpeer.SyncpeerError("A", 500, "internal error"), "info"),
        (syncpeer.outcome, syncpeer.SyncpeerError("A", 502, "bad gateway"), "info"),
        (syncpeer.outcome, syncpeer.SyncpeerUnreachable("peer A is stopped"), "fail"),
        (syncpeer.outcome, PeerlabError("POST /admin/files did not finish within 12s"), "info"),
        (syncpeer.outcome, TimeoutError(), "info"),
    ],
    ids=_name,
)
def test_each_adapter_fails_only_what_certainly_did_not_happen(
    classify: Classify, error: Exception, expected: str
) -> None:
    assert classify(error) == expected
