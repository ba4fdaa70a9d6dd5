"""What `file watch` and `status --watch` show, from events and a status (no terminal)."""

from typing import Any

from rich.console import Console

from peerlab.observe.dashboard import Dashboard
from peerlab.observe.events import TimelineEvent
from peerlab.observe.files import PeerNames, sync_events

FP_A, FP_B = "a" * 40, "b" * 40


def _log(node: str, event: str, wall: float, **fields: Any) -> TimelineEvent:
    return TimelineEvent(wall, node, "node", "log", event, "info", "sync", "t1", fields)


def test_sync_events_have_phases_and_peer_names() -> None:
    events = [
        _log("A", "node_started", 1.0, fingerprint=FP_A),
        _log("B", "node_started", 1.1, fingerprint=FP_B),
        _log("A", "file_published", 2.0, name="a.txt", version=1, size=2000, public=True),
        _log("B", "file_download_started", 2.1, name="a.txt", version=1, source=FP_A, size=2400),
        _log(
            "B",
            "file_download_resumed",
            2.2,
            name="a.txt",
            version=1,
            source=FP_A,
            offset=1200,
            size=2400,
        ),
        _log(
            "B",
            "file_download_completed",
            2.3,
            name="a.txt",
            version=1,
            source=FP_A,
            bytes=2400,
            duration_ms=12.5,
        ),
        _log(
            "B", "file_rejected", 2.4, name="b.txt", version=3, source=FP_A, reason="bad signature"
        ),
        _log("B", "sync_round", 2.5),
    ]
    found = sync_events(events, PeerNames())
    assert [(s.node, s.phase, s.file) for s in found] == [
        ("A", "published", "a.txt v1"),
        ("B", "started", "a.txt v1"),
        ("B", "progress", "a.txt v1"),
        ("B", "completed", "a.txt v1"),
        ("B", "rejected", "b.txt v3"),
    ]
    details = [s.detail for s in found]
    assert details[0] == "public, 2.0 kB"
    assert details[1] == "from A, 2.4 kB"
    assert details[2] == "from A: 1.2 kB of 2.4 kB (50%)"
    assert details[3] == "from A, 2.4 kB in 12.5 ms"
    assert details[4] == "from A: bad signature"


def _status(cpu_seconds: float) -> dict[str, Any]:
    node = {
        "name": "A",
        "state": "running",
        "address": "127.1.0.2",
        "ports": {"http": 7400},
        "pid": 42,
        "cpu_seconds": cpu_seconds,
        "rss_mb": 41.5,
        "uptime_s": 75,
        "restarts": 1,
    }
    down = {
        "name": "B",
        "state": "killed",
        "address": "127.1.0.3",
        "ports": {"http": 7400},
        "pid": 43,
        "restarts": 0,
    }
    net = {
        "faults": [
            {"kind": "partition", "name": "partition", "groups": [["A"], ["B"]]},
            {
                "kind": "link",
                "name": "latency:A->B",
                "type": "latency",
                "src": "A",
                "dst": "B",
                "attributes": {"latency": 200, "jitter": 0},
            },
        ],
        "cut": [["A", "B"], ["B", "A"]],
    }
    return {"name": "default", "seed": 7, "uptime_s": 80, "nodes": [node, down], "net": net}


def test_the_dashboard_shows_nodes_faulty_links_and_events() -> None:
    dashboard = Dashboard(feed_size=2)
    dashboard.add_events([_log("A", f"event{n}", 10.0 + n) for n in range(3)])
    console = Console(record=True, width=140, color_system=None)
    console.print(dashboard.render(_status(1.0), now=1000.0))
    first = console.export_text()
    assert "peers 1/2 running" in first and "faults 2" in first
    assert "killed" in first and "127.1.0.2:7400" in first and "1m15s" in first
    assert "partition A | B" in first and "latency 200ms A->B" in first
    assert "1 node pairs: A-B" in first
    assert "event0" not in first and "event1" in first and "event2" in first
    console.print(dashboard.render(_status(1.5), now=1002.0))
    second = console.export_text()
    assert "25.0" in second, "CPU %: half a CPU second over two seconds"


def test_a_healthy_network_says_so() -> None:
    status = _status(0.0)
    status["net"] = {"faults": [], "cut": []}
    console = Console(record=True, width=120, color_system=None)
    console.print(Dashboard().render(status))
    assert "every link is healthy" in console.export_text()
