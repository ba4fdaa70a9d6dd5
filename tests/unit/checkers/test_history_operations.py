"""`operations`: pairing invocations with completions, by index or by process."""

from __future__ import annotations

import pytest

from peerlab.history import Entry, History, as_operations, operations


def test_pairs_by_invoke_index_even_when_a_process_has_two_open_ops() -> None:
    h = History()
    first = h.invoke("write", 1, process=0)
    second = h.invoke("write", 2, process=0)
    h.complete(second, "ok")
    h.complete(first, "fail")
    ops = operations(h.entries())
    assert [(op.invoke.value, op.type) for op in ops] == [(1, "fail"), (2, "ok")]
    assert ops[1].invoke_position == 1 and ops[1].complete_position == 2


def test_pairs_by_process_without_index_as_jepsen_does() -> None:
    entries = [
        Entry("invoke", "read", 0, 10, 0.0, 0),
        Entry("invoke", "write", 1, 11, 0.0, 1, value=3),
        Entry("ok", "write", 2, 15, 0.0, 1, value=3),
        Entry("ok", "read", 3, 30, 0.0, 0, value=3),
    ]
    ops = operations(entries)
    assert [(op.f, op.value, op.latency_ns) for op in ops] == [("read", 3, 20), ("write", 3, 4)]


def test_unfinished_invocations_are_unknown_and_faults_are_skipped() -> None:
    h = History()
    h.fault("apply", {"kind": "partition"})
    h.invoke("write", 1, process=0)
    h.event("node_killed", node="n1")
    (op,) = operations(h.entries())
    assert op.type == "info" and op.completion is None and op.latency_ns is None


def test_a_completion_without_invocation_is_an_error() -> None:
    with pytest.raises(ValueError, match="no open invocation"):
        operations([Entry("ok", "read", 7, 0, 0.0, 3)])


def test_two_open_ops_on_one_process_without_index_are_ambiguous() -> None:
    entries = [
        Entry("invoke", "read", 0, 0, 0.0, 0),
        Entry("invoke", "read", 1, 1, 0.0, 0),
        Entry("ok", "read", 2, 2, 0.0, 0),
    ]
    with pytest.raises(ValueError, match="2 open invocations"):
        operations(entries)


def test_as_operations_accepts_a_history_entries_or_operations() -> None:
    h = History()
    h.complete(h.invoke("read", process=0), "ok", 1)
    ops = as_operations(h)
    assert as_operations(ops) is not ops and as_operations(ops) == ops
    assert as_operations(h.entries()) == ops
    mixed: list = [*ops, h.entries()[0]]
    with pytest.raises(TypeError):
        as_operations(mixed)
