"""Plain-text log lines are ordered by the time written on them, when the system says how to
read it; lines without one are marked as stamped at read time."""

import json
import time
from pathlib import Path

from peerlab.history import Entry
from peerlab.observe import read_timeline
from peerlab.observe.stamps import load, save


def line(wall: float, text: str) -> str:
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(wall))
    return f"{stamp}.{round(wall % 1 * 1e6):06d} {text}\n"


def test_plain_lines_take_their_own_time(tmp_path: Path) -> None:
    base = 1_700_000_000.25
    heal = Entry("fault", "remove", 0, 0, base + 5, "nemesis", None, {"kind": "partition"})
    (tmp_path / "history.jsonl").write_text(json.dumps(heal.to_json()) + "\n")
    node = tmp_path / "nodes" / "A"
    node.mkdir(parents=True)
    (node / "stdout.log").write_text(
        line(base + 1, "dialing")
        + "  a continuation line without a time\n"
        + line(base + 6, "connection closed")
    )
    save(node, r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6}) ", "%Y/%m/%d %H:%M:%S.%f")
    events = read_timeline(tmp_path)
    texts = [e.fields.get("text", e.event) for e in events]
    walls = {e.fields.get("text"): e.wall for e in events}
    assert abs(walls[line(base + 6, "connection closed").strip()] - (base + 6)) < 1e-3
    # The history's entry at base + 5 sits between the lines written at +1 and +6.
    closed = texts.index(line(base + 6, "connection closed").strip())
    dialing = texts.index(line(base + 1, "dialing").strip())
    untimed = next(e for e in events if "continuation" in str(e.fields.get("text")))
    assert untimed.fields["stamped"] == "read" and untimed.wall == walls[texts[dialing]]
    assert "stamped" not in events[closed].fields
    assert dialing < closed and [e.kind for e in events].index("fault") == closed - 1


def test_without_a_pattern_every_plain_line_is_stamped_at_read(tmp_path: Path) -> None:
    node = tmp_path / "nodes" / "A"
    node.mkdir(parents=True)
    (node / "stdout.log").write_text(line(1_700_000_000, "hello"))
    events = read_timeline(tmp_path)
    assert [e.fields["stamped"] for e in events] == ["read"]
    assert abs(events[0].wall - time.time()) < 3600  # the file's time, not the line's


def test_formats(tmp_path: Path) -> None:
    save(tmp_path, r"^(\S+)", "unix")
    assert load(tmp_path).time("1700000000.5 x") == 1_700_000_000.5
    save(tmp_path, r"ts=(\S+)", "iso8601")
    assert load(tmp_path).time("ts=2023-11-14T22:13:20Z x") == 1_700_000_000.0
    assert load(tmp_path).time("no time here") is None
    (tmp_path / "stamps.json").write_text("{broken")
    assert load(tmp_path) is None
