"""Timeline events from node log lines and history entries, and the filters over them."""

import json
import time

import pytest

from peerlab.errors import UsageError
from peerlab.history import History
from peerlab.observe.events import (
    TimelineEvent,
    describe_fault,
    fault_nodes,
    from_history,
    from_log_line,
    parse_time,
)
from peerlab.observe.filters import EventFilter, parse_since

SYNCPEER_LINE = json.dumps(
    {
        "ts": "2026-01-02T10:00:01.250000Z",
        "level": "info",
        "node": "B",
        "component": "sync",
        "event": "file_download_started",
        "trace_id": "abc123",
        "name": "a.txt",
        "source": "f" * 40,
        "size": 10,
    }
)


def test_a_syncpeer_line_keeps_its_fields_and_time() -> None:
    event = from_log_line(SYNCPEER_LINE, "B", "stdout", 0.0)
    assert event.wall == parse_time("2026-01-02T10:00:01.25Z")
    assert (event.node, event.kind, event.event, event.level) == (
        "B",
        "log",
        "file_download_started",
        "info",
    )
    assert (event.component, event.trace_id) == ("sync", "abc123")
    assert event.fields == {"name": "a.txt", "source": "f" * 40, "size": 10}
    assert event.ts == "2026-01-02T10:00:01.250000Z"


def test_other_systems_keys_are_understood() -> None:
    line = json.dumps({"time": 1767348001500, "lvl": "WARN", "msg": "slow disk", "x": 1})
    event = from_log_line(line, "A", "stderr", 0.0)
    assert event.wall == pytest.approx(1767348001.5)
    assert (event.level, event.event, event.fields) == ("warning", "slow disk", {"x": 1})


def test_a_plain_line_takes_the_time_of_the_line_before() -> None:
    event = from_log_line("Traceback (most recent call last):\n", "C", "stderr", 123.5)
    assert (event.wall, event.kind, event.event) == (123.5, "output", "stderr")
    assert event.text() == "Traceback (most recent call last):"


def test_json_round_trip_keeps_a_field_named_like_ours() -> None:
    event = from_log_line(SYNCPEER_LINE, "B", "stdout", 0.0)
    raw = event.to_json()
    assert raw["source"] == "node" and raw["source_"] == "f" * 40
    assert TimelineEvent.from_json(json.loads(json.dumps(raw))) == event


def test_history_entries_become_ops_faults_and_events() -> None:
    history = History()
    invoke = history.invoke("publish", {"name": "a"}, process="A", node="A")
    failed = history.complete(invoke, "fail", error="HTTP 500")
    fault = history.fault(
        "apply", {"kind": "partition", "name": "partition", "groups": [["A"], ["B", "C"]]}
    )
    killed = history.event("node_killed", "B")
    verdict = history.event("verdict", None, checker="x", valid="invalid", summary="s")
    events = [from_history(e) for e in (invoke, failed, fault, killed, verdict)]
    assert [(e.kind, e.event, e.level) for e in events] == [
        ("op", "publish:invoke", "info"),
        ("op", "publish:fail", "warning"),
        ("fault", "fault_applied", "warning"),
        ("event", "node_killed", "warning"),
        ("verdict", "verdict", "error"),
    ]
    assert events[1].fields["error"] == "HTTP 500"
    assert events[1].fields["invoke_index"] == invoke.index
    assert events[2].text() == "partition A | B,C"


@pytest.mark.parametrize(
    ("fault", "text", "nodes"),
    [
        (
            {"kind": "partition", "groups": [["A", "B"], ["C"]], "duration": 5},
            "partition A,B | C for 5s",
            None,
        ),
        (
            {"kind": "partition", "groups": [["A"], ["B"]], "one_way": True},
            "partition A -/-> B",
            None,
        ),
        (
            {
                "kind": "link",
                "type": "latency",
                "src": "A",
                "dst": "B",
                "attributes": {"latency": 200, "jitter": 20},
            },
            "latency 200ms±20ms A->B",
            ["A", "B"],
        ),
        (
            {
                "kind": "link",
                "type": "bandwidth",
                "src": None,
                "dst": "C",
                "attributes": {"rate": 100},
                "toxicity": 0.5,
            },
            "bandwidth 100KB/s *->C toxicity=0.5",
            None,
        ),
        (
            {"kind": "link", "type": "loss", "src": "A", "dst": "B", "attributes": {"percent": 10}},
            "loss 10% A->B",
            ["A", "B"],
        ),
    ],
)
def test_faults_are_described_in_a_few_words(fault: dict, text: str, nodes: list | None) -> None:
    assert describe_fault(fault) == text
    assert fault_nodes(fault) == nodes


def _event(node: str | None, event: str, wall: float = 100.0, **kwargs: object) -> TimelineEvent:
    defaults: dict = {
        "source": "node",
        "kind": "log",
        "level": "info",
        "component": "sync",
        "trace_id": None,
        "fields": {},
    }
    defaults.update(kwargs)
    return TimelineEvent(wall, node, event=event, **defaults)


def test_a_filter_on_nodes_keeps_network_faults() -> None:
    keep = EventFilter(nodes=("A",))
    assert keep(_event("A", "x"))
    assert not keep(_event("B", "x"))
    assert keep(_event(None, "fault_applied", kind="fault"))
    assert not keep(_event(None, "verdict", kind="verdict"))


def test_filters_by_text_time_trace_event_and_level() -> None:
    line = _event(
        "A",
        "file_download_failed",
        50.0,
        level="warning",
        trace_id="t1",
        fields={"error": "ClientConnectorError"},
    )
    assert EventFilter(grep="Connector")(line)
    assert not EventFilter(grep="^nothing")(line)
    assert EventFilter(since=49.0, until=51.0)(line)
    assert not EventFilter(since=50.5)(line)
    assert EventFilter(trace_id="t1")(line) and not EventFilter(trace_id="t2")(line)
    assert EventFilter(events=("file_*",))(line) and not EventFilter(events=("node_*",))(line)
    assert EventFilter(min_level="warning")(line) and not EventFilter(min_level="error")(line)
    assert EventFilter.from_json(EventFilter(nodes=("A",), grep="x").to_json()) == EventFilter(
        nodes=("A",), grep="x"
    )


def test_bad_filters_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="not a regular expression"):
        EventFilter(grep="(")
    with pytest.raises(UsageError, match="level"):
        EventFilter(min_level="loud")


def test_since_takes_a_duration_ago_or_a_time() -> None:
    now = time.time()
    assert parse_since("30s", now) == pytest.approx(now - 30)
    assert parse_since("5m", now) == pytest.approx(now - 300)
    assert parse_since("2026-01-02T10:00:00Z") == parse_time("2026-01-02T10:00:00Z")
    for bad in ("10x", "yesterday", "30"):
        with pytest.raises(UsageError, match="--since"):
            parse_since(bad, now)
