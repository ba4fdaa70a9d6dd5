"""Round trips of histories, as properties: EDN values through `dumps` / `loads`, a history
through Jepsen EDN and back, and through peerlab's own JSONL and back."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from peerlab.history import Entry, History, operations, read_jsonl
from peerlab.history_edn import Keyword, dumps, export_edn, loads, read_edn_history

# ------------------------------------------------------------------- EDN values

KEYWORD_NAMES = st.from_regex(r"[A-Za-z*+!_?<>=-][\w*+!?<>=./-]{0,12}", fullmatch=True)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)  # NaN is not equal to itself; ##NaN is checked below
    | st.text()
    | KEYWORD_NAMES.map(Keyword)
)
ATOMS = st.none() | st.booleans() | st.integers() | st.text() | KEYWORD_NAMES.map(Keyword)
HASHABLE = ATOMS | st.lists(ATOMS, max_size=3).map(tuple)  # a vector as a key reads as a tuple
EDN_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(HASHABLE, inner, max_size=5)
        | st.frozensets(ATOMS, max_size=5)
    ),
    max_leaves=25,
)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (True is not 1, a keyword not a str)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(value, b[key]) for key, value in a.items())
    if isinstance(a, float) and a == 0:
        return math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


@given(EDN_VALUES)
def test_edn_values_read_back_as_written(value: Any) -> None:
    text = dumps(value)
    assert same(loads(text), value), text


def test_not_a_number_reads_back() -> None:
    assert math.isnan(loads(dumps(float("nan"))))


# ------------------------------------------------------------------- histories

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
# A client process named "nemesis" would be the nemesis in Jepsen's format: not a client.
PROCESSES = st.integers(min_value=0, max_value=2**40) | st.text(min_size=1).filter(
    lambda name: name != "nemesis"
)
NAMES = st.none() | st.text(max_size=8)


@st.composite
def histories(draw: st.DrawFn) -> list[Entry]:
    """Clients invoke and complete operations, at most one in flight per process (Jepsen's
    rule), between faults and framework events; some operations never complete."""
    history = History()
    processes = draw(st.lists(PROCESSES, min_size=1, max_size=4, unique=True))
    open_ops: dict[int | str, Entry] = {}
    for _ in range(draw(st.integers(0, 16))):
        action = draw(st.sampled_from(["invoke", "complete", "fault", "event"]))
        process = draw(st.sampled_from(processes))
        if action == "fault":
            history.fault(draw(st.sampled_from(["apply", "remove"])), draw(JSON_VALUES))
        elif action == "event":
            history.event(draw(st.text(max_size=8)), draw(NAMES), detail=draw(JSON_VALUES))
        elif process in open_ops:
            history.complete(
                open_ops.pop(process),
                draw(st.sampled_from(["ok", "fail", "info"])),
                draw(JSON_VALUES),
                error=draw(NAMES),
            )
        else:
            open_ops[process] = history.invoke(
                draw(st.text(max_size=10)), draw(JSON_VALUES), process=process, node=draw(NAMES)
            )
    return history.entries()


def jepsen_fields(entry: Entry) -> tuple[Any, ...]:
    """What an op map in EDN carries of an entry (no wall clock, no peerlab data)."""
    return (entry.type, entry.f, entry.index, entry.time, entry.process, entry.node, entry.error)


@given(histories())
def test_a_history_reads_back_from_jepsen_edn(history: list[Entry]) -> None:
    written = [entry for entry in history if entry.type != "event"]  # events are not exported
    read = read_edn_history(export_edn(history))
    assert [jepsen_fields(e) for e in read] == [jepsen_fields(e) for e in written]
    for before, after in zip(written, read, strict=True):
        assert same(after.value, before.value), (before, after)
    # Without peerlab's invoke_index the pairs are found by process, and they are the same.
    pairs = [(op.invoke.index, op.completion and op.completion.index) for op in operations(read)]
    assert pairs == [
        (op.invoke.index, op.completion and op.completion.index) for op in operations(written)
    ]


@given(histories())
def test_a_history_reads_back_from_jsonl(history: list[Entry]) -> None:
    lines = [json.dumps(entry.to_json()) for entry in history]
    read = list(read_jsonl(lines))
    assert len(read) == len(history)
    for before, after in zip(history, read, strict=True):
        assert same(after.value, before.value), (before, after)
        assert after == before
