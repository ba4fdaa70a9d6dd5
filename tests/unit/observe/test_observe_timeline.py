"""The merged timeline of a run directory: order, incremental reads, cursors, filters."""

import json
from pathlib import Path

import pytest

from peerlab.errors import UsageError
from peerlab.history import History
from peerlab.observe.events import iso
from peerlab.observe.filters import EventFilter
from peerlab.observe.timeline import (
    TimelineReader,
    fetch,
    load_timeline,
    read_timeline,
    write_timeline,
)


def _log(path: Path, wall: float, event: str, **fields: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(
            json.dumps(
                {
                    "ts": iso(wall),
                    "level": "info",
                    "event": event,
                    "component": "sync",
                    "trace_id": None,
                    **fields,
                }
            )
            + "\n"
        )


def _run_dir(tmp_path: Path) -> tuple[Path, History]:
    history = History(tmp_path / "history.jsonl")
    for name in ("A", "B"):
        (tmp_path / "nodes" / name).mkdir(parents=True)
    return tmp_path, history


def test_node_logs_and_history_merge_in_time_order(tmp_path: Path) -> None:
    root, history = _run_dir(tmp_path)
    started = history.event("node_started", "A").wall
    _log(root / "nodes/B/stdout.log", started + 0.2, "second")
    _log(root / "nodes/A/stdout.log", started + 0.1, "first")
    _log(root / "nodes/A/stdout.log", started + 0.3, "third")
    (root / "nodes/B/stderr.log").write_text("a plain line\n")
    events = read_timeline(root)
    named = [e.event for e in events if e.kind != "output"]
    assert named == ["node_started", "first", "second", "third"]
    assert [e.node for e in events if e.kind != "output"] == ["A", "A", "B", "A"]
    assert any(e.kind == "output" and e.text() == "a plain line" for e in events)
    history.close()


def test_polls_return_only_new_complete_lines(tmp_path: Path) -> None:
    root, history = _run_dir(tmp_path)
    reader = TimelineReader(root)
    assert reader.poll() == []
    _log(root / "nodes/A/stdout.log", 100.0, "one")
    assert [e.event for e in reader.poll()] == ["one"]
    assert reader.poll() == []
    with (root / "nodes/A/stdout.log").open("a") as handle:
        handle.write('{"ts": "2026-01-01T00:00:00Z", "event": "half')
    assert reader.poll() == [], "a line still being written waits for its newline"
    with (root / "nodes/A/stdout.log").open("a") as handle:
        handle.write('"}\n')
    assert [e.event for e in reader.poll()] == ["half"]
    history.event("node_killed", "A")
    (root / "nodes" / "C").mkdir()
    _log(root / "nodes/C/stdout.log", 200.0, "a new node")
    assert sorted(e.event for e in reader.poll()) == ["a new node", "node_killed"]
    history.close()


def test_a_cursor_carries_on_where_the_last_call_stopped(tmp_path: Path) -> None:
    root, history = _run_dir(tmp_path)
    _log(root / "nodes/A/stdout.log", 100.0, "before")
    first = fetch(root, None, EventFilter())
    assert [e["event"] for e in first["events"]] == ["before"]
    cursor = json.loads(json.dumps(first["cursor"]))
    _log(root / "nodes/A/stdout.log", 101.0, "after")
    _log(root / "nodes/B/stdout.log", 101.5, "elsewhere")
    second = fetch(root, cursor, EventFilter(nodes=("A",)))
    assert [e["event"] for e in second["events"]] == ["after"]
    assert fetch(root, second["cursor"], EventFilter())["events"] == []
    history.close()


@pytest.mark.parametrize(
    "cursor",
    [
        {"\u00a3N": [{}, [1, None]]},  # no "files": would read everything from the top
        {"files": 3},
        {"files": {"history.jsonl": 5}},
        {"files": {"history.jsonl": [-1, 0.0]}},
        {"files": {"history.jsonl": [1.5, 0.0]}},
        {"files": {"history.jsonl": [True, 0.0]}},
        {"files": {"history.jsonl": [0, "soon"]}},
        {"files": {"history.jsonl": [0, 0.0, 0]}},
        ["files"],
    ],
)
def test_a_cursor_that_was_not_handed_back_is_a_usage_error(tmp_path: Path, cursor) -> None:
    root, history = _run_dir(tmp_path)
    _log(root / "nodes/A/stdout.log", 100.0, "before")
    with pytest.raises(UsageError, match="cursor is not one") as info:
        fetch(root, cursor, EventFilter())
    assert info.value.field == "cursor"
    assert fetch(root, {}, EventFilter())["events"][0]["event"] == "before"
    history.close()


def test_a_truncated_log_is_read_again_from_the_top(tmp_path: Path) -> None:
    root, history = _run_dir(tmp_path)
    log = root / "nodes/A/stdout.log"
    _log(log, 100.0, "one")
    _log(log, 101.0, "two")
    reader = TimelineReader(root)
    assert len(reader.poll()) == 2
    log.write_text("")
    _log(log, 102.0, "fresh")
    assert [e.event for e in reader.poll()] == ["fresh"]
    history.close()


def test_tail_and_filters_and_the_timeline_file(tmp_path: Path) -> None:
    root, history = _run_dir(tmp_path)
    for number in range(5):
        _log(root / "nodes/A/stdout.log", 100.0 + number, f"e{number}", trace_id=f"t{number}")
    assert [e.event for e in read_timeline(root, tail=2)] == ["e3", "e4"]
    assert [e["event"] for e in fetch(root, None, EventFilter(), tail=1)["events"]] == ["e4"]
    for negative in (
        lambda: read_timeline(root, tail=-2),
        lambda: fetch(root, None, EventFilter(), -2),
    ):
        with pytest.raises(UsageError, match="tail is -2"):
            negative()
    assert [e.event for e in read_timeline(root, EventFilter(trace_id="t1"))] == ["e1"]
    written = write_timeline(read_timeline(root), tmp_path / "timeline.jsonl")
    assert [e.event for e in load_timeline(written)] == [f"e{n}" for n in range(5)]
    history.close()
